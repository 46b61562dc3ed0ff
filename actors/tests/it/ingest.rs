//! The customer events engine: a Shopify `orders/create` payload as Shopify sends it becomes a
//! purchase with its amounts, lines and awards; a Strava event becomes an achievement; every
//! record of a batch gets its own result; records are exactly once by their mapped reference;
//! `mappings_dir` adds and overrides mappings, and a mapping that does not parse stops
//! start-up naming its file and line.

use std::process::Command;

use serde_json::{json, Value};

use crate::support::{audit_wallet, world, Server, ADMIN_KEY};

const SHOPIFY_ORDER: &str = include_str!("fixtures/shopify_order.json");

fn order() -> Value {
    serde_json::from_str(SHOPIFY_ORDER).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopify_order_is_a_purchase_with_its_amounts_lines_and_awards() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "USD").await;
    let offer = w
        .offer(json!({"name": "2.00 on red t-shirts", "goal": "spend",
            "conditions": {"skus": ["TSHIRT-RED-M"]},
            "award": {"kind": "fixed", "amount": "2.00"}, "redeem": "instant"}))
        .await;
    let jane = w.contact(json!({"code": "7390118625643"})).await;

    let answer = api.post("/v1/ingest/shopify", &w.pos_key, &order()).await;
    let results = answer.expect(200)["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["status"], 201, "{}", results[0]);
    let purchase = &results[0]["body"];
    assert_eq!(purchase["type"], "purchase");
    assert_eq!(purchase["contact_id"], jane["id"]);
    assert_eq!(purchase["reference_number"], "#1042");
    assert_eq!(purchase["external_system"], "shopify");
    assert_eq!(purchase["external_reference"], "5812349870123");
    assert_eq!(purchase["performed_on"], "2026-11-28T19:03:27Z");
    assert_eq!(purchase["currency"], "USD");
    assert_eq!(
        purchase["amounts"],
        json!({"net": "49.88", "tax": "3.20", "discount": "0.00", "total": "53.08"})
    );
    let lines: Vec<(String, String, String, String)> = purchase["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().unwrap().to_string(),
                l["quantity"].as_str().unwrap().to_string(),
                l["unit_price"].as_str().unwrap().to_string(),
                l["tax_amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                "TSHIRT-RED-M".into(),
                "2".into(),
                "19.99".into(),
                "3.20".into()
            ),
            ("Gift wrap".into(), "1".into(), "5.00".into(), "0.00".into()),
            ("shipping".into(), "1".into(), "4.90".into(), "0.00".into()),
        ]
    );
    assert_eq!(purchase["lines"][0]["name"], "Short sleeve t-shirt");
    assert_eq!(purchase["awards"][0]["offer_id"], offer["id"]);
    assert_eq!(purchase["awards"][0]["amount"], "2.00");

    // Shopify retries a webhook it thinks failed: the same order is the same purchase.
    let again = api
        .post("/v1/ingest/shopify", &w.pos_key, &json!([order()]))
        .await;
    let again = again.expect(200)["results"][0].clone();
    assert_eq!(again["status"], 201);
    assert_eq!(again["body"], *purchase);
    let wallet = api
        .get(
            &format!("/v1/wallets/{}", jane["wallet_id"].as_str().unwrap()),
            &w.key,
        )
        .await
        .expect(200)
        .clone();
    assert_eq!(wallet["balances"]["open"], "2.00", "{wallet}");
    audit_wallet(&w, jane["wallet_id"].as_str().unwrap()).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_gets_its_own_result_and_a_bad_one_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "USD").await;
    w.contact(json!({"code": "7390118625643"})).await;
    w.contact(json!({"code": "42"})).await;

    let mut second = order();
    second["id"] = json!(5812349870124u64);
    second["name"] = json!("#1043");
    second["customer"]["id"] = json!(42);
    let mut no_customer = order();
    no_customer["id"] = json!(5812349870125u64);
    no_customer["customer"] = Value::Null;
    let mut bad_lines = order();
    bad_lines["id"] = json!(5812349870126u64);
    bad_lines["line_items"] = json!({"sku": "not a list"});
    let mut bad_price = order();
    bad_price["id"] = json!(5812349870127u64);
    bad_price["line_items"][0]["price"] = json!("nineteen");
    let mut unknown = order();
    unknown["id"] = json!(5812349870128u64);
    unknown["customer"]["id"] = json!(999);
    let records = json!([
        order(),
        no_customer,
        "not an order",
        bad_lines,
        bad_price,
        unknown,
        second
    ]);
    let answer = api.post("/v1/ingest/shopify", &w.pos_key, &records).await;
    let results = answer.expect(200)["results"].as_array().unwrap().clone();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 400, 400, 400, 400, 404, 201]);
    let field = |i: usize| results[i]["body"]["errors"][0]["field"].clone();
    assert_eq!(field(1), "identity", "{}", results[1]);
    assert_eq!(field(2), "record", "{}", results[2]);
    assert_eq!(field(3), "lines", "{}", results[3]);
    assert_eq!(field(4), "lines[0].unit_price", "{}", results[4]);
    assert_eq!(results[5]["body"]["code"], "contact_not_found");
    assert_eq!(results[6]["body"]["reference_number"], "#1043");

    // What is not a source, or not JSON, or too much, is refused whole.
    api.post("/v1/ingest/nosuch", &w.pos_key, &order())
        .await
        .expect_error(404, "not_found");
    api.post("/v1/ingest/shopify", &w.pos_key, &json!(17))
        .await
        .expect_error(400, "validation_failed");
    let many: Vec<Value> = (0..1001).map(|_| json!({})).collect();
    api.post("/v1/ingest/shopify", &w.pos_key, &json!(many))
        .await
        .expect_error(400, "validation_failed");
    // An operator acts for a business only with `business_id`, which this mapping does not give.
    let answer = api.post("/v1/ingest/shopify", ADMIN_KEY, &order()).await;
    let result = answer.expect(200)["results"][0].clone();
    assert_eq!(result["body"]["errors"][0]["field"], "business_id");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strava_activity_is_an_achievement_and_an_update_is_refused_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    let workout = w
        .offer(json!({"name": "a workout", "goal": "achievement",
            "conditions": {"classifications": ["workout"]},
            "award": {"kind": "fixed", "amount": "0.50"}, "redeem": "instant"}))
        .await;
    w.contact(json!({"code": "134815"})).await;
    let events = json!([
        {"aspect_type": "create", "event_time": 1764428400, "object_id": 1360128428,
         "object_type": "activity", "owner_id": 134815, "subscription_id": 120475, "updates": {}},
        {"aspect_type": "update", "event_time": 1764428460, "object_id": 1360128428,
         "object_type": "activity", "owner_id": 134815, "subscription_id": 120475,
         "updates": {"title": "Morning run"}}
    ]);
    let answer = api.post("/v1/ingest/strava", &w.pos_key, &events).await;
    let results = answer.expect(200)["results"].as_array().unwrap().clone();
    assert_eq!(results[0]["status"], 201, "{}", results[0]);
    let achievement = &results[0]["body"];
    assert_eq!(achievement["type"], "achievement");
    assert_eq!(achievement["classification"], "workout");
    assert_eq!(achievement["performed_on"], "2025-11-29T15:00:00Z");
    assert_eq!(achievement["external_system"], "strava");
    assert_eq!(achievement["awards"][0]["offer_id"], workout["id"]);
    assert_eq!(achievement["awards"][0]["amount"], "0.50");
    assert_eq!(results[1]["status"], 400);
    assert_eq!(results[1]["body"]["errors"][0]["field"], "classification");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_dir_adds_and_overrides_and_a_broken_mapping_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    std::fs::create_dir(&mappings).unwrap();
    // A till's own export: amounts in cents would need arithmetic, so this one sends decimals.
    std::fs::write(
        mappings.join("till.toml"),
        r#"
kind = "purchase"
[fields]
external_reference = "/receipt"
"identity.contact_code" = "/card"
total_amount = "/sum"
classification = { pointer = "/dept", map = { "1" = "grocery", "2" = "fuel" }, default = "other" }
[constants]
external_system = "till"
"#,
    )
    .unwrap();
    // Overrides the built-in Shopify mapping: this shop puts the member's id in a note attribute.
    std::fs::write(
        mappings.join("shopify.toml"),
        r#"
kind = "purchase"
[fields]
external_reference = { pointer = "/id", as = "string" }
"identity.contact_id" = "/note_attributes/0/value"
total_amount = "/total_price"
[constants]
external_system = "shopify"
"#,
    )
    .unwrap();
    let config = dir.path().join("rewardsd.toml");
    std::fs::write(
        &config,
        format!("mappings_dir = {:?}\n", mappings.to_str().unwrap()),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, "buffered", Some(&config));
    let api = server.client();
    let w = world(&api, "USD").await;
    let jane = w
        .contact(json!({"code": "CARD-1", "email": "jane.doe@example.com"}))
        .await;
    let answer = api
        .post(
            "/v1/ingest/till",
            &w.pos_key,
            &json!([{"receipt": "R-1", "card": "CARD-1", "sum": "12.50", "dept": 2},
                    {"receipt": "R-2", "card": "CARD-1", "sum": "3.00", "dept": 9}]),
        )
        .await;
    let results = answer.expect(200)["results"].clone();
    assert_eq!(results[0]["status"], 201, "{results}");
    assert_eq!(results[0]["body"]["classification"], "fuel");
    assert_eq!(results[0]["body"]["amounts"]["total"], "12.50");
    assert_eq!(results[1]["body"]["classification"], "other");
    let mut order = order();
    order["note_attributes"] = json!([{"name": "member", "value": jane["id"]}]);
    let answer = api.post("/v1/ingest/shopify", &w.pos_key, &order).await;
    let result = answer.expect(200)["results"][0].clone();
    assert_eq!(result["status"], 201, "{result}");
    assert_eq!(result["body"]["amounts"]["total"], "53.08");
    assert_eq!(result["body"]["lines"], json!([]));
    // The built-in Strava mapping is still there.
    let answer = api.post("/v1/ingest/strava", &w.pos_key, &json!({})).await;
    assert_eq!(answer.expect(200)["results"][0]["status"], 400);
    server.stop();

    // A mapping that does not parse: start-up stops and names the file and the line.
    std::fs::write(
        mappings.join("broken.toml"),
        "kind = \"purchase\"\n[fields]\ntotal_amount = /sum\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rewardsd"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .env("REWARDS_ADMIN_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.toml"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}
