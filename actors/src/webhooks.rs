//! Webhooks (SPEC section 11): a business's subscriptions, and their deliveries from a durable
//! outbox.
//!
//! A delivery is written in the commit of the change it announces (a posted or cancelled
//! purchase, an approved or rejected estimate), so it exists exactly when that change does: a
//! crash loses neither. One deliverer per process POSTs every pending delivery, signed with
//! its subscription's secret, and records the outcome: delivered on a 2xx, else tried again
//! with a growing, jittered delay, and failed after [`MAX_ATTEMPTS`]. Metrics: deliveries by
//! outcome (`rewards_webhook_deliveries_total`), the outbox's depth
//! (`rewards_webhook_deliveries_pending`) and the time a receiver takes
//! (`rewards_webhook_delivery_seconds`). A receiver may see a delivery more
//! than once (a crash between its 2xx and the record of it); the delivery's `id` is the same on
//! every try, so it can tell.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rewards_core::{BusinessId, Timestamp, WebhookId};
use rewards_storage::{Space, WriteSet};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::app::App;
use crate::clock;
use crate::error::Failure;
use crate::schema::keys;

pub const PURCHASE_POSTED: &str = "purchase.posted";
pub const PURCHASE_CANCELLED: &str = "purchase.cancelled";
pub const ESTIMATE_APPROVED: &str = "estimate.approved";
pub const ESTIMATE_REJECTED: &str = "estimate.rejected";
/// Every event kind a webhook can subscribe to.
pub const EVENT_KINDS: [&str; 4] = [
    PURCHASE_POSTED,
    PURCHASE_CANCELLED,
    ESTIMATE_APPROVED,
    ESTIMATE_REJECTED,
];

/// Tries before a delivery is given up as failed.
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest wait between two tries.
const LONGEST_BACKOFF_SECONDS: i64 = 600;
/// How long a receiver has to answer one try.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the deliverer looks for due deliveries when it has nothing to do.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How long it waits after the store failed it.
const ERROR_PAUSE: Duration = Duration::from_secs(5);
/// Pending deliveries looked at per round, and tried at once.
const SCAN_LIMIT: usize = 512;
const CONCURRENT_TRIES: usize = 16;

/// A subscription: where to POST which event kinds, and the secret that signs them.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub business_id: BusinessId,
    pub url: String,
    pub events: Vec<String>,
    /// Signs every delivery; never shown after creation.
    pub secret: String,
    pub created_at: Timestamp,
}

impl Webhook {
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == kind)
    }

    pub fn render(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.to_string(),
            "business_id": self.business_id.to_string(),
            "url": self.url,
            "events": self.events,
            "created_at": self.created_at.to_rfc3339(),
        })
    }
}

#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// One event for one subscription.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Time-ordered, so a webhook's deliveries list in the order they were made.
    pub id: WebhookId,
    pub webhook_id: WebhookId,
    pub business_id: BusinessId,
    pub kind: String,
    pub created_at: Timestamp,
    /// The exact bytes POSTed on every try (`{id, type, created_at, data}`); dropped once
    /// delivered.
    pub body: Vec<u8>,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The receiver's status on the last try; `None` before one, or when it did not answer.
    pub last_status: Option<u16>,
    pub next_attempt_at: Option<Timestamp>,
}

impl DeliveryRecord {
    pub fn render(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.to_string(),
            "webhook_id": self.webhook_id.to_string(),
            "type": self.kind,
            "created_at": self.created_at.to_rfc3339(),
            "state": self.state.as_str(),
            "attempts": self.attempts,
            "last_status": self.last_status,
            "next_attempt_at": self.next_attempt_at.map(|t| t.to_rfc3339()),
        })
    }
}

/// Does any of these subscriptions want `kind`? (Answers before any payload is rendered.)
pub fn wanted(webhooks: &[Webhook], kind: &str) -> bool {
    webhooks.iter().any(|w| w.wants(kind))
}

