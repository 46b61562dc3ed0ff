//! A real `rewardsd` as a child process on a loopback port, a small JSON client for it, and a
//! webhook receiver.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use reqwest::StatusCode;
use serde_json::{json, Value};

pub const ADMIN_KEY: &str = "rk_test_operator_key";

pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Starts `rewardsd` on `dir` and waits until it listens.
    pub fn start(dir: &Path, durability: &str) -> Server {
        Server::start_with(dir, durability, None)
    }

    /// Starts `rewardsd` with a config file.
    pub fn start_with(dir: &Path, durability: &str, config: Option<&Path>) -> Server {
        Server::start_custom(dir, durability, config, &[], None)
    }

    /// Starts `rewardsd` with a config file, extra environment variables and, if given, a
    /// limit on its open files (as `ulimit -n` would set).
    pub fn start_custom(
        dir: &Path,
        durability: &str,
        config: Option<&Path>,
        env: &[(&str, &str)],
        max_files: Option<u64>,
    ) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rewardsd"));
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        // Quiet unless the caller asks for more (its variables come after, and win).
        command.env("RUST_LOG", "warn");
        for (name, value) in env {
            command.env(name, value);
        }
        if let Some(files) = max_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the child about to exec.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: files,
                        rlim_max: files,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--durability",
                durability,
                "--data-dir",
            ])
            .arg(dir)
            .env("REWARDS_ADMIN_KEY", ADMIN_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("rewardsd starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("rewardsd printed its address before exiting")
                .expect("stdout is readable");
            if let Some(address) = line.strip_prefix("rewardsd listening on ") {
                break address.trim().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    /// Waits for the process to end by itself (at most `timeout`) and answers its exit code.
    pub fn wait_exit(mut self, timeout: Duration) -> Option<i32> {
        let started = std::time::Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL: the process ends at once, as in a crash.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM and wait: a clean shutdown must exit 0.
    pub fn stop(mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "rewardsd exited with {status} on SIGTERM");
    }

    pub fn client(&self) -> Api {
        Api::new(&self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has ended by itself.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// The exit status, once the process has exited.
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .expect("try_wait")
            .and_then(|s| s.code())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
}

/// A response: status, body as JSON (Null when empty) and whether it was an idempotent replay.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub body: Value,
    pub replay: bool,
    pub retry_after: Option<String>,
    pub content_type: String,
}

impl Response {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {}",
            self.body
        );
        &self.body
    }

    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "unexpected answer: {}",
            self.body
        );
        assert_eq!(self.content_type, "application/problem+json");
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Response, reqwest::Error> {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let replay = header("idempotent-replay").as_deref() == Some("true");
        let retry_after = header("retry-after");
        let content_type = header("content-type").unwrap_or_default();
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Ok(Response {
            status,
            body,
            replay,
            retry_after,
            content_type,
        })
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Response {
        self.try_post(path, key, body).await.expect("request")
    }

    /// A POST that may meet a server being killed: the failure to connect is the caller's.
    pub async fn try_post(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> Result<Response, reqwest::Error> {
        self.send(
            reqwest::Method::POST,
            path,
            Some(key),
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
    }

    pub async fn put(&self, path: &str, key: &str, body: &Value) -> Response {
        self.send(
            reqwest::Method::PUT,
            path,
            Some(key),
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
        .expect("request")
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.send(reqwest::Method::GET, path, Some(key), None)
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str, key: &str) -> Response {
        self.send(reqwest::Method::DELETE, path, Some(key), None)
            .await
            .expect("request")
    }

    /// Changes business settings, which must succeed.
    pub async fn request_settings(&self, business: &str, key: &str, patch: Value) -> Value {
        self.send(
            reqwest::Method::PATCH,
            &format!("/v1/businesses/{business}/settings"),
            Some(key),
            Some(serde_json::to_vec(&patch).unwrap()),
        )
        .await
        .expect("request")
        .expect(200)
        .clone()
    }

    /// Every item of a paged list.
    pub async fn all(&self, path: &str, key: &str) -> Vec<Value> {
        self.all_in_pages(path, key, 1000).await
    }

    /// Every item of a paged list, read `limit` at a time.
    pub async fn all_in_pages(&self, path: &str, key: &str, limit: usize) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
                None => format!("{path}{sep}limit={limit}"),
            };
            let page = self.get(&url, key).await;
            let body = page.expect(200);
            items.extend(body["items"].as_array().unwrap().iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
    }
}

/// A business with a business key and a POS key.
#[derive(Clone)]
pub struct World {
    pub api: Api,
    pub business: String,
    pub key: String,
    pub pos_key: String,
}

pub async fn world(api: &Api, currency: &str) -> World {
    let business = api
        .post(
            "/v1/businesses",
            ADMIN_KEY,
            &json!({"name": "Shop", "currency": currency}),
        )
        .await;
    let business = business.expect(201)["id"].as_str().unwrap().to_string();
    let key = api
        .post(
            "/v1/keys",
            ADMIN_KEY,
            &json!({"role": "business", "business_id": business}),
        )
        .await;
    let key = key.expect(201)["key"].as_str().unwrap().to_string();
    let pos = api
        .post(
            "/v1/keys",
            ADMIN_KEY,
            &json!({"role": "pos", "business_id": business}),
        )
        .await;
    let pos_key = pos.expect(201)["key"].as_str().unwrap().to_string();
    World {
        api: api.clone(),
        business,
        key,
        pos_key,
    }
}

impl World {
    pub async fn contact(&self, body: Value) -> Value {
        self.api
            .post(
                &format!("/v1/businesses/{}/contacts", self.business),
                &self.key,
                &body,
            )
            .await
            .expect(201)
            .clone()
    }

    pub async fn offer(&self, body: Value) -> Value {
        self.api
            .post(
                &format!("/v1/businesses/{}/offers", self.business),
                &self.key,
                &body,
            )
            .await
            .expect(201)
            .clone()
    }

    /// A merchant of the business, with a TAP of its own; answers the merchant's id.
    pub async fn merchant_with_tap(&self, body: Value, tap_code: &str) -> String {
        let merchant = self
            .api
            .post(
                &format!("/v1/businesses/{}/merchants", self.business),
                &self.key,
                &body,
            )
            .await
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.api
            .post(
                &format!("/v1/businesses/{}/taps", self.business),
                &self.key,
                &json!({"code": tap_code, "merchant_id": merchant}),
            )
            .await
            .expect(201);
        merchant
    }

    pub async fn topup(&self, wallet: &str, amount: &str) -> Value {
        self.api
            .post(
                &format!("/v1/wallets/{wallet}/topups"),
                &self.key,
                &json!({"amount": amount}),
            )
            .await
            .expect(201)
            .clone()
    }

    pub async fn purchase(&self, body: Value) -> Response {
        self.api.post("/v1/purchases", &self.pos_key, &body).await
    }

    /// A purchase by the POS key that may go unanswered (the server stopped or was killed).
    pub async fn try_purchase(&self, body: &Value) -> Result<Response, reqwest::Error> {
        self.api
            .try_post("/v1/purchases", &self.pos_key, body)
            .await
    }

    pub async fn wallet(&self, wallet: &str) -> Value {
        self.api
            .get(&format!("/v1/wallets/{wallet}"), &self.key)
            .await
            .expect(200)
            .clone()
    }
}

/// A purchase body of one line.
pub fn basket(identity: Value, total: &str) -> Value {
    json!({
        "identity": identity,
        "lines": [{"sku": "ITEM", "quantity": "1", "unit_price": total, "tax_rate": "0"}],
    })
}

/// Checks a wallet against its journal: replaying the entries gives the wallet's balances, and
/// every entry's `balances_after` is the running result.
pub async fn audit_wallet(world: &World, wallet_id: &str) {
    let wallet = world.wallet(wallet_id).await;
    let mut entries = world
        .api
        .all(&format!("/v1/wallets/{wallet_id}/journal"), &world.key)
        .await;
    entries.reverse();
    let (mut commerce, mut open, mut reserved) = (0i64, 0i64, 0i64);
    for entry in &entries {
        let amount = cents(&entry["amount"]);
        match entry["kind"].as_str().unwrap() {
            "award" => commerce += amount,
            "redeem" => {
                commerce -= amount;
                open += amount
            }
            "spend" | "payout" => open -= amount,
            "topup" | "refund" => open += amount,
            "expire" => commerce -= amount,
            "hold" => reserved += amount,
            "release" | "capture" => reserved -= amount,
            "clawback" => {}
            other => panic!("unexpected entry kind {other}"),
        }
        if entry["kind"] != "clawback" {
            let after = &entry["balances_after"];
            assert_eq!(
                (
                    cents(&after["commerce"]),
                    cents(&after["open"]),
                    cents(&after["reserved"])
                ),
                (commerce, open, reserved),
                "entry {entry} does not follow from the ones before it"
            );
        } else {
            let after = &entry["balances_after"];
            commerce = cents(&after["commerce"]);
            open = cents(&after["open"]);
        }
    }
    let balances = &wallet["balances"];
    assert_eq!(
        (
            cents(&balances["commerce"]),
            cents(&balances["open"]),
            cents(&balances["reserved"])
        ),
        (commerce, open, reserved),
        "wallet {wallet_id} does not equal its ledger"
    );
}

/// Every acknowledged purchase is there, as it was answered: its awards and its spend.
pub async fn check_purchases_as_answered(world: &World, acknowledged: &[Value]) {
    for answer in acknowledged {
        let id = answer["id"].as_str().unwrap();
        let stored = world
            .api
            .get(&format!("/v1/purchases/{id}"), &world.key)
            .await;
        let stored = stored.expect(200);
        assert_eq!(stored["awards"], answer["awards"], "purchase {id}");
        assert_eq!(stored["spend"], answer["spend"], "purchase {id}");
    }
}

/// A money string with two decimals as cents.
pub fn cents(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a money string: {value}"));
    let negative = text.starts_with('-');
    let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    let magnitude: i64 = digits.parse().unwrap();
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on loopback: answers the statuses in `script` in turn (then 200) and
/// keeps every request.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(script: Vec<u16>) -> Receiver {
        Receiver::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), script)
    }

    pub fn start_on(listener: TcpListener, script: Vec<u16>) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let kept = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let kept = kept.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    loop {
                        let mut buffer = Vec::new();
                        let mut chunk = [0u8; 4096];
                        // Headers, then the body by its content-length.
                        let end = loop {
                            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                                break at + 4;
                            }
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                        let headers: Vec<(String, String)> = head
                            .lines()
                            .skip(1)
                            .filter_map(|l| l.split_once(':'))
                            .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
                            .collect();
                        let length: usize = headers
                            .iter()
                            .find(|(n, _)| n == "content-length")
                            .map_or(0, |(_, v)| v.parse().unwrap());
                        while buffer.len() < end + length {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = buffer[end..end + length].to_vec();
                        kept.lock().push(Received { headers, body });
                        let status = script.lock().next().unwrap_or(200);
                        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver {
            url,
            received,
            task,
        }
    }

    /// Waits until `count` requests came (time only bounds a failing test).
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let received = self.received.lock().clone();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} deliveries came",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
