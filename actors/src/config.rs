//! Server configuration: `configs/default.toml` values, overridden by a config file, then by flags.

use anyhow::Context;
use rewards_storage::Durability;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The defaults shipped in `configs/default.toml`, compiled in so the binary runs anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("../../configs/default.toml");

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub http_workers: usize,
    pub wallet_arbiters: usize,
    pub wallet_idle_seconds: u64,
    pub wallet_mailbox_capacity: usize,
    pub max_resident_wallets: usize,
    /// A wallet with more open lots than this stores each lot as a record of its own.
    pub wallet_lots_apart_above: usize,
    pub router_mailbox_capacity: usize,
    pub writer_queue_capacity: usize,
    pub writer_max_batch_sets: usize,
    pub checkpoint_interval_ms: u64,
    pub checkpoint_bytes: usize,
    pub log_segment_bytes: u64,
    pub log: String,
    /// How log lines are written to stderr.
    pub log_format: LogFormat,
    /// Mappings of native formats (`{source}.toml`) that add to or override the built-in ones.
    pub mappings_dir: PathBuf,
    /// Set to run as one node of a cluster on NATS JetStream; absent, the server runs alone on
    /// its embedded store.
    #[serde(default)]
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// Fields a config file may set; missing ones keep the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    durability: Option<Durability>,
    http_workers: Option<usize>,
    wallet_arbiters: Option<usize>,
    wallet_idle_seconds: Option<u64>,
    wallet_mailbox_capacity: Option<usize>,
    max_resident_wallets: Option<usize>,
    wallet_lots_apart_above: Option<usize>,
    router_mailbox_capacity: Option<usize>,
    writer_queue_capacity: Option<usize>,
    writer_max_batch_sets: Option<usize>,
    checkpoint_interval_ms: Option<u64>,
    checkpoint_bytes: Option<usize>,
    log_segment_bytes: Option<u64>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    mappings_dir: Option<PathBuf>,
    cluster: Option<crate::cluster::ClusterConfig>,
}

/// `text` for people reading a terminal; `json` (one object per line) for log collectors.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        // Start-up only; a test parses the bundled file.
        #[allow(clippy::expect_used)]
        toml::from_str(DEFAULT_CONFIG).expect("configs/default.toml is valid")
    }
}

