//! The world a run works in, made through the API: a business with merchants, TAPs and offers of
//! every award kind, and N contacts with payment media, created concurrently with progress shown.

use std::time::Instant;

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::Args;

pub struct World {
    pub target: String,
    pub business: String,
    pub business_key: String,
    pub pos_key: String,
    pub wallets: Vec<String>,
    pub taps: Vec<String>,
    /// Present when the run sends processor purchases.
    pub routing: Option<Routing>,
}

impl World {
    /// The world of a raw run: nothing on the server, two TAP codes to put in bodies.
    pub fn raw(url: &str) -> World {
        World {
            target: url.to_string(),
            business: String::new(),
            business_key: String::new(),
            pos_key: String::new(),
            wallets: Vec::new(),
            taps: vec!["T-1".to_string(), "T-2".to_string()],
            routing: None,
        }
    }
}

/// A processor and the two businesses that share the main business's TAP codes.
pub struct Routing {
    pub processor_key: String,
    pub claim_business: String,
    pub match_pos_key: String,
    pub claim_key: String,
    /// Contacts in each of the two businesses (`m{i}` and `k{i}`).
    pub contacts: usize,
}

/// A key of `role` for `business`.
async fn key_for(
    client: &reqwest::Client,
    target: &str,
    admin: &str,
    body: Value,
) -> anyhow::Result<String> {
    let answer = post(client, &format!("{target}/v1/keys"), admin, &body, 201).await?;
    Ok(answer["key"].as_str().context("key")?.to_string())
}

/// A business in `mode` on the main business's TAP codes, with two offers and `contacts`
/// contacts coded `{prefix}{i}`; answers its id, business key and POS key.
async fn sharing_business(
    client: &reqwest::Client,
    args: &Args,
    target: &str,
    mode: &str,
    taps: &[String],
    contacts: usize,
    prefix: &str,
) -> anyhow::Result<(String, String, String)> {
    let admin = &args.admin_key;
    let business = post(
        client,
        &format!("{target}/v1/businesses"),
        admin,
        &json!({"name": format!("rewards-load {mode} seed {}", args.seed), "currency": "EUR",
                "settings": {"processor_mode": mode, "match_window_seconds": 60}}),
        201,
    )
    .await?;
    let id = business["id"].as_str().context("business id")?.to_string();
    let key = key_for(
        client,
        target,
        admin,
        json!({"role": "business", "business_id": id}),
    )
    .await?;
    let pos = key_for(
        client,
        target,
        admin,
        json!({"role": "pos", "business_id": id}),
    )
    .await?;
    let base = format!("{target}/v1/businesses/{id}");
    for tap in taps {
        post(
            client,
            &format!("{base}/taps"),
            &key,
            &json!({"code": tap}),
            201,
        )
        .await?;
    }
    for offer in offers(2) {
        post(client, &format!("{base}/offers"), &key, &offer, 201).await?;
    }
    let url = format!("{base}/contacts");
    let created: Vec<anyhow::Result<Value>> = stream::iter(0..contacts)
        .map(|i| {
            let body = json!({"code": format!("{prefix}{i}")});
            let (client, url, key) = (client.clone(), url.clone(), key.clone());
            async move { post(&client, &url, &key, &body, 201).await }
        })
        .buffer_unordered(args.connections)
        .collect()
        .await;
    for result in created {
        result?;
    }
    Ok((id, key, pos))
}

/// The processor and the match and claim businesses sharing `taps`.
async fn routing(
    client: &reqwest::Client,
    args: &Args,
    target: &str,
    taps: &[String],
) -> anyhow::Result<Routing> {
    let processor = post(
        client,
        &format!("{target}/v1/processors"),
        &args.admin_key,
        &json!({"name": "rewards-load network"}),
        201,
    )
    .await?;
    let processor_key = key_for(
        client,
        target,
        &args.admin_key,
        json!({"role": "processor", "processor_id": processor["id"]}),
    )
    .await?;
    let contacts = args.contacts.min(1000);
    let (_, _, match_pos_key) =
        sharing_business(client, args, target, "match", taps, contacts, "m").await?;
    let (claim_business, claim_key, _) =
        sharing_business(client, args, target, "claim", taps, contacts, "k").await?;
    Ok(Routing {
        processor_key,
        claim_business,
        match_pos_key,
        claim_key,
        contacts,
    })
}

/// Posts JSON and returns the answer, failing on anything but `expected`.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
    expected: u16,
) -> anyhow::Result<Value> {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if status != expected {
        bail!("POST {url} answered {status}: {answer}");
    }
    Ok(answer)
}

