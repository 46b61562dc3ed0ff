//! The log stream's retention: records every node's copy has checkpointed leave the stream.
//!
//! Each node writes the log position its last durable checkpoint covers into the
//! `rewards_checkpoints` bucket (`rewards_checkpoints_p<N>` for partition N above 0), under its name, every quarter lease. Once per lease period the
//! owner drops the stream's messages through the lowest position there: no copy that wrote its
//! position reads before it again (a copy opens at its checkpoint and replays after it). So the
//! stream holds what the slowest copy still needs, not the whole history.
//!
//! - An entry lapses `retain_for_absent_ms` after its node last wrote it (one hour by default):
//!   a node that is away longer stops holding the stream's records back, and when it comes
//!   back its copy may need records that are gone. It then says so (`follower_lost`) and makes
//!   its copy again from the shared checkpoint ([`super::snapshot`]).
//! - A node that joins with an empty directory after a purge cannot build its copy from the
//!   stream alone: it starts from the shared checkpoint too. With the shared checkpoint on, no
//!   record after its position is dropped (and none before one exists).
//! - An entry below the stream's first message belongs to a copy that is lost already: it does
//!   not hold the others back.
//! - The subject's last message always stays (the writer's fence expects it).
//! - Should a purge race a node that started reading before its entry was seen, that node's
//!   read finds a gap in the stream's sequence and reports its copy lost, never skipping
//!   records silently.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, kv};
use futures::TryStreamExt;

use super::ClusterConfig;

/// The checkpoint bucket, connected.
pub struct Checkpoints {
    kv: kv::Store,
}

impl Checkpoints {
    /// Opens the bucket, creating it (entries living `retain_for_absent_ms`) when missing.
    pub async fn open(
        context: &jetstream::Context,
        config: &ClusterConfig,
    ) -> anyhow::Result<Checkpoints> {
        let kv = super::lease::bucket(
            context,
            &config.placement().checkpoint_bucket(),
            Duration::from_millis(config.retain_for_absent_ms),
            config.replicas,
        )
        .await
        .context("opening the checkpoint bucket")?;
        Ok(Checkpoints { kv })
    }

    /// Records that `node`'s copy needs the stream only after `position`.
    pub async fn publish(&self, node: &str, position: u64) -> anyhow::Result<()> {
        self.kv
            .put(node, position.to_string().into())
            .await
            .context("writing this node's checkpoint position")?;
        Ok(())
    }

    /// The position through which every copy that still follows the stream (its position not
    /// before `first_sequence`, the stream's first message) has checkpointed; `None` when no
    /// node wrote one. Each node's position read is shown as
    /// `rewards_cluster_node_checkpoint_position{node}`: the node holding the stream back is
    /// the one with the lowest.
    pub async fn floor(&self, first_sequence: u64) -> anyhow::Result<Option<u64>> {
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .context("listing the checkpoint positions")?
            .try_collect()
            .await
            .context("listing the checkpoint positions")?;
        let mut floor: Option<u64> = None;
        for key in keys {
            let Some(value) = self
                .kv
                .get(&key)
                .await
                .context("reading a checkpoint position")?
            else {
                continue;
            };
            let position = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .with_context(|| format!("node {key}'s checkpoint position does not parse"))?;
            metrics::gauge!("rewards_cluster_node_checkpoint_position", "node" => key.clone())
                .set(position as f64);
            if position.saturating_add(1) < first_sequence {
                continue;
            }
            floor = Some(floor.map_or(position, |f| f.min(position)));
        }
        Ok(floor)
    }
}
