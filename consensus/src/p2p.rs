//! Raft over libp2p: TCP + noise + yamux, one request-response protocol.
//!
//! A node's libp2p identity is its validator Ed25519 key, so its `PeerId` is
//! fixed by genesis. Noise authenticates the remote's key during the
//! handshake; [`Gate`] then refuses (and logs) every connection, inbound or
//! outbound, whose `PeerId` is not derived from a key in the validator set,
//! before any request can be read from it. Where a Raft node is, is taken from
//! the membership's `BasicNode::addr` (a multiaddr); who it is, is taken only
//! from genesis: a `/p2p/...` suffix in the address is not trusted.
//!
//! Frames are a 4-byte big-endian length and a bincode body, bounded by
//! [`P2pConfig::message_bytes_max`] in both directions. Requests are encoded
//! by the sender before they reach the swarm, so an append-entries that would
//! not fit is handed back to openraft as `PayloadTooLarge` and split.
//!
//! The swarm runs in one task; [`P2pTransport`] talks to it through a bounded
//! command queue. Inbound RPCs are decoded and handed to Raft in their own
//! tasks (bounded by [`P2pConfig::inbound_max`]), so a slow Raft never stalls
//! the swarm. A peer whose dial fails is not redialled before a backoff that
//! doubles from `redial_min_ms` to `redial_max_ms`; a connection resets it.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::StreamExt;
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, SwarmEvent, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{identity, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::error::{ConsensusError, Result};
use crate::network::{RpcResult, Transport};
use crate::types::{NodeId, Raft, TypeConfig};

/// The one protocol: Raft RPCs, version 1.
pub const RAFT_PROTOCOL: StreamProtocol = StreamProtocol::new("/zsl/raft/1");
/// Commands waiting for the swarm task; beyond this a send fails as unreachable.
pub const P2P_COMMANDS_MAX: usize = 1_024;
/// Outbound requests awaiting an answer; beyond this a send fails as unreachable.
pub const P2P_PENDING_MAX: usize = 4_096;
/// What bincode may claim while decoding one frame (never above the frame itself
/// in practice; this stops a lying length prefix inside the body).
const DECODE_LIMIT_BYTES: usize = 256 << 20;

/// Limits and timings of the libp2p transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2pConfig {
    /// Where to listen; `/ip4/127.0.0.1/tcp/0` picks a port at run time.
    pub listen: Multiaddr,
    /// One encoded request or response. Must exceed the consensus
    /// `block_bytes_max` with room for the entry's framing.
    pub message_bytes_max: usize,
    /// Inbound RPCs being handled at once; more are dropped (the sender retries).
    pub inbound_max: usize,
    /// libp2p's own limit on one request's round trip.
    pub request_timeout_ms: u64,
    pub redial_min_ms: u64,
    pub redial_max_ms: u64,
    /// A connection with no stream open for this long is closed.
    pub idle_timeout_ms: u64,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen: Multiaddr::empty()
                .with(Protocol::Ip4([127, 0, 0, 1].into()))
                .with(Protocol::Tcp(0)),
            message_bytes_max: 32 << 20,
            inbound_max: 256,
            request_timeout_ms: 10_000,
            redial_min_ms: 100,
            redial_max_ms: 2_000,
            idle_timeout_ms: 60_000,
        }
    }
}

impl P2pConfig {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ConsensusError::Config(m));
        if self.message_bytes_max < 1 << 20 || self.message_bytes_max > DECODE_LIMIT_BYTES {
            return bad(format!(
                "message_bytes_max must be 1 MiB..={DECODE_LIMIT_BYTES} bytes, not {}",
                self.message_bytes_max
            ));
        }
        if self.inbound_max == 0 || self.request_timeout_ms == 0 {
            return bad("inbound_max and request_timeout_ms must be at least 1".into());
        }
        if self.redial_min_ms == 0 || self.redial_min_ms > self.redial_max_ms {
            return bad(format!(
                "redial backoff must satisfy 0 < min <= max, not {}..={} ms",
                self.redial_min_ms, self.redial_max_ms
            ));
        }
        Ok(())
    }
}

