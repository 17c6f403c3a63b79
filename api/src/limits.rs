//! Per-client-IP rate limit: a token bucket per address (IPv6 per /64),
//! in a map of bounded size, answering `429 {"code": "rate_limited"}` with
//! `Retry-After`. Loopback is not exempt: a node behind a local reverse
//! proxy should raise the limit instead (every client then shares one IP).
//!
//! The body-size limit is [`crate::REQUEST_BYTES_MAX`], enforced by the router
//! (`413 {"code": "body_too_large"}`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use axum::Router;

use crate::ApiCode;
use crate::ApiError;

/// The rate limit's settings (the node's `[api]` config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second each client IP may make, sustained.
    pub per_second: f64,
    /// Requests a client IP may make at once after being idle.
    pub burst: f64,
    /// Client IPs tracked at most; beyond it the idlest bucket is forgotten.
    pub ips_max: usize,
}

/// The peer address of a connection, for any [`SocketListener`] (plain TCP,
/// or the node's TLS listener). Serve with
/// `router.into_make_service_with_connect_info::<ClientAddr>()`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// A listener whose peers have socket addresses. (A trait of this crate, so
/// the impl below cannot overlap axum's own `Connected` impls.)
pub trait SocketListener: Listener<Addr = SocketAddr> {}

impl SocketListener for tokio::net::TcpListener {}

impl<L> Connected<IncomingStream<'_, L>> for ClientAddr
where
    L: SocketListener,
{
    fn connect_info(stream: IncomingStream<'_, L>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Limiter {
    /// Takes a token from the bucket of `ip`: `Ok`, or the seconds until it may retry.
    fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let RateLimit {
            per_second,
            burst,
            ips_max,
        } = self.limit;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&ip) && buckets.len() >= ips_max.max(1) {
            // Forget buckets that have refilled (their clients went quiet); if
            // none has, the fullest one: memory stays bounded either way.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst
            });
            if buckets.len() >= ips_max.max(1) {
                let fullest = buckets
                    .iter()
                    .max_by(|a, b| a.1.tokens.total_cmp(&b.1.tokens))
                    .map(|(ip, _)| *ip);
                if let Some(f) = fullest {
                    buckets.remove(&f);
                }
            }
        }
        let b = buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * per_second).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / per_second.max(f64::MIN_POSITIVE);
            Err(wait.ceil().clamp(1.0, 3600.0) as u64)
        }
    }
}

/// The bucket key: the address, or for IPv6 its /64 (one subscriber's
/// prefix, which they can fill with addresses at will).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

async fn rate_limit(State(limiter): State<Arc<Limiter>>, req: Request, next: Next) -> Response {
    // Without connection info (a router driven in-process) there is no client to limit.
    let ip = req
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|c| c.0 .0.ip())
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
    if let Some(ip) = ip {
        if let Err(retry_after) = limiter.take(client_key(ip), Instant::now()) {
            crate::metrics::rate_limited();
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ApiCode::RateLimited,
                format!(
                    "more than {} requests per second from this address; retry after {retry_after} s",
                    limiter.limit.per_second
                ),
            )
            .into_response();
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after));
            return resp;
        }
    }
    next.run(req).await
}

/// `router` with the per-IP rate limit in front of every route (none when `limit` is `None`).
pub fn with_rate_limit(router: Router, limit: Option<RateLimit>) -> Router {
    let Some(limit) = limit.filter(|l| l.per_second > 0.0 && l.burst >= 1.0) else {
        return router;
    };
    let limiter = Arc::new(Limiter {
        limit,
        buckets: Mutex::new(HashMap::new()),
    });
    router.layer(axum::middleware::from_fn_with_state(limiter, rate_limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limiter(per_second: f64, burst: f64, ips_max: usize) -> Limiter {
        Limiter {
            limit: RateLimit {
                per_second,
                burst,
                ips_max,
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn bucket_allows_burst_then_refills() {
        let l = limiter(2.0, 3.0, 10);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take(ip, t0).is_ok());
        }
        assert_eq!(l.take(ip, t0), Err(1));
        // Another address has its own bucket.
        assert!(l.take("10.0.0.2".parse().unwrap(), t0).is_ok());
        assert!(l.take(ip, t0 + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn map_stays_bounded() {
        let l = limiter(1.0, 1.0, 4);
        let t0 = Instant::now();
        for i in 0..100u8 {
            let _ = l.take(IpAddr::from([10, 0, 0, i]), t0);
        }
        assert!(l.buckets.lock().unwrap().len() <= 4);
    }

    #[test]
    fn ipv6_shares_a_bucket_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let m: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(client_key(m), "10.1.2.3".parse::<IpAddr>().unwrap());
    }
}
