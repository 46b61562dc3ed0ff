//! The traffic: workers sending purchases (single or batched, a share with spends) and wallet
//! reads, in a closed loop or an open loop at a target rate, and the final money check.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::setup::World;
use crate::Args;

const FAMILIES: [&str; 5] = ["dairy", "bakery", "produce", "drinks", "household"];
const SKUS_PER_FAMILY: usize = 10;

/// What the server answered, per contact: awards and spends in cents.
#[derive(Default, Clone, Copy)]
pub struct Money {
    pub awarded: i64,
    pub spent: i64,
}

/// What one worker saw.
pub struct WorkerOutcome {
    pub latency_us: Histogram<u64>,
    pub requests: u64,
    pub events: u64,
    pub errors: BTreeMap<String, u64>,
    pub money: HashMap<usize, Money>,
    /// Contacts with a request whose fate is unknown (no answer): left out of the money check.
    pub uncertain: HashSet<usize>,
    pub routing: RoutingOutcome,
}

/// What processor traffic saw.
pub struct RoutingOutcome {
    /// Latency of the processor purchase requests alone.
    pub latency_us: Histogram<u64>,
    pub transactions: u64,
    /// Routes by outcome, and the POS purchases and claims that went with them.
    pub outcomes: BTreeMap<String, u64>,
    /// Processor purchases rewarded to a contact of the main business: (contact, purchase id),
    /// whose awards the money check reads back.
    pub rewarded: Vec<(usize, String)>,
}

impl RoutingOutcome {
    fn new() -> RoutingOutcome {
        RoutingOutcome {
            latency_us: histogram(),
            transactions: 0,
            outcomes: BTreeMap::new(),
            rewarded: Vec::new(),
        }
    }

    fn add(&mut self, other: RoutingOutcome) {
        self.latency_us.add(&other.latency_us).expect("same bounds");
        self.transactions += other.transactions;
        for (outcome, count) in other.outcomes {
            *self.outcomes.entry(outcome).or_default() += count;
        }
        self.rewarded.extend(other.rewarded);
    }

    pub fn routes(&self) -> u64 {
        self.outcomes
            .iter()
            .filter(|(k, _)| {
                ["rewarded", "matched", "pending_match", "unclaimed"].contains(&k.as_str())
            })
            .map(|(_, n)| n)
            .sum()
    }
}

