//! How Raft reaches other validators.
//!
//! Raft talks to peers through openraft's `RaftNetworkFactory`; this module
//! narrows that to one small trait, [`Transport`]: "deliver this RPC to node
//! `target` and bring back its answer". [`crate::p2p`] implements it over
//! libp2p request-response, [`crate::memnet`] in memory with a seeded fault
//! plan (drop, delay, partition) for tests. A one-member cluster never sends
//! an RPC, so its transport, [`NoPeers`], reports every peer unreachable.

use std::future::Future;
use std::sync::Arc;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use crate::types::{NodeId, TypeConfig};

pub type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

/// Delivers Raft RPCs to a peer. `node` carries the peer's address as the
/// membership records it. Errors follow openraft's meaning: `Unreachable`
/// makes Raft back off, `Timeout` / `Network` retry, `RemoteError` is the
/// peer's own answer.
pub trait Transport: Send + Sync + 'static {
    fn append_entries(
        &self,
        target: NodeId,
        node: &BasicNode,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> impl Future<Output = RpcResult<AppendEntriesResponse<NodeId>>> + Send;

    fn install_snapshot(
        &self,
        target: NodeId,
        node: &BasicNode,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> impl Future<Output = RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError>> + Send;

    fn vote(
        &self,
        target: NodeId,
        node: &BasicNode,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> impl Future<Output = RpcResult<VoteResponse<NodeId>>> + Send;

    /// Hands a checkpoint signature to the target's [`crate::CosignInbox`]
    /// (the leader). `Err` says why it was not taken; the signer retries.
    fn cosign(
        &self,
        target: NodeId,
        node: &BasicNode,
        signature: ledger::block::Cosignature,
        option: RPCOption,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Hands transactions a follower received to the target's
    /// [`crate::SubmitInbox`] (the leader) and brings back one answer per
    /// transaction, once each is decided. `Err` says the batch was not
    /// delivered or not answered: the transactions' fate is unknown.
    fn submit(
        &self,
        target: NodeId,
        node: &BasicNode,
        txs: Vec<Vec<u8>>,
        option: RPCOption,
    ) -> impl Future<Output = Result<Vec<crate::ForwardedOutcome>, String>> + Send;
}

/// openraft's network factory over any [`Transport`].
pub struct TransportNetwork<T: Transport> {
    transport: Arc<T>,
}

impl<T: Transport> TransportNetwork<T> {
    pub fn new(transport: Arc<T>) -> Self {
        Self { transport }
    }
}

/// A connection to one peer: the shared transport plus who to send to.
pub struct PeerClient<T: Transport> {
    transport: Arc<T>,
    target: NodeId,
    node: BasicNode,
}

impl<T: Transport> RaftNetworkFactory<TypeConfig> for TransportNetwork<T> {
    type Network = PeerClient<T>;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        PeerClient {
            transport: self.transport.clone(),
            target,
            node: node.clone(),
        }
    }
}

impl<T: Transport> RaftNetwork<TypeConfig> for PeerClient<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.transport
            .append_entries(self.target, &self.node, rpc, option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.transport
            .install_snapshot(self.target, &self.node, rpc, option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.transport
            .vote(self.target, &self.node, rpc, option)
            .await
    }
}

/// The transport of a one-member cluster: there is nobody to talk to.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeers;

fn unreachable<E: std::error::Error>(target: NodeId) -> RPCError<NodeId, BasicNode, E> {
    let why = std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!("node {target}: this node has no network transport (single-member cluster)"),
    );
    RPCError::Unreachable(Unreachable::new(&why))
}

impl Transport for NoPeers {
    async fn append_entries(
        &self,
        target: NodeId,
        _node: &BasicNode,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        Err(unreachable(target))
    }

    async fn install_snapshot(
        &self,
        target: NodeId,
        _node: &BasicNode,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        Err(unreachable(target))
    }

    async fn vote(
        &self,
        target: NodeId,
        _node: &BasicNode,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        Err(unreachable(target))
    }

    async fn cosign(
        &self,
        target: NodeId,
        _node: &BasicNode,
        _signature: ledger::block::Cosignature,
        _option: RPCOption,
    ) -> Result<(), String> {
        Err(format!("node {target}: this node has no network transport"))
    }

    async fn submit(
        &self,
        target: NodeId,
        _node: &BasicNode,
        _txs: Vec<Vec<u8>>,
        _option: RPCOption,
    ) -> Result<Vec<crate::ForwardedOutcome>, String> {
        Err(format!("node {target}: this node has no network transport"))
    }
}
