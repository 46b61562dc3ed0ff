//! Faults of the machine under the server: a failed fsync stops writes and the process (exit 70)
//! without losing anything acknowledged, and the server starts cleanly once the fault is gone;
//! running out of file descriptors refuses connections, never the store.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{basket, world, Server, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_server_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    // The commit after 40 good ones fails as a broken disk would.
    let server = Server::start_custom(
        dir.path(),
        "sync",
        None,
        &[("REWARDS_FAIL_COMMIT_AFTER", "40")],
        None,
    );
    let w = world(&server.client(), "EUR").await;
    w.contact(json!({"code": "C-1"})).await;
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for n in 0..200 {
        let mut body = basket(json!({"contact_code": "C-1"}), "1.00");
        body["external_reference"] = json!(format!("F-{n}"));
        match w.try_purchase(&body).await {
            Ok(answer) if answer.status == 201 => acknowledged.push(answer.body),
            // Not acknowledged: an error, or the connection went with the process.
            Ok(_) | Err(_) => {
                refused += 1;
                break;
            }
        }
    }
    assert!(refused > 0, "the injected failure never came");
    assert!(!acknowledged.is_empty());
    // The process stops itself, non-zero, rather than running on a broken store.
    let code = server.wait_exit(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(70),
        "rewardsd did not exit 70 after a failed commit"
    );

    // Without the fault it starts cleanly, ready, with every acknowledged purchase.
    restarts_with_everything_acknowledged(Server::start(dir.path(), "sync"), w, &acknowledged)
        .await;
}

/// The restarted `server` is ready, has every acknowledged purchase as it was answered, and
/// takes writes again.
async fn restarts_with_everything_acknowledged(server: Server, w: World, acknowledged: &[Value]) {
    let w = World {
        api: server.client(),
        ..w
    };
    w.api.get("/health/ready", &w.key).await.expect(200);
    for answer in acknowledged {
        let id = answer["id"].as_str().unwrap();
        let stored = w.api.get(&format!("/v1/purchases/{id}"), &w.key).await;
        assert_eq!(stored.expect(200)["amounts"], answer["amounts"]);
    }
    w.purchase(basket(json!({"contact_code": "C-1"}), "1.00"))
        .await
        .expect(201);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_refuses_connections_not_the_store() {
    let dir = tempfile::tempdir().unwrap();
    // 320 descriptors: the store's reserve, and a few dozen connections per worker.
    let server = Server::start_custom(dir.path(), "sync", None, &[], Some(320));
    let w = world(&server.client(), "EUR").await;
    w.contact(json!({"code": "C-1"})).await;
    let address = server.base.trim_start_matches("http://").to_string();
    // A connection open before the flood: the requests below go over it, so they test the
    // store writing while the descriptors are full of connections, not how fast the flood
    // drains (which depends on the header timeout and the machine's load).
    let mut held = HeldConnection::open(&address);
    // Far more idle connections than the server may hold: the surplus waits in the backlog
    // (or is refused by the kernel) instead of taking descriptors the store needs.
    let mut idle = Vec::new();
    for _ in 0..400 {
        if let Ok(stream) = std::net::TcpStream::connect(&address) {
            idle.push(stream);
        }
    }
    // The store keeps writing through it all.
    for n in 0..20 {
        let mut body = basket(json!({"contact_code": "C-1"}), "1.00");
        body["external_reference"] = json!(format!("D-{n}"));
        let (status, answer) = held.post("/v1/purchases", &w.pos_key, &body);
        assert_eq!(status, 201, "{answer}");
    }
    drop(idle);
    w.api.get("/health/ready", &w.key).await.expect(200);
    server.stop();
}

/// One HTTP/1.1 connection kept open, its requests sent one after another over it.
struct HeldConnection {
    reader: std::io::BufReader<std::net::TcpStream>,
    address: String,
}

impl HeldConnection {
    fn open(address: &str) -> HeldConnection {
        let stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        HeldConnection {
            reader: std::io::BufReader::new(stream),
            address: address.to_string(),
        }
    }

    /// The answer's status and body.
    fn post(&mut self, path: &str, key: &str, body: &Value) -> (u16, String) {
        use std::io::{BufRead, Read, Write};
        let body = serde_json::to_vec(body).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.address,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {status_line:?}"));
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut answer = vec![0; length];
        self.reader.read_exact(&mut answer).unwrap();
        (status, String::from_utf8_lossy(&answer).into_owned())
    }
}

/// A small tmpfs mounted for one test and unmounted after it.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None where this process may not mount (not root): the test then says why it is skipped.
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk { dir })
    }

    fn grow(&self, megabytes: u32) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}m")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remounting the disk larger failed");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_writes_and_loses_nothing_acknowledged() {
    let Some(disk) = SmallDisk::mount(6) else {
        eprintln!("skipped: mounting a small tmpfs needs root (CAP_SYS_ADMIN)");
        return;
    };
    let data = disk.dir.path().join("data");
    let server = Server::start_custom(&data, "sync", None, &[], None);
    let w = world(&server.client(), "EUR").await;
    w.contact(json!({"code": "C-1"})).await;
    // Purchases with many lines fill the disk in a few seconds.
    let lines: Vec<Value> = (0..40)
        .map(|i| json!({"sku": format!("SKU-{i:04}-{}", "x".repeat(40)), "quantity": "1", "unit_price": "0.10", "tax_rate": "0"}))
        .collect();
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for n in 0..100_000 {
        let body = json!({
            "identity": {"contact_code": "C-1"},
            "external_reference": format!("FULL-{n}"),
            "lines": lines,
        });
        match w.try_purchase(&body).await {
            Ok(answer) if answer.status == 201 => acknowledged.push(answer.body),
            Ok(answer) => {
                refused = Some(format!("{} {}", answer.status, answer.body));
                break;
            }
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    let refused = refused.expect("the disk never filled");
    assert!(
        !acknowledged.is_empty(),
        "nothing fit on the disk: {refused}"
    );
    // Writes stop truthfully: readiness is 503 until the process exits non-zero.
    if let Ok(ready) = w
        .api
        .send(reqwest::Method::GET, "/health/ready", None, None)
        .await
    {
        assert_eq!(ready.status, 503, "ready while the disk is full");
    }
    let code = server.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(70), "rewardsd did not exit 70 on a full disk");

    // With room again it starts cleanly with every acknowledged purchase and takes writes.
    disk.grow(256);
    let server = Server::start_custom(&data, "sync", None, &[], None);
    restarts_with_everything_acknowledged(server, w, &acknowledged).await;
}