pub struct Outcome {
    pub latency_us: Histogram<u64>,
    pub requests: u64,
    pub events: u64,
    pub errors: BTreeMap<String, u64>,
    pub money: HashMap<usize, Money>,
    pub uncertain: HashSet<usize>,
    pub routing: RoutingOutcome,
    pub elapsed: Duration,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

fn cents(value: &Value) -> i64 {
    let Some(text) = value.as_str() else { return 0 };
    let (units, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let negative = units.starts_with('-');
    let units: i64 = units.trim_start_matches('-').parse().unwrap_or(0);
    let fraction: i64 = format!("{fraction:0<2}")[..2].parse().unwrap_or(0);
    let magnitude = units * 100 + fraction;
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// A random purchase of 1 to 10 lines for a random contact.
fn purchase(rng: &mut StdRng, args: &Args, world: &World) -> (usize, Value) {
    let contact = rng.gen_range(0..args.contacts);
    let lines: Vec<Value> = (0..rng.gen_range(1..=10))
        .map(|_| {
            let family = FAMILIES[rng.gen_range(0..FAMILIES.len())];
            let sku = format!(
                "SKU-{}-{}",
                family.to_uppercase(),
                rng.gen_range(0..SKUS_PER_FAMILY)
            );
            let price = format!("{}.{:02}", rng.gen_range(0..20), rng.gen_range(0..100));
            let mut line = json!({
                "sku": sku, "family": family, "quantity": rng.gen_range(1..=3).to_string(),
                "unit_price": price,
            });
            if rng.gen_bool(0.8) {
                line["tax_rate"] = json!("0.19");
            } else {
                line["tax_amount"] = json!("0.10");
            }
            line
        })
        .collect();
    let identity = if rng.gen_bool(0.5) {
        json!({"contact_code": format!("c{contact}")})
    } else {
        json!({"payment_medium_identifier": format!("pm{contact}")})
    };
    let mut body = json!({
        "identity": identity,
        "tap_code": world.taps[rng.gen_range(0..world.taps.len())],
        "classification": if rng.gen_bool(0.7) { "grocery" } else { "other" },
        "lines": lines,
        "payment_medium": {"brand": "visa"},
    });
    if rng.gen_bool(args.spend_share) {
        body["spend"] = if rng.gen_bool(0.5) {
            json!({"amount": "all"})
        } else {
            json!({"amount": format!("{}.00", rng.gen_range(1..5))})
        };
    }
    (contact, body)
}

struct Worker<'a> {
    client: &'a reqwest::Client,
    args: &'a Args,
    world: &'a World,
    index: usize,
    sent: u64,
    rng: StdRng,
    outcome: WorkerOutcome,
    live_requests: &'a AtomicU64,
    live_events: &'a AtomicU64,
    live_errors: &'a AtomicU64,
}

impl Worker<'_> {
    fn error(&mut self, code: &str) {
        *self.outcome.errors.entry(code.to_string()).or_default() += 1;
        self.live_errors.fetch_add(1, Ordering::Relaxed);
    }

    fn record_purchase(&mut self, contact: usize, status: u16, body: &Value) {
        if status == 201 {
            self.outcome.events += 1;
            self.live_events.fetch_add(1, Ordering::Relaxed);
            let money = self.outcome.money.entry(contact).or_default();
            money.awarded += body["awards"]
                .as_array()
                .map_or(0, |a| a.iter().map(|x| cents(&x["amount"])).sum());
            money.spent += cents(&body["spend"]["spent"]);
        } else {
            let code = body["code"].as_str().unwrap_or("unknown").to_string();
            self.error(&code);
        }
    }

    fn count(&mut self, outcome: &str) {
        *self
            .outcome
            .routing
            .outcomes
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    /// Posts JSON, counted as a request; `None` when no answer came.
    async fn post(&mut self, path: &str, key: &str, body: &Value) -> Option<(u16, Value)> {
        let answer = self
            .client
            .post(format!("{}{path}", self.world.target))
            .bearer_auth(key)
            .json(body)
            .send()
            .await;
        self.outcome.requests += 1;
        self.live_requests.fetch_add(1, Ordering::Relaxed);
        match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.json::<Value>().await {
                    Ok(body) => Some((status, body)),
                    Err(_) => {
                        self.error("transport");
                        None
                    }
                }
            }
            Err(_) => {
                self.error("transport");
                None
            }
        }
    }

    /// A POS purchase of the match business, the companion of a processor purchase.
    async fn pos_companion(&mut self, body: &Value) {
        let Some(routing) = &self.world.routing else {
            return;
        };
        let key = routing.match_pos_key.clone();
        match self.post("/v1/purchases", &key, body).await {
            Some((201, _)) => self.count("pos_matched"),
            Some((202, _)) => self.count("pos_pending"),
            Some((_, body)) => self.error(body["code"].as_str().unwrap_or("unknown")),
            None => {}
        }
    }