/// The `PeerId` of the validator whose Ed25519 public key is `public_key_hex`.
pub fn peer_id_of(public_key_hex: &str) -> Result<PeerId> {
    let mut raw = [0u8; 32];
    hex::decode_to_slice(public_key_hex, &mut raw)
        .map_err(|e| ConsensusError::Config(format!("validator key {public_key_hex:?}: {e}")))?;
    let key = identity::ed25519::PublicKey::try_from_bytes(&raw)
        .map_err(|e| ConsensusError::Config(format!("validator key {public_key_hex:?}: {e}")))?;
    Ok(identity::PublicKey::from(key).to_peer_id())
}

/// The libp2p identity of a validator whose Ed25519 seed (the key file's
/// `secret_key`) is `secret_key_hex`.
pub fn keypair_of(secret_key_hex: &str) -> Result<identity::Keypair> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(secret_key_hex, &mut seed)
        .map_err(|e| ConsensusError::Config(format!("validator secret key: {e}")))?;
    identity::Keypair::ed25519_from_bytes(seed)
        .map_err(|e| ConsensusError::Config(format!("validator secret key: {e}")))
}

/// The multiaddr in a membership address (`BasicNode::addr`): either the
/// multiaddr itself, or a JSON object `{"p2p": MULTIADDR, "api": HOST:PORT}`
/// (the `zsl` node records its HTTP API there as well, so that a follower
/// knows where to forward submissions).
pub fn member_p2p_addr(addr: &str) -> String {
    member_field(addr, "p2p").unwrap_or_else(|| addr.to_string())
}

/// A named field of a JSON membership address, if the address is JSON and has it.
pub fn member_field(addr: &str, field: &str) -> Option<String> {
    if !addr.trim_start().starts_with('{') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(addr).ok()?;
    v.get(field)?.as_str().map(str::to_string)
}

/// The validator set as the transport sees it: node id → `PeerId`.
pub fn validator_peers(spec: &ledger::spec::ChainSpec) -> Result<BTreeMap<NodeId, PeerId>> {
    validator_set_peers(&spec.validators)
}

/// Node id → `PeerId` for a validator set.
pub fn validator_set_peers(set: &[ledger::spec::Validator]) -> Result<BTreeMap<NodeId, PeerId>> {
    set.iter()
        .map(|v| Ok((v.node_id, peer_id_of(&v.public_key)?)))
        .collect()
}

// ---------------------------------------------------------------- wire

#[derive(Serialize, Deserialize)]
enum WireRequest {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    Cosign(ledger::block::Cosignature),
    /// Transactions a follower forwards to the leader.
    Submit(Vec<Vec<u8>>),
}

/// A response: the outer `Err` says the peer would not hand the request to
/// Raft at all (not serving yet, malformed frame); the inner one is Raft's.
type WireResponse<T, E> = std::result::Result<std::result::Result<T, RaftError<NodeId, E>>, String>;

fn encode<T: Serialize>(value: &T) -> std::result::Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| e.to_string())
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT_BYTES>();
    bincode::serde::decode_from_slice(bytes, config)
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())
}

/// Length-prefixed opaque frames; bodies are (de)coded outside the swarm.
#[derive(Debug, Clone, Copy)]
struct FrameCodec {
    max_bytes: usize,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max_bytes: usize,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {max_bytes} bytes"),
        ));
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    body: Vec<u8>,
    max_bytes: usize,
) -> io::Result<()> {
    let len = match u32::try_from(body.len()) {
        Ok(len) if body.len() <= max_bytes => len,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame of {} bytes exceeds the limit of {max_bytes} bytes",
                    body.len()
                ),
            ))
        }
    };
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(&body).await?;
    io.flush().await
}

type BoxIo<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

// `Codec` is declared with `#[async_trait]`; these are its expanded
// signatures, written out so the crate needs no proc-macro for four methods.
impl request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    fn read_request<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 StreamProtocol,
        io: &'life2 mut T,
    ) -> BoxIo<'async_trait, Vec<u8>>
    where
        T: AsyncRead + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let max = self.max_bytes;
        Box::pin(read_frame(io, max))
    }

    fn read_response<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 StreamProtocol,
        io: &'life2 mut T,
    ) -> BoxIo<'async_trait, Vec<u8>>
    where
        T: AsyncRead + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let max = self.max_bytes;
        Box::pin(read_frame(io, max))
    }

    fn write_request<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 StreamProtocol,
        io: &'life2 mut T,
        req: Vec<u8>,
    ) -> BoxIo<'async_trait, ()>
    where
        T: AsyncWrite + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let max = self.max_bytes;
        Box::pin(write_frame(io, req, max))
    }

    fn write_response<'life0, 'life1, 'life2, 'async_trait, T>(
        &'life0 mut self,
        _protocol: &'life1 StreamProtocol,
        io: &'life2 mut T,
        res: Vec<u8>,
    ) -> BoxIo<'async_trait, ()>
    where
        T: AsyncWrite + Unpin + Send + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let max = self.max_bytes;
        Box::pin(write_frame(io, res, max))
    }
}

