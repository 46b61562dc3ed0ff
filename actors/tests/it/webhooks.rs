//! Webhooks: subscriptions, signed deliveries of posted and cancelled purchases and of the
//! contact's answer to a payment request, retried until the receiver takes them, and never lost
//! across a crash.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::support::{basket, world, Receiver, Server, World};

const SECRET: &str = "a-secret-of-the-shop";

fn signed(body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn subscribe(w: &World, url: &str, events: Value) -> Value {
    w.api
        .post(
            &format!("/v1/businesses/{}/webhooks", w.business),
            &w.key,
            &json!({"url": url, "events": events, "secret": SECRET}),
        )
        .await
        .expect(201)
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "buffered");
    let api = server.client();
    let w = world(&api, "EUR").await;
    // The first two tries fail: the delivery comes again, with the same id.
    let receiver = Receiver::start(vec![500, 503]).await;
    let hooks = format!("/v1/businesses/{}/webhooks", w.business);

    // Bad subscriptions are refused with their fields.
    for (body, field) in [
        (
            json!({"url": "ftp://x/y", "events": ["purchase.posted"], "secret": SECRET}),
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["purchase.posted"], "secret": SECRET}),
            "url",
        ),
        (
            json!({"url": receiver.url, "events": ["purchase.eaten"], "secret": SECRET}),
            "events[0]",
        ),
        (
            json!({"url": receiver.url, "events": [], "secret": SECRET}),
            "events",
        ),
        (
            json!({"url": receiver.url, "events": ["purchase.posted"], "secret": "short"}),
            "secret",
        ),
    ] {
        let refused = api.post(&hooks, &w.key, &body).await;
        refused.expect_error(400, "validation_failed");
        assert_eq!(refused.body["errors"][0]["field"], field, "{body}");
    }
    api.post(
        &hooks,
        &w.pos_key,
        &json!({"url": receiver.url, "events": ["purchase.posted"], "secret": SECRET}),
    )
    .await
    .expect_error(403, "forbidden");

    let hook = subscribe(
        &w,
        &receiver.url,
        json!([
            "purchase.posted",
            "purchase.cancelled",
            "estimate.approved",
            "estimate.rejected"
        ]),
    )
    .await;
    assert!(hook.get("secret").is_none(), "the secret is never shown");
    let listed = api.get(&hooks, &w.key).await;
    assert_eq!(listed.expect(200)["items"][0]["id"], hook["id"]);
    assert!(listed.body["items"][0].get("secret").is_none());

    let ann = w.contact(json!({"code": "ANN"})).await;
    let purchase = w
        .purchase(basket(json!({"contact_code": "ANN"}), "12.00"))
        .await
        .expect(201)
        .clone();
    let received = receiver.wait_for(3).await;
    for request in &received {
        assert_eq!(request.header("x-rewards-event"), Some("purchase.posted"));
        assert_eq!(
            request.header("x-rewards-signature").unwrap(),
            signed(&request.body)
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
    let first = received[0].json();
    assert_eq!(first, received[1].json(), "a retry sends the same delivery");
    assert_eq!(first, received[2].json(), "a retry sends the same delivery");
    assert_eq!(first["type"], "purchase.posted");
    assert_eq!(first["data"], purchase);

    // The contact's answer to a payment request, and a void.
    let session = api
        .post(
            &format!("/v1/contacts/{}/sessions", ann["id"].as_str().unwrap()),
            &w.key,
            &json!({}),
        )
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut request = basket(json!({"contact_code": "ANN"}), "3.00");
    request["approval"] = json!("required");
    let estimate = api.post("/v1/estimates", &w.pos_key, &request).await;
    let id = estimate.expect(201)["id"].as_str().unwrap().to_string();
    api.post(&format!("/v1/estimates/{id}/approve"), &session, &json!({}))
        .await
        .expect(200);
    let estimate = api.post("/v1/estimates", &w.pos_key, &request).await;
    let rejected = estimate.expect(201)["id"].as_str().unwrap().to_string();
    api.post(
        &format!("/v1/estimates/{rejected}/reject"),
        &session,
        &json!({}),
    )
    .await
    .expect(200);
    let purchase_id = purchase["id"].as_str().unwrap();
    api.post(
        &format!("/v1/purchases/{purchase_id}/void"),
        &w.key,
        &json!({}),
    )
    .await
    .expect(200);
    let received = receiver.wait_for(6).await;
    let kinds: Vec<String> = received[3..]
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "estimate.approved",
            "estimate.rejected",
            "purchase.cancelled"
        ]
    );
    for request in &received[3..] {
        let body = request.json();
        assert_eq!(request.header("x-rewards-event"), body["type"].as_str());
        assert_eq!(
            request.header("x-rewards-signature").unwrap(),
            signed(&request.body)
        );
        match body["type"].as_str().unwrap() {
            "estimate.approved" => assert_eq!(body["data"]["id"], id.as_str()),
            "estimate.rejected" => assert_eq!(body["data"]["state"], "rejected"),
            _ => assert_eq!(body["data"]["state"], "cancelled"),
        }
    }

    // The deliveries, oldest first: each delivered, the first after three tries. The receiver
    // has every request once it was sent; its delivery is recorded once its answer came back,
    // a moment later: the listing is read until it shows them all delivered.
    let hook_id = hook["id"].as_str().unwrap();
    let started = std::time::Instant::now();
    let deliveries = loop {
        let deliveries = api
            .all(&format!("{hooks}/{hook_id}/deliveries"), &w.key)
            .await;
        let recorded = deliveries.iter().all(|d| d["state"] == "delivered");
        if recorded || started.elapsed() > Duration::from_secs(30) {
            break deliveries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(deliveries.len(), 4);
    assert_eq!(deliveries[0]["attempts"], 3);
    assert!(
        deliveries.iter().all(|d| d["state"] == "delivered"),
        "{deliveries:?}"
    );
    assert!(deliveries.iter().all(|d| d["last_status"] == 200));

    // A removed subscription gets nothing more.
    api.delete(&format!("{hooks}/{hook_id}"), &w.key)
        .await
        .expect(204);
    api.delete(&format!("{hooks}/{hook_id}"), &w.key)
        .await
        .expect_error(404, "not_found");
    w.purchase(basket(json!({"contact_code": "ANN"}), "1.00"))
        .await
        .expect(201);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received.lock().len(), 6);
    receiver.task.abort();
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_outlives_a_crash_and_a_receiver_that_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    // A receiver address that refuses connections for now.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    subscribe(
        &w,
        &format!("http://{address}/hook"),
        json!(["purchase.posted"]),
    )
    .await;
    w.contact(json!({"code": "ANN"})).await;
    let purchase = w
        .purchase(basket(json!({"contact_code": "ANN"}), "7.00"))
        .await
        .expect(201)
        .clone();
    server.kill();

    let server = Server::start(dir.path(), "sync");
    let receiver = Receiver::start_on(TcpListener::bind(address).await.unwrap(), Vec::new());
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].json()["data"], purchase);
    assert_eq!(
        received[0].header("x-rewards-signature").unwrap(),
        signed(&received[0].body)
    );
    receiver.task.abort();
    server.stop();
}