    /// A processor purchase on a shared TAP, maybe with its POS purchase in the match
    /// business, maybe claimed at once in the claim business.
    async fn processor(&mut self) {
        let Some(routing) = &self.world.routing else {
            return;
        };
        let processor_key = routing.processor_key.clone();
        let claim_business = routing.claim_business.clone();
        let claim_key = routing.claim_key.clone();
        let routing_contacts = routing.contacts;
        let contact = self.rng.gen_range(0..self.args.contacts);
        let card = if self.rng.gen_bool(self.args.unknown_card_share) {
            format!("unknown-{contact}")
        } else {
            format!("pm{contact}")
        };
        let total = format!(
            "{}.{:02}",
            self.rng.gen_range(1..100),
            self.rng.gen_range(0..100)
        );
        let tap = self.world.taps[self.rng.gen_range(0..self.world.taps.len())].clone();
        self.sent += 1;
        // The business id makes references unique per run, the worker and count per request.
        let reference = format!(
            "L{}-{}-{}",
            &self.world.business[..8],
            self.index,
            self.sent
        );
        let companion = self.rng.gen_bool(self.args.match_share).then(|| {
            let m = self.rng.gen_range(0..routing_contacts);
            let body = json!({"identity": {"contact_code": format!("m{m}")}, "tap_code": tap,
                "lines": [{"sku": "SKU-CARD", "quantity": "1", "unit_price": total, "tax_rate": "0"}]});
            (self.rng.gen_bool(0.5), body)
        });
        if let Some((true, body)) = &companion {
            self.pos_companion(body).await;
        }
        let body = json!({"tap_code": tap, "transaction_reference": reference, "total_amount": total,
            "currency": "EUR", "payment_medium": {"identifier": card, "brand": "visa"}});
        let started = Instant::now();
        let answer = self
            .post("/v1/processor/purchases", &processor_key, &body)
            .await;
        let latency = started.elapsed().as_micros() as u64;
        self.outcome
            .routing
            .latency_us
            .saturating_record(latency.max(1));
        self.outcome.routing.transactions += 1;
        match answer {
            Some((200, answer)) => {
                for route in answer["routes"].as_array().into_iter().flatten() {
                    let outcome = route["outcome"].as_str().unwrap_or("unknown").to_string();
                    self.count(&outcome);
                    let id = route["purchase_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let business = route["business_id"].as_str().unwrap_or_default();
                    if outcome == "rewarded" && business == self.world.business {
                        self.outcome.routing.rewarded.push((contact, id));
                    } else if outcome == "unclaimed"
                        && business == claim_business
                        && self.rng.gen_bool(self.args.claim_share)
                    {
                        let k = self.rng.gen_range(0..routing_contacts);
                        let claim = json!({"identity": {"contact_code": format!("k{k}")},
                            "claim_code": route["claim_code"]});
                        match self.post("/v1/purchases/claims", &claim_key, &claim).await {
                            Some((200, _)) => self.count("claimed"),
                            Some((_, body)) => {
                                self.error(body["code"].as_str().unwrap_or("unknown"))
                            }
                            None => {}
                        }
                    }
                }
            }
            Some((_, body)) => self.error(body["code"].as_str().unwrap_or("unknown")),
            None => {
                self.outcome.uncertain.insert(contact);
            }
        }
        if let Some((false, body)) = &companion {
            self.pos_companion(body).await;
        }
    }

    /// Sends one request (a purchase, a batch, a processor purchase or a read) and records
    /// what came back.
    async fn one(&mut self) {
        let target = &self.world.target;
        if self.world.routing.is_some() && self.rng.gen_bool(self.args.processor_share) {
            self.processor().await;
            return;
        }
        if self.rng.gen_bool(self.args.read_share) {
            let contact = self.rng.gen_range(0..self.args.contacts);
            let url = format!("{target}/v1/wallets/{}", self.world.wallets[contact]);
            let answer = self
                .client
                .get(url)
                .bearer_auth(&self.world.business_key)
                .send()
                .await;
            self.outcome.requests += 1;
            self.live_requests.fetch_add(1, Ordering::Relaxed);
            match answer {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                }
                Ok(r) => {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    self.error(body["code"].as_str().unwrap_or("unknown"));
                }
                Err(_) => self.error("transport"),
            }
            return;
        }
        if self.args.batch_size == 0 {
            let (contact, body) = purchase(&mut self.rng, self.args, self.world);
            let pos_key = self.world.pos_key.clone();
            match self.post("/v1/purchases", &pos_key, &body).await {
                Some((status, body)) => self.record_purchase(contact, status, &body),
                None => {
                    self.outcome.uncertain.insert(contact);
                }
            }
        } else {
            let (contacts, items): (Vec<usize>, Vec<Value>) = (0..self.args.batch_size)
                .map(|_| purchase(&mut self.rng, self.args, self.world))
                .unzip();
            let answer = self
                .client
                .post(format!("{target}/v1/purchases:batch"))
                .bearer_auth(&self.world.pos_key)
                .json(&json!({"items": items}))
                .send()
                .await;
            self.outcome.requests += 1;
            self.live_requests.fetch_add(1, Ordering::Relaxed);
            let body = match answer {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                Ok(r) => {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    self.error(body["code"].as_str().unwrap_or("unknown"));
                    return;
                }
                Err(_) => None,
            };
            match body.as_ref().and_then(|b| b["results"].as_array()) {
                Some(results) => {
                    for (contact, result) in contacts.iter().zip(results) {
                        let status = result["status"].as_u64().unwrap_or(0) as u16;
                        self.record_purchase(*contact, status, &result["body"]);
                    }
                }
                None => {
                    self.outcome.uncertain.extend(contacts);
                    self.error("transport");
                }
            }
        }
    }
}