impl Config {
    /// The defaults, overridden by the file at `path` when one is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let mut config = Config::default();
        if let Some(path) = path {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            let file: PartialConfig = toml::from_str(&text)
                .with_context(|| format!("parsing config file {}", path.display()))?;
            config.apply(file);
        }
        config.validate()?;
        Ok(config)
    }

    fn apply(&mut self, file: PartialConfig) {
        macro_rules! take {
            ($($field:ident),*) => {$(
                if let Some(value) = file.$field { self.$field = value; }
            )*};
        }
        if file.cluster.is_some() {
            self.cluster = file.cluster;
        }
        take!(
            listen,
            data_dir,
            durability,
            http_workers,
            wallet_arbiters,
            wallet_idle_seconds,
            wallet_mailbox_capacity,
            max_resident_wallets,
            wallet_lots_apart_above,
            router_mailbox_capacity,
            writer_queue_capacity,
            writer_max_batch_sets,
            checkpoint_interval_ms,
            checkpoint_bytes,
            log_segment_bytes,
            log,
            log_format,
            mappings_dir
        );
    }

    /// Refuses settings whose relations do not hold, before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.wallet_mailbox_capacity >= 1,
            "wallet_mailbox_capacity must be at least 1"
        );
        anyhow::ensure!(
            self.max_resident_wallets >= 1,
            "max_resident_wallets must be at least 1"
        );
        anyhow::ensure!(
            self.wallet_lots_apart_above >= 2,
            "wallet_lots_apart_above must be at least 2"
        );
        anyhow::ensure!(
            self.router_mailbox_capacity >= 1,
            "router_mailbox_capacity must be at least 1"
        );
        anyhow::ensure!(
            self.writer_queue_capacity >= 1,
            "writer_queue_capacity must be at least 1"
        );
        anyhow::ensure!(
            self.writer_max_batch_sets >= 1
                && self.writer_max_batch_sets <= self.writer_queue_capacity,
            "writer_max_batch_sets must be between 1 and writer_queue_capacity"
        );
        anyhow::ensure!(
            self.checkpoint_interval_ms >= 1,
            "checkpoint_interval_ms must be at least 1"
        );
        anyhow::ensure!(
            self.checkpoint_bytes >= 4096 && self.log_segment_bytes >= 4096,
            "checkpoint_bytes and log_segment_bytes must be at least 4096"
        );
        anyhow::ensure!(
            self.wallet_idle_seconds >= 1,
            "wallet_idle_seconds must be at least 1"
        );
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        Ok(())
    }

    pub fn http_workers(&self) -> usize {
        if self.http_workers == 0 {
            cores()
        } else {
            self.http_workers
        }
    }

    pub fn wallet_arbiters(&self) -> usize {
        if self.wallet_arbiters == 0 {
            cores()
        } else {
            self.wallet_arbiters
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration a file with `text` gives.
    fn load(text: &str) -> anyhow::Result<Config> {
        static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("rewards-config-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text)?;
        let loaded = Config::load(Some(&path));
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn the_bundled_defaults_run_alone() {
        let config = Config::load(None).unwrap();
        assert!(config.cluster.is_none());
    }

    #[test]
    fn a_cluster_section_is_read_with_its_defaults_and_checked() {
        let config =
            load("[cluster]\nnats = [\"nats://10.0.0.1:4222\"]\nnode = \"node-1\"\n").unwrap();
        let cluster = config.cluster.unwrap();
        assert_eq!(cluster.node, "node-1");
        assert_eq!(
            (cluster.replicas, cluster.lease_ms, cluster.deposed_grace_ms),
            (3, 15_000, 5_000)
        );
        assert!(cluster.advertise.is_none());
        assert!(cluster.truncate_log);
        assert_eq!(cluster.retain_for_absent_ms, 3_600_000);
        assert_eq!(cluster.snapshot_interval_ms, 600_000);
        assert_eq!(cluster.log_compression, crate::cluster::LogCompression::Lz4);
        assert_eq!(cluster.placement(), crate::cluster::Placement::SINGLE);
        assert_eq!(cluster.host(), "node-1");
        assert_eq!(cluster.rebalance_interval_ms, 30_000);
        let split = load(
            "[cluster]\nnats = [\"nats://h:4222\"]\nnode = \"a\"\npartitions = 8\npartition = 7\n",
        )
        .unwrap();
        assert_eq!(
            split.cluster.unwrap().placement(),
            crate::cluster::Placement { index: 7, count: 8 }
        );
        let plain = load(
            "[cluster]\nnats = [\"nats://h:4222\"]\nnode = \"a\"\nlog_compression = \"none\"\n",
        )
        .unwrap();
        assert_eq!(
            plain.cluster.unwrap().log_compression,
            crate::cluster::LogCompression::None
        );
        for (text, message) in [
            ("nats = []\nnode = \"a\"", "cluster.nats"),
            ("nats = [\"nats://h:4222\"]\nnode = \"a b\"", "cluster.node"),
            ("nats = [\"nats://h:4222\"]\nnode = \"\"", "cluster.node"),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\nreplicas = 7",
                "cluster.replicas",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\nlease_ms = 10",
                "cluster.lease_ms",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\nretain_for_absent_ms = 5000",
                "cluster.retain_for_absent_ms",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\nadvertise = \"10.0.0.1:8080\"",
                "cluster.advertise",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\nhost = \"m 1\"",
                "cluster.host",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\nrebalance_interval_ms = 10",
                "cluster.rebalance_interval_ms",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\npartitions = 0",
                "cluster.partitions",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\npartitions = 1025",
                "cluster.partitions",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\npartitions = 4\npartition = 4",
                "cluster.partition ",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\npartition = 1",
                "cluster.partition ",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\nsnapshot_interval_ms = 10",
                "cluster.snapshot_interval_ms",
            ),
            (
                "nats = [\"nats://h:4222\"]\nnode = \"a\"\nsnapshot_interval_ms = 9223372036854775807",
                "cluster.snapshot_interval_ms",
            ),
        ] {
            let error = load(&format!("[cluster]\n{text}\n")).unwrap_err();
            assert!(format!("{error:#}").contains(message), "{text}: {error:#}");
        }
        // A misspelt setting is refused, not ignored.
        let error =
            load("[cluster]\nnats = [\"nats://h:4222\"]\nnode = \"a\"\nlease = 5\n").unwrap_err();
        assert!(format!("{error:#}").contains("unknown field"), "{error:#}");
        let error = load(
            "[cluster]\nnats = [\"nats://h:4222\"]\nnode = \"a\"\nlog_compression = \"zstd\"\n",
        )
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("unknown variant"),
            "{error:#}"
        );
    }
}
