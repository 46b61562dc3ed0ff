//! The final report: printed for people, and as JSON for scripts.

use serde_json::{json, Value};

use crate::traffic::{MoneyCheck, Outcome};
use crate::Args;

pub struct Report {
    json: Value,
    mismatches: usize,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    pub(crate) fn new(
        args: &Args,
        business: &str,
        outcome: &Outcome,
        check: Option<MoneyCheck>,
    ) -> Report {
        let seconds = outcome.elapsed.as_secs_f64();
        let h = &outcome.latency_us;
        let mismatches = check.as_ref().map_or(0, |c| c.mismatches.len());
        let json = json!({
            "target": args.target,
            "business_id": business,
            "mode": if args.rate.is_some() { "open_loop" } else { "closed_loop" },
            "rate": args.rate,
            "connections": args.connections,
            "contacts": args.contacts,
            "batch_size": args.batch_size,
            "spend_share": args.spend_share,
            "read_share": args.read_share,
            "seed": args.seed,
            "duration_seconds": seconds,
            "warmup_seconds": args.warmup.as_secs_f64(),
            "requests": outcome.requests,
            "events": outcome.events,
            "requests_per_second": outcome.requests as f64 / seconds,
            "events_per_second": outcome.events as f64 / seconds,
            "errors": outcome.errors,
            // The generator's own cost: CPU of its whole process while sending traffic.
            "generator_cpu_seconds": outcome.cpu_seconds,
            "generator_cpu_us_per_request": outcome.cpu_seconds
                .filter(|_| outcome.requests > 0)
                .map(|cpu| cpu * 1e6 / outcome.requests as f64),
            "latency_ms": {
                "p50": ms(h.value_at_quantile(0.50)),
                "p90": ms(h.value_at_quantile(0.90)),
                "p99": ms(h.value_at_quantile(0.99)),
                "p999": ms(h.value_at_quantile(0.999)),
                "max": ms(h.max()),
                "mean": h.mean() / 1000.0,
            },
            // Open loop: the latency's parts, to tell the server's share of a tail from the
            // generator's pool of connections.
            "open_loop": args.rate.map(|_| {
                let (w, r) = (&outcome.waited_us, &outcome.round_trip_us);
                json!({
                    "waited_for_a_connection_ms": {
                        "p50": ms(w.value_at_quantile(0.50)),
                        "p99": ms(w.value_at_quantile(0.99)),
                        "max": ms(w.max()),
                        "share_over_5ms": 1.0 - w.quantile_below(5000),
                    },
                    "round_trip_ms": {
                        "p50": ms(r.value_at_quantile(0.50)),
                        "p99": ms(r.value_at_quantile(0.99)),
                        "max": ms(r.max()),
                    },
                })
            }),
            "processor": (args.processor_share > 0.0).then(|| {
                let r = &outcome.routing;
                json!({
                    "processor_share": args.processor_share,
                    "transactions": r.transactions,
                    "transactions_per_second": r.transactions as f64 / seconds,
                    "routes": r.routes(),
                    "routes_per_second": r.routes() as f64 / seconds,
                    "outcomes": r.outcomes,
                    "latency_ms": {
                        "p50": ms(r.latency_us.value_at_quantile(0.50)),
                        "p99": ms(r.latency_us.value_at_quantile(0.99)),
                        "max": ms(r.latency_us.max()),
                    },
                })
            }),
            "money_check": check.as_ref().map(|c| json!({
                "wallets_checked": c.wallets_checked,
                "mismatches": c.mismatches.len(),
                "uncertain_wallets": c.uncertain,
                "examples": c.mismatches.iter().take(5).collect::<Vec<_>>(),
            })),
        });
        Report { json, mismatches }
    }

    pub fn to_json(&self) -> Value {
        self.json.clone()
    }

    pub fn money_mismatches(&self) -> usize {
        self.mismatches
    }

    pub fn print(&self) {
        let j = &self.json;
        let l = &j["latency_ms"];
        println!(
            "{} for {:.1} s: {} requests ({:.0}/s), {} events ({:.0}/s)",
            j["mode"].as_str().unwrap_or(""),
            j["duration_seconds"].as_f64().unwrap_or(0.0),
            j["requests"],
            j["requests_per_second"].as_f64().unwrap_or(0.0),
            j["events"],
            j["events_per_second"].as_f64().unwrap_or(0.0),
        );
        println!(
            "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l["p50"].as_f64().unwrap_or(0.0),
            l["p90"].as_f64().unwrap_or(0.0),
            l["p99"].as_f64().unwrap_or(0.0),
            l["p999"].as_f64().unwrap_or(0.0),
            l["max"].as_f64().unwrap_or(0.0),
        );
        if let Some(o) = j["open_loop"].as_object() {
            let (w, r) = (&o["waited_for_a_connection_ms"], &o["round_trip_ms"]);
            println!(
                "of which waiting for one of the {} connections: p50 {:.2}  p99 {:.2}  max {:.2} ms ({:.1} % of requests over 5 ms); the request itself: p50 {:.2}  p99 {:.2}  max {:.2} ms",
                j["connections"],
                w["p50"].as_f64().unwrap_or(0.0),
                w["p99"].as_f64().unwrap_or(0.0),
                w["max"].as_f64().unwrap_or(0.0),
                100.0 * w["share_over_5ms"].as_f64().unwrap_or(0.0),
                r["p50"].as_f64().unwrap_or(0.0),
                r["p99"].as_f64().unwrap_or(0.0),
                r["max"].as_f64().unwrap_or(0.0),
            );
        }
        if let Some(cpu) = j["generator_cpu_seconds"].as_f64() {
            println!(
                "generator CPU: {cpu:.2} s, {:.1} µs per request",
                j["generator_cpu_us_per_request"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(p) = j["processor"].as_object() {
            let outcomes: Vec<String> = p["outcomes"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            println!(
                "processor: {} transactions ({:.0}/s), {} routes ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms; {}",
                p["transactions"],
                p["transactions_per_second"].as_f64().unwrap_or(0.0),
                p["routes"],
                p["routes_per_second"].as_f64().unwrap_or(0.0),
                p["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
                p["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
                outcomes.join(", ")
            );
        }
        let errors = j["errors"].as_object().cloned().unwrap_or_default();
        if errors.is_empty() {
            println!("errors: none");
        } else {
            let list: Vec<String> = errors
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect();
            println!("errors: {}", list.join(", "));
        }
        match &j["money_check"] {
            Value::Null => println!("money check: skipped"),
            check => {
                println!(
                    "money check: {} wallets, {} mismatches, {} left out (requests without an answer)",
                    check["wallets_checked"], check["mismatches"], check["uncertain_wallets"]
                );
                for example in check["examples"].as_array().into_iter().flatten() {
                    println!("  {}", example.as_str().unwrap_or(""));
                }
            }
        }
    }
}
