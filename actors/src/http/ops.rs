//! Health, readiness and metrics.

use actix_web::{web, HttpResponse};
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::App;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    summary = "Liveness: 200 as soon as the process serves",
    responses(
        (status = 200, description = "Live", body = serde_json::Value),
    )
)]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "live"}))
}

#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    summary = "Readiness: 200 while writes are accepted, 503 otherwise",
    responses(
        (status = 200, description = "Ready", body = serde_json::Value),
    )
)]
async fn ready(app: web::Data<App>) -> HttpResponse {
    if app.is_ready() && !app.store.is_poisoned() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        crate::http::problem::ApiError::from(rewards_core::DomainError::NotReady).into_response()
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use (once per process, however many
/// servers a test starts).
// Start-up only (the first metric), with constant bucket lists.
#[allow(clippy::expect_used)]
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets(&[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ])
            .expect("bucket list is not empty")
            .set_buckets_for_metric(
                Matcher::Full("rewards_commit_batch_sets".into()),
                &[
                    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 4096.0,
                ],
            )
            .expect("bucket list is not empty")
            // Keys a checkpoint wrote: a count, not seconds.
            .set_buckets_for_metric(
                Matcher::Full("rewards_checkpoint_keys".into()),
                &[
                    100.0,
                    1_000.0,
                    10_000.0,
                    50_000.0,
                    100_000.0,
                    250_000.0,
                    500_000.0,
                    1_000_000.0,
                    2_500_000.0,
                    5_000_000.0,
                ],
            )
            .expect("bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

pub fn render_metrics(app: &App) -> String {
    // What /health/ready answers, for alerting: 1 ready, 0 not (starting, or the store failed).
    metrics::gauge!("rewards_ready").set(if app.is_ready() && !app.store.is_poisoned() {
        1.0
    } else {
        0.0
    });
    metrics::gauge!("rewards_wallet_actors_resident").set(app.wallets.resident() as f64);
    metrics::gauge!("rewards_writer_queue_depth").set(app.store.queue_depth() as f64);
    metrics::gauge!("rewards_store_disk_bytes").set(app.store.disk_space() as f64);
    metrics::gauge!("rewards_idempotency_in_flight").set(app.idempotency.in_flight() as f64);
    metrics::gauge!("rewards_router_actors_resident").set(app.routers.resident() as f64);
    let routes = app.routers.counts();
    metrics::gauge!("rewards_route_entries", "state" => "pending_pos")
        .set(routes.pending_pos as f64);
    metrics::gauge!("rewards_route_entries", "state" => "pending_transaction")
        .set(routes.pending_transactions as f64);
    metrics::gauge!("rewards_route_entries", "state" => "unclaimed").set(routes.unclaimed as f64);
    metrics::gauge!("rewards_identities_cached").set(app.identities.cached() as f64);
    let (otps, wallet_codes) = app.codes.held();
    metrics::gauge!("rewards_one_time_codes", "kind" => "otp").set(otps as f64);
    metrics::gauge!("rewards_one_time_codes", "kind" => "wallet_code").set(wallet_codes as f64);
    prometheus().render()
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    summary = "Prometheus metrics (text format)",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain"),
    )
)]
async fn metrics(app: web::Data<App>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(render_metrics(&app))
}

trait IntoResponse {
    fn into_response(self) -> HttpResponse;
}

impl IntoResponse for crate::http::problem::ApiError {
    fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

#[cfg(test)]
mod tests {
    /// The count in the rendered exposition of one bucket of a histogram.
    fn bucket(text: &str, metric: &str, le: &str) -> Option<u64> {
        let prefix = format!("{metric}_bucket{{le=\"{le}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|count| count.trim().parse().ok())
    }

    #[test]
    fn a_checkpoints_key_count_gets_buckets_of_counts_not_of_seconds() {
        let handle = super::prometheus();
        // Other tests of this process may checkpoint small stores meanwhile: they add to both
        // buckets alike (under 1,000 keys), so only this record is between them.
        metrics::histogram!("rewards_checkpoint_keys").record(5_000.0);
        let text = handle.render();
        let upper = bucket(&text, "rewards_checkpoint_keys", "10000");
        let lower = bucket(&text, "rewards_checkpoint_keys", "1000");
        match (upper, lower) {
            (Some(upper), Some(lower)) => assert!(upper > lower, "{text}"),
            _ => panic!("no count buckets for rewards_checkpoint_keys: {text}"),
        }
    }
}
