//! The pipeline without HTTP: wallet actors and the store, driven from a background actix system,
//! for the in-process benchmark.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rand::{Rng, SeedableRng};
use rewards_actors::app::App;
use rewards_actors::budgets::OfferRuntime;
use rewards_actors::config::Config;
use rewards_actors::events::PaymentMediumRecord;
use rewards_actors::idempotency::IdempotencyKey;
use rewards_actors::registry::{BusinessEntry, BusinessSnapshot, OfferSet};
use rewards_actors::router::flows::{self, TransactionInput};
use rewards_actors::schema::keys;
use rewards_actors::wallets::{self, Command, EstimateJob, PurchaseJob};
use rewards_core::business::{Business, ProcessorMode, Tap};
use rewards_core::contact::{Contact, ContactRewards};
use rewards_core::identity::Identity;
use rewards_core::purchase::{validate_purchase, LineInput, PurchaseContext, PurchaseInput};
use rewards_core::wallet::SpendAmount;
use rewards_core::*;
use rewards_storage::Durability;
use rust_decimal::Decimal;

enum Request {
    /// Submit this many purchases at once (a share with spends) and answer the elapsed time.
    Run {
        purchases: usize,
        answer: mpsc::Sender<Duration>,
    },
    /// Submit this many processor purchases at once on the TAP shared by three businesses
    /// (award with known cards, match, claim) and answer the elapsed time.
    Route {
        transactions: usize,
        answer: mpsc::Sender<Duration>,
    },
    /// Submit this many purchases spending all they can, then as many estimates that hold what
    /// they would spend, then the purchases that capture those holds; answer each phase's time.
    Holds {
        count: usize,
        answer: mpsc::Sender<HoldTimes>,
    },
}

/// How long each phase of [`InProcess::holds`] took to be durable.
#[derive(Copy, Clone, Debug)]
pub struct HoldTimes {
    pub plain: Duration,
    pub estimates: Duration,
    pub captures: Duration,
}

/// The TAP codes the bench's three businesses share: a terminal takes a few concurrent
/// transactions, not a thousand, so the traffic spreads over several (one router each).
pub const SHARED_TAPS: usize = 16;

fn shared_tap(n: usize) -> String {
    format!("T-BENCH-{n}")
}