pub async fn drive(client: &reqwest::Client, args: &Args, world: &World) -> Outcome {
    let live_requests = AtomicU64::new(0);
    let live_events = AtomicU64::new(0);
    let live_errors = AtomicU64::new(0);
    let next_tick = AtomicU64::new(0);
    let started = Instant::now();
    let deadline = started + args.duration;
    let bar = ProgressBar::new(args.duration.as_secs().max(1));
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} {bar:30} {msg}").expect("template"),
    );
    let progress = async {
        let mut last = (Instant::now(), 0u64, 0u64);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = Instant::now();
            let requests = live_requests.load(Ordering::Relaxed);
            let events = live_events.load(Ordering::Relaxed);
            let seconds = now.duration_since(last.0).as_secs_f64();
            bar.set_position(now.duration_since(started).as_secs());
            bar.set_message(format!(
                "{:.0} req/s  {:.0} events/s  {} errors",
                (requests - last.1) as f64 / seconds,
                (events - last.2) as f64 / seconds,
                live_errors.load(Ordering::Relaxed)
            ));
            last = (now, requests, events);
        }
    };
    let workers = (0..args.connections).map(|index| {
        let live = (&live_requests, &live_events, &live_errors, &next_tick);
        async move {
            let mut worker = Worker {
                client,
                args,
                world,
                index,
                sent: 0,
                rng: StdRng::seed_from_u64(
                    args.seed.wrapping_mul(1_000_003).wrapping_add(index as u64),
                ),
                outcome: WorkerOutcome {
                    latency_us: histogram(),
                    requests: 0,
                    events: 0,
                    errors: BTreeMap::new(),
                    money: HashMap::new(),
                    uncertain: HashSet::new(),
                    routing: RoutingOutcome::new(),
                },
                live_requests: live.0,
                live_events: live.1,
                live_errors: live.2,
            };
            loop {
                // Open loop: request k is due at start + k / rate, whoever sends it; latency
                // counts from then, so time spent waiting for a free connection is not hidden.
                let intended = match args.rate {
                    Some(rate) => {
                        let k = live.3.fetch_add(1, Ordering::Relaxed);
                        let due = started + Duration::from_secs_f64(k as f64 / rate);
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => {
                        let now = Instant::now();
                        if now >= deadline {
                            break;
                        }
                        now
                    }
                };
                worker.one().await;
                let latency = intended.elapsed().as_micros() as u64;
                worker.outcome.latency_us.saturating_record(latency.max(1));
            }
            worker.outcome
        }
    });
    let (outcomes, ()) = futures::join!(futures::future::join_all(workers), progress);
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let mut total = Outcome {
        latency_us: histogram(),
        requests: 0,
        events: 0,
        errors: BTreeMap::new(),
        money: HashMap::new(),
        uncertain: HashSet::new(),
        routing: RoutingOutcome::new(),
        elapsed,
    };
    for outcome in outcomes {
        total
            .latency_us
            .add(&outcome.latency_us)
            .expect("same bounds");
        total.requests += outcome.requests;
        total.events += outcome.events;
        for (code, count) in outcome.errors {
            *total.errors.entry(code).or_default() += count;
        }
        for (contact, money) in outcome.money {
            let entry = total.money.entry(contact).or_default();
            entry.awarded += money.awarded;
            entry.spent += money.spent;
        }
        total.uncertain.extend(outcome.uncertain);
        total.routing.add(outcome.routing);
    }
    total
}

