//! A real Prometheus scrapes a running `rewardsd` under traffic and answers, from its own
//! HTTP API, the request rate, the purchase latency p99 and the group commit's batch size; it
//! loads `configs/prometheus/alerts.yml`, and every query of `configs/grafana/rewards.json`
//! runs. Skipped, with a message, where the `prometheus` package is not installed (`.ci/run`
//! installs Debian's).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{basket, world, Server};

/// The Prometheus process, killed when the test ends however it ends.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn configs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET of Prometheus's API, as JSON; `None` while it does not answer.
async fn get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    params: &[(&str, &str)],
) -> Option<Value> {
    client
        .get(format!("{base}{path}"))
        .query(params)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// One instant query; `None` until Prometheus answers it with at least one sample.
async fn query(client: &reqwest::Client, base: &str, expr: &str) -> Option<f64> {
    let answer = get(client, base, "/api/v1/query", &[("query", expr)]).await?;
    assert_eq!(answer["status"], "success", "{expr}: {answer}");
    let first = answer["data"]["result"].as_array()?.first()?.clone();
    first["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_rates_latencies_and_batch_sizes() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        println!(
            "skipped: the prometheus package is not installed here (apt-get install prometheus)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), "sync");
    let target = server.base.trim_start_matches("http://").to_string();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: rewards\n    static_configs:\n      - targets: ['{target}']\n",
            configs().join("prometheus/alerts.yml").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );

    let api = server.client();
    let w = world(&api, "EUR").await;
    w.offer(json!({"name": "10%", "goal": "spend", "award": {"kind": "percent", "percent": "10"}, "redeem": "instant"}))
        .await;
    for i in 0..20 {
        w.contact(json!({"code": format!("P-{i}")})).await;
    }
    // Traffic until Prometheus has seen enough of it (time only bounds a failing test).
    let traffic = {
        let w = crate::support::World {
            api: api.clone(),
            business: w.business.clone(),
            key: w.key.clone(),
            pos_key: w.pos_key.clone(),
        };
        tokio::spawn(async move {
            for n in 0.. {
                let body = basket(json!({"contact_code": format!("P-{}", n % 20)}), "5.00");
                if w.try_purchase(&body).await.is_err() {
                    break;
                }
            }
        })
    };
    let client = reqwest::Client::new();
    let wanted = [
        ("request rate", "sum(rate(rewards_http_requests_total[15s]))"),
        (
            "purchase latency p99",
            "histogram_quantile(0.99, sum by (le) (rate(rewards_http_request_seconds_bucket{endpoint=\"/v1/purchases\"}[15s])))",
        ),
        (
            "group-commit batch size",
            "sum(rate(rewards_commit_batch_sets_sum[15s])) / sum(rate(rewards_commit_batch_sets_count[15s]))",
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    for (name, expr) in wanted {
        loop {
            match query(&client, &base, expr).await {
                Some(value) if value.is_finite() && value > 0.0 => {
                    println!("prometheus: {name} = {value}");
                    seen.push(value);
                    break;
                }
                _ => {
                    assert!(
                        Instant::now() < deadline,
                        "prometheus never answered {name}"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
    traffic.abort();
    // The p99 of a purchase on loopback is well under the largest bucket.
    assert!(seen[1] < 2.5, "p99 {}", seen[1]);
    assert!(seen[2] >= 1.0, "a commit holds at least one write set");

    // The alert rules loaded, and none is firing on a healthy server.
    let rules = get(&client, &base, "/api/v1/rules", &[]).await.unwrap();
    let loaded: Vec<&str> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(loaded.contains(&"RewardsStorePoisoned"), "{loaded:?}");
    assert!(loaded.contains(&"RewardsOverloaded"), "{loaded:?}");
    for rule in rules["data"]["groups"][0]["rules"].as_array().unwrap() {
        assert_ne!(rule["state"], "firing", "{rule}");
        assert_eq!(rule["health"], "ok", "{rule}");
    }
    // Every query of the dashboard is valid PromQL over these metrics.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(configs().join("grafana/rewards.json")).unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let answer = get(&client, &base, "/api/v1/query", &[("query", expr)])
                .await
                .unwrap();
            assert_eq!(
                answer["status"], "success",
                "{}: {expr}: {answer}",
                panel["title"]
            );
        }
    }
    server.stop();
}
