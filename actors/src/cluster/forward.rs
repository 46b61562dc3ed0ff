//! The HTTP server of a node that does not own its partition: every API request is forwarded
//! to the owner of the partition it belongs to and its answer returned as it came; health and
//! metrics are the node's own. With several partitions, an owner forwards the requests of the
//! others the same way ([`Front`]).

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::RequestHead;
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use anyhow::Context;
use rewards_core::DomainError;

use super::fanout::{self, Answer};
use super::partition::{self, Route};
use super::{Holder, Node, Placement};
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
        // Ids and secrets for every partition are this node's to choose, never the client's.
        && name != crate::http::NEW_ID
        && name != crate::http::NEW_SECRET
}

/// How long a forwarded backup may take: it copies a whole store, while a request's answer
/// comes in well under the client's own timeout.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A client for requests forwarded to other processes.
fn forwarding_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .context("building the forwarding client")
}

/// Starts the forwarding server on `listener`.
pub fn start(
    node: Arc<Node>,
    config: &Config,
    listener: std::net::TcpListener,
) -> anyhow::Result<actix_web::dev::Server> {
    let shared = forwarding_client()?;
    let node = web::Data::from(node);
    let server = actix_web::HttpServer::new(move || {
        // A client of each worker's own: a pooled connection is driven by a task on the
        // runtime that opened it, so a client shared by the workers would hand most requests
        // and answers across threads.
        let client = web::Data::new(forwarding_client().unwrap_or_else(|error| {
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
            .route("/cluster", web::get().to(cluster_map))
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

/// `GET /cluster`: the partitions and their owners as this process last read them, for clients
/// that send each request to its partition's owner themselves instead of through any process.
async fn cluster_map(node: web::Data<Node>) -> HttpResponse {
    // Until the cluster's partition count is known to be this process's, neither is its map.
    if !node.agreed() {
        return actix_web::ResponseError::error_response(&ApiError::from(DomainError::NotReady));
    }
    let placement = node.placement();
    let owners: Vec<serde_json::Value> = (0..placement.count)
        .map(|partition| {
            let owner = node.owner_of(partition);
            serde_json::json!({
                "partition": partition,
                "node": owner.as_ref().map(|o| o.node.clone()),
                "url": owner.as_ref().map(|o| o.url.clone()),
            })
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({
        "partitions": placement.count,
        "partition": placement.index,
        "node": node.me.node,
        "owners": owners,
    }))
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

/// Where a request goes: by its head, else by its body, else to this node's partition.
fn route_of(node: &Node, request: &HttpRequest, body: &[u8]) -> Route {
    let placement = node.placement();
    let route = match head_route(node, request.head()) {
        Route::Body => partition::route_body(placement, request.path(), body),
        route => route,
    };
    match route {
        Route::Body | Route::Here => Route::Partition(placement.index),
        // Only the operator's batch is split: one with any other key (which named no
        // partition) is refused whole where it lands, without asking every partition.
        Route::Items if !operator_request(node, request.head()) => {
            Route::Partition(placement.index)
        }
        route => route,
    }
}

/// Whether a request is made with the operator's key.
fn operator_request(node: &Node, head: &RequestHead) -> bool {
    bearer(head).is_some_and(|key| node.is_operator_key(key))
}

/// The key a request presents, if any.
fn bearer(head: &RequestHead) -> Option<&str> {
    head.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Where a request goes by its head. The operator's key names no partition, whatever it looks
/// like.
fn head_route(node: &Node, head: &RequestHead) -> Route {
    if node.placement().count <= 1 {
        return Route::Partition(0);
    }
    let bearer = bearer(head).filter(|key| !node.is_operator_key(key));
    partition::route_head(
        node.placement(),
        head.method.as_str(),
        head.uri.path(),
        bearer,
    )
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
    dispatch(&request, body, &node, &client).await
}

/// Sends a request where [`route_of`] says: to one partition's owner, or to every one's.
async fn dispatch(
    request: &HttpRequest,
    body: web::Bytes,
    node: &Node,
    client: &reqwest::Client,
) -> HttpResponse {
    // Until the cluster's partition count is known to be this process's, its routes are not.
    if !node.agreed() {
        return refused("no_owner");
    }
    match route_of(node, request, &body) {
        Route::All => fan_out(request, body, node, client).await,
        Route::Partition(partition) => {
            let Some(owner) = node.owner_of(partition) else {
                return refused("no_owner");
            };
            match exchange(request, body, node, client, partition, &owner, &[]).await {
                Ok(answer) => {
                    metrics::counter!("rewards_cluster_forwarded_total", "outcome" => "answered")
                        .increment(1);
                    answer.into_response()
                }
                Err(outcome) => refused(outcome),
            }
        }
        Route::Items => split_batch(request, body, node, client).await,
        Route::Body | Route::Here => refused("route"),
    }
}

/// Sends each partition's items of a purchase batch to that partition's owner as a batch of
/// their own, all at once, and puts the answers back in the items' order
/// ([`fanout::merge_items`]). A partition without an owner, or whose owner cannot be reached,
/// answers 503 for its items alone: the others' are taken.
async fn split_batch(
    request: &HttpRequest,
    body: web::Bytes,
    node: &Node,
    client: &reqwest::Client,
) -> HttpResponse {
    let Some(items) = partition::batch_items(node.placement(), &body) else {
        // Routed here because it could be split: it can, so this does not happen.
        return refused("route");
    };
    let mut places: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
    for (place, (_, partition)) in items.iter().enumerate() {
        places.entry(*partition).or_default().push(place);
    }
    let parts = futures::future::join_all(places.into_iter().map(|(partition, places)| {
        let mut part = Vec::with_capacity(body.len() / items.len().max(1) * places.len());
        part.extend_from_slice(b"{\"items\":[");
        for (i, place) in places.iter().enumerate() {
            if i > 0 {
                part.push(b',');
            }
            if let Some((item, _)) = items.get(*place) {
                part.extend_from_slice(item.get().as_bytes());
            }
        }
        part.extend_from_slice(b"]}");
        async move {
            let answer = match node.owner_of(partition) {
                Some(owner) => exchange(request, part.into(), node, client, partition, &owner, &[])
                    .await
                    .ok(),
                None => None,
            };
            (places, answer)
        }
    }))
    .await;
    metrics::counter!("rewards_cluster_forwarded_total", "outcome" => "split").increment(1);
    fanout::merge_items(items.len(), parts).into_response()
}

/// Sends a request to the owner of every partition at once and merges their answers
/// ([`fanout::merge`]). Nothing is sent unless every partition has a known owner; one that
/// fails to answer makes the whole answer 503, and the client's retry (with its idempotency
/// key, or for a processor its transaction reference) is answered by the others as a replay.
async fn fan_out(
    request: &HttpRequest,
    body: web::Bytes,
    node: &Node,
    client: &reqwest::Client,
) -> HttpResponse {
    let count = node.placement().count;
    let mut owners = Vec::with_capacity(usize::from(count));
    for partition in 0..count {
        match node.owner_of(partition) {
            Some(owner) => owners.push((partition, owner)),
            None => return refused("no_owner"),
        }
    }
    let kind = fanout::Kind::of(request.method().as_str(), request.path());
    // What every partition makes must be the same in all: the id and secret are chosen here.
    let mut dictated: Vec<(&str, String)> = Vec::new();
    if kind == fanout::Kind::Made {
        dictated.push((
            crate::http::NEW_ID,
            uuid::Builder::from_random_bytes(crate::clock::id_bytes())
                .into_uuid()
                .to_string(),
        ));
        dictated.push((crate::http::NEW_SECRET, Placement::SINGLE.secret()));
    }
    let answers = futures::future::join_all(owners.iter().map(|(partition, owner)| {
        exchange(
            request,
            body.clone(),
            node,
            client,
            *partition,
            owner,
            &dictated,
        )
    }))
    .await;
    let mut answered = Vec::with_capacity(answers.len());
    for answer in answers {
        match answer {
            Ok(answer) => answered.push(answer),
            Err(outcome) => return refused(outcome),
        }
    }
    metrics::counter!("rewards_cluster_forwarded_total", "outcome" => "fanned_out").increment(1);
    fanout::merge(kind, answered).into_response()
}
/// Marks a request an owner's [`Front`] passed on: its answer is the other process's, whose
/// lease (not this owner's) stood behind it.
pub struct AnsweredElsewhere;

/// What the owner of one partition of a cluster with several does with the requests of the
/// others: they are forwarded to their owners.
pub struct Front {
    node: Arc<Node>,
    client: reqwest::Client,
}

impl Front {
    pub fn new(node: Arc<Node>) -> anyhow::Result<Front> {
        Ok(Front {
            node,
            client: forwarding_client()?,
        })
    }

    /// Whether a request may belong to another partition: its head names another, or leaves
    /// it to its body. A request another node forwarded is served here, never passed on.
    pub fn elsewhere(&self, head: &RequestHead) -> bool {
        // Forwarded here by another process: served here, whatever it names (its sender
        // routed it). One that says so without this owner's token (a client's header, or a
        // sender that knew this node's previous process) is taken below, and refused if it
        // belongs elsewhere, never routed a second time.
        if head.headers().contains_key(FORWARDED_BY) && self.forwarded_here(head) {
            return false;
        }
        match head_route(&self.node, head) {
            Route::Partition(partition) => partition != self.node.placement().index,
            Route::Body | Route::All | Route::Items => true,
            Route::Here => false,
        }
    }

    /// Whether a request says it was forwarded by another process to this one: it carries
    /// this owner's forwarding token, which clients cannot read.
    fn forwarded_here(&self, head: &RequestHead) -> bool {
        let presented = head.headers().get(crate::http::FORWARD_TOKEN);
        crate::http::token_matches(Some(&self.node.me.token), presented.map(|v| v.as_bytes()))
    }

    /// Registers `GET /cluster` and, with several partitions, ahead of the API's routes, the
    /// forwarding of requests [`Front::elsewhere`] says may belong to another partition.
    pub fn configure(front: Arc<Front>, config: &mut web::ServiceConfig) {
        config.service(
            web::resource("/cluster")
                .app_data(web::Data::from(front.node.clone()))
                .route(web::get().to(cluster_map)),
        );
        if front.node.placement().count <= 1 {
            return;
        }
        let guard = front.clone();
        config.service(
            web::scope("")
                .guard(actix_web::guard::fn_guard(move |context| {
                    guard.elsewhere(context.head())
                }))
                .app_data(web::Data::from(front))
                .default_service(web::to(forward_elsewhere)),
        );
    }
}

/// A request [`Front::elsewhere`] took: forwarded to its partition's owner, this node too
/// when its body names this partition (or none), as another node would have; or to every
/// partition's.
async fn forward_elsewhere(
    request: HttpRequest,
    body: web::Bytes,
    front: web::Data<Front>,
) -> HttpResponse {
    if request.headers().contains_key(FORWARDED_BY) {
        return refused("loop");
    }
    request.extensions_mut().insert(AnsweredElsewhere);
    dispatch(&request, body, &front.node, &front.client).await
}

/// Sends `request` with `body` (and the `extra` headers) to `owner`, the owner of
/// `partition`, and answers its answer, or the outcome a refusal is counted under.
async fn exchange(
    request: &HttpRequest,
    body: web::Bytes,
    node: &Node,
    client: &reqwest::Client,
    partition: u16,
    owner: &Holder,
    extra: &[(&str, String)],
) -> Result<Answer, &'static str> {
    let target = format!(
        "{}{}",
        owner.url.trim_end_matches('/'),
        request.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let Ok(method) = reqwest::Method::from_bytes(request.method().as_str().as_bytes()) else {
        return Err("method");
    };
    let mut outgoing = client.request(method, target).body(body);
    if partition::percent_decoded(request.path()) == "/v1/backups" {
        outgoing = outgoing.timeout(BACKUP_TIMEOUT);
    }
    for (name, value) in request.headers() {
        if passed_on(name.as_str()) {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    for (name, value) in extra {
        outgoing = outgoing.header(*name, value.as_str());
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
            tracing::warn!(owner = %owner.node, partition, %error, "the owner could not be reached");
            node.forget_owner_of(partition, owner);
            return Err("unreachable");
        }
        // The request may have reached the owner and been applied: like a client's own broken
        // connection, the client retries with its idempotency key.
        Err(error) => {
            tracing::warn!(owner = %owner.node, partition, %error, "the owner did not answer a forwarded request");
            return Err("broken");
        }
    };
    let status = answer.status().as_u16();
    let headers: Vec<(String, Vec<u8>)> = answer
        .headers()
        .iter()
        .filter(|(name, _)| passed_on(name.as_str()))
        .map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec()))
        .collect();
    match answer.bytes().await {
        Ok(body) => Ok(Answer {
            status,
            headers,
            body,
        }),
        // The owner answered and broke off: what it did is unknown, as when a client's own
        // connection breaks; the client retries with its idempotency key.
        Err(error) => {
            tracing::warn!(owner = %owner.node, partition, %error, "the owner's answer broke off");
            Err("broken")
        }
    }
}

impl Answer {
    fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        for (name, value) in &self.headers {
            response.append_header((name.as_str(), value.as_slice()));
        }
        response.body(self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::passed_on;

    #[test]
    fn what_a_client_may_not_say_is_never_passed_on() {
        for name in [
            crate::http::FORWARDED_CLIENT_IP,
            crate::http::FORWARD_TOKEN,
            crate::http::NEW_ID,
            crate::http::NEW_SECRET,
            "connection",
            "content-length",
            "host",
        ] {
            assert!(!passed_on(name), "{name}");
        }
        for name in ["authorization", "content-type", "idempotent-replay"] {
            assert!(passed_on(name), "{name}");
        }
    }
}