/// Offers of every award kind, cycled to `count`.
fn offers(count: usize) -> Vec<Value> {
    let kinds = [
        json!({"name": "2% back", "goal": "spend", "award": {"kind": "percent", "percent": "2"}, "redeem": "instant"}),
        json!({"name": "0.50 over 20", "goal": "spend", "conditions": {"min_amount": "20.00"}, "award": {"kind": "fixed", "amount": "0.50"}, "redeem": "deferred", "validity_days": 365}),
        json!({"name": "dairy per unit", "goal": "spend", "conditions": {"families": ["dairy"]}, "award": {"kind": "per_unit", "amount": "0.05"}, "redeem": "instant"}),
        json!({"name": "0.10 per 10", "goal": "spend", "award": {"kind": "step", "step": "10.00", "amount": "0.10", "cap": "2.00"}, "redeem": "deferred", "validity_days": 90}),
        json!({"name": "5% on produce", "goal": "spend", "conditions": {"families": ["produce"], "min_amount": "2.00"}, "award": {"kind": "percent", "percent": "5", "cap": "1.00"}, "redeem": "instant"}),
        json!({"name": "grocery 1%", "goal": "spend", "conditions": {"classifications": ["grocery"]}, "award": {"kind": "percent", "percent": "1"}, "redeem": "deferred"}),
        json!({"name": "drinks fixed", "goal": "spend", "conditions": {"skus": ["SKU-DRINKS-0", "SKU-DRINKS-1"]}, "award": {"kind": "fixed", "amount": "0.20"}, "redeem": "instant"}),
        json!({"name": "T-1 bonus", "goal": "spend", "conditions": {"tap_codes": ["T-1"], "min_amount": "30.00"}, "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "deferred", "limits": {"per_contact_monthly": 3}}),
        json!({"name": "budgeted", "goal": "spend", "conditions": {"min_amount": "50.00"}, "award": {"kind": "fixed", "amount": "2.00"}, "redeem": "instant", "limits": {"budget": "100000.00"}}),
        json!({"name": "household step", "goal": "spend", "conditions": {"families": ["household"]}, "award": {"kind": "step", "step": "5.00", "amount": "0.05"}, "redeem": "instant"}),
    ];
    (0..count)
        .map(|i| {
            let mut offer = kinds[i % kinds.len()].clone();
            offer["name"] = json!(format!(
                "{} #{i}",
                offer["name"].as_str().unwrap_or("offer")
            ));
            offer
        })
        .collect()
}

pub async fn build(client: &reqwest::Client, args: &Args) -> anyhow::Result<World> {
    let target = args.target.trim_end_matches('/').to_string();
    let admin = &args.admin_key;
    let business = post(
        client,
        &format!("{target}/v1/businesses"),
        admin,
        &json!({"name": format!("rewards-load seed {}", args.seed), "currency": "EUR"}),
        201,
    )
    .await?;
    let business = business["id"].as_str().context("business id")?.to_string();
    let key = |role: &str| json!({"role": role, "business_id": business});
    let business_key = post(
        client,
        &format!("{target}/v1/keys"),
        admin,
        &key("business"),
        201,
    )
    .await?["key"]
        .as_str()
        .context("key")?
        .to_string();
    let pos_key = post(
        client,
        &format!("{target}/v1/keys"),
        admin,
        &key("pos"),
        201,
    )
    .await?["key"]
        .as_str()
        .context("key")?
        .to_string();
    let base = format!("{target}/v1/businesses/{business}");
    let mut taps = Vec::new();
    for m in 0..2 {
        let merchant = post(
            client,
            &format!("{base}/merchants"),
            &business_key,
            &json!({"name": format!("Merchant {m}"), "commercial_terms": {"award_contribution_percent": "50"}}),
            201,
        )
        .await?;
        // Unique per run: a TAP code shared with businesses of earlier runs would route
        // processor purchases to them too.
        let code = format!("T-{}-{}", m + 1, &business[..8]);
        post(
            client,
            &format!("{base}/taps"),
            &business_key,
            &json!({"code": code, "merchant_id": merchant["id"]}),
            201,
        )
        .await?;
        taps.push(code);
    }
    for mut offer in offers(args.offers) {
        if offer["conditions"]["tap_codes"].is_array() {
            offer["conditions"]["tap_codes"] = json!([taps[0]]);
        }
        post(
            client,
            &format!("{base}/offers"),
            &business_key,
            &offer,
            201,
        )
        .await?;
    }

    let started = Instant::now();
    let bar = ProgressBar::new(args.contacts as u64);
    bar.set_style(
        ProgressStyle::with_template("creating contacts {bar:40} {pos}/{len} {per_sec} eta {eta}")
            .expect("template"),
    );
    let url = format!("{base}/contacts");
    let results: Vec<anyhow::Result<(usize, String)>> = stream::iter(0..args.contacts)
        .map(|i| {
            let client = client.clone();
            let url = url.clone();
            let key = business_key.clone();
            let bar = bar.clone();
            async move {
                let body = json!({
                    "code": format!("c{i}"),
                    "payment_media": [{"identifier": format!("pm{i}"), "brand": if i % 2 == 0 { "visa" } else { "mastercard" }}],
                });
                let contact = post(&client, &url, &key, &body, 201).await?;
                bar.inc(1);
                Ok((i, contact["wallet_id"].as_str().context("wallet id")?.to_string()))
            }
        })
        .buffer_unordered(args.connections)
        .collect()
        .await;
    bar.finish_and_clear();
    let mut wallets = vec![String::new(); args.contacts];
    for result in results {
        let (i, wallet) = result?;
        wallets[i] = wallet;
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "setup: business {business}, {} offers, {} contacts in {elapsed:.1} s ({:.0}/s)",
        args.offers,
        args.contacts,
        args.contacts as f64 / elapsed
    );
    let routing = if args.processor_share > 0.0 {
        let routing = routing(client, args, &target, &taps).await?;
        eprintln!(
            "setup: a processor, a match and a claim business on TAPs {}, {} contacts each",
            taps.join(", "),
            routing.contacts
        );
        Some(routing)
    } else {
        None
    };
    Ok(World {
        target,
        business,
        business_key,
        pos_key,
        wallets,
        taps,
        routing,
    })
}
