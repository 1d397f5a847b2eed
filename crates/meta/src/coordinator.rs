//! The handle a node uses: starts the Raft member, bootstraps the group once,
//! renews this node's lease, and offers writes (forwarded to the leader),
//! local and linearizable reads, status and membership changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use qh_proto::interserver::meta_client::MetaClient as GrpcMetaClient;
use qh_proto::interserver::{MembershipRequest, ReadIndexRequest, StatusRequest};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::command::{Op, Request};
use crate::error::MetaError;
use crate::log_store::LogStore;
use crate::network::{channel, Faults, Network, MAX_MESSAGE_BYTES};
use crate::proposals::{batch_task, Proposal};
use crate::state::MetaState;
use crate::state_machine::StateMachineStore;
pub use crate::status::{LeaseStatus, NodeStatus};
use crate::trust::{ClusterSecret, InterChannel};
use crate::{now_ms, NodeId, Raft};

/// How a node joins the coordinator group. Defaults are documented in
/// docs/ARCHITECTURE.md ("Coordinator timings").
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub node_id: NodeId,
    /// Directory of the sled store (created if missing).
    pub dir: PathBuf,
    /// Interserver address other nodes reach this one at ("host:port").
    pub advertise: String,
    /// The initial voters, id → interserver address. They bootstrap the group
    /// exactly once; empty means a group of this node alone.
    pub members: BTreeMap<NodeId, String>,
    pub heartbeat_ms: u64,
    /// Election timeout lower bound; the upper bound is twice this.
    pub election_timeout_ms: u64,
    /// Build a snapshot after this many applied entries.
    pub snapshot_logs: u64,
    /// Entries kept in the log behind a snapshot (for followers slightly behind).
    pub keep_logs: u64,
    pub lease_ttl_ms: u64,
    pub lease_renew_ms: u64,
    /// How long a write may wait for a leader and a commit.
    pub write_timeout: Duration,
    /// What every interserver call carries and the interserver port asks of
    /// callers (see [`crate::trust`]).
    pub cluster_secret: ClusterSecret,
    /// Mutual TLS on the interserver links (None: plaintext).
    pub interserver_tls: Option<crate::trust::InterTls>,
}

impl CoordinatorConfig {
    pub fn new(node_id: NodeId, dir: PathBuf, advertise: String) -> Self {
        CoordinatorConfig {
            node_id,
            dir,
            advertise,
            members: BTreeMap::new(),
            heartbeat_ms: 100,
            election_timeout_ms: 250,
            snapshot_logs: 5000,
            keep_logs: 1000,
            lease_ttl_ms: 4000,
            lease_renew_ms: 1000,
            write_timeout: Duration::from_secs(10),
            cluster_secret: ClusterSecret::none(),
            interserver_tls: None,
        }
    }
}

pub struct Coordinator {
    pub(crate) cfg: CoordinatorConfig,
    pub(crate) raft: Raft,
    pub(crate) sm: StateMachineStore,
    pub(crate) faults: Arc<Faults>,
    peers: Mutex<HashMap<String, GrpcMetaClient<InterChannel>>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Writes this node proposes as leader, batched by `batch_task`.
    pub(crate) proposals: tokio::sync::mpsc::Sender<Proposal>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("node_id", &self.cfg.node_id)
            .finish()
    }
}

