//! Wiring of `rewardsd`: open the store, recover, start the wallet arbiters and the HTTP server,
//! and shut down cleanly (stop accepting, answer what was accepted, commit, exit 0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Arbiter, ArbiterHandle};
use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::Payload;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::{web, HttpMessage, ResponseError};
use anyhow::Context;
use futures::StreamExt;
use rewards_core::DomainError;
use rewards_storage::{Store, StoreOptions};

use crate::app::App;
use crate::config::Config;
use crate::http::problem::ApiError;
use crate::limits::{BODY_READ_TIMEOUT, HEADER_READ_TIMEOUT, MAX_BODY_BYTES, STORE_FILE_RESERVE};
use crate::wallets::WalletDirectory;

/// Runs the server until SIGTERM or Ctrl-C. `on_listening` is told the bound address.
pub fn run(config: Config, admin_key: Option<String>) -> anyhow::Result<()> {
    let system = actix::System::new();
    system.block_on(serve(config, admin_key, None))
}

/// A line for whoever started the server. A closed or full standard output (a pipe whose reader
/// went away) must not stop the server, so a failed write is dropped, where `println!` panics.
pub(crate) fn announce(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// What runs once the server listens, given its base URL.
type OnListening = Box<dyn FnOnce(String) -> futures::future::LocalBoxFuture<'static, ()>>;

/// The server with the demo world (`crate::demo`) made in it once it listens.
pub fn run_demo(config: Config, admin_key: String) -> anyhow::Result<()> {
    let system = actix::System::new();
    let key = admin_key.clone();
    let seed: OnListening = Box::new(move |base: String| {
        Box::pin(async move {
            match crate::demo::seed(&base, &key).await {
                Ok(text) => announce(&text),
                Err(error) => {
                    tracing::error!(%error, "the demo world could not be made");
                    eprintln!("rewardsd demo: the demo world could not be made: {error:#}");
                }
            }
        })
    });
    system.block_on(serve(config, Some(admin_key), Some(seed)))
}

/// The store's options from the configuration, with `on_poison` called if a commit fails.
pub fn store_options(config: &Config, on_poison: rewards_storage::PoisonHook) -> StoreOptions {
    StoreOptions {
        durability: config.durability,
        queue_capacity: config.writer_queue_capacity,
        max_batch_sets: config.writer_max_batch_sets,
        // Fault injection for the fault tests only: `REWARDS_FAIL_COMMIT_AFTER=N` makes the
        // commit after N successful ones fail as a broken disk would.
        fail_commit_after: std::env::var("REWARDS_FAIL_COMMIT_AFTER")
            .ok()
            .and_then(|v| v.parse().ok()),
        checkpoint_interval: Duration::from_millis(config.checkpoint_interval_ms),
        checkpoint_bytes: config.checkpoint_bytes,
        log_segment_bytes: config.log_segment_bytes,
        crash_in_checkpoint_after_spaces: None,
        on_poison: Some(on_poison),
        replay_at_open: true,
    }
}

/// Opens the store, starts the wallet arbiters and recovers the registries: everything of a
/// running server but its HTTP ingress. Must run inside an actix system.
pub fn open_app(config: &Config) -> anyhow::Result<(Arc<App>, Store, Vec<ArbiterHandle>)> {
    // A mapping that does not parse stops start-up before anything is opened.
    let mappings = crate::ingest::Mappings::load(&config.mappings_dir)?;
    anyhow::ensure!(
        !crate::cluster::is_node_directory(&config.data_dir),
        "{} holds a cluster node's copy of the data: start the server with its [cluster] section",
        config.data_dir.display()
    );
    let store = Store::open(
        &config.data_dir,
        store_options(
            config,
            Arc::new(|error: &str| {
                // Nothing that failed was acknowledged; stop rather than run on a broken store.
                tracing::error!(
                    error,
                    "storage failed: writes stopped; nothing acknowledged was lost; exiting with code 70 (restart once the disk is fixed)"
                );
                eprintln!("rewardsd: storage failed ({error}); writes stopped, nothing acknowledged was lost; exiting");
                std::process::exit(70);
            }),
        ),
    )
    .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let (app, arbiters) = assemble_app(config, store.clone(), mappings)?;
    Ok((app, store, arbiters))
}

/// Starts the wallet arbiters on an open store and recovers the registries from it.
pub fn assemble_app(
    config: &Config,
    store: Store,
    mappings: crate::ingest::Mappings,
) -> anyhow::Result<(Arc<App>, Vec<ArbiterHandle>)> {
    tracing::info!(sources = ?mappings.names(), "native-format mappings");
    let arbiters: Vec<ArbiterHandle> = (0..config.wallet_arbiters())
        .map(|_| Arbiter::new().handle())
        .collect();
    let wallets = WalletDirectory::new(
        arbiters.clone(),
        config.wallet_mailbox_capacity,
        Duration::from_secs(config.wallet_idle_seconds),
    )
    .with_max_resident(config.max_resident_wallets);
    let app = Arc::new(App::new(config.clone(), store.clone(), wallets).with_mappings(mappings));
    crate::recovery::recover(&app).context("recovering the registries from the store")?;
    let routers = crate::router::RouterDirectory::recover(&app)
        .map_err(|e| anyhow::anyhow!("recovering the routers from the store: {e}"))?;
    tracing::info!(routers, "routers with waiting purchases started");
    WalletDirectory::start_sweeper(app.clone());
    crate::router::RouterDirectory::start_sweeper(app.clone());
    crate::webhooks::start_deliverer(app.clone());
    // Wallets with open holds keep their expiry timers; holds that expired while the server
    // was down are released as their actors start.
    let waker = app.clone();
    actix::spawn(async move {
        match crate::wallets::wake_holds(&waker).await {
            Ok(wallets) => tracing::info!(wallets, "wallets with open holds started"),
            Err(error) => tracing::error!(%error, "wallets with open holds could not be started"),
        }
        // Referrals a crash left half done: the referrer's side is durable, the referred
        // contact's is written now.
        match crate::wallets::complete_referrals(&waker).await {
            Ok(0) => {}
            Ok(referrals) => tracing::info!(referrals, "half-done referrals completed"),
            Err(error) => tracing::error!(%error, "half-done referrals could not be completed"),
        }
    });
    Ok((app, arbiters))
}

async fn serve(
    config: Config,
    admin_key: Option<String>,
    on_listening: Option<OnListening>,
) -> anyhow::Result<()> {
    crate::http::render_metrics_init();
    if config.cluster.is_some() {
        return crate::cluster::serve(config, admin_key).await;
    }
    let started = Instant::now();
    let (app, store, arbiters) = open_app(&config)?;
    if let Some(secret) = crate::recovery::ensure_operator_key(&app, admin_key.as_deref())? {
        announce(&format!(
            "Generated operator key (shown once, stored hashed): {secret}"
        ));
    }
    let (server, addresses) = start_http(app.clone(), &config, None, true)?;
    app.set_ready(true);
    for address in &addresses {
        // Tests and scripts read this line to find an ephemeral port.
        announce(&format!("rewardsd listening on http://{address}"));
        tracing::info!(%address, startup_ms = started.elapsed().as_millis() as u64, "listening");
    }
    if let (Some(hook), Some(address)) = (on_listening, addresses.first()) {
        actix::spawn(hook(format!("http://{address}")));
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

/// The HTTP server of the API on `app`, started (it serves once the caller's system runs it),
/// on `listener` when one is given, else bound to the configured address. It stops by itself
/// on SIGTERM and Ctrl-C when `signals` is set; else the caller stops it.
pub fn start_http(
    app: Arc<App>,
    config: &Config,
    listener: Option<std::net::TcpListener>,
    signals: bool,
) -> anyhow::Result<(actix_web::dev::Server, Vec<SocketAddr>)> {
    let front = app.front.get().cloned();
    let data = web::Data::from(app);
    let server = actix_web::HttpServer::new(move || {
        let routes = |config: &mut web::ServiceConfig| {
            // On a cluster's owner: the map of the partitions' owners, and with several
            // partitions, the others' requests forwarded before any route of this one's sees
            // them.
            if let Some(front) = &front {
                crate::cluster::forward::Front::configure(front.clone(), config);
            }
            crate::http::routes(config);
        };
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .app_data(web::QueryConfig::default().error_handler(|error, _| {
                ApiError::from(rewards_core::FieldError::new("query", error.to_string())).into()
            }))
            .wrap_fn(|mut request, service| {
                // The whole body must arrive within the deadline: a client that sends headers
                // and then trickles (or withholds) its body cannot hold a connection forever.
                let payload = request.take_payload();
                request.set_payload(timed_payload(payload, BODY_READ_TIMEOUT));
                let limited = request
                    .headers()
                    .get(actix_web::http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok())
                    .is_some_and(|length| length > MAX_BODY_BYTES);
                let app = request.app_data::<web::Data<App>>();
                let ready = app.is_some_and(|app| app.is_ready());
                // On a cluster's owner: the lease's window, asked again once the answer is
                // made, so a request that stalled with the process past it is not answered
                // from the copy either.
                let lease = app.and_then(|app| app.lease.get().cloned());
                let api = request.path().starts_with("/v1/");
                let method = request.method().clone();
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
                    let mut response: ServiceResponse<EitherBody<BoxBody>> =
                        call?.await?.map_into_left_body();
                    // A body that broke off or came too late is a client error, answered as
                    // every other: problem+json with the field at fault.
                    let body_failed = response.response().error().is_some_and(|e| {
                        e.as_error::<PayloadError>()
                            .is_some_and(|p| !matches!(p, PayloadError::Overflow))
                    });
                    if body_failed {
                        let problem = ApiError::from(rewards_core::FieldError::new(
                            "body",
                            "was not received whole in time",
                        ))
                        .error_response()
                        .map_into_boxed_body()
                        .map_into_left_body();
                        response = response.into_response(problem);
                    } else if api
                        && lease.is_some_and(|lease| !lease.holds())
                        && !response
                            .request()
                            .extensions()
                            .contains::<crate::cluster::forward::AnsweredElsewhere>()
                    {
                        // A write it answered is durable all the same: the client's retry with
                        // its idempotency key gets the first answer from the next owner.
                        let refused = ApiError::Domain(DomainError::NotReady)
                            .error_response()
                            .map_into_boxed_body()
                            .map_into_left_body();
                        response = response.into_response(refused);
                    }
                    let endpoint = response
                        .request()
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_string());
                    crate::hot_metrics::http_request(
                        &endpoint,
                        &method,
                        response.status().as_u16(),
                        started.elapsed().as_secs_f64(),
                    );
                    Ok(response)
                }
            })
            .configure(routes)
            .default_service(web::to(crate::http::openapi::method_not_allowed))
    })
    .workers(config.http_workers())
    .client_request_timeout(HEADER_READ_TIMEOUT)
    .max_connections(connections_per_worker(config.http_workers()))
    .shutdown_timeout(30);
    let server = if signals {
        server
    } else {
        server.disable_signals()
    };
    let server = match listener {
        Some(listener) => server.listen(listener).context("listening")?,
        None => server
            .bind(config.listen)
            .with_context(|| format!("binding {}", config.listen))?,
    };
    let addresses: Vec<SocketAddr> = server.addrs();
    Ok((server.run(), addresses))
}

/// `payload`, cut off with an error when it is not complete by `timeout` from now.
fn timed_payload(payload: Payload, timeout: Duration) -> Payload {
    let deadline = tokio::time::Instant::now() + timeout;
    let stream = futures::stream::unfold(Some(payload), move |state| async move {
        let mut payload = state?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(payload))),
            Ok(None) => None,
            Err(_) => Some((
                Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the body did not arrive in time",
                ))),
                None,
            )),
        }
    });
    let stream: std::pin::Pin<Box<dyn futures::Stream<Item = Result<web::Bytes, PayloadError>>>> =
        Box::pin(stream);
    Payload::from(stream)
}

/// How many connections each HTTP worker may hold: the process's file descriptors (its soft
/// limit raised to the hard one) less a reserve for the store, shared among the workers. Past
/// it a worker stops accepting until connections close, so running out of descriptors refuses
/// clients instead of failing the store (which needs descriptors for its journal and tables).
pub(crate) fn connections_per_worker(workers: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    let descriptors = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            1024
        } else {
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
            limit.rlim_cur.min(1 << 20) as usize
        }
    };
    let per_worker = descriptors.saturating_sub(STORE_FILE_RESERVE) / workers.max(1);
    let per_worker = per_worker.max(8);
    tracing::info!(descriptors, per_worker, "connection limit");
    per_worker
}
