//! A server in this process on loopback, with a business and its ten offers, for the benchmarks
//! and probes that go through HTTP.

use std::net::TcpListener;
use std::time::Duration;

use rewards_actors::config::Config;
use rewards_storage::Durability;
use serde_json::{json, Value};

const ADMIN: &str = "rk_bench_operator";

/// A running server (durability `sync`, on a temporary data directory kept while this lives),
/// its business and that business's key.
pub struct Served {
    pub port: u16,
    pub base: String,
    pub business: String,
    pub key: String,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Starts the server on a thread of its own, waits until it answers, and makes a business
    /// in EUR with [`crate::http_offers`].
    pub async fn start(client: &reqwest::Client) -> anyhow::Result<Served> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            listen: format!("127.0.0.1:{port}").parse()?,
            durability: Durability::Sync,
            ..Config::default()
        };
        std::thread::spawn(move || rewards_actors::server::run(config, Some(ADMIN.into())));
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if client
                .get(format!("{base}/health/ready"))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let business = post(
            client,
            &format!("{base}/v1/businesses"),
            ADMIN,
            json!({"name": "bench", "currency": "EUR"}),
        )
        .await?;
        let business = business["id"].as_str().unwrap_or_default().to_string();
        let key = post(
            client,
            &format!("{base}/v1/keys"),
            ADMIN,
            json!({"role": "business", "business_id": business}),
        )
        .await?;
        let key = key["key"].as_str().unwrap_or_default().to_string();
        for offer in crate::http_offers() {
            post(
                client,
                &format!("{base}/v1/businesses/{business}/offers"),
                &key,
                offer,
            )
            .await?;
        }
        Ok(Served {
            port,
            base,
            business,
            key,
            _dir: dir,
        })
    }

    /// A contact of the business, by its code.
    pub async fn contact(&self, client: &reqwest::Client, code: &str) -> anyhow::Result<()> {
        let url = format!("{}/v1/businesses/{}/contacts", self.base, self.business);
        post(client, &url, &self.key, json!({ "code": code })).await?;
        Ok(())
    }
}

/// POSTs `body` with `key`; the answer's JSON, or an error naming the URL and the status.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client.post(url).bearer_auth(key).json(&body).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    Ok(response.json().await?)
}