// ---------------------------------------------------------------- gate

/// The validator set as the network sees it: node id → libp2p identity.
/// Shared by the gate and the transport, and replaced when the ledger's
/// validator set changes.
pub type ValidatorPeers = Arc<std::sync::RwLock<BTreeMap<NodeId, PeerId>>>;

fn read_peers(peers: &ValidatorPeers) -> std::sync::RwLockReadGuard<'_, BTreeMap<NodeId, PeerId>> {
    peers
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Admits connections only from and to validators.
struct Gate {
    allowed: ValidatorPeers,
    denied: Arc<AtomicU64>,
}

impl Gate {
    fn is_allowed(&self, peer: &PeerId) -> bool {
        read_peers(&self.allowed).values().any(|p| p == peer)
    }

    fn check(
        &self,
        peer: &PeerId,
        addr: &Multiaddr,
        direction: &str,
    ) -> std::result::Result<(), ConnectionDenied> {
        if self.is_allowed(peer) {
            return Ok(());
        }
        self.denied.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%peer, %addr, direction, "refused a connection: peer is not a validator");
        Err(ConnectionDenied::new(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("peer {peer} is not in the validator set"),
        )))
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> std::result::Result<THandler<Self>, ConnectionDenied> {
        self.check(&peer, remote, "inbound")?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        addrs: &[Multiaddr],
        _: Endpoint,
    ) -> std::result::Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            let addr = addrs.first().cloned().unwrap_or_else(Multiaddr::empty);
            self.check(&peer, &addr, "outbound dial")?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> std::result::Result<THandler<Self>, ConnectionDenied> {
        self.check(&peer, addr, "outbound")?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _event: FromSwarm<'_>) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct ZslBehaviour {
    gate: Gate,
    rpc: request_response::Behaviour<FrameCodec>,
}

// ---------------------------------------------------------------- swarm task

/// Why an outbound request got no answer, in openraft's terms.
#[derive(Debug)]
enum SendFailure {
    /// Back off before retrying: no connection, refused, backing off.
    Unreachable(String),
    Timeout,
    /// Retry at once: the stream broke.
    Network(String),
}

enum Command {
    Send {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        body: Vec<u8>,
        reply: oneshot::Sender<std::result::Result<Vec<u8>, SendFailure>>,
    },
    /// Close connections to peers that left the validator set.
    Disconnect(Vec<PeerId>),
}

/// Counters for tests and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct P2pStats {
    /// Connections refused because the peer is not a validator.
    pub denied: u64,
    /// Inbound RPCs handed to Raft.
    pub served: u64,
}

struct Shared {
    raft: OnceLock<Raft>,
    inbox: OnceLock<crate::cosign::CosignInbox>,
    submissions: OnceLock<crate::forward::SubmitInbox>,
    denied: Arc<AtomicU64>,
    served: AtomicU64,
    inbound: Arc<Semaphore>,
}

struct Backoff {
    retry_at: Instant,
    wait: Duration,
}

struct SwarmTask {
    swarm: Swarm<ZslBehaviour>,
    commands: mpsc::Receiver<Command>,
    responses_tx: mpsc::Sender<(request_response::ResponseChannel<Vec<u8>>, Vec<u8>)>,
    responses: mpsc::Receiver<(request_response::ResponseChannel<Vec<u8>>, Vec<u8>)>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<std::result::Result<Vec<u8>, SendFailure>>>,
    backoff: HashMap<PeerId, Backoff>,
    listen_tx: Option<oneshot::Sender<Multiaddr>>,
    shared: Arc<Shared>,
    config: P2pConfig,
}

