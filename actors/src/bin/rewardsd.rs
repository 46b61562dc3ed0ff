//! `rewardsd`: the rewards transaction processor server.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rewards_actors::config::{Config, LogFormat};
use rewards_storage::Durability;
use tracing_subscriber::EnvFilter;

/// The rewards transaction processor: HTTP API on an embedded, durable store.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Config file (TOML); its values override configs/default.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory of the embedded store.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// sync: acknowledge after fdatasync; buffered: after the OS has the data.
    #[arg(long)]
    durability: Option<Durability>,
    /// Log lines as text, or as one JSON object per line.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Option<Tool>,
}

/// Tools for operators; without one, `rewardsd` runs the server.
#[derive(Subcommand)]
enum Tool {
    /// Checks a stopped server's store (or a restored backup): ledgers, balances, awards and
    /// event indexes. Exits 0 when clean, 1 with a report of each defect, 2 when it cannot read
    /// the store.
    Audit {
        /// The store's directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Asks a running server for a consistent copy of its store, written into DIR on the
    /// server's machine while writes go on (the operator key from REWARDS_ADMIN_KEY).
    Backup {
        /// Where the copy goes: a directory that does not exist yet, or is empty (of a cluster
        /// split into partitions: the directory of every partition's copy, `p<N>` in it).
        #[arg(long)]
        to: PathBuf,
        /// The running server.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Makes a store from a backup (the server stopped or elsewhere), then audits it. Exits 0
    /// when the restored store is whole, 1 with the audit's defects, 2 on any other failure.
    Restore {
        /// The backup's directory.
        #[arg(long)]
        from: PathBuf,
        /// The new store's directory: it must not exist yet, or be empty.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Starts the server with a demo world in it (a business, merchants, a shared TAP, a
    /// scheme, tiers, an offer of every kind, a few hundred contacts) and prints its keys and
    /// commands to paste. The store is a new directory under the temporary directory unless
    /// --data-dir names one.
    Demo {
        /// The store's directory (a new one by default).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
}

// Many small, short-lived allocations on many threads: glibc's allocator spent a third of the
// server's time in its free lists under load; mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Some(Tool::Audit { data_dir }) => std::process::exit(audit(data_dir)),
        Some(Tool::Backup { to, server }) => std::process::exit(backup(to, server)),
        Some(Tool::Restore { from, data_dir }) => std::process::exit(restore(from, data_dir)),
        _ => {}
    }
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if let Some(durability) = cli.durability {
        config.durability = durability;
    }
    if let Some(format) = cli.log_format {
        config.log_format = format;
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let admin_key = std::env::var("REWARDS_ADMIN_KEY").ok();
    if let Some(Tool::Demo { data_dir, listen }) = cli.command {
        config.data_dir = match data_dir {
            Some(dir) => dir,
            None => std::env::temp_dir().join(format!(
                "rewards-demo-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
            )),
        };
        if let Some(listen) = listen {
            config.listen = listen;
        }
        println!("demo store in {}", config.data_dir.display());
        let key = admin_key.unwrap_or_else(|| "demo-operator-key".to_string());
        return rewards_actors::server::run_demo(config, key);
    }
    rewards_actors::server::run(config, admin_key)
}

/// `rewardsd audit`: the report on stdout, progress on stderr; answers the exit code.
fn audit(dir: &std::path::Path) -> i32 {
    use std::io::{IsTerminal, Write};
    let store = match rewards_actors::audit::open(dir) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("rewardsd audit: cannot open the store: {error}");
            return 2;
        }
    };
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |stage: &str, read: u64, done: bool| {
        let mut err = std::io::stderr();
        let end = if done {
            "\n"
        } else if terminal {
            "\r"
        } else {
            "\n"
        };
        let state = if done { "read" } else { "reading" };
        let _ = write!(err, "audit: {stage}: {read} {state}{end}");
        let _ = err.flush();
    };
    let result = rewards_actors::audit::run(&store, &mut progress);
    store.close_without_checkpoint();
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("rewardsd audit: reading the store failed: {error}");
            return 2;
        }
    };
    println!("audit of {}", dir.display());
    println!(
        "  read {} wallets, {} ledger entries, {} events, {} index entries, {} idempotency keys",
        report.wallets,
        report.ledger_entries,
        report.events,
        report.index_entries,
        report.idempotency_keys
    );
    if report.pending_referrals > 0 {
        println!(
            "  {} referrals are half done; the server completes them when it starts",
            report.pending_referrals
        );
    }
    if report.is_clean() {
        println!("clean: no defect found");
        return 0;
    }
    println!("defects:");
    for defect in &report.defects {
        println!("  - {defect}");
    }
    let unlisted = report.total_defects - report.defects.len() as u64;
    if unlisted > 0 {
        println!("  ... and {unlisted} more");
    }
    println!("{} defects found", report.total_defects);
    1
}

/// `rewardsd backup`: asks the server; answers the exit code.
fn backup(to: &std::path::Path, server: &str) -> i32 {
    let Ok(key) = std::env::var("REWARDS_ADMIN_KEY") else {
        eprintln!("rewardsd backup: set REWARDS_ADMIN_KEY to the operator key");
        return 2;
    };
    let to = match std::path::absolute(to) {
        Ok(to) => to,
        Err(error) => {
            eprintln!("rewardsd backup: {}: {error}", to.display());
            return 2;
        }
    };
    let url = format!("{}/v1/backups", server.trim_end_matches('/'));
    let body = serde_json::json!({"to": to.display().to_string()});
    let system = actix::System::new();
    let answer = system.block_on(async move {
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        Ok::<_, reqwest::Error>((status, text))
    });
    match answer {
        Ok((status, text)) if status.is_success() => {
            println!("{text}");
            0
        }
        Ok((status, text)) => {
            eprintln!("rewardsd backup: the server answered {status}: {text}");
            1
        }
        Err(error) => {
            eprintln!("rewardsd backup: {server}: {error}");
            2
        }
    }
}

/// `rewardsd restore`: copies a backup into a new store directory and audits it.
fn restore(from: &std::path::Path, to: &std::path::Path) -> i32 {
    if !from.join(rewards_storage::BACKUP_MARKER).is_file() {
        eprintln!(
            "rewardsd restore: {} is not a whole backup (it has no {} file: the backup failed or is still being written)",
            from.display(),
            rewards_storage::BACKUP_MARKER
        );
        return 2;
    }
    let empty = match std::fs::read_dir(to) {
        Ok(mut entries) => entries.next().is_none(),
        Err(error) => error.kind() == std::io::ErrorKind::NotFound,
    };
    if !empty {
        eprintln!("rewardsd restore: {} exists and is not empty", to.display());
        return 2;
    }
    if let Err(error) = copy_dir(from, to) {
        eprintln!(
            "rewardsd restore: copying {} into {}: {error}",
            from.display(),
            to.display()
        );
        return 2;
    }
    println!("restored {} into {}", from.display(), to.display());
    audit(to)
}

/// Copies a store's files, but for its lock file and the backup's marker, each synced to disk.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if entry.file_name() != "LOCK" && entry.file_name() != rewards_storage::BACKUP_MARKER
        {
            std::fs::copy(entry.path(), &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    std::fs::File::open(to)?.sync_all()
}
