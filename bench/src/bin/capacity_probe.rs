//! `capacity-probe`: start-up recovery time with many wallets in the store, and the memory a
//! resident wallet actor takes.
//!
//! `capacity-probe [WALLETS]` (default 100,000): creates WALLETS contacts with their wallets in a
//! temporary store, closes it, reopens it as `rewardsd` does (timing the recovery), then makes
//! every wallet's actor resident and reports the resident memory per actor.
//!
//! Then it passivates every actor and reports what the process gave back, for `PROBE_ROUNDS`
//! rounds (default 2) of making them all resident and passivating them again: memory kept after
//! the first round should be used again by the next, not added to.
//!
//! With `PROBE_EVENTS=N` the first store also receives N purchases (random baskets, 30 %
//! spending all they can) before it is closed, so the reopening has N events in the store.
//!
//! With `PROBE_CRASH=1` the first store stops as a crash would (no closing checkpoint), so the
//! reopening replays the log's tail: up to `checkpoint_bytes` of it, the worst case.

use std::time::{Duration, Instant};

use futures::future::join_all;
use rand::SeedableRng;
use rewards_actors::config::Config;
use rewards_actors::wallets::{self, Command};
use rewards_bench::inproc::{create_contacts, run_purchases, setup};
use rewards_storage::Durability;

/// Resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("rss");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// Whether the store's directory lock is still held (by the first opening's last actors).
fn locked(dir: &std::path::Path) -> bool {
    std::fs::File::open(dir.join("LOCK"))
        .is_ok_and(|file| matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
}

/// A count from the environment, or `default` when it is not set (or not a number).
fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let wallets: usize = std::env::args().nth(1).map_or(Ok(100_000), |w| w.parse())?;
    let dir = tempfile::tempdir()?;
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        durability: Durability::Buffered,
        wallet_idle_seconds: 3600,
        ..Config::default()
    };

    let created = Instant::now();
    let contacts = actix::System::new().block_on({
        let config = config.clone();
        async move {
            let (app, store, arbiters) = rewards_actors::server::open_app(&config)?;
            let snapshot = setup(&app).await;
            let contacts = create_contacts(&app, &snapshot, wallets).await;
            let events = env_number("PROBE_EVENTS", 0);
            if events > 0 {
                let started = Instant::now();
                let mut rng = rand::rngs::StdRng::seed_from_u64(11);
                let mut done = 0;
                while done < events {
                    let n = (events - done).min(2000);
                    run_purchases(&app, &snapshot, &contacts, &mut rng, n).await;
                    done += n;
                    if done % 200_000 < n {
                        eprintln!(
                            "{done} purchases in {:.0} s",
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
                println!(
                    "{events} purchases in {:.1} s ({:.0}/s)",
                    started.elapsed().as_secs_f64(),
                    events as f64 / started.elapsed().as_secs_f64()
                );
            }
            if std::env::var("PROBE_CRASH").is_ok_and(|v| v == "1") {
                println!(
                    "stopping as a crash would: {} changed keys not checkpointed",
                    store.unmaterialised_keys()
                );
                store.close_without_checkpoint();
            } else {
                store.close();
            }
            // The wallet actors hold the store (and its directory's lock) until their arbiters
            // stop; the second opening below waits for that.
            for arbiter in &arbiters {
                arbiter.stop();
            }
            anyhow::Ok(contacts)
        }
    })?;
    println!(
        "created {wallets} contacts and wallets in {:.1} s",
        created.elapsed().as_secs_f64()
    );

    actix::System::new().block_on(async move {
        let stopping = Instant::now();
        while locked(&config.data_dir) && stopping.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let started = Instant::now();
        let (app, store, _arbiters) = rewards_actors::server::open_app(&config)?;
        let recovery = started.elapsed();
        println!(
            "start-up recovery with {wallets} wallets in the store: {} ms (store on disk: {} MiB)",
            recovery.as_millis(),
            store.disk_space() / (1 << 20)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Each round makes every wallet's actor resident, then passivates them all. Memory the
        // allocator keeps after the first round should be used again by the next, not grow.
        let rounds = env_number("PROBE_ROUNDS", 2).max(1);
        for round in 1..=rounds {
            let start = rss_bytes();
            for chunk in contacts.chunks(1000) {
                let answers =
                    join_all(chunk.iter().map(|c| wallets::call(&app, *c, Command::Touch))).await;
                anyhow::ensure!(answers.iter().all(Result::is_ok), "a wallet did not answer");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let after = rss_bytes();
            let resident = app.wallets.resident();
            if round == 1 {
                println!(
                    "{resident} resident wallet actors: resident memory {:.0} MiB -> {:.0} MiB, {:.0} bytes per actor",
                    start as f64 / (1 << 20) as f64,
                    after as f64 / (1 << 20) as f64,
                    (after.saturating_sub(start)) as f64 / resident as f64
                );
            } else {
                println!(
                    "round {round}: {resident} resident wallet actors again: resident memory {:.0} MiB -> {:.0} MiB",
                    start as f64 / (1 << 20) as f64,
                    after as f64 / (1 << 20) as f64,
                );
            }
            // Passivate every actor and see what the process gives back.
            app.wallets.passivate_idle_for(Duration::ZERO);
            let deadline = Instant::now() + Duration::from_secs(30);
            while app.wallets.resident() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // A passivated actor leaves the directory at once and stops after a grace of 5 s
            // (commands already on their way to it are answered "retry" meanwhile).
            // Then the server's sweeper asks the allocators to give the freed pages back.
            tokio::time::sleep(Duration::from_secs(6)).await;
            app.wallets.release_free_memory();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let passivated = rss_bytes();
            println!(
                "round {round} after passivation: {} resident wallet actors, resident memory {:.0} MiB ({:+.0} MiB against the start of the round)",
                app.wallets.resident(),
                passivated as f64 / (1 << 20) as f64,
                (passivated as f64 - start as f64) / (1 << 20) as f64
            );
        }
        println!(
            "inline sizes: wallet actor {} bytes (contact state {}, wallet {})",
            std::mem::size_of::<wallets::WalletActor>(),
            std::mem::size_of::<rewards_actors::contact_state::ContactState>(),
            std::mem::size_of::<rewards_core::wallet::Wallet>()
        );
        store.close();
        anyhow::Ok(())
    })
}