impl SwarmTask {
    async fn run(mut self) {
        loop {
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    // Every transport handle is gone: the node stopped.
                    None => break,
                },
                Some((channel, body)) = self.responses.recv() => {
                    // The requester may have gone; nothing to do then.
                    let _ = self.swarm.behaviour_mut().rpc.send_response(channel, body);
                }
                event = self.swarm.select_next_some() => self.on_event(event),
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let (peer, addrs, body, reply) = match cmd {
            Command::Send {
                peer,
                addrs,
                body,
                reply,
            } => (peer, addrs, body, reply),
            Command::Disconnect(peers) => {
                for p in peers {
                    let _ = self.swarm.disconnect_peer_id(p);
                }
                return;
            }
        };
        if self.pending.len() >= P2P_PENDING_MAX {
            let _ = reply.send(Err(SendFailure::Unreachable(
                "too many requests in flight".into(),
            )));
            return;
        }
        if !self.swarm.is_connected(&peer) {
            if let Some(b) = self.backoff.get(&peer) {
                if Instant::now() < b.retry_at {
                    let _ = reply.send(Err(SendFailure::Unreachable(format!(
                        "peer {peer} is backing off after a failed dial"
                    ))));
                    return;
                }
            }
        }
        let id = self
            .swarm
            .behaviour_mut()
            .rpc
            .send_request_with_addresses(&peer, body, addrs);
        self.pending.insert(id, reply);
    }

    fn dial_failed(&mut self, peer: PeerId) {
        let min = Duration::from_millis(self.config.redial_min_ms);
        let max = Duration::from_millis(self.config.redial_max_ms);
        let wait = match self.backoff.get(&peer) {
            Some(b) => (b.wait * 2).min(max),
            None => min,
        };
        self.backoff.insert(
            peer,
            Backoff {
                retry_at: Instant::now() + wait,
                wait,
            },
        );
    }

    fn on_event(&mut self, event: SwarmEvent<ZslBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "p2p listening");
                if let Some(tx) = self.listen_tx.take() {
                    let _ = tx.send(address);
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                self.backoff.remove(&peer_id);
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "p2p dial failed");
                if let Some(peer) = peer_id {
                    self.dial_failed(peer);
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!(%send_back_addr, %error, "p2p inbound connection failed");
            }
            SwarmEvent::Behaviour(ZslBehaviourEvent::Rpc(ev)) => self.on_rpc(ev),
            SwarmEvent::Behaviour(ZslBehaviourEvent::Gate(never)) => match never {},
            _ => {}
        }
    }

    fn on_rpc(&mut self, ev: request_response::Event<Vec<u8>, Vec<u8>>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let failure = match error {
                    OutboundFailure::DialFailure => {
                        self.dial_failed(peer);
                        SendFailure::Unreachable(format!("could not dial {peer}"))
                    }
                    OutboundFailure::UnsupportedProtocols => {
                        SendFailure::Unreachable(format!("{peer} does not speak {RAFT_PROTOCOL}"))
                    }
                    OutboundFailure::Timeout => SendFailure::Timeout,
                    other => SendFailure::Network(other.to_string()),
                };
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(failure));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "p2p inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request(
        &mut self,
        peer: PeerId,
        request: Vec<u8>,
        channel: request_response::ResponseChannel<Vec<u8>>,
    ) {
        // The gate only lets validators connect; re-check, it costs nothing.
        if !self.swarm.behaviour().gate.is_allowed(&peer) {
            tracing::warn!(%peer, "dropped a request from a non-validator");
            return;
        }
        let Ok(permit) = self.shared.inbound.clone().try_acquire_owned() else {
            // Dropping the channel fails the request at the sender, which retries.
            tracing::debug!(%peer, "p2p inbound RPC limit reached; dropping a request");
            return;
        };
        let shared = self.shared.clone();
        let responses = self.responses_tx.clone();
        tokio::spawn(async move {
            let body = serve(&shared, &request).await;
            drop(permit);
            let _ = responses.send((channel, body)).await;
        });
    }
}

