//! The traffic: workers sending purchases (single or batched, a share with spends) and wallet
//! reads, in a closed loop or an open loop at a target rate, and the final money check.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::Value;

use crate::http::{push_decimal, Connection, Endpoint};
use crate::scan;
use crate::setup::World;
use crate::Args;

const FAMILIES: [&str; 5] = ["dairy", "bakery", "produce", "drinks", "household"];
const FAMILIES_UPPER: [&str; 5] = ["DAIRY", "BAKERY", "PRODUCE", "DRINKS", "HOUSEHOLD"];
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
    /// Open loop: how long each request waited past its due time for a free connection.
    pub waited_us: Histogram<u64>,
    /// Open loop: from each request's sending to its answer.
    pub round_trip_us: Histogram<u64>,
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
    pub waited_us: Histogram<u64>,
    pub round_trip_us: Histogram<u64>,
    pub requests: u64,
    pub events: u64,
    pub errors: BTreeMap<String, u64>,
    pub money: HashMap<usize, Money>,
    pub uncertain: HashSet<usize>,
    pub routing: RoutingOutcome,
    pub elapsed: Duration,
    /// CPU seconds the generator's process used while sending traffic, when known.
    pub cpu_seconds: Option<f64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

fn cents(value: &Value) -> i64 {
    value.as_str().map_or(0, cents_of)
}

/// An amount like `"12.34"` or `"-0.5"` in cents.
fn cents_of(text: &str) -> i64 {
    let (units, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let negative = units.starts_with('-');
    let units: i64 = units.trim_start_matches('-').parse().unwrap_or(0);
    let mut fraction_cents = 0;
    let mut digits = fraction.bytes();
    for _ in 0..2 {
        let digit = match digits.next() {
            Some(d @ b'0'..=b'9') => i64::from(d - b'0'),
            Some(_) => return 0,
            None => 0,
        };
        fraction_cents = fraction_cents * 10 + digit;
    }
    let magnitude = units * 100 + fraction_cents;
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// An amount in an answer.
#[derive(Deserialize)]
struct Amount<'a> {
    #[serde(borrow, default)]
    amount: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Spend<'a> {
    #[serde(borrow, default)]
    spent: Option<Cow<'a, str>>,
}

/// The fields of a purchase's answer (or an error's) that the money check and the error counts
/// need; everything else in the answer is skipped without being built.
#[derive(Deserialize)]
struct PurchaseAnswer<'a> {
    #[serde(borrow, default)]
    awards: Vec<Amount<'a>>,
    #[serde(borrow, default)]
    spend: Option<Spend<'a>>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
}

impl PurchaseAnswer<'_> {
    fn awarded(&self) -> i64 {
        self.awards
            .iter()
            .map(|a| a.amount.as_deref().map_or(0, cents_of))
            .sum()
    }

    fn spent(&self) -> i64 {
        self.spend
            .as_ref()
            .and_then(|s| s.spent.as_deref())
            .map_or(0, cents_of)
    }
}

/// What the money check and the error counts took from one purchase's answer.
struct Answered {
    status: u16,
    awarded: i64,
    spent: i64,
    code: Option<String>,
}

impl Answered {
    fn new(status: u16, answer: &PurchaseAnswer) -> Answered {
        Answered {
            status,
            awarded: answer.awarded(),
            spent: answer.spent(),
            code: (status != 201)
                .then(|| answer.code.as_deref().map(str::to_string))
                .flatten(),
        }
    }
}

#[derive(Deserialize)]
struct BatchItem<'a> {
    #[serde(default)]
    status: u16,
    #[serde(borrow)]
    body: PurchaseAnswer<'a>,
}

#[derive(Deserialize)]
struct BatchAnswer<'a> {
    #[serde(borrow)]
    results: Vec<BatchItem<'a>>,
}

#[derive(Deserialize)]
struct Route<'a> {
    #[serde(borrow, default)]
    outcome: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    purchase_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    business_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    claim_code: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ProcessorAnswer<'a> {
    #[serde(borrow, default)]
    routes: Vec<Route<'a>>,
}