impl Coordinator {
    /// Opens the store and starts the Raft member and its background tasks
    /// (bootstrap, lease renewal). Call [`Coordinator::shutdown`] to stop them.
    pub async fn start(cfg: CoordinatorConfig) -> Result<Arc<Self>, MetaError> {
        let open_err = |message: String| MetaError::Open {
            path: cfg.dir.display().to_string(),
            message,
        };
        std::fs::create_dir_all(&cfg.dir).map_err(|e| open_err(e.to_string()))?;
        // Appends flush explicitly; sled's own periodic flush would only add stalls.
        let db = sled::Config::new()
            .path(&cfg.dir)
            .flush_every_ms(None)
            .open()
            .map_err(|e| open_err(e.to_string()))?;
        let log = LogStore::open(&db).map_err(|e| open_err(e.to_string()))?;
        let sm = StateMachineStore::open(&db).map_err(open_err)?;
        let raft_cfg = openraft::Config {
            cluster_name: "quorumhouse".into(),
            heartbeat_interval: cfg.heartbeat_ms,
            election_timeout_min: cfg.election_timeout_ms,
            election_timeout_max: cfg.election_timeout_ms * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs),
            max_in_snapshot_log_to_keep: cfg.keep_logs,
            snapshot_max_chunk_size: 1 << 20,
            install_snapshot_timeout: 5000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| open_err(format!("bad Raft settings: {e}")))?;
        let faults = Arc::new(Faults::default());
        let network = Network {
            node_id: cfg.node_id,
            faults: faults.clone(),
            secret: cfg.cluster_secret.clone(),
            tls: cfg.interserver_tls.clone(),
        };
        let raft = Raft::new(cfg.node_id, Arc::new(raft_cfg), network, log, sm.clone())
            .await
            .map_err(|e| open_err(e.to_string()))?;
        let (stop, _) = watch::channel(false);
        let (proposals, proposals_rx) = tokio::sync::mpsc::channel(4096);
        let me = Arc::new(Coordinator {
            cfg,
            raft,
            sm,
            faults,
            peers: Mutex::new(HashMap::new()),
            stop,
            tasks: Mutex::new(Vec::new()),
            proposals,
        });
        let bootstrap = tokio::spawn(bootstrap_task(Arc::downgrade(&me), me.stop.subscribe()));
        let lease = tokio::spawn(lease_task(Arc::downgrade(&me), me.stop.subscribe()));
        let batches = tokio::spawn(batch_task(
            me.raft.clone(),
            me.sm.0.clone(),
            me.cfg.node_id,
            me.cfg.write_timeout,
            proposals_rx,
            me.stop.subscribe(),
        ));
        me.tasks.lock().extend([bootstrap, lease, batches]);
        Ok(me)
    }

    pub fn node_id(&self) -> NodeId {
        self.cfg.node_id
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.cfg
    }

    /// Stops the background tasks and the Raft member.
    ///
    /// A leader hands off first: it picks its most up-to-date follower,
    /// stops, then asks that follower to start an election the moment the
    /// followers' leader lease (election_timeout_max since the last
    /// heartbeat) has run out — rather than each follower waiting out its own
    /// randomized election timeout on top of the lease.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let tasks: Vec<_> = self.tasks.lock().drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
        let successor = self.successor();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "coordinator shutdown");
        }
        if let Some((node, addr)) = successor {
            let lease = Duration::from_millis(self.cfg.election_timeout_ms * 2);
            let after = lease + Duration::from_millis(20);
            match crate::client::MetaClient::with_tls(
                &addr,
                &self.cfg.cluster_secret,
                self.cfg.interserver_tls.as_ref(),
            ) {
                Ok(c) => match c.elect_after(after, self.cfg.node_id).await {
                    Ok(()) => tracing::info!(successor = node, "leadership handed off"),
                    Err(e) => tracing::warn!(error = %e, successor = node, "hand-off failed"),
                },
                Err(e) => tracing::warn!(error = %e, "hand-off failed"),
            }
        }
    }

    /// When this node leads: the follower with the longest matched log.
    fn successor(&self) -> Option<(NodeId, String)> {
        let m = self.raft.metrics().borrow().clone();
        if m.current_leader != Some(self.cfg.node_id) {
            return None;
        }
        let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
        let matched = m.replication?;
        let (node, _) = matched
            .iter()
            .filter(|(n, _)| **n != self.cfg.node_id && voters.contains(*n))
            .max_by_key(|(_, log)| log.map(|l| l.index))?;
        Some((*node, self.address_of(*node)?))
    }

    /// Starts an election after `after` unless a leader other than
    /// `leaving` is known by then (the hand-off's receiving end).
    pub fn elect_after(&self, after: Duration, leaving: NodeId) {
        let raft = self.raft.clone();
        let mut stop = self.stop.subscribe();
        let task = tokio::spawn(
            async move {
                tokio::select! {
                    _ = tokio::time::sleep(after) => {}
                    _ = stop.changed() => return,
                }
                let leader = raft.metrics().borrow().current_leader;
                if leader.is_some_and(|l| l != leaving) {
                    return;
                }
                if let Err(e) = raft.trigger().elect().await {
                    tracing::warn!(error = %e, "election after a hand-off");
                }
            }
            .instrument(tracing::info_span!("hand_off_election", leaving)),
        );
        self.tasks.lock().push(task);
    }

    /// Reads the local state (may lag the leader; use for display and hints).
    pub fn read<T>(&self, f: impl FnOnce(&MetaState) -> T) -> T {
        f(&self.sm.0.applied.read().state)
    }

    /// Reads a state at least as new as every write acknowledged before the
    /// call (read-index through the leader), for decisions such as quorum checks.
    pub async fn read_linearizable<T>(
        &self,
        f: impl FnOnce(&MetaState) -> T,
    ) -> Result<T, MetaError> {
        let deadline = Instant::now() + self.cfg.write_timeout;
        let index = self.read_index(deadline).await?;
        self.wait_applied(index, deadline).await?;
        Ok(self.read(f))
    }

    /// Applied log index; changes whenever an entry applies (for watchers).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sm.0.notify.subscribe()
    }

    /// Waits until this node applied `index`.
    pub async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), MetaError> {
        let mut rx = self.subscribe();
        let wait = async { rx.wait_for(|applied| *applied >= index).await.map(|_| ()) };
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(MetaError::Stopped),
            Err(_) => Err(MetaError::Read(format!(
                "this node did not apply index {index} in time"
            ))),
        }
    }

    /// Waits until this node's own lease is live, so that what it registers
    /// next (a replica) counts as alive for quorum inserts at once. A node
    /// just started renews within about 100 ms; returns whether it did before
    /// `deadline`.
    pub async fn wait_own_lease(&self, deadline: Instant) -> bool {
        let mut rx = self.subscribe();
        let me = self.cfg.node_id;
        let wait = async {
            rx.wait_for(|_| self.read(|s| s.lease_active(me, self.clock_now())))
                .await
                .is_ok()
        };
        tokio::time::timeout_at(deadline.into(), wait)
            .await
            .unwrap_or(false)
    }

    /// The index a linearizable read must wait for.
    async fn read_index(&self, deadline: Instant) -> Result<u64, MetaError> {
        loop {
            let leader = self.raft.metrics().borrow().current_leader;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(MetaError::Read(
                    "no leader confirmed its leadership in time".into(),
                ));
            }
            match leader {
                Some(l) if l == self.cfg.node_id => {
                    match tokio::time::timeout(left, self.confirmed_read_index()).await {
                        Ok(Ok(index)) => return Ok(index),
                        Ok(Err(e)) => tracing::debug!(error = %e, "read index: not leader"),
                        Err(_) => {
                            return Err(MetaError::Read(
                                "leadership not confirmed by a quorum in time".into(),
                            ))
                        }
                    }
                }
                // A drill's cut covers every coordinator call, not Raft's alone.
                Some(l) if self.faults.is_cut(l) => {}
                Some(l) => {
                    if let Some(mut client) = self.peer_of(l) {
                        // A frozen or cut-off leader is replaced within an
                        // election timeout: ask the new one then (a read is
                        // safe to repeat) instead of waiting out `left`.
                        let asked = tokio::select! {
                            r = tokio::time::timeout(left, client.read_index(ReadIndexRequest {})) => r,
                            _ = self.leader_replaced(l) => continue,
                        };
                        match asked {
                            Ok(Ok(r)) => {
                                let r = r.into_inner();
                                if r.error.is_empty() && r.leader_id == l {
                                    return Ok(r.index);
                                }
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, leader = l, "read index from leader")
                            }
                            Err(_) => {
                                return Err(MetaError::Read(
                                    "the leader did not answer in time".into(),
                                ))
                            }
                        }
                    }
                }
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Leader side of a read index (`Meta.ReadIndex`).
    pub(crate) async fn leader_read_index(&self) -> Result<u64, String> {
        match tokio::time::timeout(self.cfg.write_timeout, self.confirmed_read_index()).await {
            Ok(Ok(index)) => Ok(index),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("leadership not confirmed by a quorum in time".into()),
        }
    }

    /// Confirms leadership with a quorum and returns the index a read must
    /// wait for: at least the leader's last log index. openraft's own read
    /// index is `max(first entry of this leadership, committed)`, which is
    /// stale for a leader restored in its old term after a full restart (no
    /// new blank entry, and the commit index is re-learnt from storage that
    /// may lag what was acknowledged before the crash). Every acknowledged
    /// write is in the leader's log, so waiting for its end is always safe.
    async fn confirmed_read_index(
        &self,
    ) -> Result<u64, RaftError<NodeId, CheckIsLeaderError<NodeId, BasicNode>>> {
        let confirmed = self.raft.ensure_linearizable().await?;
        let last = self.raft.metrics().borrow().last_log_index;
        Ok(confirmed.map(|l| l.index).max(last).unwrap_or(0))
    }

    /// The interserver address of a member.
    pub fn address_of(&self, node: NodeId) -> Option<String> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership()
            .get_node(&node)
            .map(|n| n.addr.clone())
            .or_else(|| self.cfg.members.get(&node).cloned())
    }

    /// What a call to `addr` carries: the cluster's token when `addr` is a
    /// member's interserver address (or this node's), nothing otherwise — a
    /// `remote('host:port')` a user names gets no token to keep.
    pub fn secret_for(&self, addr: &str) -> ClusterSecret {
        let member = addr == self.cfg.advertise
            || self.cfg.members.values().any(|a| a == addr)
            || self
                .raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .nodes()
                .any(|(_, n)| n.addr == addr);
        if member {
            self.cfg.cluster_secret.clone()
        } else {
            ClusterSecret::none()
        }
    }

    pub(crate) fn peer_of(&self, node: NodeId) -> Option<GrpcMetaClient<InterChannel>> {
        let addr = self.address_of(node)?;
        let mut peers = self.peers.lock();
        if let Some(c) = peers.get(&addr) {
            return Some(c.clone());
        }
        let c = GrpcMetaClient::new(
            channel(
                &addr,
                &self.cfg.cluster_secret,
                self.cfg.interserver_tls.as_ref(),
            )
            .ok()?,
        )
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
        peers.insert(addr, c.clone());
        Some(c)
    }

    /// Index of the last entry applied on this node.
    pub fn applied_index(&self) -> u64 {
        self.sm
            .0
            .applied
            .read()
            .last_applied
            .map(|l| l.index)
            .unwrap_or(0)
    }

    /// Resolves when this node's Raft core stopped by itself — a storage
    /// error (a full or failing disk under the log store) ends it for good,
    /// and the node must then stop, to be restarted, rather than serve
    /// without its coordinator. Returns the reason.
    pub async fn core_stopped(&self) -> String {
        let mut m = self.raft.metrics();
        loop {
            if let Err(e) = &m.borrow().running_state {
                return e.to_string();
            }
            if m.changed().await.is_err() {
                return "the Raft core's metrics ended".into();
            }
        }
    }

    pub fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voter_ids: BTreeSet<NodeId> = membership.voter_ids().collect();
        let mut voters = BTreeMap::new();
        let mut learners = BTreeMap::new();
        for (id, node) in membership.nodes() {
            if voter_ids.contains(id) {
                voters.insert(*id, node.addr.clone());
            } else {
                learners.insert(*id, node.addr.clone());
            }
        }
        let now = self.clock_now();
        let (applied_index, state_digest) = {
            use std::hash::{Hash, Hasher};
            let a = self.sm.0.applied.read();
            // Fixed keys: the same bytes hash the same in every process of this binary.
            let mut h = std::collections::hash_map::DefaultHasher::new();
            a.state.to_bytes().hash(&mut h);
            (a.last_applied.map(|l| l.index).unwrap_or(0), h.finish())
        };
        let leases = self.read(|s| {
            s.leases()
                .map(|(id, l)| LeaseStatus {
                    node_id: id,
                    address: l.address.clone(),
                    is_active: l.is_live(now),
                    expires_in_ms: l.expires_ms as i64 - now as i64,
                })
                .collect()
        });
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        NodeStatus {
            node_id: self.cfg.node_id,
            initialized: !voters.is_empty(),
            role: role.into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index,
            snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
            purged_index: m.purged.map(|l| l.index).unwrap_or(0),
            voters,
            learners,
            leases,
            isolated_from: self.faults.isolated().into_iter().collect(),
            state_digest,
        }
    }

    /// The coordinator's time (ms) as this node sees it: what leases,
    /// commit deadlines and deduplication windows are judged by. Never this
    /// node's wall clock, which may be wrong (see `clock`).
    pub fn clock_now(&self) -> u64 {
        self.sm.0.clock.now()
    }

    /// Which nodes hold a live lease now (local read).
    pub fn active_nodes(&self) -> BTreeSet<NodeId> {
        let now = self.clock_now();
        self.read(|s| s.live_nodes(now))
    }

    /// Adds a node: first as a learner (it catches up), then as a voter.
    /// Run on any node; a follower forwards to the leader.
    pub async fn add_node(&self, node: NodeId, address: String) -> Result<(), MetaError> {
        self.change_membership(node, address, false).await
    }

    /// Removes a voter from the group.
    pub async fn remove_node(&self, node: NodeId) -> Result<(), MetaError> {
        self.change_membership(node, String::new(), true).await
    }

    async fn change_membership(
        &self,
        node: NodeId,
        address: String,
        remove: bool,
    ) -> Result<(), MetaError> {
        let deadline = Instant::now() + self.cfg.write_timeout * 3;
        loop {
            if Instant::now() > deadline {
                return Err(MetaError::NoLeader(
                    "membership change found no leader in time".into(),
                ));
            }
            match self.current_leader() {
                Some(l) if l == self.cfg.node_id => {
                    return self.leader_change_membership(node, address, remove).await
                }
                Some(l) => {
                    if let Some(mut client) = self.peer_of(l) {
                        let req = MembershipRequest {
                            node_id: node,
                            address: address.clone(),
                            remove,
                        };
                        match client.change_membership(req).await {
                            Ok(r) => {
                                let r = r.into_inner();
                                if r.error.is_empty() {
                                    return Ok(());
                                }
                                if r.leader_id == 0 || r.leader_id == l {
                                    return Err(MetaError::Membership(r.error));
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "membership change via leader"),
                        }
                    }
                }
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn leader_change_membership(
        &self,
        node: NodeId,
        address: String,
        remove: bool,
    ) -> Result<(), MetaError> {
        let err = |e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>| {
            MetaError::Membership(e.to_string())
        };
        if remove {
            self.raft
                .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([node])), false)
                .await
                .map_err(err)?;
            return Ok(());
        }
        self.raft
            .add_learner(node, BasicNode { addr: address }, true)
            .await
            .map_err(err)?;
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node])), false)
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Drills: pretend the network to these nodes is cut (both directions).
    pub fn set_isolated(&self, nodes: BTreeSet<NodeId>) {
        tracing::warn!(?nodes, "drill: isolating this node from peers");
        self.faults.set(nodes);
    }

    /// Asks a peer whether it belongs to an initialized group.
    async fn peer_initialized(&self, addr: &str) -> Option<bool> {
        let mut client = GrpcMetaClient::new(
            channel(
                addr,
                &self.cfg.cluster_secret,
                self.cfg.interserver_tls.as_ref(),
            )
            .ok()?,
        );
        let fut = client.status(StatusRequest {});
        match tokio::time::timeout(Duration::from_secs(1), fut).await {
            Ok(Ok(r)) => Some(r.into_inner().initialized),
            _ => None,
        }
    }
}

