//! Webhooks: subscriptions, signed deliveries of posted and cancelled purchases and of the
//! contact's answer to a payment request, retried until the receiver takes them, and never lost
//! across a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{basket, world, Server, World};

const SECRET: &str = "a-secret-of-the-shop";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on loopback: answers the statuses in `script` in turn (then 200) and
/// keeps every request.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: Vec<u16>) -> Receiver {
        Receiver::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), script)
    }

    fn start_on(listener: TcpListener, script: Vec<u16>) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let kept = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let kept = kept.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    loop {
                        let mut buffer = Vec::new();
                        let mut chunk = [0u8; 4096];
                        // Headers, then the body by its content-length.
                        let end = loop {
                            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                                break at + 4;
                            }
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                        let headers: Vec<(String, String)> = head
                            .lines()
                            .skip(1)
                            .filter_map(|l| l.split_once(':'))
                            .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
                            .collect();
                        let length: usize = headers
                            .iter()
                            .find(|(n, _)| n == "content-length")
                            .map_or(0, |(_, v)| v.parse().unwrap());
                        while buffer.len() < end + length {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = buffer[end..end + length].to_vec();
                        kept.lock().push(Received { headers, body });
                        let status = script.lock().next().unwrap_or(200);
                        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver {
            url,
            received,
            task,
        }
    }

    /// Waits until `count` requests came (time only bounds a failing test).
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let received = self.received.lock().clone();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} deliveries came",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

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
    // The first try fails: the delivery comes again, with the same id.
    let receiver = Receiver::start(vec![500]).await;
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
    let received = receiver.wait_for(2).await;
    for request in &received {
        assert_eq!(request.header("x-rewards-event"), Some("purchase.posted"));
        assert_eq!(
            request.header("x-rewards-signature").unwrap(),
            signed(&request.body)
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
    let (first, second) = (received[0].json(), received[1].json());
    assert_eq!(first, second, "a retry sends the same delivery");
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
    let received = receiver.wait_for(5).await;
    let kinds: Vec<String> = received[2..]
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
    for request in &received[2..] {
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

    // The deliveries, oldest first: each delivered, the first after two tries.
    let hook_id = hook["id"].as_str().unwrap();
    let deliveries = api
        .all(&format!("{hooks}/{hook_id}/deliveries"), &w.key)
        .await;
    assert_eq!(deliveries.len(), 4);
    assert_eq!(deliveries[0]["attempts"], 2);
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
    assert_eq!(receiver.received.lock().len(), 5);
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
