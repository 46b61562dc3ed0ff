//! Spreading a split cluster's partitions over its machines: the least-shard rule.
//!
//! Every process of a split cluster announces itself in the `rewards_members` bucket four
//! times per lease period (its node name, its machine (`cluster.host`), its partition and
//! whether its copy follows the stream); entries lapse a lease after the last one. With the
//! leases, that tells every process how many partitions each machine owns (its *load*), and
//! which machines could take each partition over.
//!
//! - **Taking a partition that has no owner**: only a process on a machine with the least load
//!   among the machines able to take it tries for its lease, so a machine that joins (or one
//!   that owns little) gets the next free partitions. If the partition stays without an owner
//!   for two lease periods anyway (that machine's process is stuck), every process tries.
//! - **Handing a partition off** (as Akka's least-shard allocation rebalances): once every
//!   partition has an owner, the most loaded machine (ties: the first by name) gives up one
//!   partition (its lowest-numbered) when a machine able to take it owns at least two fewer.
//!   The owner stops as on SIGTERM (every accepted request answered, the lease released) and
//!   exits for its supervisor to start it again as a follower; the least loaded machine's
//!   process takes the lease. Each owner looks once per `rebalance_interval_ms`, and only one
//!   partition of the whole cluster moves at a time (none while one has no owner).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, kv};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::{ClusterConfig, Holder};

const BUCKET: &str = "rewards_members";

/// A process of the cluster, as it announced itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node: String,
    pub host: String,
    pub partition: u16,
    /// Whether its copy read the stream to its end at its last pass: only then may it take
    /// the partition over.
    pub follows: bool,
}

/// The machine a lease's holder runs on: its node name when it names none.
pub fn host_of(holder: &Holder) -> &str {
    if holder.host.is_empty() {
        &holder.node
    } else {
        &holder.host
    }
}

/// What a process knows of the cluster: the owner of each partition, and its processes.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub owners: HashMap<u16, Holder>,
    pub members: Vec<Member>,
}

impl View {
    /// How many partitions each machine owns, with every machine that has a process (0 if
    /// it owns none).
    pub fn loads(&self) -> BTreeMap<String, usize> {
        let mut loads: BTreeMap<String, usize> = self
            .members
            .iter()
            .map(|member| (member.host.clone(), 0))
            .collect();
        for holder in self.owners.values() {
            *loads.entry(host_of(holder).to_string()).or_default() += 1;
        }
        loads
    }

    /// The machines with a process of `partition` whose copy follows its stream.
    fn able(&self, partition: u16) -> impl Iterator<Item = &str> {
        self.members
            .iter()
            .filter(move |member| member.partition == partition && member.follows)
            .map(|member| member.host.as_str())
    }

    /// Whether a process on `host` should try for the lease of `partition`, which has no
    /// owner: its machine's load is the least of the machines able to take it (or nothing is
    /// known of them).
    pub fn may_try(&self, host: &str, partition: u16) -> bool {
        let loads = self.loads();
        let load = |h: &str| loads.get(h).copied().unwrap_or(0);
        match self.able(partition).map(load).min() {
            Some(least) => load(host) <= least,
            None => true,
        }
    }

    /// Whether the owner of `partition`, on `host`, should hand it off now: every one of the
    /// `count` partitions has an owner, `host` is the most loaded of the machines that own a
    /// partition a machine owning at least two fewer is able to take (ties: the first by
    /// name), and `partition` is the lowest-numbered such partition of `host`.
    pub fn should_hand_off(&self, host: &str, partition: u16, count: u16) -> bool {
        if self.owners.len() < usize::from(count) {
            return false;
        }
        let loads = self.loads();
        let load = |h: &str| loads.get(h).copied().unwrap_or(0);
        // The lowest-numbered partition `owner` owns that a machine owning two fewer can take.
        let movable = |owner: &str| {
            let mine = load(owner);
            self.owners
                .iter()
                .filter(|(_, holder)| host_of(holder) == owner)
                .map(|(p, _)| *p)
                .filter(|p| {
                    self.able(*p)
                        .filter(|h| *h != owner)
                        .map(load)
                        .min()
                        .is_some_and(|least| mine >= least + 2)
                })
                .min()
        };
        // Of the machines with a partition to move, the most loaded, the first by name among
        // equals (a BTreeMap is in order): one machine at a time moves one partition.
        let mover = loads
            .iter()
            .filter_map(|(h, &l)| movable(h).map(|p| (h, l, p)))
            .fold(
                None::<(&String, usize, u16)>,
                |best, candidate| match best {
                    Some((_, b, _)) if b >= candidate.1 => best,
                    _ => Some(candidate),
                },
            );
        mover.is_some_and(|(h, _, p)| h == host && p == partition)
    }
}

/// The member bucket, connected.
pub struct Members {
    kv: kv::Store,
}

impl Members {
    /// Opens the bucket, creating it (entries living a lease) when it is missing.
    pub async fn open(
        context: &jetstream::Context,
        config: &ClusterConfig,
    ) -> anyhow::Result<Members> {
        let kv = super::lease::bucket(
            context,
            BUCKET,
            Duration::from_millis(config.lease_ms),
            config.replicas,
        )
        .await
        .context("opening the member bucket")?;
        Ok(Members { kv })
    }

    /// Announces `member` (under its node name).
    pub async fn announce(&self, member: &Member) -> anyhow::Result<()> {
        self.kv
            .put(member.node.as_str(), serde_json::to_vec(member)?.into())
            .await
            .context("announcing this process")?;
        Ok(())
    }

