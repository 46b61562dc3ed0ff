//! A budget of heap allocations per purchase in the in-process pipeline: a change that adds
//! allocations to the hot path fails here instead of going unnoticed. The purchases go one at
//! a time, each its own commit, and no checkpoint runs while they are counted, so the count
//! does not depend on timing (how purchases share commits, when the checkpointer wakes).
//!
//! `cargo test -p rewards-bench --features count-allocs --test allocations` (`.ci/run` runs
//! it; `alloc-probe` gives the same counts for batched traffic).

use rand::SeedableRng;
use rewards_actors::config::Config;
use rewards_bench::counting::{counts, Counts};
use rewards_bench::inproc::{create_contacts, purchase_jobs, setup, submit_purchases};
use rewards_storage::Durability;

/// Allocations per purchase allowed: about 10 % above what a purchase of one to ten lines makes
/// on its own commit (66.6 when this test was written). Lower it when the count goes down.
const BUDGET: f64 = 73.0;

#[test]
fn a_purchase_stays_within_its_allocation_budget() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        durability: Durability::Sync,
        // No checkpoint while counting: the checkpointer's work is per checkpoint, not per
        // purchase.
        checkpoint_interval_ms: 3_600_000,
        ..Config::default()
    };
    let per_purchase = actix::System::new().block_on(async move {
        let (app, store, _arbiters) = rewards_actors::server::open_app(&config).unwrap();
        let snapshot = setup(&app).await;
        let contacts = create_contacts(&app, &snapshot, 100).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Warm-up, one at a time: every wallet resident with a few lots.
        for (contact, job) in purchase_jobs(&snapshot, &contacts, &mut rng, 300) {
            submit_purchases(&app, vec![(contact, job)]).await;
        }
        let purchases = 300;
        let mut total = Counts::default();
        for (contact, job) in purchase_jobs(&snapshot, &contacts, &mut rng, purchases) {
            let before = counts();
            submit_purchases(&app, vec![(contact, job)]).await;
            total = total + (counts() - before);
        }
        store.close();
        total.allocations as f64 / purchases as f64
    });
    println!("{per_purchase:.1} allocations per purchase (budget {BUDGET})");
    assert!(
        per_purchase <= BUDGET,
        "a purchase made {per_purchase:.1} heap allocations, over the budget of {BUDGET}: \
         find the new ones with alloc-probe and valgrind's dhat (docs/PERFORMANCE.md)"
    );
}