/// Decodes one inbound request, hands it to Raft and encodes the answer.
async fn serve(shared: &Shared, request: &[u8]) -> Vec<u8> {
    fn answer<T: Serialize, E: Serialize + std::error::Error>(r: &WireResponse<T, E>) -> Vec<u8> {
        // Raft's answers always encode; if one ever did not, the sender sees
        // a malformed frame and treats it as a network error.
        encode(r).unwrap_or_default()
    }
    let request: WireRequest = match decode(request) {
        Ok(r) => r,
        Err(e) => {
            return answer::<(), openraft::error::Infallible>(&Err(format!(
                "malformed request: {e}"
            )))
        }
    };
    shared.served.fetch_add(1, Ordering::Relaxed);
    let raft = shared.raft.get();
    match (request, raft) {
        (WireRequest::Cosign(c), _) => {
            let taken = match shared.inbox.get() {
                Some(inbox) => inbox.receive(c),
                None => Err("not taking checkpoint signatures yet".into()),
            };
            answer::<(), openraft::error::Infallible>(&taken.map(Ok))
        }
        (WireRequest::Submit(txs), _) => {
            let answered = match shared.submissions.get() {
                Some(inbox) => Ok(Ok(inbox.receive(txs).await)),
                None => Err("not taking forwarded transactions yet".into()),
            };
            answer::<Vec<crate::ForwardedOutcome>, openraft::error::Infallible>(&answered)
        }
        (_, None) => answer::<(), openraft::error::Infallible>(&Err("not serving Raft yet".into())),
        (WireRequest::Append(rpc), Some(raft)) => answer(&Ok(raft.append_entries(rpc).await)),
        (WireRequest::Vote(rpc), Some(raft)) => answer(&Ok(raft.vote(rpc).await)),
        (WireRequest::Snapshot(rpc), Some(raft)) => answer(&Ok(raft.install_snapshot(rpc).await)),
    }
}

// ---------------------------------------------------------------- public handle

/// A running libp2p endpoint: the swarm task and what the node needs of it.
pub struct P2pNode {
    peer_id: PeerId,
    listen_addr: Multiaddr,
    transport: P2pTransport,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl P2pNode {
    /// Starts listening as `keypair` (the validator's key) and admits only
    /// the peers in `validators`. Returns once the listen address is known.
    pub async fn start(
        keypair: identity::Keypair,
        validators: BTreeMap<NodeId, PeerId>,
        config: P2pConfig,
    ) -> Result<Self> {
        config.validate()?;
        let peer_id = keypair.public().to_peer_id();
        if !validators.values().any(|p| *p == peer_id) {
            tracing::warn!(%peer_id, "this node's key is not in the validator set; peers will refuse it");
        }
        let denied = Arc::new(AtomicU64::new(0));
        let self_id = validators
            .iter()
            .find(|(_, p)| **p == peer_id)
            .map(|(n, _)| *n)
            .unwrap_or(0);
        let allowed: ValidatorPeers = Arc::new(std::sync::RwLock::new(validators));
        let rpc_config = request_response::Config::default()
            .with_request_timeout(Duration::from_millis(config.request_timeout_ms));
        let codec = FrameCodec {
            max_bytes: config.message_bytes_max,
        };
        let gate = Gate {
            allowed: allowed.clone(),
            denied: denied.clone(),
        };
        let idle = Duration::from_millis(config.idle_timeout_ms);
        let net = |e: &dyn std::fmt::Display| ConsensusError::Config(format!("p2p: {e}"));
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| net(&e))?
            .with_behaviour(|_| ZslBehaviour {
                gate,
                rpc: request_response::Behaviour::with_codec(
                    codec,
                    [(RAFT_PROTOCOL, ProtocolSupport::Full)],
                    rpc_config,
                ),
            })
            .map_err(|e| net(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build();
        swarm
            .listen_on(config.listen.clone())
            .map_err(|e| net(&e))?;

        let shared = Arc::new(Shared {
            raft: OnceLock::new(),
            inbox: OnceLock::new(),
            submissions: OnceLock::new(),
            denied,
            served: AtomicU64::new(0),
            inbound: Arc::new(Semaphore::new(config.inbound_max)),
        });
        let (commands_tx, commands) = mpsc::channel(P2P_COMMANDS_MAX);
        let (responses_tx, responses) = mpsc::channel(config.inbound_max);
        let (listen_tx, listen_rx) = oneshot::channel();
        let message_bytes_max = config.message_bytes_max;
        let task = tokio::spawn(
            SwarmTask {
                swarm,
                commands,
                responses_tx,
                responses,
                pending: HashMap::new(),
                backoff: HashMap::new(),
                listen_tx: Some(listen_tx),
                shared: shared.clone(),
                config,
            }
            .run(),
        );
        let listen_addr = match tokio::time::timeout(Duration::from_secs(10), listen_rx).await {
            Ok(Ok(addr)) => addr,
            _ => {
                task.abort();
                return Err(ConsensusError::Config(
                    "p2p: no listen address within 10 s".into(),
                ));
            }
        };
        Ok(Self {
            peer_id,
            listen_addr,
            transport: P2pTransport {
                commands: commands_tx,
                self_id,
                validators: allowed,
                message_bytes_max,
            },
            shared,
            task,
        })
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The address peers dial: put it in this node's `BasicNode::addr`.
    pub fn listen_addr(&self) -> &Multiaddr {
        &self.listen_addr
    }

    /// The outbound side, for `TransportNetwork::new`.
    pub fn transport(&self) -> P2pTransport {
        self.transport.clone()
    }

    /// Starts handing inbound RPCs to `raft`; until then peers are told
    /// this node is not serving. Returns `false` if a Raft was already bound.
    pub fn serve(&self, raft: Raft) -> bool {
        self.shared.raft.set(raft).is_ok()
    }

    /// Starts handing inbound checkpoint signatures to `inbox`.
    pub fn serve_cosign(&self, inbox: crate::cosign::CosignInbox) -> bool {
        self.shared.inbox.set(inbox).is_ok()
    }

    /// Starts handing transactions that followers forward to `inbox`.
    pub fn serve_submit(&self, inbox: crate::forward::SubmitInbox) -> bool {
        self.shared.submissions.set(inbox).is_ok()
    }

    pub fn stats(&self) -> P2pStats {
        P2pStats {
            denied: self.shared.denied.load(Ordering::Relaxed),
            served: self.shared.served.load(Ordering::Relaxed),
        }
    }

    /// Stops the swarm; every connection closes.
    pub fn shutdown(&self) {
        self.task.abort();
    }
}

impl Drop for P2pNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The sending side of a [`P2pNode`]; cheap to clone.
#[derive(Clone)]
pub struct P2pTransport {
    commands: mpsc::Sender<Command>,
    /// This node's id in the validator set (0 if it is not in it), for errors.
    self_id: NodeId,
    validators: ValidatorPeers,
    message_bytes_max: usize,
}

fn unreachable<E: std::error::Error>(why: String) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&io::Error::new(
        io::ErrorKind::NotConnected,
        why,
    )))
}