    /// Every process that announced itself within a lease.
    pub async fn list(&self) -> anyhow::Result<Vec<Member>> {
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .context("listing the members")?
            .try_collect()
            .await
            .context("listing the members")?;
        let mut members = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(value) = self.kv.get(&key).await.context("reading a member")? else {
                continue;
            };
            // An entry this version cannot read is another version's: not counted.
            if let Ok(member) = serde_json::from_slice::<Member>(&value) {
                members.push(member);
            }
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(node: &str, host: &str) -> Holder {
        Holder {
            node: node.into(),
            url: String::new(),
            token: String::new(),
            host: host.into(),
        }
    }

    fn member(host: &str, partition: u16, follows: bool) -> Member {
        Member {
            node: format!("{host}-p{partition}"),
            host: host.into(),
            partition,
            follows,
        }
    }

    /// Machines `hosts`, each with a process of every one of `count` partitions, following;
    /// `owned` says which machine owns each partition.
    fn view(hosts: &[&str], count: u16, owned: &[(u16, &str)]) -> View {
        View {
            owners: owned
                .iter()
                .map(|(p, h)| (*p, holder(&format!("{h}-p{p}"), h)))
                .collect(),
            members: hosts
                .iter()
                .flat_map(|h| (0..count).map(move |p| member(h, p, true)))
                .collect(),
        }
    }

    #[test]
    fn a_free_partition_goes_to_the_least_loaded_machine() {
        let v = view(&["a", "b"], 4, &[(0, "a"), (1, "a")]);
        assert!(!v.may_try("a", 2));
        assert!(v.may_try("b", 2));
        // Equal loads: both may.
        let v = view(&["a", "b"], 4, &[(0, "a"), (1, "b")]);
        assert!(v.may_try("a", 2) && v.may_try("b", 2));
        // The least loaded machine cannot take it (its copy does not follow): the next may.
        let mut v = view(&["a", "b", "c"], 3, &[(0, "a"), (1, "b")]);
        v.members.retain(|m| !(m.host == "c" && m.partition == 2));
        v.members.push(member("c", 2, false));
        assert!(v.may_try("a", 2) && v.may_try("b", 2));
        // Nothing known: try.
        assert!(View::default().may_try("a", 0));
    }

    #[test]
    fn the_busiest_machine_hands_off_one_partition_at_a_time() {
        // a owns all four, b joined with nothing: a hands off its lowest partition only.
        let v = view(&["a", "b"], 4, &[(0, "a"), (1, "a"), (2, "a"), (3, "a")]);
        assert!(v.should_hand_off("a", 0, 4));
        for p in 1..4 {
            assert!(!v.should_hand_off("a", p, 4), "partition {p}");
        }
        // 3 against 1: still two apart, so a hands off again.
        let v = view(&["a", "b"], 4, &[(0, "b"), (1, "a"), (2, "a"), (3, "a")]);
        assert!(v.should_hand_off("a", 1, 4));
        // 2 against 2, or 2 against 1: balanced enough.
        let v = view(&["a", "b"], 4, &[(0, "b"), (1, "b"), (2, "a"), (3, "a")]);
        assert!((0..4).all(|p| !v.should_hand_off("a", p, 4) && !v.should_hand_off("b", p, 4)));
        let v = view(&["a", "b"], 3, &[(0, "b"), (1, "a"), (2, "a")]);
        assert!((0..3).all(|p| !v.should_hand_off("a", p, 3)));
    }

    #[test]
    fn nothing_moves_while_a_partition_has_no_owner_or_nobody_can_take_it() {
        let v = view(&["a", "b"], 4, &[(0, "a"), (1, "a"), (2, "a")]);
        assert!(!v.should_hand_off("a", 0, 4));
        // b has no process of partition 0 that follows: partition 1 moves instead.
        let mut v = view(&["a", "b"], 4, &[(0, "a"), (1, "a"), (2, "a"), (3, "a")]);
        v.members.retain(|m| !(m.host == "b" && m.partition == 0));
        assert!(!v.should_hand_off("a", 0, 4));
        assert!(v.should_hand_off("a", 1, 4));
        // b has no process at all: nothing moves.
        v.members.retain(|m| m.host != "b");
        assert!((0..4).all(|p| !v.should_hand_off("a", p, 4)));
    }

    #[test]
    fn among_equally_busy_machines_the_first_by_name_hands_off() {
        let v = view(
            &["a", "b", "c"],
            4,
            &[(0, "a"), (1, "a"), (2, "b"), (3, "b")],
        );
        assert!(v.should_hand_off("a", 0, 4));
        assert!(!v.should_hand_off("b", 2, 4));
    }

    #[test]
    fn a_machine_with_nothing_to_move_does_not_hold_the_others_back() {
        // a and b own three each; c owns none and can take only b's partition 5.
        let mut v = view(
            &["a", "b"],
            6,
            &[(0, "a"), (1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "b")],
        );
        v.members.push(member("c", 5, true));
        assert!((0..3).all(|p| !v.should_hand_off("a", p, 6)));
        assert!(v.should_hand_off("b", 5, 6));
        assert!(!v.should_hand_off("b", 3, 6));
    }

    #[test]
    fn a_lease_without_a_machine_counts_under_its_node() {
        let h = holder("n1", "");
        assert_eq!(host_of(&h), "n1");
        assert_eq!(host_of(&holder("n1", "m1")), "m1");
    }
}