/// The lowest-id initial member initializes the group, once: only when every
/// initial member answers and none is initialized yet. So a restarted or wiped
/// node never starts a second group; it is brought back by the leader.
async fn bootstrap_task(me: Weak<Coordinator>, mut stop: watch::Receiver<bool>) {
    loop {
        let Some(c) = me.upgrade() else { return };
        match c.raft.is_initialized().await {
            Ok(true) | Err(_) => return,
            Ok(false) => {}
        }
        let mut members = c.cfg.members.clone();
        if members.is_empty() {
            members.insert(c.cfg.node_id, c.cfg.advertise.clone());
        }
        if members.keys().next() != Some(&c.cfg.node_id) {
            return; // another node bootstraps; this one is replicated to.
        }
        let mut ready = true;
        for (id, addr) in &members {
            if *id == c.cfg.node_id {
                continue;
            }
            match c.peer_initialized(addr).await {
                Some(false) => {}
                Some(true) => return,
                None => ready = false,
            }
        }
        if ready {
            let nodes: BTreeMap<NodeId, BasicNode> = members
                .iter()
                .map(|(id, a)| (*id, BasicNode { addr: a.clone() }))
                .collect();
            match c.raft.initialize(nodes).await {
                Ok(()) => {
                    tracing::info!(members = ?members, "coordinator group initialized");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "coordinator initialize"),
            }
        }
        drop(c);
        if tokio::time::timeout(Duration::from_millis(200), stop.changed())
            .await
            .is_ok()
        {
            return;
        }
    }
}

