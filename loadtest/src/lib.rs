//! `rewards-load`: sets up its own world on a running `rewardsd` through the API, drives it with
//! reproducible purchase traffic (closed loop, or open loop at a target rate), reports throughput
//! and latency percentiles, and checks at the end that the money the server reported adds up to
//! what the wallets hold. The binary is `src/main.rs`; this library is what it runs, so tests can
//! drive a server the same way.
//!
//! `run_raw` skips the setup and the money check and fires purchase bodies at one URL (any
//! HTTP server that answers a POST): it measures the generator itself and the HTTP layer, e.g.
//! against `trivial-http`, beside `wrk`.

mod http;
mod report;
mod scan;
mod setup;
mod traffic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

pub use report::Report;

/// Load generator for rewardsd.
#[derive(Parser, Clone, Debug)]
#[command(version, about)]
pub struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// The operator key (defaults to REWARDS_ADMIN_KEY); required except with --raw-target,
    /// where it is sent as the bearer token when given.
    #[arg(
        long,
        env = "REWARDS_ADMIN_KEY",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    pub admin_key: String,
    /// Contacts (wallets) to create and spread the traffic over.
    #[arg(long, default_value_t = 100_000)]
    pub contacts: usize,
    /// Concurrent connections (closed loop: requests in flight).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Open loop: requests per second to send, latency measured from each request's intended
    /// send time. Without it the load is a closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to send traffic (after setup), e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Traffic sent first, as the run's own (and counted in its requests and money check),
    /// whose latencies are not recorded: the first requests open the connections and start
    /// the wallets' actors, which in an open loop makes every request after them late.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Purchases per batch request; 0 sends single purchases.
    #[arg(long, default_value_t = 0)]
    pub batch_size: usize,
    /// Share of purchases that carry a spend request.
    #[arg(long, default_value_t = 0.3)]
    pub spend_share: f64,
    /// Share of requests that read a wallet instead of submitting purchases.
    #[arg(long, default_value_t = 0.05)]
    pub read_share: f64,
    /// Active offers to create (every award kind is among them).
    #[arg(long, default_value_t = 10)]
    pub offers: usize,
    /// Seed of all random choices: the same seed sends the same traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the report as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Skip the final money check (it reads every wallet the run touched).
    #[arg(long)]
    pub no_check: bool,
    /// Share of requests that are processor purchases on TAP codes shared by three businesses
    /// (this award business, a match business and a claim business).
    #[arg(long, default_value_t = 0.0)]
    pub processor_share: f64,
    /// Share of processor purchases with a POS purchase of the match business on the same
    /// terminal and total (sent before or after the transaction, at random).
    #[arg(long, default_value_t = 0.5)]
    pub match_share: f64,
    /// Share of the claim business's unclaimed purchases that a contact claims at once.
    #[arg(long, default_value_t = 0.2)]
    pub claim_share: f64,
    /// Share of processor purchases paid with a card no contact has (award mode keeps them
    /// unclaimed).
    #[arg(long, default_value_t = 0.1)]
    pub unknown_card_share: f64,
}

impl Args {
    /// Refuses flags whose values make no sense, before anything is sent.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.connections >= 1, "--connections must be at least 1");
        anyhow::ensure!(self.contacts >= 1, "--contacts must be at least 1");
        anyhow::ensure!(self.batch_size <= 1000, "--batch-size must be at most 1000");
        anyhow::ensure!(
            [
                self.spend_share,
                self.read_share,
                self.processor_share,
                self.match_share,
                self.claim_share,
                self.unknown_card_share,
            ]
            .iter()
            .all(|share| (0.0..=1.0).contains(share)),
            "shares must be between 0 and 1"
        );
        if let Some(rate) = self.rate {
            anyhow::ensure!(rate > 0.0, "--rate must be above zero");
        }
        Ok(())
    }
}

/// Sets up the world, drives the traffic, checks the money and returns the report (also
/// written to `--json` when given). A failed money check is an error after the report is out.
///
/// The traffic runs as one task per connection on the runtime it is called from: a
/// current-thread runtime keeps the whole generator on one core.
pub async fn run(args: Args) -> anyhow::Result<Report> {
    args.validate()?;
    anyhow::ensure!(
        !args.admin_key.is_empty(),
        "the operator key is required: --admin-key or REWARDS_ADMIN_KEY"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let world = setup::build(&client, &args).await?;
    let shared = Arc::new(traffic::Shared::new(args, world, false));
    let outcome = traffic::drive(Arc::clone(&shared)).await?;
    let (args, world) = (&shared.args, &shared.world);
    let check = if args.no_check {
        None
    } else {
        Some(traffic::check_money(&client, args, world, &outcome).await?)
    };
    finish(args, &world.business, &outcome, check)
}

/// No setup, no money check: purchase bodies (single, or batches with `--batch-size`) posted
/// to `url` itself, any 2xx answer a success, its body not read. `--read-share` and
/// `--processor-share` do not apply.
pub async fn run_raw(mut args: Args, url: &str) -> anyhow::Result<Report> {
    args.validate()?;
    args.target = url.to_string();
    args.no_check = true;
    let world = setup::World::raw(url);
    let shared = Arc::new(traffic::Shared::new(args, world, true));
    let outcome = traffic::drive(Arc::clone(&shared)).await?;
    finish(&shared.args, "", &outcome, None)
}

fn finish(
    args: &Args,
    business: &str,
    outcome: &traffic::Outcome,
    check: Option<traffic::MoneyCheck>,
) -> anyhow::Result<Report> {
    let report = Report::new(args, business, outcome, check);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report.to_json())?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}
