//! `rewardsd` as one node of a cluster on NATS JetStream.
//!
//! The data's write-ahead log is a replicated JetStream stream
//! ([`rewards_storage::replicated::ReplicatedLog`]); each node keeps its own materialised copy
//! (its fjall keyspaces and checkpoints) in its data directory. One node at a time owns the
//! data:
//!
//! - **Follower.** A node starts as a follower: its HTTP server forwards every API request to
//!   the owner named in the lease ([`forward`]) and tries to take the lease itself four times
//!   per lease period, while a thread reads the stream into its own copy of the data.
//! - **Owner.** Holding the lease, it closes the follower's copy with a checkpoint and opens its
//!   store on the stream (fencing off any earlier writer and replaying what the copy had not
//!   read), then serves the API on the same listening socket, renewing the lease as it goes.
//! - **Deposed.** When its lease is taken or cannot be renewed, or an append is refused by the
//!   fence, it refuses every request at once (503 `not_ready`), keeps answering `/metrics` and
//!   `/health` for `deposed_grace_ms`, then exits with status 75 for its supervisor to start it
//!   again as a follower. Nothing it acknowledged is lost: acknowledged means appended to the
//!   stream, which the next owner replays.
//!
//! A clean stop (SIGTERM) of the owner gives the lease up, so a follower takes over at once.

pub mod balance;
pub mod fanout;
pub mod forward;
pub mod lease;
pub mod partition;
pub mod retention;
pub mod snapshot;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;
use rewards_storage::replicated::{ReplicatedLog, ReplicatedLogOptions};
use rewards_storage::{Store, StoreError};
use serde::Deserialize;

use crate::config::Config;
use crate::server::announce;
pub use lease::Holder;
use lease::Leases;
pub use partition::Placement;

/// The file that marks a data directory as a cluster node's copy: its log is the stream, so
/// it must not be opened alone on a local log (its writes would never reach the stream).
const NODE_MARKER: &str = "CLUSTER_NODE";

/// Whether `dir` holds a cluster node's copy of the data.
pub fn is_node_directory(dir: &std::path::Path) -> bool {
    dir.join(NODE_MARKER).is_file()
}

/// Marks `dir` as a cluster node's copy of `stream`, refusing a directory that holds a store
/// of a server that ran alone (its log's records are not in the stream, and would be lost) or
/// a copy of another partition's stream (its checkpoint counts that stream's records).
fn claim_directory(dir: &std::path::Path, stream: &str) -> anyhow::Result<()> {
    let marking = format!("a cluster node's copy of stream {stream}\n");
    if is_node_directory(dir) {
        let marked = std::fs::read_to_string(dir.join(NODE_MARKER))
            .with_context(|| format!("reading {}", dir.join(NODE_MARKER).display()))?;
        anyhow::ensure!(
            marked == marking,
            "{} holds {}, not of stream {stream}: each partition needs a data directory of its own",
            dir.display(),
            marked.trim_end()
        );
        return Ok(());
    }
    let local_log = dir.join("log");
    let has_records = std::fs::read_dir(&local_log)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    anyhow::ensure!(
        !has_records,
        "{} holds the store of a server that ran alone; a cluster node starts from an empty \
         directory (its data comes from the stream)",
        dir.display()
    );
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join(NODE_MARKER), marking)
        .with_context(|| format!("marking {} as a cluster node's", dir.display()))
}

/// Exit status of a deposed owner: temporary failure, start again.
pub const EXIT_DEPOSED: i32 = 75;

/// The `[cluster]` section of the configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// NATS server addresses.
    pub nats: Vec<String>,
    /// This node's name, unique in the cluster.
    pub node: String,
    /// The URL other nodes forward requests to; by default `http://` and the bound address.
    #[serde(default)]
    pub advertise: Option<String>,
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    #[serde(default = "default_deposed_grace_ms")]
    pub deposed_grace_ms: u64,
    /// Whether the owner drops the stream's records that every node has checkpointed.
    #[serde(default = "default_truncate_log")]
    pub truncate_log: bool,
    /// How long a node that stopped reporting its checkpoint still holds the stream's records
    /// back for its copy (the checkpoint bucket's entry age, set by the first node).
    #[serde(default = "default_retain_for_absent_ms")]
    pub retain_for_absent_ms: u64,
    /// How often the owner publishes the shared checkpoint (a copy of the data a node whose
    /// copy the stream cannot rebuild restores by itself); 0 publishes none.
    #[serde(default = "default_snapshot_interval_ms")]
    pub snapshot_interval_ms: u64,
    /// How the owner publishes the log's records: `lz4` (compressed when that is shorter) or
    /// `none`. Every node reads both, so it can be changed on a running cluster.
    #[serde(default)]
    pub log_compression: LogCompression,
    /// How many partitions the cluster's data is split into: fixed when the cluster is made.
    #[serde(default = "default_partitions")]
    pub partitions: u16,
    /// The partition this process serves, from 0.
    #[serde(default)]
    pub partition: u16,
    /// The machine this process runs on, shared by the processes of one machine: a split
    /// cluster spreads its partitions over machines. By default the node's name.
    #[serde(default)]
    pub host: Option<String>,
    /// How often the owner of a partition of a split cluster looks whether its machine should
    /// hand one off to a machine that owns fewer; 0 never hands off.
    #[serde(default = "default_rebalance_interval_ms")]
    pub rebalance_interval_ms: u64,
}

/// How records are published on the stream.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogCompression {
    /// An LZ4 block, when it is shorter than the record.
    #[default]
    Lz4,
    /// The record as it is.
    None,
}

fn default_snapshot_interval_ms() -> u64 {
    600_000
}

/// The longest `snapshot_interval_ms`: 30 days.
const MAX_SNAPSHOT_INTERVAL_MS: u64 = 30 * 24 * 3_600_000;

fn default_truncate_log() -> bool {
    true
}

fn default_retain_for_absent_ms() -> u64 {
    3_600_000
}

fn default_rebalance_interval_ms() -> u64 {
    30_000
}

fn default_partitions() -> u16 {
    1
}

fn default_replicas() -> usize {
    3
}

