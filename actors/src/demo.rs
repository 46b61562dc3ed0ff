//! `rewardsd demo`: a server with a world to try it on. Once the server listens, this fills it
//! through its own HTTP API (so the world is made exactly as a client would make it): a coffee
//! chain with two merchants, TAPs (one shared with a bakery next door, for processor routing),
//! a scheme, tiers, an offer of every goal, and a few hundred contacts; then it prints the keys
//! and three commands to paste.

use std::fmt::Write as _;

use anyhow::{anyhow, Context};
use serde_json::{json, Value};

/// Contacts the demo creates: `DEMO-001` and on, with cards `CARD-001` and on.
pub const CONTACTS: usize = 300;

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn post(&self, key: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, key, path, body).await
    }

    /// POSTs and answers one text field of the answer (an id, a key).
    async fn make(
        &self,
        key: &str,
        path: &str,
        body: Value,
        field: &str,
    ) -> anyhow::Result<String> {
        text(&self.post(key, path, body).await?, field)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{path}: no answer"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(anyhow!("{path}: {status}: {answer}"));
        }
        Ok(answer)
    }
}

fn text(value: &Value, field: &str) -> anyhow::Result<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the answer has no {field}: {value}"))
}

/// Makes the demo world on the server at `base` and answers what to print.
pub async fn seed(base: &str, admin_key: &str) -> anyhow::Result<String> {
    let api = Client {
        http: reqwest::Client::new(),
        base: base.to_string(),
    };
    let b = api
        .make(
            admin_key,
            "/v1/businesses",
            json!({"name": "Demo Coffee", "currency": "EUR"}),
            "id",
        )
        .await?;
    let key = api
        .make(
            admin_key,
            "/v1/keys",
            json!({"role": "business", "business_id": b}),
            "key",
        )
        .await?;
    let pos_key = api
        .make(
            admin_key,
            "/v1/keys",
            json!({"role": "pos", "business_id": b}),
            "key",
        )
        .await?;
    // Two merchants: one funds its own awards, the other half of them, for a fee.
    let downtown = api
        .make(
            &key,
            &format!("/v1/businesses/{b}/merchants"),
            json!({"name": "Downtown", "commercial_terms": {"award_contribution_percent": "100"}}),
            "id",
        )
        .await?;
    let airport = api
        .make(
            &key,
            &format!("/v1/businesses/{b}/merchants"),
            json!({"name": "Airport", "commercial_terms": {"award_contribution_percent": "50",
                "contribution_fee": {"type": "percent", "value": "10"}}}),
            "id",
        )
        .await?;
    api.post(
        &key,
        &format!("/v1/businesses/{b}/taps"),
        json!({"code": "DOWNTOWN-1", "merchant_id": downtown}),
    )
    .await?;
    api.post(
        &key,
        &format!("/v1/businesses/{b}/taps"),
        json!({"code": "AIRPORT-1", "merchant_id": airport}),
    )
    .await?;
    // A bakery next door shares the airport terminal: a card purchase there reaches both.
    let bakery = api
        .make(
            admin_key,
            "/v1/businesses",
            json!({"name": "Demo Bakery", "currency": "EUR"}),
            "id",
        )
        .await?;
    let bakery_key = api
        .make(
            admin_key,
            "/v1/keys",
            json!({"role": "business", "business_id": bakery}),
            "key",
        )
        .await?;
    api.post(
        &bakery_key,
        &format!("/v1/businesses/{bakery}/taps"),
        json!({"code": "AIRPORT-1"}),
    )
    .await?;
    // The bakery keeps card purchases for its customers to claim with the receipt's code.
    api.send(
        reqwest::Method::PATCH,
        &bakery_key,
        &format!("/v1/businesses/{bakery}/settings"),
        json!({"processor_mode": "claim"}),
    )
    .await?;
    let processor = api
        .make(
            admin_key,
            "/v1/processors",
            json!({"name": "Demo Network"}),
            "id",
        )
        .await?;
    let processor_key = api
        .make(
            admin_key,
            "/v1/keys",
            json!({"role": "processor", "processor_id": processor}),
            "key",
        )
        .await?;
    let club = api
        .make(
            &key,
            &format!("/v1/businesses/{b}/schemes"),
            json!({"name": "Coffee Club", "sign_up": "code", "codes": ["BEANS"]}),
            "id",
        )
        .await?;
    api.send(
        reqwest::Method::PUT,
        &key,
        &format!("/v1/businesses/{b}/tiers"),
        json!({"period_days": 365, "levels": [{"name": "Bronze", "value_units": "0"},
            {"name": "Silver", "value_units": "100"}, {"name": "Gold", "value_units": "500"}]}),
    )
    .await?;
    let offers = [
        json!({"name": "10% back on coffee", "goal": "spend", "priority": 10,
            "conditions": {"families": ["coffee"]},
            "award": {"kind": "percent", "percent": "10"}, "redeem": "instant"}),
        json!({"name": "0.50 per pastry", "goal": "spend",
            "conditions": {"skus": ["CROISSANT"]},
            "award": {"kind": "per_unit", "amount": "0.50"}, "redeem": "deferred", "validity_days": 30}),
        json!({"name": "1.00 for every 10.00 at the airport", "goal": "spend",
            "conditions": {"merchant_ids": [airport]},
            "award": {"kind": "step", "amount": "1.00", "step": "10.00"}, "redeem": "instant"}),
        json!({"name": "Gold members: 5% more", "goal": "spend",
            "conditions": {"tier_levels": ["Gold"]},
            "award": {"kind": "percent", "percent": "5"}, "redeem": "auto"}),
        json!({"name": "the fifth visit of a month", "goal": "spend",
            "conditions": {"visits": {"count": 5, "period_days": 30}},
            "award": {"kind": "fixed", "amount": "2.00"}, "redeem": "instant"}),
        json!({"name": "a review", "goal": "achievement",
            "conditions": {"classifications": ["review"], "event_kinds": ["web"]},
            "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "instant",
            "limits": {"per_contact": 1}}),
        json!({"name": "welcome", "goal": "membership", "conditions": {"membership": "sign_up"},
            "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "instant"}),
        json!({"name": "bring a friend", "goal": "membership",
            "conditions": {"membership": "referral", "award_referred": true},
            "award": {"kind": "fixed", "amount": "2.00"}, "redeem": "instant"}),
        json!({"name": "Gold reached", "goal": "membership",
            "conditions": {"membership": "tier_reached", "tier_level": "Gold"},
            "award": {"kind": "fixed", "amount": "5.00"}, "redeem": "instant"}),
        json!({"name": "Coffee Club: 2.00 off 20.00", "goal": "spend", "scheme_id": club,
            "conditions": {"min_amount": "20.00"},
            "award": {"kind": "fixed", "amount": "2.00"}, "redeem": "instant"}),
    ];
    for offer in offers {
        api.post(&key, &format!("/v1/businesses/{b}/offers"), offer)
            .await?;
    }
    for i in 1..=CONTACTS {
        api.post(
            &key,
            &format!("/v1/businesses/{b}/contacts"),
            json!({"code": format!("DEMO-{i:03}"), "cim": format!("CARD-{i:03}"),
                "name": format!("Demo customer {i}"),
                "payment_media": [{"identifier": format!("tok-{i:03}"), "brand": "visa"}]}),
        )
        .await?;
    }

    let mut out = String::new();
    let _ = writeln!(out, "\nThe demo world is ready at {base}:");
    let _ = writeln!(
        out,
        "  Demo Coffee (business {b}): {CONTACTS} contacts DEMO-001.. with cards CARD-001..,"
    );
    let _ = writeln!(
        out,
        "  merchants Downtown and Airport (TAPs DOWNTOWN-1, AIRPORT-1), the Coffee Club scheme"
    );
    let _ = writeln!(
        out,
        "  (code BEANS), tiers Bronze/Silver/Gold and ten offers; Demo Bakery shares AIRPORT-1."
    );
    let _ = writeln!(out, "  operator key:  {admin_key}");
    let _ = writeln!(out, "  business key:  {key}");
    let _ = writeln!(out, "  POS key:       {pos_key}");
    let _ = writeln!(out, "  processor key: {processor_key}");
    let _ = writeln!(out, "\nTry:");
    let _ = writeln!(
        out,
        "curl -s -H 'Authorization: Bearer {pos_key}' {base}/v1/purchases -d '{{\"identity\": {{\"cim\": \"CARD-001\"}}, \"tap_code\": \"AIRPORT-1\", \"lines\": [{{\"sku\": \"LATTE\", \"family\": \"coffee\", \"quantity\": \"2\", \"unit_price\": \"3.50\", \"tax_rate\": \"0\"}}, {{\"sku\": \"CROISSANT\", \"quantity\": \"3\", \"unit_price\": \"2.20\", \"tax_rate\": \"0\"}}]}}'"
    );
    let _ = writeln!(
        out,
        "curl -s -H 'Authorization: Bearer {pos_key}' {base}/v1/achievements -d '{{\"identity\": {{\"contact_code\": \"DEMO-002\"}}, \"kind\": \"web\", \"classification\": \"review\", \"url\": \"https://coffee.example/review\"}}'"
    );
    let _ = writeln!(
        out,
        "curl -s -H 'Authorization: Bearer {processor_key}' {base}/v1/processor/purchases -d '{{\"tap_code\": \"AIRPORT-1\", \"transaction_reference\": \"TX-1\", \"payment_medium\": {{\"identifier\": \"tok-003\", \"brand\": \"visa\"}}, \"currency\": \"EUR\", \"total_amount\": \"12.00\"}}'"
    );
    Ok(out)
}
