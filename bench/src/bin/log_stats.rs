//! `log-stats`: what the server wrote to its write-ahead log, by keyspace, per event.
//!
//! `log-stats DATA_DIR` reads the log of a stopped server's data directory (or a copy) and
//! prints, for each keyspace, the changes and the bytes of their keys and values, in all and
//! per event (an event is a put in `events` of a key not seen before in the log). Run the server
//! with a `checkpoint_interval_ms` and `checkpoint_bytes` longer than the traffic, and stop it
//! with SIGKILL, so that no checkpoint deletes the log's segments before they are read:
//!
//! ```sh
//! sed 's/^checkpoint_interval_ms = .*/checkpoint_interval_ms = 3600000/;
//!      s/^checkpoint_bytes = .*/checkpoint_bytes = 4294967296/' configs/default.toml > /tmp/long.toml
//! target/release/rewardsd --data-dir D --config /tmp/long.toml &
//! target/release/rewards-load --contacts 10000 --duration 8s --no-check; kill -9 %1
//! target/release/log-stats D
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use rewards_storage::Space;

#[derive(Default)]
struct Tally {
    changes: u64,
    key_bytes: u64,
    value_bytes: u64,
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: log-stats DATA_DIR"))?;
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut events: HashSet<Vec<u8>> = HashSet::new();
    let (records, bytes) =
        rewards_storage::for_each_logged_change(&dir, &mut |space, key, value| {
            if space == Space::Events && value.is_some() && !events.contains(key) {
                events.insert(key.to_vec());
            }
            let tally = tallies.entry(space.name()).or_default();
            tally.changes += 1;
            tally.key_bytes += key.len() as u64;
            tally.value_bytes += value.map_or(0, |v| v.len() as u64);
        })?;
    let per_event = |n: u64| n as f64 / events.len().max(1) as f64;
    println!(
        "{records} log records, {bytes} bytes, {} events: {:.0} bytes per event",
        events.len(),
        per_event(bytes)
    );
    println!(
        "{:<16} {:>10} {:>14} {:>14} {:>18} {:>16}",
        "keyspace", "changes", "key bytes", "value bytes", "changes per event", "bytes per change"
    );
    for (name, tally) in &tallies {
        println!(
            "{:<16} {:>10} {:>14} {:>14} {:>18.2} {:>16.0}",
            name,
            tally.changes,
            tally.key_bytes,
            tally.value_bytes,
            per_event(tally.changes),
            (tally.key_bytes + tally.value_bytes) as f64 / tally.changes.max(1) as f64
        );
    }
    Ok(())
}