fn network<E: std::error::Error>(why: String) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Network(NetworkError::new(&io::Error::other(why)))
}

impl P2pTransport {
    /// Replaces the validator set: connections from peers outside it are
    /// refused from now on, and open ones to removed peers are closed.
    pub fn set_validators(&self, validators: BTreeMap<NodeId, PeerId>) {
        let removed: Vec<PeerId> = {
            let mut current = self
                .validators
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *current == validators {
                return;
            }
            let removed = current
                .values()
                .filter(|p| !validators.values().any(|q| q == *p))
                .copied()
                .collect();
            *current = validators;
            removed
        };
        tracing::info!(?removed, "the validator set changed");
        if !removed.is_empty() {
            let _ = self.commands.try_send(Command::Disconnect(removed));
        }
    }

    async fn call<T, E>(
        &self,
        target: NodeId,
        node: &BasicNode,
        action: RPCTypes,
        request: WireRequest,
        option: &RPCOption,
    ) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        // Who the target is comes from genesis, never from the address.
        let peer = read_peers(&self.validators).get(&target).copied();
        let Some(peer) = peer else {
            return Err(unreachable(format!("node {target} is not a validator")));
        };
        let addrs = match member_p2p_addr(&node.addr).parse::<Multiaddr>() {
            Ok(mut a) => {
                if matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                    a.pop();
                }
                vec![a]
            }
            Err(e) => {
                return Err(unreachable(format!(
                    "node {target}: address {:?} is not a multiaddr: {e}",
                    node.addr
                )))
            }
        };
        let body = encode(&request).map_err(|e| network(format!("encoding a request: {e}")))?;
        if body.len() > self.message_bytes_max {
            if let WireRequest::Append(rpc) = &request {
                if rpc.entries.len() > 1 {
                    let hint = (rpc.entries.len() / 2) as u64;
                    return Err(RPCError::PayloadTooLarge(
                        PayloadTooLarge::new_entries_hint(hint),
                    ));
                }
            }
            return Err(unreachable(format!(
                "a {action} of {} bytes exceeds the limit of {} bytes",
                body.len(),
                self.message_bytes_max
            )));
        }
        drop(request);
        let (reply, answer) = oneshot::channel();
        let cmd = Command::Send {
            peer,
            addrs,
            body,
            reply,
        };
        if self.commands.try_send(cmd).is_err() {
            return Err(unreachable("p2p command queue full or stopped".into()));
        }
        let ttl = option.hard_ttl();
        let timeout = || {
            RPCError::Timeout(Timeout {
                action,
                id: self.self_id,
                target,
                timeout: ttl,
            })
        };
        let bytes = match tokio::time::timeout(ttl, answer).await {
            Err(_) => return Err(timeout()),
            Ok(Err(_)) => return Err(unreachable("p2p task stopped".into())),
            Ok(Ok(Err(SendFailure::Timeout))) => return Err(timeout()),
            Ok(Ok(Err(SendFailure::Unreachable(why)))) => return Err(unreachable(why)),
            Ok(Ok(Err(SendFailure::Network(why)))) => return Err(network(why)),
            Ok(Ok(Ok(bytes))) => bytes,
        };
        let response: WireResponse<T, E> = decode(&bytes)
            .map_err(|e| network(format!("malformed response from node {target}: {e}")))?;
        match response {
            Err(why) => Err(unreachable(format!("node {target}: {why}"))),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(target, e))),
        }
    }
}

