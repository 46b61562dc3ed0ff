//! Wiring of `rewardsd`: open the store, recover, start the wallet arbiters and the HTTP server,
//! and shut down cleanly (stop accepting, answer what was accepted, commit, exit 0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Arbiter, ArbiterHandle};
use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{web, ResponseError};
use anyhow::Context;
use rewards_core::DomainError;
use rewards_storage::{Store, StoreOptions};

use crate::app::App;
use crate::config::Config;
use crate::http::problem::ApiError;
use crate::limits::MAX_BODY_BYTES;
use crate::wallets::WalletDirectory;

/// Runs the server until SIGTERM or Ctrl-C. `on_listening` is told the bound address.
pub fn run(config: Config, admin_key: Option<String>) -> anyhow::Result<()> {
    let system = actix::System::new();
    system.block_on(serve(config, admin_key))
}

/// Opens the store, starts the wallet arbiters and recovers the registries: everything of a
/// running server but its HTTP ingress. Must run inside an actix system.
pub fn open_app(config: &Config) -> anyhow::Result<(Arc<App>, Store, Vec<ArbiterHandle>)> {
    let store = Store::open(
        &config.data_dir,
        StoreOptions {
            durability: config.durability,
            queue_capacity: config.writer_queue_capacity,
            max_batch_sets: config.writer_max_batch_sets,
            on_poison: Some(Arc::new(|error: &str| {
                // Nothing that failed was acknowledged; stop rather than run on a broken store.
                tracing::error!(error, "storage failed: exiting");
                eprintln!("rewardsd: storage failed ({error}); exiting");
                std::process::exit(70);
            })),
        },
    )
    .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let arbiters: Vec<ArbiterHandle> = (0..config.wallet_arbiters())
        .map(|_| Arbiter::new().handle())
        .collect();
    let wallets = WalletDirectory::new(
        arbiters.clone(),
        config.wallet_mailbox_capacity,
        Duration::from_secs(config.wallet_idle_seconds),
    );
    let app = Arc::new(App::new(config.clone(), store.clone(), wallets));
    crate::recovery::recover(&app).context("recovering the registries from the store")?;
    let routers = crate::router::RouterDirectory::recover(&app)
        .map_err(|e| anyhow::anyhow!("recovering the routers from the store: {e}"))?;
    tracing::info!(routers, "routers with waiting purchases started");
    WalletDirectory::start_sweeper(app.clone());
    crate::router::RouterDirectory::start_sweeper(app.clone());
    Ok((app, store, arbiters))
}

async fn serve(config: Config, admin_key: Option<String>) -> anyhow::Result<()> {
    crate::http::render_metrics_init();
    let started = Instant::now();
    let (app, store, arbiters) = open_app(&config)?;
    if let Some(secret) = crate::recovery::ensure_operator_key(&app, admin_key.as_deref())? {
        println!("Generated operator key (shown once, stored hashed): {secret}");
    }
    let data = web::Data::from(app.clone());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                ApiError::from(rewards_core::FieldError::new("query", error.to_string())).into()
            }))
            .wrap_fn(|request, service| {
                let limited = request
                    .headers()
                    .get(actix_web::http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok())
                    .is_some_and(|length| length > MAX_BODY_BYTES);
                let ready = request
                    .app_data::<web::Data<App>>()
                    .is_some_and(|app| app.is_ready());
                let api = request.path().starts_with("/v1/");
                let method = request.method().to_string();
                let started = Instant::now();
                let refusal = if limited {
                    Some(ApiError::PayloadTooLarge)
                } else if api && !ready {
                    Some(ApiError::Domain(DomainError::NotReady))
                } else {
                    None
                };
                let call = match refusal {
                    Some(error) => Err(error),
                    None => Ok(service.call(request)),
                };
                async move {
                    let response: ServiceResponse<EitherBody<BoxBody>> =
                        call?.await?.map_into_left_body();
                    let endpoint = response
                        .request()
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_string());
                    let status = response.status().as_u16().to_string();
                    metrics::counter!("rewards_http_requests_total", "endpoint" => endpoint.clone(), "method" => method.clone(), "status" => status)
                        .increment(1);
                    metrics::histogram!("rewards_http_request_seconds", "endpoint" => endpoint, "method" => method)
                        .record(started.elapsed().as_secs_f64());
                    Ok(response)
                }
            })
            .configure(crate::http::routes)
            .default_service(web::to(|| async {
                ApiError::Domain(DomainError::NotFound("resource")).error_response()
            }))
    })
    .workers(config.http_workers())
    .shutdown_timeout(30)
    .bind(config.listen)
    .with_context(|| format!("binding {}", config.listen))?;
    let addresses: Vec<SocketAddr> = server.addrs();
    let server = server.run();
    app.set_ready(true);
    for address in &addresses {
        // Tests and scripts read this line to find an ephemeral port.
        println!("rewardsd listening on http://{address}");
        tracing::info!(%address, startup_ms = started.elapsed().as_millis() as u64, "listening");
    }
    // actix-web stops on SIGTERM and Ctrl-C: no new connections, in-flight requests answered.
    server.await.context("running the HTTP server")?;
    app.set_ready(false);
    tracing::info!("HTTP server stopped; committing what was accepted");
    store.close();
    for arbiter in arbiters {
        arbiter.stop();
    }
    tracing::info!("shut down cleanly");
    Ok(())
}
