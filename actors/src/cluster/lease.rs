//! Leases in a NATS key-value bucket: one key per partition, whose value names its owner.
//!
//! The bucket's entries live `lease` long: an owner rewrites its key (expecting the revision
//! it last wrote) four times per lease, and when it stops, the key lapses and another node's
//! create succeeds. A lease only says who should serve; who may write is decided by the log's
//! fence, so two nodes that both believe they hold a lease (a paused process, clocks) never
//! both append.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{
    self,
    kv::{self, CreateErrorKind},
    stream::StorageType,
};
use serde::{Deserialize, Serialize};

use super::ClusterConfig;

const BUCKET: &str = "rewards_leases";

/// The cluster's settings every node must share, in a bucket whose entries never lapse.
const CLUSTER_BUCKET: &str = "rewards_cluster";
const PARTITIONS_KEY: &str = "partitions";

/// The key-value bucket `name`, created with entries that live `max_age` (one value a key,
/// file storage, `replicas` copies) when it is missing. An existing bucket keeps its own age.
pub(super) async fn bucket(
    context: &jetstream::Context,
    name: &str,
    max_age: Duration,
    replicas: usize,
) -> anyhow::Result<kv::Store> {
    if let Ok(kv) = context.get_key_value(name).await {
        return Ok(kv);
    }
    context
        .create_key_value(kv::Config {
            bucket: name.to_string(),
            history: 1,
            max_age,
            storage: StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating the bucket {name}"))
}

/// Who holds a lease, and where it takes requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub node: String,
    pub url: String,
    /// The owner's forwarding token: followers present it with the requests they forward, so
    /// that the client address they pass on is believed. Readable by whoever reads the leases
    /// (the cluster's nodes), not by clients.
    #[serde(default)]
    pub token: String,
    /// The machine it runs on (`cluster.host`): a split cluster spreads its partitions over
    /// machines ([`super::balance`]). Empty in a lease written by an earlier version.
    #[serde(default)]
    pub host: String,
}

/// The lease bucket, connected.
pub struct Leases {
    kv: kv::Store,
    /// How long a lease lives once written: the bucket's own `max_age` (set when the bucket was
    /// made, by the first node's `lease_ms`), or this node's `lease_ms` if shorter. An owner's
    /// [`Window`] is sized from it, so a node configured with a longer lease than the bucket's
    /// never takes its lease as held for longer than the bucket keeps it.
    pub lapse: Duration,
    /// The connection's JetStream context, for the log stream's state.
    pub context: jetstream::Context,
}

impl Leases {
    /// Connects to the NATS servers and opens the bucket, creating it (with entries that live
    /// `lease_ms`) when it is missing.
    pub async fn connect(config: &ClusterConfig) -> anyhow::Result<Leases> {
        // A renewal that has not been answered in a quarter lease is retried at the next one.
        let timeout = Duration::from_millis((config.lease_ms / 4).clamp(500, 2000));
        let client = async_nats::ConnectOptions::new()
            .name(format!("{}-leases", config.node))
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(timeout))
            .connect(config.nats.as_slice())
            .await
            .context("connecting to NATS")?;
        let context = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .build(client);
        let kv = bucket(
            &context,
            BUCKET,
            Duration::from_millis(config.lease_ms),
            config.replicas,
        )
        .await
        .context("opening the lease bucket")?;
        let status = kv.status().await.context("reading the lease bucket")?;
        let configured = Duration::from_millis(config.lease_ms);
        // An age of zero keeps entries for ever: then no other node takes a lease by lapse.
        let lapse = match status.info.config.max_age {
            Duration::ZERO => configured,
            age => age.min(configured),
        };
        if lapse < configured {
            tracing::warn!(
                bucket_ms = lapse.as_millis() as u64,
                lease_ms = config.lease_ms,
                "the lease bucket keeps leases for less than lease_ms; its own age is used"
            );
        }
        Ok(Leases { kv, context, lapse })
    }

    /// Takes the lease on `key` if nobody holds it, or if its holder is this node by name (a
    /// restart of the same node). Answers the revision written, or `None` with the holder.
    pub async fn try_acquire(
        &self,
        key: &str,
        me: &Holder,
    ) -> anyhow::Result<Result<u64, Option<Holder>>> {
        let value = serde_json::to_vec(me)?;
        match self.kv.create(key, value.clone().into()).await {
            Ok(revision) => return Ok(Ok(revision)),
            Err(error) if error.kind() == CreateErrorKind::AlreadyExists => {}
            Err(error) => return Err(error).context("creating the lease"),
        }
        let Some(entry) = self.kv.entry(key).await.context("reading the lease")? else {
            return Ok(Err(None));
        };
        let holder: Option<Holder> = serde_json::from_slice(&entry.value).ok();
        if holder.as_ref().is_some_and(|h| h.node == me.node) {
            // This node again, after a restart: it takes its own lease back without waiting
            // for it to lapse (the log's fence covers whatever the earlier process left).
            if let Ok(revision) = self.kv.update(key, value.into(), entry.revision).await {
                return Ok(Ok(revision));
            }
        }
        Ok(Err(holder))
    }

    /// Records the cluster's partition count when it is the first to, or answers the count
    /// recorded when it is another: every node must split the data the same way. The count
    /// lives in a bucket whose entries never lapse.
    pub async fn agree_on_partitions(
        &self,
        config: &ClusterConfig,
    ) -> anyhow::Result<Result<(), u16>> {
        let kv = match self.context.get_key_value(CLUSTER_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => self
                .context
                .create_key_value(kv::Config {
                    bucket: CLUSTER_BUCKET.to_string(),
                    history: 1,
                    storage: StorageType::File,
                    num_replicas: config.replicas,
                    ..Default::default()
                })
                .await
                .with_context(|| format!("creating the bucket {CLUSTER_BUCKET}"))?,
        };
        // A cluster made before the count was recorded was not split: its partition 0 stream
        // has a history. It is recorded as one partition, and a split start refused.
        let ours = if config.partitions > 1 && self.unsplit_history().await? {
            1
        } else {
            config.partitions
        };
        match kv.create(PARTITIONS_KEY, ours.to_string().into()).await {
            Ok(_) if ours == config.partitions => return Ok(Ok(())),
            Ok(_) => return Ok(Err(ours)),
            Err(error) if error.kind() == CreateErrorKind::AlreadyExists => {}
            Err(error) => return Err(error).context("recording the partition count"),
        }
        let recorded = kv
            .get(PARTITIONS_KEY)
            .await
            .context("reading the partition count")?
            .context("the partition count vanished")?;
        let recorded = std::str::from_utf8(&recorded)
            .ok()
            .and_then(|count| count.parse::<u16>().ok())
            .context("the recorded partition count does not parse")?;
        Ok(if recorded == config.partitions {
            Ok(())
        } else {
            Err(recorded)
        })
    }

    /// Whether partition 0's stream holds a history (anything ever appended to it).
    async fn unsplit_history(&self) -> anyhow::Result<bool> {
        use async_nats::jetstream::context::GetStreamErrorKind;
        use async_nats::jetstream::ErrorCode;
        let name = super::Placement::SINGLE.stream();
        let mut stream = match self.context.get_stream(&name).await {
            Ok(stream) => stream,
            // Only a stream the servers say is not there has no history: a timeout or an
            // election is retried, never taken for a new cluster.
            Err(error)
                if matches!(error.kind(), GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
            {
                return Ok(false);
            }
            Err(error) => {
                return Err(error).with_context(|| format!("finding the stream {name}"));
            }
        };
        let info = stream
            .info()
            .await
            .with_context(|| format!("reading the stream {name}"))?;
        Ok(info.state.last_sequence > 0)
    }

    /// Rewrites the lease, expecting `revision` to be the last write of it.
    pub async fn renew(&self, key: &str, me: &Holder, revision: u64) -> anyhow::Result<u64> {
        let value = serde_json::to_vec(me)?;
        Ok(self.kv.update(key, value.into(), revision).await?)
    }

    /// The lease's holder now and the revision that names it, if any.
    pub async fn entry(&self, key: &str) -> anyhow::Result<Option<(Holder, u64)>> {
        let entry = self.kv.entry(key).await.context("reading the lease")?;
        Ok(entry.and_then(|entry| {
            let holder: Holder = serde_json::from_slice(&entry.value).ok()?;
            Some((holder, entry.revision))
        }))
    }

    /// Gives the lease up, if `revision` is still its last write, so that another node takes
    /// over at once instead of when it lapses.
    pub async fn release(&self, key: &str, revision: u64) -> anyhow::Result<()> {
        self.kv
            .delete_expect_revision(key, Some(revision))
            .await
            .context("releasing the lease")
    }
}

/// Until when this node may take its lease as held, by its own monotonic clock: three quarters
/// of a lease after the last write of it that was sent (acquire or renewal) and landed. The
/// owner's API answers only inside the window, so an owner whose process was stalled past it
/// serves no read from its copy before a renewal succeeds again, while another node can take
/// the lease only once a whole lease has passed since that write (by the NATS servers' clocks,
/// which must run at about the same rate). Not covered: a second process under the same node
/// name (a misconfiguration: it takes the name's lease back at once, and this one learns it
/// at its next renewal), and a pause of a whole virtual machine whose monotonic clock stops
/// while it is paused.
pub struct Window {
    epoch: Instant,
    /// Nanoseconds after `epoch`; 0 while no write of the lease was answered.
    until: AtomicU64,
}

impl Window {
    pub fn new() -> Window {
        Window {
            epoch: Instant::now(),
            until: AtomicU64::new(0),
        }
    }

    /// A write of the lease sent at `sent` was answered: it holds for `lease` from then.
    pub fn extend(&self, sent: Instant, lease: Duration) {
        let until = sent.saturating_duration_since(self.epoch) + lease * 3 / 4;
        let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.until.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Whether the lease is held now.
    pub fn holds(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now < self.until.load(Ordering::Acquire)
    }
}

impl Default for Window {
    fn default() -> Window {
        Window::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_holds_from_an_answered_write_for_three_quarters_of_a_lease_and_never_shrinks() {
        let window = Window::new();
        assert!(!window.holds(), "nothing was written yet");
        // A write sent at the window's start for no time at all: never held.
        window.extend(window.epoch, Duration::ZERO);
        assert!(!window.holds());
        window.extend(Instant::now(), Duration::from_secs(60));
        assert!(window.holds());
        // An older write answered late does not take the window back.
        window.extend(window.epoch, Duration::ZERO);
        assert!(window.holds());
    }
}