/// Writes one pending delivery of `data` (a JSON document) into `set` for every subscription
/// that wants `kind`.
pub fn enqueue(
    set: &mut WriteSet,
    webhooks: &[Webhook],
    kind: &'static str,
    data: &[u8],
    now: Timestamp,
) {
    for webhook in webhooks.iter().filter(|w| w.wants(kind)) {
        let id = WebhookId::from_bytes(*clock::event_id().as_bytes());
        let mut body = Vec::with_capacity(data.len() + 128);
        body.extend_from_slice(b"{\"id\":");
        body.extend_from_slice(&crate::json_bytes(&id.to_string()));
        body.extend_from_slice(b",\"type\":");
        body.extend_from_slice(&crate::json_bytes(kind));
        body.extend_from_slice(b",\"created_at\":");
        body.extend_from_slice(&crate::json_bytes(&now.to_rfc3339()));
        body.extend_from_slice(b",\"data\":");
        body.extend_from_slice(data);
        body.push(b'}');
        let record = DeliveryRecord {
            id,
            webhook_id: webhook.id,
            business_id: webhook.business_id,
            kind: kind.to_string(),
            created_at: now,
            body,
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            next_attempt_at: Some(now),
        };
        set.put(Space::Outbox, keys::delivery_key(webhook.id, id), &record);
        set.put_raw(
            Space::Outbox,
            keys::pending_delivery_key(id),
            webhook.id.as_bytes().to_vec(),
        );
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The longest wait before try `attempts + 1`: 1 s, doubled per try, at most ten minutes.
fn backoff_seconds(attempts: u32) -> i64 {
    let exponent = attempts.saturating_sub(1).min(20);
    (1i64 << exponent).min(LONGEST_BACKOFF_SECONDS)
}

/// The wait before try `attempts + 1`, in milliseconds: between half the backoff and all of it,
/// so the retries of many deliveries that failed together (a receiver that was down) spread out.
fn backoff_millis(attempts: u32) -> i64 {
    let full = backoff_seconds(attempts) * 1000;
    let half = full / 2;
    half + clock::below(u64::try_from(full - half).unwrap_or(0) + 1) as i64
}

/// Starts the deliverer on the current arbiter: it runs for the life of the process.
pub fn start_deliverer(app: Arc<App>) {
    let client = match reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("rewardsd/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the webhook client could not be built: nothing is delivered");
            return;
        }
    };
    actix::spawn(async move {
        loop {
            match deliver_due(&app, &client).await {
                Ok(0) => tokio::time::sleep(IDLE_POLL).await,
                Ok(_) => {}
                Err(error) => {
                    // Nothing was lost: the pending deliveries stay for the next look.
                    tracing::warn!(%error, "webhook deliveries could not be read or recorded");
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
        }
    });
}

/// Tries every pending delivery that is due; returns how many it tried.
async fn deliver_due(app: &Arc<App>, client: &reqwest::Client) -> Result<usize, Failure> {
    let now = clock::now();
    let mut due: Vec<DeliveryRecord> = Vec::new();
    let mut pending = 0usize;
    let (entries, _) = app.store.page_raw(
        Space::Outbox,
        &keys::pending_delivery_prefix(),
        None,
        false,
        SCAN_LIMIT,
    )?;
    for (key, webhook) in entries {
        pending += 1;
        let (Some(id), Ok(webhook)) = (
            keys::delivery_of_pending_key(&key),
            <[u8; 16]>::try_from(webhook.as_slice()),
        ) else {
            continue;
        };
        let webhook = WebhookId::from_bytes(webhook);
        let record: Option<DeliveryRecord> = app
            .store
            .get(Space::Outbox, &keys::delivery_key(webhook, id))?;
        if let Some(record) = record {
            if record.next_attempt_at.is_none_or(|at| at <= now) {
                due.push(record);
            }
        }
    }
    metrics::gauge!("rewards_webhook_deliveries_pending").set(pending as f64);
    let tried = due.len();
    for chunk in due.chunks(CONCURRENT_TRIES) {
        let outcomes =
            futures::future::join_all(chunk.iter().map(|record| try_once(app, client, record)))
                .await;
        let mut set = WriteSet::new();
        let finished = clock::now();
        for (record, status) in chunk.iter().zip(outcomes) {
            let mut record = record.clone();
            record.attempts += 1;
            let gone = status.is_err();
            record.last_status = status.ok().flatten();
            let delivered = record.last_status.is_some_and(|s| (200..300).contains(&s));
            let outcome = if delivered {
                record.state = DeliveryState::Delivered;
                record.body = Vec::new();
                "delivered"
            } else if gone || record.attempts >= MAX_ATTEMPTS {
                record.state = DeliveryState::Failed;
                "failed"
            } else {
                "retried"
            };
            metrics::counter!("rewards_webhook_deliveries_total", "outcome" => outcome)
                .increment(1);
            if record.state == DeliveryState::Pending {
                record.next_attempt_at = Some(Timestamp(
                    finished.0.saturating_add(backoff_millis(record.attempts)),
                ));
            } else {
                record.next_attempt_at = None;
                set.delete(Space::Outbox, keys::pending_delivery_key(record.id));
                if record.state == DeliveryState::Failed {
                    tracing::warn!(
                        delivery = %record.id,
                        webhook = %record.webhook_id,
                        attempts = record.attempts,
                        "a webhook delivery was given up"
                    );
                }
            }
            set.put(
                Space::Outbox,
                keys::delivery_key(record.webhook_id, record.id),
                &record,
            );
        }
        app.write(set).await?;
    }
    Ok(tried)
}

/// The subscription was deleted: its deliveries fail at once.
struct Gone;

/// One try: the receiver's status, `None` if it did not answer.
async fn try_once(
    app: &App,
    client: &reqwest::Client,
    record: &DeliveryRecord,
) -> Result<Option<u16>, Gone> {
    let webhook = app
        .registry
        .business(record.business_id)
        .and_then(|entry| {
            entry
                .webhooks
                .read()
                .iter()
                .find(|w| w.id == record.webhook_id)
                .cloned()
        })
        .ok_or(Gone)?;
    let started = std::time::Instant::now();
    let sent = client
        .post(&webhook.url)
        .header("content-type", "application/json")
        .header("x-rewards-event", record.kind.as_str())
        .header("x-rewards-delivery", record.id.to_string())
        .header(
            "x-rewards-signature",
            signature(&webhook.secret, &record.body),
        )
        .body(record.body.clone())
        .send()
        .await;
    metrics::histogram!("rewards_webhook_delivery_seconds").record(started.elapsed().as_secs_f64());
    Ok(match sent {
        Ok(response) => Some(response.status().as_u16()),
        Err(error) => {
            tracing::debug!(%error, url = %webhook.url, "a webhook receiver did not answer");
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_as_rfc_4231_gives_it() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_backoff_doubles_up_to_ten_minutes_with_jitter_in_its_upper_half() {
        let waits: Vec<i64> = (1..=12).map(backoff_seconds).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        for attempts in 1..=12 {
            let full = backoff_seconds(attempts) * 1000;
            for _ in 0..100 {
                let wait = backoff_millis(attempts);
                assert!((full / 2..=full).contains(&wait), "{attempts}: {wait}");
            }
        }
    }
}