fn default_lease_ms() -> u64 {
    15_000
}

fn default_deposed_grace_ms() -> u64 {
    5_000
}

/// A node or machine name: 1 to 64 letters, digits, '-' or '_'.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ClusterConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.nats.is_empty(), "cluster.nats must name a server");
        anyhow::ensure!(
            valid_name(&self.node),
            "cluster.node must be 1 to 64 letters, digits, '-' or '_'"
        );
        anyhow::ensure!(
            (1..=5).contains(&self.replicas),
            "cluster.replicas must be 1 to 5"
        );
        anyhow::ensure!(
            self.lease_ms >= 1000,
            "cluster.lease_ms must be at least 1000"
        );
        anyhow::ensure!(
            self.retain_for_absent_ms >= self.lease_ms,
            "cluster.retain_for_absent_ms must be at least cluster.lease_ms"
        );
        anyhow::ensure!(
            self.snapshot_interval_ms == 0
                || (1000..=MAX_SNAPSHOT_INTERVAL_MS).contains(&self.snapshot_interval_ms),
            "cluster.snapshot_interval_ms must be 0 (no shared checkpoint) or 1000 to {MAX_SNAPSHOT_INTERVAL_MS} (30 days)"
        );
        if let Some(host) = &self.host {
            anyhow::ensure!(
                valid_name(host),
                "cluster.host must be 1 to 64 letters, digits, '-' or '_'"
            );
        }
        anyhow::ensure!(
            self.rebalance_interval_ms == 0 || self.rebalance_interval_ms >= 1000,
            "cluster.rebalance_interval_ms must be 0 (never) or at least 1000"
        );
        anyhow::ensure!(
            (1..=partition::MAX_PARTITIONS).contains(&self.partitions),
            "cluster.partitions must be 1 to {}",
            partition::MAX_PARTITIONS
        );
        anyhow::ensure!(
            self.partition < self.partitions,
            "cluster.partition must be below cluster.partitions ({})",
            self.partitions
        );
        if let Some(url) = &self.advertise {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "cluster.advertise must be an http:// or https:// URL"
            );
        }
        Ok(())
    }

    fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// The machine this process runs on.
    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or(&self.node)
    }

    /// The partition this process serves.
    pub fn placement(&self) -> Placement {
        Placement {
            index: self.partition,
            count: self.partitions,
        }
    }

    /// The options of this node's connection to the partition's stream.
    fn log_options(&self) -> ReplicatedLogOptions {
        let placement = self.placement();
        let mut log = ReplicatedLogOptions::new(
            self.nats.clone(),
            &placement.stream(),
            &placement.subject(),
            &self.node,
        );
        log.replicas = self.replicas;
        log.compress = self.log_compression == LogCompression::Lz4;
        log
    }
}

/// This node: who it is and whom it believes to own the data.
pub struct Node {
    pub me: Holder,
    config: ClusterConfig,
    /// The partition this process serves, and its lease's key.
    placement: Placement,
    key: String,
    /// With more than one partition: every partition's owner and the cluster's processes as
    /// last read. Requests for the other partitions go to their owners; which partitions this
    /// process tries for and hands off follows from it ([`balance`]).
    view: Mutex<balance::View>,
    /// Since when this process has seen its partition without an owner.
    unowned_since: Mutex<Option<Instant>>,
    /// Whether `view` was read whole at least once: until then a process of a split cluster
    /// does not try for its lease (it would not know whether a machine owning fewer should).
    viewed: std::sync::atomic::AtomicBool,
    /// The operator's key: a request with it is routed by what it names, not by its key.
    operator_key: Option<String>,
    /// Whether the cluster's partition count was found to be this process's.
    agreed: std::sync::atomic::AtomicBool,
    owner: Mutex<Option<Holder>>,
    /// The lease's last revision this node wrote, while it holds it.
    revision: Mutex<u64>,
    /// Whether this node's copy follows the stream. Only a node whose copy has read the stream
    /// tries for the lease: one whose copy needs records the stream no longer holds could not
    /// open its store on it either, and one not yet known does not try until it is.
    copy: Mutex<CopyState>,
    /// Until when this node's own clock takes its lease as held (while it owns the data).
    window: Arc<lease::Window>,
    /// The checkpoint position of this node's copy of the data, once open (the follower's,
    /// then the owner's): it needs the stream only after it. A handle, not the store, so the
    /// follower's copy closes for the owner's store to open the directory.
    checkpointed: Mutex<Option<Arc<std::sync::atomic::AtomicU64>>>,
    /// The owner's store, once open: what the shared checkpoint is made from.
    store: Mutex<Option<Store>>,
    /// The data directory (the shared checkpoint is built in it).
    data_dir: std::path::PathBuf,
}

/// What is known of a node's copy of the data.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CopyState {
    /// No pass over the stream has ended yet.
    Unknown,
    /// The last pass read the stream to its end.
    Follows,
    /// The stream no longer holds records the copy needs: why.
    Lost(String),
}

impl Node {
    fn new(config: ClusterConfig, me: Holder, data_dir: std::path::PathBuf) -> Node {
        let placement = config.placement();
        Node {
            me,
            key: placement.lease_key(),
            placement,
            view: Mutex::default(),
            unowned_since: Mutex::new(None),
            viewed: std::sync::atomic::AtomicBool::new(false),
            operator_key: None,
            agreed: std::sync::atomic::AtomicBool::new(false),
            config,
            store: Mutex::new(None),
            data_dir,
            owner: Mutex::new(None),
            revision: Mutex::new(0),
            copy: Mutex::new(CopyState::Unknown),
            window: Arc::new(lease::Window::new()),
            checkpointed: Mutex::new(None),
        }
    }

