//! `rewards-load`: the load generator's command line (see the library for what it does).

use anyhow::Context;
use clap::Parser;
use rewards_loadtest::Args;

// Many small, short-lived allocations on many threads: glibc's allocator spent a third of the
// server's time in its free lists under load; mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load generator for rewardsd.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: Args,
    /// Skip the setup and the money check and POST purchase bodies (single, or batches with
    /// --batch-size) to this URL itself, e.g. http://127.0.0.1:8090/v1/purchases of
    /// `trivial-http`: measures the generator and the HTTP layer, not rewardsd. Any 2xx answer
    /// is a success and its body is not read; --read-share and --processor-share do not apply.
    #[arg(long, value_name = "URL")]
    raw_target: Option<String>,
    /// Threads that run the generator. One keeps it on one core beside a server on the same
    /// machine; more are for a server elsewhere that one thread cannot load.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.args.validate()?;
    anyhow::ensure!(cli.threads >= 1, "--threads must be at least 1");
    let runtime = if cli.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    }
    .context("starting the runtime")?;
    let report = match &cli.raw_target {
        Some(url) => runtime.block_on(rewards_loadtest::run_raw(cli.args, url))?,
        None => runtime.block_on(rewards_loadtest::run(cli.args))?,
    };
    report.print();
    if report.money_mismatches() > 0 {
        anyhow::bail!("the money check failed");
    }
    Ok(())
}