/// The result of the money check.
pub struct MoneyCheck {
    pub wallets_checked: usize,
    pub mismatches: Vec<String>,
    pub uncertain: usize,
}

/// Every wallet the run touched holds what the server reported: awards minus spends.
pub async fn check_money(
    client: &reqwest::Client,
    args: &Args,
    world: &World,
    outcome: &Outcome,
) -> anyhow::Result<MoneyCheck> {
    let processor_awards = processor_awards(client, args, world, outcome).await?;
    let mut money = outcome.money.clone();
    for (contact, awarded) in processor_awards {
        money.entry(contact).or_default().awarded += awarded;
    }
    let candidates: Vec<(usize, Money)> = money
        .iter()
        .filter(|(contact, _)| !outcome.uncertain.contains(contact))
        .map(|(c, m)| (*c, *m))
        .collect();
    let bar = ProgressBar::new(candidates.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("checking wallets {bar:40} {pos}/{len}").expect("template"),
    );
    let results: Vec<anyhow::Result<Option<String>>> = stream::iter(candidates)
        .map(|(contact, money)| {
            let url = format!("{}/v1/wallets/{}", world.target, world.wallets[contact]);
            let key = world.business_key.clone();
            let bar = bar.clone();
            async move {
                let wallet: Value = client
                    .get(url)
                    .bearer_auth(key)
                    .send()
                    .await?
                    .json()
                    .await?;
                bar.inc(1);
                let held =
                    cents(&wallet["balances"]["commerce"]) + cents(&wallet["balances"]["open"]);
                let expected = money.awarded - money.spent;
                Ok((held != expected).then(|| {
                    format!("wallet of c{contact}: holds {held} cents, the answers say {expected}")
                }))
            }
        })
        .buffer_unordered(args.connections)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut check = MoneyCheck {
        wallets_checked: 0,
        mismatches: Vec::new(),
        uncertain: outcome.uncertain.len(),
    };
    for result in results {
        check.wallets_checked += 1;
        if let Some(mismatch) = result? {
            check.mismatches.push(mismatch);
        }
    }
    Ok(check)
}

/// The awards of the processor purchases rewarded to contacts of the main business, read back
/// (a processor's answer names the purchase, not its awards), by contact, in cents.
async fn processor_awards(
    client: &reqwest::Client,
    args: &Args,
    world: &World,
    outcome: &Outcome,
) -> anyhow::Result<HashMap<usize, i64>> {
    let results: Vec<anyhow::Result<(usize, i64)>> =
        stream::iter(outcome.routing.rewarded.iter().cloned())
            .map(|(contact, id)| {
                let url = format!("{}/v1/purchases/{id}", world.target);
                let key = world.business_key.clone();
                async move {
                    let purchase: Value = client
                        .get(url)
                        .bearer_auth(key)
                        .send()
                        .await?
                        .json()
                        .await?;
                    let awarded = purchase["awards"]
                        .as_array()
                        .map_or(0, |a| a.iter().map(|x| cents(&x["amount"])).sum());
                    Ok((contact, awarded))
                }
            })
            .buffer_unordered(args.connections)
            .collect()
            .await;
    let mut awards: HashMap<usize, i64> = HashMap::new();
    for result in results {
        let (contact, awarded) = result?;
        *awards.entry(contact).or_default() += awarded;
    }
    Ok(awards)
}