/// A running in-process pipeline on a temporary store.
pub struct InProcess {
    sender: Option<mpsc::Sender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // Ends the pipeline's loop, which closes the store; only then does the directory go.
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn basket(rng: &mut impl Rng) -> PurchaseInput {
    let families = ["dairy", "bakery", "produce", "drinks", "household"];
    PurchaseInput {
        lines: (0..rng.gen_range(1..=10))
            .map(|_| {
                let family = families[rng.gen_range(0..families.len())];
                LineInput {
                    sku: format!("SKU-{family}-{}", rng.gen_range(0..10)),
                    name: None,
                    family: Some(family.into()),
                    quantity: Decimal::from(rng.gen_range(1..=3)),
                    unit_price: Decimal::new(rng.gen_range(50..2000), 2),
                    tax_rate: Some(Decimal::new(19, 2)),
                    tax_amount: None,
                }
            })
            .collect(),
        ..Default::default()
    }
}

impl InProcess {
    /// Starts the pipeline with `wallets` contacts and 10 active offers.
    pub fn start(wallets: usize, durability: Durability) -> InProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            durability,
            ..Config::default()
        };
        let (sender, receiver) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix::System::new();
            system.block_on(async move {
                let (app, store, _arbiters) =
                    rewards_actors::server::open_app(&config).expect("the pipeline opens");
                let snapshot = setup(&app).await;
                let contacts = create_contacts(&app, &snapshot, wallets).await;
                for mode in [ProcessorMode::Match, ProcessorMode::Claim] {
                    let other = setup(&app).await;
                    let mut business = (*other.business).clone();
                    business.settings.processor_mode = mode;
                    register_tap(&app, business).await;
                }
                register_tap(&app, (*snapshot.business).clone()).await;
                let processor = ProcessorId::from_random(rand::random());
                ready_tx.send(()).expect("ready");
                let mut rng = rand::rngs::StdRng::seed_from_u64(7);
                let mut sent = 0u64;
                while let Ok(request) = receiver.recv() {
                    match request {
                        Request::Run { purchases, answer } => {
                            let _ = answer.send(
                                run_purchases(&app, &snapshot, &contacts, &mut rng, purchases)
                                    .await,
                            );
                        }
                        Request::Route {
                            transactions,
                            answer,
                        } => {
                            let started = Instant::now();
                            let results = join_all((0..transactions).map(|_| {
                                sent += 1;
                                let card = rng.gen_range(0..contacts.len());
                                let total = Decimal::new(rng.gen_range(100..10_000), 2);
                                let tap = shared_tap(rng.gen_range(0..SHARED_TAPS));
                                route(&app, processor, sent, card, total, tap)
                            }))
                            .await;
                            let elapsed = started.elapsed();
                            let failed: Vec<&String> =
                                results.iter().filter_map(|r| r.as_ref().err()).collect();
                            assert!(failed.is_empty(), "processor purchases failed: {failed:?}");
                            let _ = answer.send(elapsed);
                        }
                        Request::Holds { count, answer } => {
                            let _ = answer
                                .send(run_holds(&app, &snapshot, &contacts, &mut rng, count).await);
                        }
                    }
                }
                // The pipeline is dropped: stop the store before its directory goes.
                store.close();
            });
        });
        ready_rx.recv().expect("the pipeline started");
        InProcess {
            sender: Some(sender),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Submits `purchases` purchases concurrently and returns how long they took to be durable.
    pub fn run(&self, purchases: usize) -> Duration {
        let (answer, receive) = mpsc::channel();
        self.sender
            .as_ref()
            .expect("the pipeline runs")
            .send(Request::Run { purchases, answer })
            .expect("the pipeline runs");
        receive.recv().expect("an answer")
    }

    /// Times `count` purchases that spend all they can, `count` estimates that hold what they
    /// would spend, and the `count` purchases that capture those holds.
    pub fn holds(&self, count: usize) -> HoldTimes {
        let (answer, receive) = mpsc::channel();
        self.sender
            .as_ref()
            .expect("the pipeline runs")
            .send(Request::Holds { count, answer })
            .expect("the pipeline runs");
        receive.recv().expect("an answer")
    }

    /// Submits `transactions` processor purchases concurrently, each routed to the three
    /// businesses on one of the shared TAPs, and returns how long they took to be durable.
    pub fn route(&self, transactions: usize) -> Duration {
        let (answer, receive) = mpsc::channel();
        self.sender
            .as_ref()
            .expect("the pipeline runs")
            .send(Request::Route {
                transactions,
                answer,
            })
            .expect("the pipeline runs");
        receive.recv().expect("an answer")
    }
}

/// Submits `purchases` purchases of random baskets (30 % spending all they can) for random
/// contacts at once and returns how long they took to be durable.
pub async fn run_purchases(
    app: &Arc<App>,
    snapshot: &BusinessSnapshot,
    contacts: &[ContactId],
    rng: &mut rand::rngs::StdRng,
    purchases: usize,
) -> Duration {
    let jobs = purchase_jobs(snapshot, contacts, rng, purchases);
    submit_purchases(app, jobs).await
}

/// `purchases` purchases of random baskets by random contacts, 30 % spending all they can.
pub fn purchase_jobs(
    snapshot: &BusinessSnapshot,
    contacts: &[ContactId],
    rng: &mut rand::rngs::StdRng,
    purchases: usize,
) -> Vec<(ContactId, PurchaseJob)> {
    (0..purchases)
        .map(|_| {
            let contact = contacts[rng.gen_range(0..contacts.len())];
            let spend = rng.gen_bool(0.3).then_some((SpendAmount::All, false));
            (contact, job(snapshot, rng, spend))
        })
        .collect()
}

