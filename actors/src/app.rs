//! The shared state of a running server: configuration, store, registries, key index, wallet
//! directory and idempotency table. Handlers reach it through `web::Data<App>`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rewards_storage::{Space, Store, WriteSet};

use crate::schema::ConfigRecord;
use tokio::sync::oneshot;

use crate::auth::KeyIndex;
use crate::codes::OneTimeCodes;
use crate::config::Config;
use crate::error::Failure;
use crate::idempotency::IdempotencyTable;
use crate::identities::Identities;
use crate::registry::Registry;
use crate::router::RouterDirectory;
use crate::scheme_codes::SchemeCodes;
use crate::wallets::WalletDirectory;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub registry: Registry,
    pub keys: KeyIndex,
    pub wallets: WalletDirectory,
    pub routers: RouterDirectory,
    pub idempotency: Arc<IdempotencyTable>,
    pub identities: Identities,
    /// Live one-time passwords and dynamic wallet codes.
    pub codes: OneTimeCodes,
    pub scheme_codes: SchemeCodes,
    /// The customer events engine's mappings, by source.
    pub mappings: crate::ingest::Mappings,
    /// On a cluster's owner: the token its followers present with a request they forward, so
    /// that the client address they pass on (which picks a purchase's TAP) is believed.
    pub forward_token: std::sync::OnceLock<String>,
    /// On a cluster's owner: the window in which its lease is held. The API answers only
    /// inside it.
    pub lease: std::sync::OnceLock<Arc<crate::cluster::lease::Window>>,
    /// The partition this server's data is (the only one without a cluster): the ids of
    /// businesses, keys and processors and the secrets of keys are drawn in it.
    pub placement: crate::cluster::Placement,
    /// On a cluster's owner: where requests for the other partitions go, and the map of the
    /// partitions' owners (`GET /cluster`).
    pub front: std::sync::OnceLock<Arc<crate::cluster::forward::Front>>,
    ready: AtomicBool,
}

impl App {
    pub fn new(config: Config, store: Store, wallets: WalletDirectory) -> App {
        // Routers share the wallet actors' arbiters: both are short, non-blocking handlers.
        let routers = RouterDirectory::new(
            wallets.arbiters(),
            config.router_mailbox_capacity,
            std::time::Duration::from_secs(config.wallet_idle_seconds),
        );
        let placement = config
            .cluster
            .as_ref()
            .map_or(crate::cluster::Placement::SINGLE, |cluster| {
                cluster.placement()
            });
        App {
            routers,
            placement,
            front: std::sync::OnceLock::new(),
            config,
            store,
            registry: Registry::default(),
            keys: KeyIndex::default(),
            wallets,
            idempotency: Arc::new(IdempotencyTable::default()),
            identities: Identities::default(),
            codes: OneTimeCodes::default(),
            scheme_codes: SchemeCodes::default(),
            mappings: crate::ingest::Mappings::default(),
            forward_token: std::sync::OnceLock::new(),
            lease: std::sync::OnceLock::new(),
            ready: AtomicBool::new(false),
        }
    }

    /// The app with the customer events engine's mappings.
    pub fn with_mappings(mut self, mappings: crate::ingest::Mappings) -> App {
        self.mappings = mappings;
        self
    }

    /// Ready to take API requests: started, and on a cluster's owner, inside its lease.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.lease.get().is_none_or(|lease| lease.holds())
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Writes a set through the group-commit writer and waits, without blocking the thread, until
    /// it is durable.
    pub async fn write(&self, set: WriteSet) -> Result<(), Failure> {
        let (tx, rx) = oneshot::channel();
        let _ = self.store.submit(
            set,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        match rx.await {
            Ok(result) => result.map_err(Failure::from),
            Err(_) => Err(Failure::Internal("the writer dropped a write".into())),
        }
    }
}

impl App {
    /// Writes one configuration record and waits until it is durable.
    pub async fn write_config(&self, key: Vec<u8>, record: &ConfigRecord) -> Result<(), Failure> {
        let mut set = WriteSet::new();
        set.put(Space::Config, key, record);
        self.write(set).await
    }
}

pub type SharedApp = Arc<App>;
