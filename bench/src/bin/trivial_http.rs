//! `trivial-http`: the physical limit of the HTTP layer on this machine. An actix-web server with
//! the same worker setup as rewardsd whose `POST /v1/purchases` reads the body and answers a
//! fixed 201 JSON, nothing else.
//!
//! `trivial-http [ADDR]` (default 127.0.0.1:8090).

// Linked for its global allocator (mimalloc), as rewardsd has.
use rewards_bench as _;

use actix_web::{web, App, HttpResponse, HttpServer};

async fn purchase(body: web::Bytes) -> HttpResponse {
    HttpResponse::Created()
        .content_type("application/json")
        .body(format!("{{\"received\":{}}}", body.len()))
}

fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().route("/v1/purchases", web::post().to(purchase)))
            .bind(&address)?
            .run()
            .await
    })
}