/// Submits the purchases at once and returns how long they took to be durable.
pub async fn submit_purchases(app: &Arc<App>, jobs: Vec<(ContactId, PurchaseJob)>) -> Duration {
    let started = Instant::now();
    let results = join_all(jobs.into_iter().map(|(contact, job)| {
        let app = app.clone();
        async move { wallets::call(&app, contact, Command::Purchase(Box::new(job))).await }
    }))
    .await;
    let elapsed = started.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(failed, 0, "purchases failed in the pipeline");
    elapsed
}

async fn run_holds(
    app: &Arc<App>,
    snapshot: &BusinessSnapshot,
    contacts: &[ContactId],
    rng: &mut rand::rngs::StdRng,
    count: usize,
) -> HoldTimes {
    let all = Some((SpendAmount::All, false));
    let plain: Vec<(ContactId, PurchaseJob)> = (0..count)
        .map(|_| {
            (
                contacts[rng.gen_range(0..contacts.len())],
                job(snapshot, rng, all),
            )
        })
        .collect();
    let started = Instant::now();
    let results = join_all(plain.into_iter().map(|(contact, job)| {
        let app = app.clone();
        async move { wallets::call(&app, contact, Command::Purchase(Box::new(job))).await }
    }))
    .await;
    let plain = started.elapsed();
    assert!(results.iter().all(|r| r.is_ok()), "purchases failed");

    // One estimate per contact at a time, each on a basket its purchase repeats.
    let mut chosen: Vec<ContactId> = contacts.to_vec();
    for i in 0..count.min(chosen.len()) {
        let j = rng.gen_range(i..chosen.len());
        chosen.swap(i, j);
    }
    let estimated: Vec<(ContactId, PurchaseJob)> = chosen
        .iter()
        .take(count)
        .map(|contact| (*contact, job(snapshot, rng, None)))
        .collect();
    let ids: Vec<EstimateId> = (0..estimated.len())
        .map(|_| EstimateId::from_random(rand::random()))
        .collect();
    let started = Instant::now();
    let results = join_all(estimated.iter().zip(&ids).map(|((contact, purchase), id)| {
        let app = app.clone();
        let estimate = EstimateJob {
            snapshot: snapshot.clone(),
            estimate_id: *id,
            purchase: purchase.purchase.clone(),
            performed_on: purchase.performed_on,
            reference_number: None,
            classification: purchase.classification.clone(),
            tap_code: None,
            merchant_id: None,
            payment_medium: None,
            spend: all,
            hold: true,
            approval_required: false,
            idempotency: None,
        };
        let contact = *contact;
        async move { wallets::call(&app, contact, Command::Estimate(Box::new(estimate))).await }
    }))
    .await;
    let estimates = started.elapsed();
    assert!(results.iter().all(|r| r.is_ok()), "estimates failed");

    let started = Instant::now();
    let results =
        join_all(
            estimated
                .into_iter()
                .zip(ids)
                .map(|((contact, mut purchase), id)| {
                    let app = app.clone();
                    purchase.estimate_id = Some(id);
                    async move {
                        wallets::call(&app, contact, Command::Purchase(Box::new(purchase))).await
                    }
                }),
        )
        .await;
    let captures = started.elapsed();
    assert!(results.iter().all(|r| r.is_ok()), "captures failed");
    HoldTimes {
        plain,
        estimates,
        captures,
    }
}

/// Registers the shared TAPs for `business` (with its settings) in memory.
async fn register_tap(app: &Arc<App>, business: Business) {
    let entry = app.registry.business(business.id).expect("set up");
    let taps = (0..SHARED_TAPS)
        .map(|n| Tap {
            id: TapId::from_random(rand::random()),
            business_id: business.id,
            code: shared_tap(n),
            merchant_id: None,
            ip_address: None,
        })
        .collect::<Vec<_>>();
    for tap in &taps {
        app.registry.add_tap_code(&tap.code, business.id);
    }
    *entry.business.write() = Arc::new(business);
    *entry.taps.write() = Arc::new(taps);
}

