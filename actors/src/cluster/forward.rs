//! The HTTP server of a node that does not own the data: every API request is forwarded to the
//! owner and its answer returned as it came; health and metrics are the node's own.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use anyhow::Context;
use rewards_core::DomainError;

use super::Node;
use crate::config::Config;
use crate::http::problem::ApiError;
use crate::limits::{HEADER_READ_TIMEOUT, MAX_BODY_BYTES};

/// Marks a request one node forwarded to another. A node that does not own the data refuses
/// such a request instead of forwarding it again: the sender's idea of the owner was stale.
pub const FORWARDED_BY: &str = "x-rewards-forwarded-by";

/// Headers that belong to one connection, not to the request: never passed on.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

fn passed_on(name: &str) -> bool {
    !HOP_BY_HOP.contains(&name)
        && name != "content-length"
        // What a follower says of the client is the follower's to say, never the client's.
        && name != crate::http::FORWARDED_CLIENT_IP
        && name != crate::http::FORWARD_TOKEN
}

/// Starts the forwarding server on `listener`.
pub fn start(
    node: Arc<Node>,
    config: &Config,
    listener: std::net::TcpListener,
) -> anyhow::Result<actix_web::dev::Server> {
    let builder = || {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
    };
    let shared = builder().context("building the forwarding client")?;
    let node = web::Data::from(node);
    let server = actix_web::HttpServer::new(move || {
        // A client of each worker's own: a pooled connection is driven by a task on the
        // runtime that opened it, so a client shared by the workers would hand most requests
        // and answers across threads.
        let client = web::Data::new(builder().unwrap_or_else(|error| {
            tracing::warn!(%error, "a worker's forwarding client; the shared one is used");
            shared.clone()
        }));
        actix_web::App::new()
            .app_data(node.clone())
            .app_data(client)
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .route("/health/live", web::get().to(live))
            .route("/health/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(forward))
    })
    .workers(config.http_workers())
    .client_request_timeout(HEADER_READ_TIMEOUT)
    .max_connections(crate::server::connections_per_worker(config.http_workers()))
    .shutdown_timeout(5)
    // The owner's server takes the same listener over: no signal handling of its own here,
    // the cluster's loop decides when to stop.
    .disable_signals()
    .listen(listener)
    .context("listening")?;
    Ok(server.run())
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "live"}))
}

/// Ready while the node knows an owner to forward to.
async fn ready(node: web::Data<Node>) -> HttpResponse {
    if node.owner().is_some() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready"}))
    } else {
        actix_web::ResponseError::error_response(&ApiError::from(DomainError::NotReady))
    }
}

async fn metrics(node: web::Data<Node>) -> HttpResponse {
    metrics::gauge!("rewards_ready").set(if node.owner().is_some() { 1.0 } else { 0.0 });
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::http::prometheus().render())
}

fn refused(outcome: &'static str) -> HttpResponse {
    metrics::counter!("rewards_cluster_forwarded_total", "outcome" => outcome).increment(1);
    actix_web::ResponseError::error_response(&ApiError::from(DomainError::NotReady))
}

async fn forward(
    request: HttpRequest,
    body: web::Bytes,
    node: web::Data<Node>,
    client: web::Data<reqwest::Client>,
) -> HttpResponse {
    if request.headers().contains_key(FORWARDED_BY) {
        return refused("loop");
    }
    let Some(owner) = node.owner() else {
        return refused("no_owner");
    };
    let target = format!(
        "{}{}",
        owner.url.trim_end_matches('/'),
        request.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let Ok(method) = reqwest::Method::from_bytes(request.method().as_str().as_bytes()) else {
        return refused("method");
    };
    let mut outgoing = client.request(method, target).body(body);
    for (name, value) in request.headers() {
        if passed_on(name.as_str()) {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    outgoing = outgoing
        .header(FORWARDED_BY, node.me.node.as_str())
        .header(crate::http::FORWARD_TOKEN, owner.token.as_str());
    if let Some(peer) = request.peer_addr() {
        outgoing = outgoing.header(crate::http::FORWARDED_CLIENT_IP, peer.ip().to_string());
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(error) if error.is_connect() => {
            // Nothing reached the owner: it is gone; the lease will name the next one.
            tracing::warn!(owner = %owner.node, %error, "the owner could not be reached");
            node.forget_owner(&owner);
            return refused("unreachable");
        }
        // The request may have reached the owner and been applied: like a client's own broken
        // connection, the client retries with its idempotency key.
        Err(error) => {
            tracing::warn!(owner = %owner.node, %error, "the owner did not answer a forwarded request");
            return refused("broken");
        }
    };
    let status =
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if passed_on(name.as_str()) {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    match answer.bytes().await {
        Ok(bytes) => {
            metrics::counter!("rewards_cluster_forwarded_total", "outcome" => "answered")
                .increment(1);
            response.body(bytes)
        }
        // The owner answered and broke off: what it did is unknown, as when a client's own
        // connection breaks; the client retries with its idempotency key.
        Err(error) => {
            tracing::warn!(owner = %owner.node, %error, "the owner's answer broke off");
            refused("broken")
        }
    }
}
