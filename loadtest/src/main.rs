//! `rewards-load`: the load generator's command line (see the library for what it does).

use anyhow::Context;
use clap::Parser;
use rewards_loadtest::Args;

// Many small, short-lived allocations on many threads: glibc's allocator spent a third of the
// server's time in its free lists under load; mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = runtime.block_on(rewards_loadtest::run(args))?;
    report.print();
    if report.money_mismatches() > 0 {
        anyhow::bail!("the money check failed");
    }
    Ok(())
}