/// One processor purchase paid with contact `card`'s card, routed to every business.
async fn route(
    app: &Arc<App>,
    processor: ProcessorId,
    n: u64,
    card: usize,
    total: Decimal,
    tap: String,
) -> Result<(), String> {
    let reference = format!("BENCH-{n}");
    let body = format!("{{\"ref\": \"{reference}\"}}");
    let input = TransactionInput {
        processor_id: processor,
        tap_code: tap,
        transaction_reference: reference.clone(),
        performed_on: rewards_actors::clock::now(),
        payment_medium: PaymentMediumRecord {
            identifier: Some(format!("pm{card}")),
            brand: Some("visa".into()),
            kind: None,
        },
        purchase: PurchaseInput {
            total_amount: Some(total),
            ..Default::default()
        },
    };
    let key = IdempotencyKey::for_processor(processor, &reference, body.as_bytes());
    flows::route_transaction(app, input, key)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn job(
    snapshot: &BusinessSnapshot,
    rng: &mut impl Rng,
    spend: Option<(SpendAmount, bool)>,
) -> PurchaseJob {
    let business = &snapshot.business;
    let purchase = validate_purchase(
        Identity::ContactCode("bench".into()),
        basket(rng),
        &PurchaseContext {
            currency: business.currency,
            exchange_rates: &business.exchange_rates,
            amount_tolerance: business.settings.amount_tolerance,
        },
    )
    .expect("valid basket");
    PurchaseJob {
        snapshot: snapshot.clone(),
        event_id: rewards_actors::clock::event_id(),
        purchase,
        performed_on: Timestamp(1_795_000_000_000),
        reference_number: None,
        classification: Some("grocery".into()),
        tap_code: None,
        merchant_id: None,
        external_system: String::new(),
        external_reference: None,
        payment_medium: None,
        origin: "pos".into(),
        spend,
        idempotency: None,
        route: None,
        estimate_id: None,
    }
}

/// A business with 10 active offers, in memory only.
pub async fn setup(app: &Arc<App>) -> BusinessSnapshot {
    let business = Business {
        id: BusinessId::from_random(rand::random()),
        name: "bench".into(),
        currency: Currency::parse("EUR").expect("EUR"),
        settings: Default::default(),
        exchange_rates: Default::default(),
    };
    let entry = BusinessEntry::new(business.clone());
    let runtimes = crate::offers(10).into_iter().map(|offer| {
        let mut offer = (*offer).clone();
        offer.business_id = business.id;
        Arc::new(OfferRuntime::new(offer, Default::default()))
    });
    *entry.offers.write() = Arc::new(OfferSet::from_runtimes(runtimes));
    let entry = Arc::new(entry);
    app.registry.businesses.insert(business.id, entry.clone());
    entry.snapshot()
}

/// Creates `count` contacts (with their wallets) through the wallet layer, 256 at a time.
pub async fn create_contacts(
    app: &Arc<App>,
    snapshot: &BusinessSnapshot,
    count: usize,
) -> Vec<ContactId> {
    let mut ids = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(256) {
        let created = join_all(chunk.iter().map(|i| {
            let app = app.clone();
            let snapshot = snapshot.clone();
            async move {
                let contact = Contact {
                    id: ContactId::from_random(rand::random()),
                    business_id: snapshot.business.id,
                    code: Some(format!("c{i}")),
                    cim: None,
                    name: None,
                    email: None,
                    phone: None,
                    payment_media: Vec::new(),
                    gift_cards: Vec::new(),
                    referral_code: format!("R{i}"),
                    wallet_id: WalletId::from_random(rand::random()),
                    wallet_code: format!("{i:016}"),
                    scheme_ids: Vec::new(),
                    spend_blocked: false,
                    spend_block_reason: None,
                    referred_by: None,
                    created_at: Timestamp(1_795_000_000_000),
                    rewards: ContactRewards::default(),
                };
                let keys = vec![
                    keys::identity_contact_key(snapshot.business.id, contact.id),
                    keys::identity_key(
                        snapshot.business.id,
                        rewards_actors::identities::Kind::PaymentMedium,
                        &format!("pm{i}"),
                    ),
                ];
                wallets::create_contact(&app, &snapshot, contact, keys)
                    .await
                    .expect("contact created")
                    .0
                    .id
            }
        }))
        .await;
        ids.extend(created);
    }
    ids
}