    /// The position through which this node's copy has checkpointed, once it is open.
    fn checkpointed(&self) -> Option<u64> {
        self.checkpointed
            .lock()
            .as_ref()
            .map(|position| position.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Whether this node serves as the owner now, by its own clock.
    fn serves(&self) -> bool {
        self.window.holds() && self.owner.lock().as_ref() == Some(&self.me)
    }

    /// Whether this node's copy read the stream to its end at its last pass.
    fn follows(&self) -> bool {
        *self.copy.lock() == CopyState::Follows
    }

    /// Records what the last pass over the stream found, saying so once when it changes.
    fn set_copy(&self, copy: CopyState) {
        let mut known = self.copy.lock();
        match (&*known, &copy) {
            (CopyState::Unknown | CopyState::Follows, CopyState::Lost(reason))
                if self.config.snapshot_interval_ms > 0 =>
            {
                tracing::warn!(
                    %reason,
                    "this node's copy cannot follow the stream: it is made again from the shared checkpoint once one will do; meanwhile it forwards requests and never takes the data over"
                );
            }
            (CopyState::Unknown | CopyState::Follows, CopyState::Lost(reason)) => {
                tracing::error!(
                    %reason,
                    "this node's copy cannot follow the stream: it forwards requests but never takes the data over; stop it and replace its data directory with a copy of a stopped healthy node's (docs/OPERATIONS.md)"
                );
            }
            (CopyState::Lost(_), CopyState::Follows) => {
                tracing::info!("this node's copy follows the stream again");
            }
            _ => {}
        }
        let lost = if matches!(copy, CopyState::Lost(_)) {
            1.0
        } else {
            0.0
        };
        metrics::gauge!("rewards_cluster_follower_lost").set(lost);
        *known = copy;
    }

    /// The owner as last seen, if any.
    pub fn owner(&self) -> Option<Holder> {
        self.owner.lock().clone()
    }

    /// Forgets `owner` (it did not answer) until the lease is read again.
    pub fn forget_owner(&self, owner: &Holder) {
        // An owner that failed to reach itself (a self-forward whose connection failed) is
        // still the owner: nothing would name it again.
        if owner == &self.me {
            return;
        }
        let mut known = self.owner.lock();
        if known.as_ref() == Some(owner) {
            *known = None;
        }
    }

    /// The partition this process serves.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// Whether the cluster's partition count was found to be this process's: until then it
    /// routes nothing.
    pub fn agreed(&self) -> bool {
        self.agreed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether `secret` is the operator's key.
    pub fn is_operator_key(&self, secret: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.operator_key
            .as_deref()
            .is_some_and(|key| bool::from(key.as_bytes().ct_eq(secret.as_bytes())))
    }

    /// The owner of `partition` as last seen, if any.
    pub fn owner_of(&self, partition: u16) -> Option<Holder> {
        if partition == self.placement.index {
            self.owner()
        } else {
            self.view.lock().owners.get(&partition).cloned()
        }
    }

    /// Forgets `owner` of `partition` (it did not answer) until its lease is read again.
    pub fn forget_owner_of(&self, partition: u16, owner: &Holder) {
        if partition == self.placement.index {
            self.forget_owner(owner);
            return;
        }
        let mut view = self.view.lock();
        if view.owners.get(&partition) == Some(owner) {
            view.owners.remove(&partition);
        }
    }

    /// Checks that the cluster splits its data into as many partitions as this node does,
    /// retrying while NATS does not answer; a node that disagrees exits (status 78): its
    /// requests would go to the wrong partitions.
    async fn agree_on_partitions(&self, leases: &Leases) {
        loop {
            match leases.agree_on_partitions(&self.config).await {
                Ok(Ok(())) => {
                    self.agreed
                        .store(true, std::sync::atomic::Ordering::Release);
                    return;
                }
                Ok(Err(recorded)) => {
                    tracing::error!(
                        recorded,
                        configured = self.config.partitions,
                        "the cluster is split into another number of partitions; exiting"
                    );
                    eprintln!(
                        "rewardsd: the cluster has {recorded} partitions, cluster.partitions says {}; exiting with status 78",
                        self.config.partitions
                    );
                    std::process::exit(78);
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "the cluster's partition count could not be read"
                    );
                    tokio::time::sleep(self.config.lease() / 4).await;
                }
            }
        }
    }

    /// With more than one partition, for the node's whole life, four times per lease period:
    /// announces this process ([`balance::Members`]) and reads every partition's lease and
    /// every process's announcement, so that requests for the other partitions go to their
    /// owners and partitions spread over the machines.
    async fn watch_cluster(self: Arc<Self>) {
        let leases = self.leases().await;
        let mut members = None;
        loop {
            if members.is_none() {
                members = warned(
                    balance::Members::open(&leases.context, &self.config).await,
                    "the member bucket could not be opened",
                );
            }
            let mut known = 0;
            let mut owners = std::collections::HashMap::new();
            let mut read_all = true;
            for index in 0..self.placement.count {
                let key = Placement {
                    index,
                    count: self.placement.count,
                }
                .lease_key();
                match leases.entry(&key).await {
                    Ok(Some((holder, _))) => {
                        if index != self.placement.index {
                            known += 1;
                            if self.view.lock().owners.get(&index) != Some(&holder) {
                                tracing::info!(partition = index, owner = %holder.node, "owner of another partition");
                            }
                        }
                        owners.insert(index, holder);
                    }
                    Ok(None) => {}
                    // The owner last seen stays the one requests go to.
                    Err(error) => {
                        read_all = false;
                        if let Some(holder) = self.view.lock().owners.get(&index).cloned() {
                            known += usize::from(index != self.placement.index);
                            owners.insert(index, holder);
                        }
                        tracing::warn!(
                            partition = index,
                            error = format!("{error:#}"),
                            "a partition's lease could not be read"
                        );
                    }
                }
            }
            if read_all {
                let mut unowned = self.unowned_since.lock();
                match owners.contains_key(&self.placement.index) {
                    true => *unowned = None,
                    false => {
                        unowned.get_or_insert_with(Instant::now);
                    }
                }
            }
            let listed = match &members {
                Some(members) => {
                    let me = balance::Member {
                        node: self.me.node.clone(),
                        host: self.config.host().to_string(),
                        partition: self.placement.index,
                        follows: self.follows(),
                    };
                    if let Err(error) = members.announce(&me).await {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "this process was not announced"
                        );
                    }
                    warned(
                        members.list().await,
                        "the cluster's processes could not be read",
                    )
                }
                None => None,
            };
            {
                let mut view = self.view.lock();
                view.owners = owners;
                if let Some(listed) = listed {
                    view.members = listed;
                    if read_all {
                        self.viewed
                            .store(true, std::sync::atomic::Ordering::Release);
                    }
                }
                let loads = view.loads();
                metrics::gauge!("rewards_cluster_host_partitions_owned")
                    .set(loads.get(self.config.host()).copied().unwrap_or(0) as f64);
            }
            metrics::gauge!("rewards_cluster_other_partitions_with_owner").set(known as f64);
            tokio::time::sleep(self.config.lease() / 4).await;
        }
    }

    /// Whether this process should try for its partition's lease now: with one partition
    /// always; with several, once it has read the cluster's state, when its machine owns no
    /// more partitions than any other machine able to take this one, or whatever it knows
    /// when the partition has had no owner for two lease periods.
    fn may_try(&self) -> bool {
        if self.placement.count <= 1 {
            return true;
        }
        let waited = self
            .unowned_since
            .lock()
            .is_some_and(|since| since.elapsed() >= self.config.lease() * 2);
        if waited {
            return true;
        }
        self.viewed.load(std::sync::atomic::Ordering::Acquire)
            && self
                .view
                .lock()
                .may_try(self.config.host(), self.placement.index)
    }

    /// Whether this process, the owner of its partition, should hand it off now (judged only
    /// once its view of the cluster shows it as the owner).
    fn should_hand_off(&self) -> bool {
        let view = self.view.lock();
        self.placement.count > 1
            && view.owners.get(&self.placement.index) == Some(&self.me)
            && view.should_hand_off(
                self.config.host(),
                self.placement.index,
                self.placement.count,
            )
    }

    /// Connects to NATS, retrying until it answers or `stop` resolves.
    async fn leases(&self) -> Leases {
        let mut pause = Duration::from_millis(200);
        loop {
            match Leases::connect(&self.config).await {
                Ok(leases) => return leases,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "NATS is not reachable yet");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.config.lease() / 4);
                }
            }
        }
    }

    /// Tries for the lease four times per lease period until it is this node's, keeping the
    /// known owner up to date meanwhile. Answers the lease's revision. Until the node's copy
    /// has read the stream to its end (and while it cannot) it only reads who holds the lease.
    async fn acquire(&self, leases: &Leases) -> u64 {
        loop {
            if !self.follows() || !self.may_try() {
                match leases.entry(&self.key).await {
                    Ok(entry) => *self.owner.lock() = entry.map(|(holder, _)| holder),
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "the lease could not be read");
                    }
                }
                tokio::time::sleep(self.config.lease() / 4).await;
                continue;
            }
            let sent = Instant::now();
            match leases.try_acquire(&self.key, &self.me).await {
                Ok(Ok(revision)) => {
                    self.window.extend(sent, leases.lapse);
                    return revision;
                }
                Ok(Err(holder)) => {
                    let mut known = self.owner.lock();
                    if *known != holder {
                        tracing::info!(owner = ?holder.as_ref().map(|h| &h.node), "owner");
                    }
                    *known = holder;
                }
                // The owner last seen stays the one requests go to: a failed forward forgets it.
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "the lease could not be read");
                }
            }
            tokio::time::sleep(self.config.lease() / 4).await;
        }
    }

    /// Renews the lease four times per period (each renewal a quarter period after the last
    /// one was sent, however long that one took) until it is lost: taken by another node or
    /// process, or not renewed for three quarters of a period. Answers why.
    async fn keep(&self, leases: &Leases) -> String {
        let lease = self.config.lease();
        let lapse = leases.lapse;
        let mut renewed = Instant::now();
        let mut sent = Instant::now();
        // The first renewal sent since the last answered one, when its fate is not known: if
        // one of them landed, the lease holds from that one at the latest.
        let mut unanswered: Option<Instant> = None;
        loop {
            tokio::time::sleep_until((sent + lease / 4).into()).await;
            let revision = *self.revision.lock();
            sent = Instant::now();
            match leases.renew(&self.key, &self.me, revision).await {
                Ok(next) => {
                    *self.revision.lock() = next;
                    renewed = Instant::now();
                    unanswered = None;
                    self.window.extend(sent, lapse);
                }
                Err(error) => {
                    let first_unanswered = *unanswered.get_or_insert(sent);
                    metrics::counter!("rewards_cluster_lease_renewals_failed_total").increment(1);
                    tracing::warn!(error = format!("{error:#}"), "the lease was not renewed");
                    if !self.window.holds() {
                        tracing::warn!("the lease's window has passed: API requests are answered 503 until a renewal lands");
                    }
                    match leases.entry(&self.key).await {
                        // An earlier renewal whose answer was lost did land: this process's
                        // own write (its token), newer than its last answered one, is the
                        // lease's last revision.
                        Ok(Some((holder, landed))) if holder == self.me && landed != revision => {
                            *self.revision.lock() = landed;
                            renewed = Instant::now();
                            unanswered = None;
                            self.window.extend(first_unanswered, lapse);
                        }
                        // Another node, or another process under this node's name.
                        Ok(Some((holder, _))) if holder != self.me => {
                            return format!("node {} took the lease", holder.node);
                        }
                        _ if renewed.elapsed() >= lease * 3 / 4 => {
                            return format!(
                                "the lease was not renewed for {} ms",
                                renewed.elapsed().as_millis()
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// How often a follower reads what the stream gained into its copy.
const FOLLOW_PERIOD: Duration = Duration::from_millis(250);

/// How often a copy that cannot follow the stream (records it needs are gone) looks again.
const LOST_PERIOD: Duration = Duration::from_secs(30);

/// A follower's copy of the data, kept close to the stream by a thread of its own, so that
/// taking the data over replays only what the copy had not yet read.
struct Following {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Option<Store>>,
}

impl Following {
    /// Opens the node's store on the stream, to read it (its appends are refused), and follows
    /// the stream until [`Following::finish`]. The store opens without replaying: the stream is
    /// read by passes that stop when asked and checkpoint as they go, so neither a long first
    /// read nor a takeover in the middle of one holds everything in memory or waits for it. A
    /// copy that cannot be opened yet (NATS unreachable) is opened again until it can; one whose
    /// disk fails stops the node (exit 70), as the owner's would. What each pass finds is
    /// recorded on `node` (only a copy that read the stream to its end lets the node try for
    /// the lease); a copy that needs records the stream no longer holds is looked at again
    /// every [`LOST_PERIOD`].
    fn start(
        config: &Config,
        cluster: &ClusterConfig,
        node: Arc<Node>,
    ) -> anyhow::Result<Following> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let options = {
            let config = config.clone();
            move || {
                let mut options = crate::server::store_options(
                    &config,
                    Arc::new(|error: &str| {
                        tracing::error!(error, "the follower's copy failed; exiting with code 70");
                        eprintln!("rewardsd: storage failed ({error}); exiting");
                        std::process::exit(70);
                    }),
                );
                options.replay_at_open = false;
                options
            }
        };
        let log = cluster.log_options();
        let data_dir = config.data_dir.clone();
        let stopping = stop.clone();
        let snapshots = cluster.snapshot_interval_ms > 0;
        let cluster = cluster.clone();
        let thread = std::thread::Builder::new()
            .name("follow-log".into())
            .spawn(move || {
                let stopped = || stopping.load(std::sync::atomic::Ordering::Acquire);
                let open = || loop {
                    if stopped() {
                        return None;
                    }
                    // Nothing is opened (a partition's stream is made by its first opening)
                    // before the cluster's partition count is known to be this process's: one
                    // started with another count exits without leaving a stream behind.
                    if !node.agreed() {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    // A restore that failed and could not clear its half-made copy is
                    // cleared before anything opens the directory.
                    if let Err(error) = snapshot::clear_interrupted(&data_dir) {
                        tracing::error!(error = format!("{error:#}"), "the data directory could not be cleared; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                    let log = log.clone();
                    match Store::open_on(&data_dir, options(), move |_| {
                        Ok(Box::new(ReplicatedLog::follow(log)?))
                    }) {
                        Ok(store) => {
                            tracing::info!(position = store.applied_position(), "following the stream");
                            *node.checkpointed.lock() = Some(store.checkpointed_handle());
                            return Some(store);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "the follower's copy could not be opened yet; retrying");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                };
                let mut store = open()?;
                // Set by a restore, cleared by the next pass that reads to the stream's end: a
                // copy lost again at once waits before another restore, never loops on it.
                let mut just_restored = false;
                while !stopped() {
                    // A pass reads what came since the last one through a consumer of its own
                    // (none when nothing came): passes a quarter second apart keep the copy that
                    // close to the stream at the cost of up to four consumers a second, where
                    // back-to-back passes cost the NATS servers more than the owner's appends.
                    match store.catch_up(&stopped) {
                        // A pass stopped for the takeover says nothing of the stream's end.
                        Ok(_) if stopped() => {}
                        Ok(_) => {
                            just_restored = false;
                            if !node.follows() {
                                node.set_copy(CopyState::Follows);
                            }
                            std::thread::sleep(FOLLOW_PERIOD);
                        }
                        Err(StoreError::LogLost(reason)) => {
                            node.set_copy(CopyState::Lost(reason));
                            if snapshots && !std::mem::take(&mut just_restored) {
                                // The copy is closed and replaced by the shared checkpoint,
                                // if one will do; either way a copy is opened again.
                                let copy_position = store.applied_position();
                                store.close();
                                drop(store);
                                // The snapshot's position is reported as this node's
                                // checkpoint while it is fetched: the owner keeps the
                                // stream's records after it.
                                let hold = |position: u64| {
                                    *node.checkpointed.lock() = Some(Arc::new(
                                        std::sync::atomic::AtomicU64::new(position),
                                    ));
                                };
                                let restored = match snapshot::restore(
                                    &cluster,
                                    &data_dir,
                                    copy_position,
                                    &hold,
                                    &stopping,
                                ) {
                                    Ok(restored) => restored,
                                    Err(error) => {
                                        tracing::warn!(error = format!("{error:#}"), "the shared checkpoint could not be restored");
                                        None
                                    }
                                };
                                if restored.is_some() {
                                    metrics::counter!("rewards_cluster_snapshot_restores_total")
                                        .increment(1);
                                }
                                store = open()?;
                                if restored.is_some() {
                                    just_restored = true;
                                    continue;
                                }
                            }
                            let since = Instant::now();
                            while !stopped() && since.elapsed() < LOST_PERIOD {
                                std::thread::sleep(FOLLOW_PERIOD);
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "the follower's copy fell behind; retrying");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                    metrics::gauge!("rewards_cluster_follower_position")
                        .set(store.followed_position() as f64);
                }
                Some(store)
            })
            .context("starting the follower's thread")?;
        Ok(Following { stop, thread })
    }

    /// Stops following and closes the copy with a checkpoint of everything it read, so that
    /// the owner's store, opened on the same directory, replays only what came after.
    async fn finish(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let thread = self.thread;
        let closed = tokio::task::spawn_blocking(move || {
            if let Ok(Some(store)) = thread.join() {
                store.close();
            }
        })
        .await;
        if closed.is_err() {
            tracing::warn!("the follower's copy did not close cleanly");
        }
        // Not a follower any more: the gauge would only fall behind.
        metrics::gauge!("rewards_cluster_follower_position").set(0.0);
    }
}

/// Runs the node until SIGTERM (a clean stop) or until it is deposed (it exits).
pub async fn serve(config: Config, admin_key: Option<String>) -> anyhow::Result<()> {
    let cluster = config
        .cluster
        .clone()
        .context("serving as a cluster node needs a [cluster] section")?;
    // A mapping that does not parse stops start-up before anything is opened.
    let mappings = crate::ingest::Mappings::load(&config.mappings_dir)?;
    claim_directory(&config.data_dir, &cluster.placement().stream())?;
    let _node_lock = snapshot::lock_node_directory(&config.data_dir)?;
    snapshot::clear_interrupted(&config.data_dir)?;
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr().context("the bound address")?;
    anyhow::ensure!(
        cluster.advertise.is_some() || !address.ip().is_unspecified(),
        "set cluster.advertise to the URL other nodes reach this one at: {address} is not one"
    );
    let me = Holder {
        node: cluster.node.clone(),
        url: cluster
            .advertise
            .clone()
            .unwrap_or_else(|| format!("http://{address}")),
        token: hex::encode(rand::random::<[u8; 16]>()),
        host: cluster.host().to_string(),
    };
    // Every partition's store knows the operator's key only if every one is given it.
    anyhow::ensure!(
        cluster.partitions == 1 || admin_key.as_deref().is_some_and(|k| !k.trim().is_empty()),
        "a cluster split into partitions needs the operator key in REWARDS_ADMIN_KEY, the same on every node"
    );
    let mut node = Node::new(cluster.clone(), me, config.data_dir.clone());
    node.operator_key = admin_key
        .as_deref()
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_string);
    let node = Arc::new(node);
    metrics::gauge!("rewards_cluster_partitions_owned").set(0.0);
    metrics::gauge!(
        "rewards_cluster_partition",
        "partition" => cluster.partition.to_string(),
        "partitions" => cluster.partitions.to_string()
    )
    .set(1.0);
    // One listener for SIGTERM and Ctrl-C for the node's whole life: a signal that comes while
    // the node takes the data over is not lost between the two servers.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    actix::spawn(async move {
        stop_signal().await;
        let _ = stopping.send(true);
    });
    let stopped = || {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    };

    // Follower: forward, and try for the lease.
    if node.placement.count > 1 {
        actix::spawn(node.clone().watch_cluster());
    }
    let forwarder = forward::start(node.clone(), &config, listener.try_clone()?)?;
    let forwarding = forwarder.handle();
    let mut forwarder = actix::spawn(forwarder);
    announce(&format!("rewardsd listening on http://{address}"));
    tracing::info!(%address, node = %node.me.node, "cluster node listening as a follower");
    let following = Following::start(&config, &cluster, node.clone())?;
    let taken = async {
        let leases = node.leases().await;
        node.agree_on_partitions(&leases).await;
        actix::spawn(watch_stream(
            leases.context.clone(),
            node.clone(),
            cluster.lease() / 4,
        ));
        let revision = node.acquire(&leases).await;
        (leases, revision)
    };
    let (leases, revision) = tokio::select! {
        taken = taken => taken,
        _ = stopped() => {
            forwarding.stop(true).await;
            let _ = (&mut forwarder).await;
            following.finish().await;
            tracing::info!("stopped as a follower");
            return Ok(());
        }
    };
    forwarding.stop(true).await;
    let _ = forwarder.await;
    *node.revision.lock() = revision;

    // Owner: keep the lease from now on, while the store opens too (a long replay must not let
    // it lapse); open the store on the stream; serve.
    let started = Instant::now();
    tracing::info!(node = %node.me.node, "this node holds the lease; taking the data over");
    let leases = Arc::new(leases);
    let (lost_sender, mut lost) = tokio::sync::oneshot::channel::<String>();
    {
        let node = node.clone();
        let leases = leases.clone();
        actix::spawn(async move {
            let reason = node.keep(&leases).await;
            let _ = lost_sender.send(reason);
        });
    }
    let deposed = Arc::new(tokio::sync::Notify::new());
    let poisoned: Arc<Mutex<Option<String>>> = Arc::default();
    // The follower's copy is closed first: the owner's store opens the same directory, which
    // a restore stopped by the takeover may have left half made (it is then emptied, and the
    // opening below finds the copy lost and gives the lease up).
    following.finish().await;
    snapshot::clear_interrupted(&config.data_dir)?;
    let opening = {
        let deposed = deposed.clone();
        let poisoned = poisoned.clone();
        let options = crate::server::store_options(
            &config,
            Arc::new(move |error: &str| {
                *poisoned.lock() = Some(error.to_string());
                deposed.notify_one();
            }),
        );
        let log = cluster.log_options();
        let data_dir = config.data_dir.clone();
        // Opening replays the stream's tail: minutes for a long one, off the system's thread.
        tokio::task::spawn_blocking(move || {
            Store::open_on(&data_dir, options, move |_checkpoint| {
                Ok(Box::new(ReplicatedLog::open(log)?))
            })
        })
    };
    let store = tokio::select! {
        opened = opening => match opened.context("opening the store")? {
            Ok(store) => store,
            Err(error) => {
                // Give the lease to a node that can use it, and leave for the supervisor: 75
                // when the NATS servers did not answer in time, 70 when the local store failed
                // or the stream lacks records it needs (a restart would not mend either).
                let revision = *node.revision.lock();
                let _ = leases.release(&node.key, revision).await;
                let code = match &error {
                    StoreError::LogLost(_) => 70,
                    other if other.to_string().contains("replicated log") => EXIT_DEPOSED,
                    _ => 70,
                };
                tracing::error!(%error, code, "the store could not be opened on the stream; the lease is given up");
                eprintln!("rewardsd: the store could not be opened ({error}); exiting with status {code}");
                std::process::exit(code);
            }
        },
        reason = &mut lost => {
            // Nothing was served in this term: leave at once, as a deposed owner does.
            let reason = reason.unwrap_or_default();
            metrics::counter!("rewards_cluster_deposed_total", "reason" => "lease").increment(1);
            tracing::error!(%reason, "the lease was lost while the data was being taken over; exiting");
            eprintln!("rewardsd: the lease was lost during the takeover ({reason}); exiting with status {EXIT_DEPOSED}");
            std::process::exit(EXIT_DEPOSED);
        }
        _ = stopped() => {
            // The replay goes on in a blocking thread that nothing waits for: give the lease up
            // and leave; nothing was acknowledged in this term.
            let revision = *node.revision.lock();
            let _ = leases.release(&node.key, revision).await;
            tracing::info!("stopped while taking the data over");
            std::process::exit(0);
        }
    };
    *node.checkpointed.lock() = Some(store.checkpointed_handle());
    *node.store.lock() = Some(store.clone());
    let (app, arbiters) = crate::server::assemble_app(&config, store.clone(), mappings)?;
    let _ = app.forward_token.set(node.me.token.clone());
    let _ = app.lease.set(node.window.clone());
    let _ = app.front.set(Arc::new(forward::Front::new(node.clone())?));
    if let Some(secret) = crate::recovery::ensure_operator_key(&app, admin_key.as_deref())? {
        announce(&format!(
            "Generated operator key (shown once, stored hashed): {secret}"
        ));
    }
    let (server, _) = crate::server::start_http(app.clone(), &config, Some(listener), false)?;
    let serving = server.handle();
    let mut server = actix::spawn(server);
    // The takeover's figures first: whoever sees this node own the data sees them too.
    metrics::gauge!("rewards_cluster_takeover_seconds").set(started.elapsed().as_secs_f64());
    metrics::gauge!("rewards_cluster_takeover_replayed_records")
        .set(store.replayed_at_open() as f64);
    metrics::counter!("rewards_cluster_handoffs_total").increment(1);
    app.set_ready(true);
    *node.owner.lock() = Some(node.me.clone());
    metrics::gauge!("rewards_cluster_partitions_owned").set(1.0);
    tracing::info!(
        node = %node.me.node,
        takeover_ms = started.elapsed().as_millis() as u64,
        "serving as the owner"
    );

    // A split cluster's partitions spread over its machines: this owner's machine may have to
    // hand this one off to a machine that owns fewer.
    let hand_off = Arc::new(tokio::sync::Notify::new());
    if node.placement.count > 1 && cluster.rebalance_interval_ms > 0 {
        let node = node.clone();
        let hand_off = hand_off.clone();
        let interval = Duration::from_millis(cluster.rebalance_interval_ms);
        actix::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if node.should_hand_off() {
                    hand_off.notify_one();
                    return;
                }
            }
        });
    }
    let mut handing_off = false;
    let reason = tokio::select! {
        _ = &mut server => None,
        _ = stopped() => {
            // Stop accepting, answer what was accepted.
            serving.stop(true).await;
            let _ = (&mut server).await;
            None
        }
        _ = hand_off.notified() => {
            // As on SIGTERM: the lease goes once every accepted request is answered.
            tracing::info!(
                partition = node.placement.index,
                "handing this partition off to a machine that owns fewer"
            );
            handing_off = true;
            serving.stop(true).await;
            let _ = (&mut server).await;
            None
        }
        reason = &mut lost => Some(reason.unwrap_or_default()),
        _ = deposed.notified() => Some(poisoned.lock().clone().unwrap_or_default()),
    };
    let Some(reason) = reason else {
        // SIGTERM: in-flight requests were answered; commit, give the lease up, stop.
        app.set_ready(false);
        tracing::info!("HTTP server stopped; committing what was accepted");
        store.close();
        let revision = *node.revision.lock();
        if let Err(error) = leases.release(&node.key, revision).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "the lease was not given up; it lapses"
            );
        }
        for arbiter in arbiters {
            arbiter.stop();
        }
        if handing_off {
            // Started again by the supervisor, it follows the partition it handed off.
            tracing::info!("handed the partition off; exiting to start again as a follower");
            eprintln!(
                "rewardsd: handed partition {} off; exiting with status {EXIT_DEPOSED}",
                node.placement.index
            );
            std::process::exit(EXIT_DEPOSED);
        }
        tracing::info!("shut down cleanly");
        return Ok(());
    };
    // Deposed: refuse everything now; stay visible for a while; exit.
    app.set_ready(false);
    metrics::gauge!("rewards_cluster_partitions_owned").set(0.0);
    // Told apart by what stopped the store, if anything did, whichever was noticed first: a
    // refused append is a fence, any other failed commit the storage's.
    let poison = poisoned.lock().clone();
    let kind = match poison {
        Some(poison) if poison.contains("fenced:") => "fenced",
        Some(_) => "storage",
        None => "lease",
    };
    metrics::counter!("rewards_cluster_deposed_total", "reason" => kind).increment(1);
    tracing::error!(%reason, "this node no longer owns the data: every request is refused; exiting after the grace period");
    eprintln!("rewardsd: no longer the owner ({reason}); exiting with status {EXIT_DEPOSED}");
    tokio::time::sleep(Duration::from_millis(cluster.deposed_grace_ms)).await;
    serving.stop(false).await;
    std::process::exit(if kind == "storage" { 70 } else { EXIT_DEPOSED });
}

/// Publishes the log stream's replication state every `period` for the node's whole life: its
/// first and last sequences, and how far each replica is behind the stream's leader. With
/// `truncate_log`, it also writes this node's checkpoint position every `period` and, while
/// the node serves as the owner, drops the stream's records every copy has checkpointed once
/// every four periods ([`retention`]).
async fn watch_stream(context: async_nats::jetstream::Context, node: Arc<Node>, period: Duration) {
    let mut checkpoints: Option<retention::Checkpoints> = None;
    let mut snapshots: Option<snapshot::Snapshots> = None;
    let snapshot_interval = Duration::from_millis(node.config.snapshot_interval_ms);
    let publishing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut was_serving = false;
    let mut next_snapshot = Instant::now();
    for round in 0u64.. {
        let mut first_sequence = None;
        if let Ok(mut stream) = context.get_stream(node.placement.stream()).await {
            if let Ok(info) = stream.info().await {
                first_sequence = Some(info.state.first_sequence);
                metrics::gauge!("rewards_cluster_log_first_sequence")
                    .set(info.state.first_sequence as f64);
                metrics::gauge!("rewards_cluster_log_last_sequence")
                    .set(info.state.last_sequence as f64);
                if let Some(cluster) = &info.cluster {
                    let mut current = usize::from(cluster.leader.is_some());
                    for replica in &cluster.replicas {
                        metrics::gauge!("rewards_cluster_replica_lag_records", "server" => replica.name.clone())
                            .set(replica.lag.unwrap_or(0) as f64);
                        current += usize::from(replica.current && !replica.offline);
                    }
                    metrics::gauge!("rewards_cluster_log_replicas_current").set(current as f64);
                }
            }
        }
        if !snapshot_interval.is_zero() {
            if snapshots.is_none() {
                snapshots = warned(
                    snapshot::Snapshots::open(&context, &node.config).await,
                    "the snapshot bucket is not reachable yet",
                );
            }
            let serves = node.serves();
            if let (Some(snapshots), true) = (&snapshots, serves) {
                if !was_serving {
                    // A new owner publishes at once when there is no shared checkpoint yet
                    // (the stream keeps every record until there is one), else after a period.
                    let exists = matches!(snapshots.current(&context).await, Ok(Some(_)));
                    next_snapshot = if exists {
                        later(snapshot_interval)
                    } else {
                        Instant::now()
                    };
                }
                let store = node.store.lock().clone();
                if let (Some(store), true) = (store, Instant::now() >= next_snapshot) {
                    if !publishing.swap(true, std::sync::atomic::Ordering::AcqRel) {
                        next_snapshot = later(snapshot_interval);
                        actix::spawn(publish(
                            context.clone(),
                            snapshots.clone(),
                            store,
                            node.clone(),
                            publishing.clone(),
                        ));
                    }
                }
            }
            was_serving = serves;
        }
        if node.config.truncate_log {
            if checkpoints.is_none() {
                checkpoints = warned(
                    retention::Checkpoints::open(&context, &node.config).await,
                    "the checkpoint bucket is not reachable yet",
                );
            }
            if let (Some(checkpoints), Some(position)) = (&checkpoints, node.checkpointed()) {
                let snapshots = if snapshot_interval.is_zero() {
                    Snapshotting::Off
                } else {
                    Snapshotting::On(snapshots.as_ref())
                };
                retain(
                    checkpoints,
                    snapshots,
                    &context,
                    &node,
                    position,
                    first_sequence,
                    round,
                )
                .await;
            }
        }
        tokio::time::sleep(period).await;
    }
}

/// The value, or `None` with `warning` logged (the watcher tries again next round).
fn warned<T>(result: anyhow::Result<T>, warning: &str) -> Option<T> {
    result
        .map_err(|error| tracing::warn!(error = format!("{error:#}"), "{warning}"))
        .ok()
}

/// `after` from now, or about a century if that overflows the clock.
fn later(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(3_153_600_000)))
        .unwrap_or(now)
}

/// Publishes the shared checkpoint once, saying how it went in metrics and the log.
async fn publish(
    context: async_nats::jetstream::Context,
    snapshots: snapshot::Snapshots,
    store: Store,
    node: Arc<Node>,
    publishing: Arc<std::sync::atomic::AtomicBool>,
) {
    let started = Instant::now();
    let data_dir = node.data_dir.clone();
    match snapshots
        .publish(&context, store, &data_dir, || node.serves())
        .await
    {
        Ok(published) => {
            let seconds = started.elapsed().as_secs_f64();
            metrics::gauge!("rewards_cluster_snapshot_position").set(published.position as f64);
            metrics::gauge!("rewards_cluster_snapshot_bytes").set(published.bytes as f64);
            metrics::gauge!("rewards_cluster_snapshot_seconds").set(seconds);
            metrics::counter!("rewards_cluster_snapshots_published_total").increment(1);
            tracing::info!(
                position = published.position,
                records = published.records,
                bytes = published.bytes,
                elapsed_ms = (seconds * 1000.0) as u64,
                "the shared checkpoint was published"
            );
        }
        Err(error) => {
            metrics::counter!("rewards_cluster_snapshot_failures_total").increment(1);
            tracing::warn!(
                error = format!("{error:#}"),
                "the shared checkpoint could not be published; the stream keeps the records after the last one"
            );
        }
    }
    publishing.store(false, std::sync::atomic::Ordering::Release);
}

/// Whether the shared checkpoint is published, and its bucket if reachable: with it on, the
/// stream keeps every record after the published snapshot.
enum Snapshotting<'a> {
    Off,
    On(Option<&'a snapshot::Snapshots>),
}

/// One round of the retention: this node's checkpoint position written, and on the owner every
/// fourth round the stream's records every copy has checkpointed dropped (and, with the shared
/// checkpoint on, that it holds).
async fn retain(
    checkpoints: &retention::Checkpoints,
    snapshots: Snapshotting<'_>,
    context: &async_nats::jetstream::Context,
    node: &Node,
    position: u64,
    first_sequence: Option<u64>,
    round: u64,
) {
    metrics::gauge!("rewards_cluster_checkpoint_position").set(position as f64);
    if let Err(error) = checkpoints.publish(&node.me.node, position).await {
        tracing::warn!(
            error = format!("{error:#}"),
            "this node's checkpoint position was not written"
        );
        return;
    }
    let Some(first_sequence) = first_sequence else {
        return;
    };
    if !round.is_multiple_of(4) || !node.serves() {
        return;
    }
    let Some(Some(mut floor)) = warned(
        checkpoints.floor(first_sequence).await,
        "the checkpoint positions could not be read; nothing is dropped",
    ) else {
        return;
    };
    if let Snapshotting::On(snapshots) = snapshots {
        // Nothing is dropped before there is a shared checkpoint to make a copy from.
        let Some(snapshots) = snapshots else { return };
        let Some(Some(position)) = warned(
            snapshots.current(context).await,
            "the shared checkpoint's position could not be read; nothing is dropped",
        ) else {
            return;
        };
        metrics::gauge!("rewards_cluster_snapshot_position").set(position as f64);
        floor = floor.min(position);
    }
    match rewards_storage::replicated::purge_through(context, &node.placement.stream(), floor).await
    {
        Ok(0) => {}
        Ok(purged) => {
            metrics::counter!("rewards_cluster_log_purged_total").increment(purged);
            tracing::info!(
                through = floor,
                purged,
                "the stream's records every copy has checkpointed were dropped"
            );
        }
        Err(error) => {
            tracing::warn!(%error, "the stream's checkpointed records could not be dropped");
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_is_one_partitions_copy() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        claim_directory(&data, "REWARDS_P0").unwrap();
        assert!(is_node_directory(&data));
        // The same partition again: its copy.
        claim_directory(&data, "REWARDS_P0").unwrap();
        // Another partition's stream: refused, with what the directory holds.
        let error = claim_directory(&data, "REWARDS_P1").unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("REWARDS_P0") && message.contains("not of stream REWARDS_P1"),
            "{message}"
        );
    }
}