/// The `code` of an error answer.
fn error_code(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorAnswer<'a> {
        #[serde(borrow, default)]
        code: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<ErrorAnswer>(body)
        .ok()
        .and_then(|e| e.code.map(Cow::into_owned))
        .unwrap_or_else(|| "unknown".to_string())
}

/// `text` as a JSON string.
fn push_str(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Escaping needed: rare (codes and references are plain ASCII).
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// A random purchase of 1 to 10 lines for a random contact, written as JSON into `out`
/// (cleared first); answers the contact.
fn purchase(rng: &mut StdRng, args: &Args, world: &World, out: &mut Vec<u8>) -> usize {
    out.clear();
    let contact = rng.gen_range(0..args.contacts);
    out.extend_from_slice(b"{\"lines\":[");
    for i in 0..rng.gen_range(1..=10) {
        if i > 0 {
            out.push(b',');
        }
        let family = rng.gen_range(0..FAMILIES.len());
        let sku = rng.gen_range(0..SKUS_PER_FAMILY);
        let units = rng.gen_range(0..20);
        let hundredths = rng.gen_range(0..100);
        let quantity = rng.gen_range(1..=3);
        // Pushed piece by piece: `write!` cost more than the rest of the body.
        out.extend_from_slice(b"{\"sku\":\"SKU-");
        out.extend_from_slice(FAMILIES_UPPER[family].as_bytes());
        out.push(b'-');
        push_decimal(out, sku);
        out.extend_from_slice(b"\",\"family\":\"");
        out.extend_from_slice(FAMILIES[family].as_bytes());
        out.extend_from_slice(b"\",\"quantity\":\"");
        push_decimal(out, quantity);
        out.extend_from_slice(b"\",\"unit_price\":\"");
        push_decimal(out, units);
        out.push(b'.');
        out.push(b'0' + (hundredths / 10) as u8);
        out.push(b'0' + (hundredths % 10) as u8);
        out.extend_from_slice(b"\",");
        if rng.gen_bool(0.8) {
            out.extend_from_slice(b"\"tax_rate\":\"0.19\"}");
        } else {
            out.extend_from_slice(b"\"tax_amount\":\"0.10\"}");
        }
    }
    if rng.gen_bool(0.5) {
        out.extend_from_slice(b"],\"identity\":{\"contact_code\":\"c");
    } else {
        out.extend_from_slice(b"],\"identity\":{\"payment_medium_identifier\":\"pm");
    }
    push_decimal(out, contact);
    out.extend_from_slice(b"\"}");
    out.extend_from_slice(b",\"tap_code\":");
    push_str(out, &world.taps[rng.gen_range(0..world.taps.len())]);
    out.extend_from_slice(if rng.gen_bool(0.7) {
        b",\"classification\":\"grocery\""
    } else {
        b",\"classification\":\"other\""
    });
    out.extend_from_slice(b",\"payment_medium\":{\"brand\":\"visa\"}");
    if rng.gen_bool(args.spend_share) {
        if rng.gen_bool(0.5) {
            out.extend_from_slice(b",\"spend\":{\"amount\":\"all\"}");
        } else {
            out.extend_from_slice(b",\"spend\":{\"amount\":\"");
            push_decimal(out, rng.gen_range(1..5));
            out.extend_from_slice(b".00\"}");
        }
    }
    out.push(b'}');
    contact
}

/// A batch of `args.batch_size` purchases into `out`; answers their contacts.
fn batch(
    rng: &mut StdRng,
    args: &Args,
    world: &World,
    out: &mut Vec<u8>,
    one: &mut Vec<u8>,
) -> Vec<usize> {
    out.clear();
    out.extend_from_slice(b"{\"items\":[");
    let contacts = (0..args.batch_size)
        .map(|i| {
            if i > 0 {
                out.push(b',');
            }
            let contact = purchase(rng, args, world, one);
            out.extend_from_slice(one);
            contact
        })
        .collect();
    out.extend_from_slice(b"]}");
    contacts
}

/// What all workers share.
pub struct Shared {
    pub args: Args,
    pub world: World,
    /// Raw mode: no world on the server, purchases only, answers not read.
    pub raw: bool,
    live_requests: AtomicU64,
    live_events: AtomicU64,
    live_errors: AtomicU64,
    next_tick: AtomicU64,
}

impl Shared {
    pub fn new(args: Args, world: World, raw: bool) -> Shared {
        Shared {
            args,
            world,
            raw,
            live_requests: AtomicU64::new(0),
            live_events: AtomicU64::new(0),
            live_errors: AtomicU64::new(0),
            next_tick: AtomicU64::new(0),
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    connection: Connection,
    /// The request body being sent.
    body: Vec<u8>,
    /// One purchase of a batch being built.
    item: Vec<u8>,
    index: usize,
    sent: u64,
    rng: StdRng,
    outcome: WorkerOutcome,
}

impl Worker {
    fn error(&mut self, code: &str) {
        match self.outcome.errors.get_mut(code) {
            Some(count) => *count += 1,
            None => {
                self.outcome.errors.insert(code.to_string(), 1);
            }
        }
        self.shared.live_errors.fetch_add(1, Ordering::Relaxed);
    }

    fn event(&mut self) {
        self.outcome.events += 1;
        self.shared.live_events.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&mut self, outcome: &str) {
        match self.outcome.routing.outcomes.get_mut(outcome) {
            Some(count) => *count += 1,
            None => {
                self.outcome.routing.outcomes.insert(outcome.to_string(), 1);
            }
        }
    }

    /// Sends a request on the worker's connection, counted; `None` when no answer came.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&[u8]>,
    ) -> Option<u16> {
        let status = self.connection.send(method, path, key, body).await;
        self.outcome.requests += 1;
        self.shared.live_requests.fetch_add(1, Ordering::Relaxed);
        if status.is_none() {
            self.error("transport");
        }
        status
    }

    /// A POS purchase of the match business, the companion of a processor purchase.
    async fn pos_companion(&mut self, shared: &Shared, body: &[u8]) {
        let Some(routing) = &shared.world.routing else {
            return;
        };
        match self
            .send("POST", "/v1/purchases", &routing.match_pos_key, Some(body))
            .await
        {
            Some(201) => self.count("pos_matched"),
            Some(202) => self.count("pos_pending"),
            Some(_) => {
                let code = error_code(self.connection.body());
                self.error(&code);
            }
            None => {}
        }
    }

    /// A processor purchase on a shared TAP, maybe with its POS purchase in the match
    /// business, maybe claimed at once in the claim business.
    async fn processor(&mut self, shared: &Shared) {
        let Some(routing) = &shared.world.routing else {
            return;
        };
        let (args, world) = (&shared.args, &shared.world);
        let contact = self.rng.gen_range(0..args.contacts);
        let card = if self.rng.gen_bool(args.unknown_card_share) {
            format!("unknown-{contact}")
        } else {
            format!("pm{contact}")
        };
        let total = format!(
            "{}.{:02}",
            self.rng.gen_range(1..100),
            self.rng.gen_range(0..100)
        );
        let tap = &world.taps[self.rng.gen_range(0..world.taps.len())];
        self.sent += 1;
        // The business id makes references unique per run, the worker and count per request.
        let reference = format!("L{}-{}-{}", &world.business[..8], self.index, self.sent);
        let companion = self.rng.gen_bool(args.match_share).then(|| {
            let m = self.rng.gen_range(0..routing.contacts);
            let mut body = Vec::with_capacity(256);
            let _ = write!(body, "{{\"identity\":{{\"contact_code\":\"m{m}\"}},\"tap_code\":");
            push_str(&mut body, tap);
            let _ = write!(
                body,
                ",\"lines\":[{{\"sku\":\"SKU-CARD\",\"quantity\":\"1\",\"unit_price\":\"{total}\",\"tax_rate\":\"0\"}}]}}"
            );
            (self.rng.gen_bool(0.5), body)
        });
        if let Some((true, body)) = &companion {
            self.pos_companion(shared, body).await;
        }
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        body.extend_from_slice(b"{\"tap_code\":");
        push_str(&mut body, tap);
        body.extend_from_slice(b",\"transaction_reference\":");
        push_str(&mut body, &reference);
        let _ = write!(
            body,
            ",\"total_amount\":\"{total}\",\"currency\":\"EUR\",\"payment_medium\":{{\"identifier\":"
        );
        push_str(&mut body, &card);
        body.extend_from_slice(b",\"brand\":\"visa\"}}");
        let started = Instant::now();
        let answer = self
            .send(
                "POST",
                "/v1/processor/purchases",
                &routing.processor_key,
                Some(&body),
            )
            .await;
        self.body = body;
        let latency = started.elapsed().as_micros() as u64;
        self.outcome
            .routing
            .latency_us
            .saturating_record(latency.max(1));
        self.outcome.routing.transactions += 1;
        match answer {
            Some(200) => {
                // Owned: the claims below reuse the connection the answer is read from.
                let routes: Vec<(String, String, String, Option<String>)> =
                    serde_json::from_slice::<ProcessorAnswer>(self.connection.body())
                        .map(|a| {
                            a.routes
                                .into_iter()
                                .map(|r| {
                                    (
                                        r.outcome.as_deref().unwrap_or("unknown").to_string(),
                                        r.purchase_id.unwrap_or_default().into_owned(),
                                        r.business_id.unwrap_or_default().into_owned(),
                                        r.claim_code.map(Cow::into_owned),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                for (outcome, id, business, claim_code) in routes {
                    self.count(&outcome);
                    if outcome == "rewarded" && business == world.business {
                        self.outcome.routing.rewarded.push((contact, id));
                    } else if outcome == "unclaimed"
                        && business == routing.claim_business
                        && self.rng.gen_bool(args.claim_share)
                    {
                        let k = self.rng.gen_range(0..routing.contacts);
                        let mut claim = Vec::with_capacity(128);
                        let _ = write!(
                            claim,
                            "{{\"identity\":{{\"contact_code\":\"k{k}\"}},\"claim_code\":"
                        );
                        match &claim_code {
                            Some(code) => push_str(&mut claim, code),
                            None => claim.extend_from_slice(b"null"),
                        }
                        claim.push(b'}');
                        match self
                            .send(
                                "POST",
                                "/v1/purchases/claims",
                                &routing.claim_key,
                                Some(&claim),
                            )
                            .await
                        {
                            Some(200) => self.count("claimed"),
                            Some(_) => {
                                let code = error_code(self.connection.body());
                                self.error(&code);
                            }
                            None => {}
                        }
                    }
                }
            }
            Some(_) => {
                let code = error_code(self.connection.body());
                self.error(&code);
            }
            None => {
                self.outcome.uncertain.insert(contact);
            }
        }
        if let Some((false, body)) = &companion {
            self.pos_companion(shared, body).await;
        }
    }

    /// Raw mode: a purchase (or a batch) posted to the target URL itself; any 2xx answer is
    /// success, its body unread.
    async fn raw(&mut self, shared: &Shared) {
        let (args, world) = (&shared.args, &shared.world);
        let mut body = std::mem::take(&mut self.body);
        let events = if args.batch_size == 0 {
            purchase(&mut self.rng, args, world, &mut body);
            1
        } else {
            batch(&mut self.rng, args, world, &mut body, &mut self.item);
            args.batch_size as u64
        };
        let status = self.send("POST", "", &args.admin_key, Some(&body)).await;
        self.body = body;
        match status {
            Some(200..=299) => {
                self.outcome.events += events;
                self.shared.live_events.fetch_add(events, Ordering::Relaxed);
            }
            Some(status) => self.error(&format!("status {status}")),
            None => {}
        }
    }

    /// Sends one request (a purchase, a batch, a processor purchase or a read) and records
    /// what came back.
    async fn one(&mut self) {
        let shared = Arc::clone(&self.shared);
        if shared.raw {
            return self.raw(&shared).await;
        }
        let (args, world) = (&shared.args, &shared.world);
        // Answers are read only for what the money check and the error counts need.
        let check = !args.no_check;
        if world.routing.is_some() && self.rng.gen_bool(args.processor_share) {
            self.processor(&shared).await;
            return;
        }
        if self.rng.gen_bool(args.read_share) {
            let contact = self.rng.gen_range(0..args.contacts);
            let mut path = std::mem::take(&mut self.item);
            path.clear();
            path.extend_from_slice(b"/v1/wallets/");
            path.extend_from_slice(world.wallets[contact].as_bytes());
            let status = self
                .send(
                    "GET",
                    std::str::from_utf8(&path).unwrap_or_default(),
                    &world.business_key,
                    None,
                )
                .await;
            self.item = path;
            match status {
                Some(200..=299) | None => {}
                Some(_) => {
                    let code = error_code(self.connection.body());
                    self.error(&code);
                }
            }
            return;
        }
        let mut body = std::mem::take(&mut self.body);
        if args.batch_size == 0 {
            let contact = purchase(&mut self.rng, args, world, &mut body);
            let status = self
                .send("POST", "/v1/purchases", &world.pos_key, Some(&body))
                .await;
            self.body = body;
            match status {
                Some(201) if !check => {
                    let answered = Answered {
                        status: 201,
                        awarded: 0,
                        spent: 0,
                        code: None,
                    };
                    self.record_money(contact, answered);
                }
                Some(status) => {
                    // Read into owned figures: the answer borrows the connection's buffer.
                    let body = self.connection.body();
                    let answered = match scan::purchase(body, cents_of) {
                        Some(scanned) => Ok(Answered {
                            status,
                            awarded: scanned.awarded,
                            spent: scanned.spent,
                            code: (status != 201)
                                .then(|| scanned.code.map(str::to_string))
                                .flatten(),
                        }),
                        None => serde_json::from_slice::<PurchaseAnswer>(body)
                            .map(|answer| Answered::new(status, &answer)),
                    };
                    match answered {
                        Ok(answered) => self.record_money(contact, answered),
                        Err(_) => {
                            self.outcome.uncertain.insert(contact);
                            self.error("unreadable_answer");
                        }
                    }
                }
                None => {
                    self.outcome.uncertain.insert(contact);
                }
            }
        } else {
            let contacts = batch(&mut self.rng, args, world, &mut body, &mut self.item);
            let status = self
                .send("POST", "/v1/purchases:batch", &world.pos_key, Some(&body))
                .await;
            self.body = body;
            let results: Option<Vec<Answered>> = match status {
                Some(200..=299) => serde_json::from_slice::<BatchAnswer>(self.connection.body())
                    .ok()
                    .map(|b| {
                        b.results
                            .iter()
                            .map(|r| Answered::new(r.status, &r.body))
                            .collect()
                    }),
                Some(_) => {
                    let code = error_code(self.connection.body());
                    self.error(&code);
                    return;
                }
                None => None,
            };
            match results {
                Some(results) => {
                    for (contact, answered) in contacts.iter().zip(results) {
                        self.record_money(*contact, answered);
                    }
                }
                None => {
                    self.outcome.uncertain.extend(contacts);
                    if status.is_some() {
                        self.error("transport");
                    }
                }
            }
        }
    }

    /// A purchase's answer, read: an event with its money when 201, else an error by its code.
    fn record_money(&mut self, contact: usize, answered: Answered) {
        if answered.status == 201 {
            self.event();
            if !self.shared.args.no_check {
                let money = self.outcome.money.entry(contact).or_default();
                money.awarded += answered.awarded;
                money.spent += answered.spent;
            }
        } else {
            self.error(answered.code.as_deref().unwrap_or("unknown"));
        }
    }
}

/// CPU time this process has used (user and system, all threads), from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3, the state;
    // utime and stime are fields 14 and 15, in clock ticks of 1/100 s.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// How long before its due time an open loop's request may be sent (the timer's granularity).
const TIMER_SLACK: Duration = Duration::from_millis(1);

pub async fn drive(shared: Arc<Shared>) -> anyhow::Result<Outcome> {
    let endpoint = Endpoint::parse(&shared.world.target)?;
    let args = &shared.args;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let deadline = started + args.warmup + args.duration;
    let measured_from = started + args.warmup;
    let bar = ProgressBar::new((args.warmup + args.duration).as_secs().max(1));
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} {bar:30} {msg}").expect("template"),
    );
    let progress = async {
        let mut last = (Instant::now(), 0u64, 0u64);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = Instant::now();
            let requests = shared.live_requests.load(Ordering::Relaxed);
            let events = shared.live_events.load(Ordering::Relaxed);
            let seconds = now.duration_since(last.0).as_secs_f64();
            bar.set_position(now.duration_since(started).as_secs());
            bar.set_message(format!(
                "{:.0} req/s  {:.0} events/s  {} errors",
                (requests - last.1) as f64 / seconds,
                (events - last.2) as f64 / seconds,
                shared.live_errors.load(Ordering::Relaxed)
            ));
            last = (now, requests, events);
        }
    };
    // One task per connection (not per request); on a current-thread runtime they all run on
    // the one thread, on a multi-thread runtime they spread over its threads.
    let workers: Vec<_> = (0..args.connections)
        .map(|index| {
            let mut worker = Worker {
                shared: Arc::clone(&shared),
                connection: Connection::new(endpoint.clone()),
                body: Vec::with_capacity(4096),
                item: Vec::with_capacity(1024),
                index,
                sent: 0,
                rng: StdRng::seed_from_u64(
                    args.seed.wrapping_mul(1_000_003).wrapping_add(index as u64),
                ),
                outcome: WorkerOutcome {
                    latency_us: histogram(),
                    waited_us: histogram(),
                    round_trip_us: histogram(),
                    requests: 0,
                    events: 0,
                    errors: BTreeMap::new(),
                    money: HashMap::new(),
                    uncertain: HashSet::new(),
                    routing: RoutingOutcome::new(),
                },
            };
            tokio::spawn(async move {
                let args = &Arc::clone(&worker.shared).args;
                loop {
                    // Open loop: request k is due at start + k / rate, whoever sends it;
                    // latency counts from then, so time spent waiting for a free connection is
                    // not hidden.
                    let intended = match args.rate {
                        Some(rate) => {
                            let k = worker.shared.next_tick.fetch_add(1, Ordering::Relaxed);
                            let due = started + Duration::from_secs_f64(k as f64 / rate);
                            if due >= deadline {
                                break;
                            }
                            // The runtime's timer wakes on whole milliseconds, after the time asked
                            // for: asking for a millisecond before the due time sends the request
                            // at most that much early instead of up to that much late (its
                            // latency then counts from its sending).
                            let wake = due.checked_sub(TIMER_SLACK).unwrap_or(due);
                            tokio::time::sleep_until(wake.into()).await;
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
                    let sent = Instant::now();
                    worker.one().await;
                    if intended < measured_from {
                        continue;
                    }
                    // One clock reading for the latency and its parts, so that no part can
                    // come out longer than the whole.
                    let finished = Instant::now();
                    let latency = finished
                        .saturating_duration_since(intended.min(sent))
                        .as_micros() as u64;
                    worker.outcome.latency_us.saturating_record(latency.max(1));
                    if args.rate.is_some() {
                        // The latency's two parts: the wait for a free connection (the pool is
                        // `--connections` large) and the request itself.
                        let waited = sent.saturating_duration_since(intended).as_micros() as u64;
                        let round_trip =
                            finished.saturating_duration_since(sent).as_micros() as u64;
                        worker.outcome.waited_us.saturating_record(waited.max(1));
                        worker
                            .outcome
                            .round_trip_us
                            .saturating_record(round_trip.max(1));
                    }
                }
                worker.outcome
            })
        })
        .collect();
    let (outcomes, ()) = futures::join!(futures::future::join_all(workers), progress);
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let cpu = cpu_before
        .zip(cpu_seconds())
        .map(|(before, after)| after - before);
    let mut total = Outcome {
        latency_us: histogram(),
        waited_us: histogram(),
        round_trip_us: histogram(),
        requests: 0,
        events: 0,
        errors: BTreeMap::new(),
        money: HashMap::new(),
        uncertain: HashSet::new(),
        routing: RoutingOutcome::new(),
        elapsed,
        cpu_seconds: cpu,
    };
    for outcome in outcomes {
        let outcome = outcome.context("a worker failed")?;
        for (sum, part) in [
            (&mut total.latency_us, &outcome.latency_us),
            (&mut total.waited_us, &outcome.waited_us),
            (&mut total.round_trip_us, &outcome.round_trip_us),
        ] {
            sum.add(part).expect("same bounds");
        }
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
    Ok(total)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> Args {
        let mut all = vec!["rewards-load", "--admin-key", "k", "--contacts", "50"];
        all.extend_from_slice(extra);
        Args::parse_from(all)
    }

    #[test]
    fn amounts_in_cents() {
        for (text, cents) in [
            ("12.34", 1234),
            ("0.5", 50),
            ("-0.05", -5),
            ("7", 700),
            ("1.239", 123),
            ("x", 0),
        ] {
            assert_eq!(cents_of(text), cents, "{text}");
        }
        assert_eq!(cents(&serde_json::json!("3.10")), 310);
        assert_eq!(cents(&Value::Null), 0);
    }

    /// The bodies written by hand are the JSON the API takes: every field of a purchase, with
    /// the shares honoured.
    #[test]
    fn purchase_bodies_are_json() {
        let args = args(&["--spend-share", "0.5"]);
        let world = World::raw("http://127.0.0.1:1/");
        let mut rng = StdRng::seed_from_u64(7);
        let mut out = Vec::new();
        let mut spends = 0;
        for _ in 0..500 {
            let contact = purchase(&mut rng, &args, &world, &mut out);
            assert!(contact < 50);
            let body: Value = serde_json::from_slice(&out).expect("valid JSON");
            let lines = body["lines"].as_array().unwrap();
            assert!((1..=10).contains(&lines.len()));
            for line in lines {
                let family = line["family"].as_str().unwrap();
                assert!(FAMILIES.contains(&family));
                assert!(line["sku"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("SKU-{}-", family.to_uppercase())));
                assert!(cents(&line["unit_price"]) < 2000);
                assert!(line["tax_rate"].is_string() || line["tax_amount"].is_string());
            }
            let identity = &body["identity"];
            assert!(
                identity["contact_code"] == format!("c{contact}").as_str()
                    || identity["payment_medium_identifier"] == format!("pm{contact}").as_str()
            );
            assert!(world
                .taps
                .contains(&body["tap_code"].as_str().unwrap().to_string()));
            assert_eq!(body["payment_medium"]["brand"], "visa");
            spends += usize::from(body["spend"].is_object());
        }
        assert!((150..350).contains(&spends), "{spends}");
        let args = args_with_batch();
        let mut one = Vec::new();
        let contacts = batch(&mut rng, &args, &world, &mut out, &mut one);
        let body: Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(body["items"].as_array().unwrap().len(), contacts.len());
        assert_eq!(contacts.len(), 3);
    }

    fn args_with_batch() -> Args {
        args(&["--batch-size", "3"])
    }

    /// Only the money and the error code are read from an answer, whatever else it holds.
    #[test]
    fn answers_read_for_money() {
        let body = br#"{"id":"p1","contact":{"id":"x","codes":["a\"b"]},"awards":[
            {"offer_id":"o","amount":"0.25","kind":"percent"},{"amount":"1.00"}],
            "spend":{"requested":"all","spent":"0.75"},"totals":{"amount":12.5}}"#;
        let answer: PurchaseAnswer = serde_json::from_slice(body).unwrap();
        let answered = Answered::new(201, &answer);
        assert_eq!((answered.awarded, answered.spent), (125, 75));
        assert!(answered.code.is_none());
        let answer: PurchaseAnswer =
            serde_json::from_slice(br#"{"code":"unknown_contact","message":"m"}"#).unwrap();
        let answered = Answered::new(404, &answer);
        assert_eq!(answered.code.as_deref(), Some("unknown_contact"));
        let answer: PurchaseAnswer =
            serde_json::from_slice(br#"{"awards":[],"spend":null}"#).unwrap();
        assert_eq!(Answered::new(201, &answer).spent, 0);
        assert_eq!(error_code(br#"{"code":"rate_limited"}"#), "rate_limited");
        assert_eq!(error_code(b"not json"), "unknown");
        let mut out = Vec::new();
        push_str(&mut out, "a\"b");
        assert_eq!(out, br#""a\"b""#);
    }
}
