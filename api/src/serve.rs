//! Serving the router on a listener, so that no slow or noisy client can
//! hold the node: a time limit on each request's headers (which also ends an
//! idle keep-alive connection), a time limit on each request's body
//! (`408 request_timeout`), and caps on open connections, in total and per
//! client address. A connection over a cap is closed at once; the client
//! retries later, and the node's memory and file descriptors stay bounded.
//!
//! axum's own `serve` has no header timeout and no caps, which is why this
//! loop exists; otherwise it does what that one does (HTTP/1.1 and HTTP/2,
//! graceful shutdown that lets open requests finish).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::limits::{client_key, ClientAddr};
use crate::{ApiCode, ApiError, REQUEST_BYTES_MAX};

/// The connection limits (the node's `[api]` config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers, from when the
    /// connection is ready for one (so also the idle keep-alive limit).
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's whole body.
    pub body_read_timeout_ms: u64,
    /// Open connections at most, all clients together.
    pub connections_max: usize,
    /// Open connections at most from one client address (IPv6: one /64).
    pub connections_per_client_max: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            connections_max: 4_096,
            connections_per_client_max: 512,
        }
    }
}

/// Open connections, in total and by client key.
#[derive(Debug, Default)]
struct Open {
    by_client: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One open connection; counted until dropped.
struct OpenGuard {
    open: Arc<Open>,
    client: IpAddr,
}

impl Open {
    fn admit(self: &Arc<Self>, client: IpAddr, limits: &ConnectionLimits) -> Option<OpenGuard> {
        let mut g = self.by_client.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_client) = &mut *g;
        let mine = by_client.get(&client).copied().unwrap_or(0);
        if *total >= limits.connections_max.max(1)
            || mine >= limits.connections_per_client_max.max(1)
        {
            return None;
        }
        *total += 1;
        by_client.insert(client, mine + 1);
        Some(OpenGuard {
            open: self.clone(),
            client,
        })
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut g = self
            .open
            .by_client
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (total, by_client) = &mut *g;
        *total = total.saturating_sub(1);
        if let Some(n) = by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                by_client.remove(&self.client);
            }
        }
    }
}

/// Reads a request's body within `timeout`, so a client that trickles it
/// cannot hold a handler: `408 request_timeout` past it, `413
/// body_too_large` past [`REQUEST_BYTES_MAX`]. The body is then handed on
/// whole, as the handlers buffer it anyway.
async fn read_body_in_time(timeout: Duration, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, REQUEST_BYTES_MAX)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => ApiError::body_too_large().into_response(),
        Err(_) => {
            crate::metrics::request_timed_out();
            let mut resp = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ApiCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} ms",
                    timeout.as_millis()
                ),
            )
            .into_response();
            // The rest of the body may still be on its way: do not read it.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            resp
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open
/// requests finish. Requests carry [`ClientAddr`] connect info.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    L: Listener<Addr = SocketAddr>,
{
    let body_timeout = Duration::from_millis(limits.body_read_timeout_ms.max(1));
    let app = app.layer(axum::middleware::from_fn(move |req, next| {
        read_body_in_time(body_timeout, req, next)
    }));
    let open = Arc::new(Open::default());
    // Dropping `stop_rx` tells every connection to finish; `done_tx` closes
    // when the last connection task has dropped its receiver.
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(stop_rx);
    });
    let (done_tx, done_rx) = watch::channel(());
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop_tx.closed() => break,
        };
        let Some(guard) = open.admit(client_key(addr.ip()), &limits) else {
            crate::metrics::connection_refused();
            drop(io);
            continue;
        };
        let service = app
            .clone()
            .map_request(move |req: Request<hyper::body::Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(ClientAddr(addr)));
                req
            });
        let stop = stop_tx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms.max(1)));
            builder.http2().timer(TokioTimer::new());
            let hyper_service = TowerToHyperService::new(service);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), hyper_service);
            tokio::pin!(conn);
            let stopped = stop.closed();
            tokio::pin!(stopped);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::trace!(error = %e, "connection ended");
                        }
                        break;
                    }
                    _ = &mut stopped, if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(guard);
            drop(done);
        });
    }
    drop(done_rx);
    drop(listener);
    done_tx.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_in_total_and_per_client() {
        let limits = ConnectionLimits {
            connections_max: 3,
            connections_per_client_max: 2,
            ..Default::default()
        };
        let open = Arc::new(Open::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = open.admit(a, &limits).expect("first");
        let _a2 = open.admit(a, &limits).expect("second");
        assert!(open.admit(a, &limits).is_none(), "a third from one client");
        let _b1 = open.admit(b, &limits).expect("another client");
        assert!(open.admit(b, &limits).is_none(), "over the total");
        drop(a1);
        assert!(open.admit(b, &limits).is_some(), "a slot came free");
    }
}