impl Transport for P2pTransport {
    async fn append_entries(
        &self,
        target: NodeId,
        node: &BasicNode,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.call(
            target,
            node,
            RPCTypes::AppendEntries,
            WireRequest::Append(rpc),
            &option,
        )
        .await
    }

    async fn install_snapshot(
        &self,
        target: NodeId,
        node: &BasicNode,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(
            target,
            node,
            RPCTypes::InstallSnapshot,
            WireRequest::Snapshot(rpc),
            &option,
        )
        .await
    }

    async fn vote(
        &self,
        target: NodeId,
        node: &BasicNode,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.call(
            target,
            node,
            RPCTypes::Vote,
            WireRequest::Vote(rpc),
            &option,
        )
        .await
    }

    async fn cosign(
        &self,
        target: NodeId,
        node: &BasicNode,
        signature: ledger::block::Cosignature,
        option: RPCOption,
    ) -> std::result::Result<(), String> {
        self.call::<(), openraft::error::Infallible>(
            target,
            node,
            RPCTypes::AppendEntries,
            WireRequest::Cosign(signature),
            &option,
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn submit(
        &self,
        target: NodeId,
        node: &BasicNode,
        txs: Vec<Vec<u8>>,
        option: RPCOption,
    ) -> std::result::Result<Vec<crate::ForwardedOutcome>, String> {
        self.call::<Vec<crate::ForwardedOutcome>, openraft::error::Infallible>(
            target,
            node,
            RPCTypes::AppendEntries,
            WireRequest::Submit(txs),
            &option,
        )
        .await
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_frames_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello".to_vec(), 16)
            .await
            .expect("fits");
        let mut rd = futures::io::Cursor::new(buf);
        assert_eq!(read_frame(&mut rd, 16).await.expect("reads"), b"hello");

        let mut buf = Vec::new();
        assert!(write_frame(&mut buf, vec![0; 17], 16).await.is_err());
        // A length prefix over the limit is refused before any allocation.
        let mut rd = futures::io::Cursor::new(u32::MAX.to_be_bytes().to_vec());
        assert!(read_frame(&mut rd, 16).await.is_err());
    }

    #[test]
    fn membership_addresses_are_a_multiaddr_or_json() {
        assert_eq!(
            member_p2p_addr("/ip4/127.0.0.1/tcp/1"),
            "/ip4/127.0.0.1/tcp/1"
        );
        let json = r#"{"p2p":"/ip4/127.0.0.1/tcp/2","api":"127.0.0.1:8080"}"#;
        assert_eq!(member_p2p_addr(json), "/ip4/127.0.0.1/tcp/2");
        assert_eq!(member_field(json, "api").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(member_field("/ip4/127.0.0.1/tcp/1", "api"), None);
    }

    #[test]
    fn identity_is_the_validator_key_of_a_key_file() {
        let key = genesis::KeyFile::generate("validator-x");
        let kp = keypair_of(&key.secret_key).expect("seed is a key");
        assert_eq!(
            kp.public().to_peer_id(),
            peer_id_of(&key.public_key).expect("public key")
        );
        assert!(peer_id_of("zz").is_err());
        assert!(keypair_of("00").is_err());
    }
}