/// Renews this node's lease every `lease_renew_ms` while the group has a leader.
async fn lease_task(me: Weak<Coordinator>, mut stop: watch::Receiver<bool>) {
    loop {
        let Some(c) = me.upgrade() else { return };
        let mut every = Duration::from_millis(c.cfg.lease_renew_ms);
        let now = c.clock_now();
        let live = c.read(|s| s.lease_active(c.cfg.node_id, now));
        // Until a renewal went through (start-up, a restart), retry quickly:
        // quorum inserts count live replicas by their leases.
        if !live {
            every = every.min(Duration::from_millis(100));
        }
        if c.current_leader().is_some() {
            let op = Op::RenewLease {
                node_id: c.cfg.node_id,
                address: c.cfg.advertise.clone(),
                ttl_ms: c.cfg.lease_ttl_ms,
            };
            let mut req = Request::op(op);
            req.now_ms = now_ms();
            let renew = tokio::time::timeout(
                Duration::from_millis(c.cfg.lease_renew_ms) * 2,
                c.write(req),
            );
            match renew.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "lease renewal failed"),
                Err(_) => tracing::debug!("lease renewal timed out"),
            }
        }
        drop(c);
        if tokio::time::timeout(every, stop.changed()).await.is_ok() {
            return;
        }
    }
}
