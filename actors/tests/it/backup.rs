//! `rewardsd backup` under load and `rewardsd restore`: the copy is taken while purchases go
//! on, the restored store passes the audit, and it serves every purchase acknowledged before the
//! backup began, as it was answered.

use std::process::Command;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::support::{audit_wallet, basket, world, Server, World, ADMIN_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_to_a_whole_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("live"), "sync");
    let api = server.client();
    let w = world(&api, "EUR").await;
    w.offer(json!({"name": "10%", "goal": "spend", "award": {"kind": "percent", "percent": "10"}, "redeem": "instant"}))
        .await;
    let mut wallets = Vec::new();
    for i in 0..6 {
        let contact = w.contact(json!({"code": format!("B-{i}")})).await;
        let wallet = contact["wallet_id"].as_str().unwrap().to_string();
        w.topup(&wallet, "30.00").await;
        wallets.push(wallet);
    }
    // Purchases on four connections until the backup is done.
    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut clients = Vec::new();
    for client in 0..4 {
        let w = World {
            api: api.clone(),
            ..w.clone()
        };
        let acknowledged = acknowledged.clone();
        let running = running.clone();
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while running.load(std::sync::atomic::Ordering::Acquire) {
                let mut body = basket(json!({"contact_code": format!("B-{}", n % 6)}), "2.50");
                body["external_reference"] = json!(format!("c{client}-n{n}"));
                if n % 3 == 0 {
                    body["spend"] = json!({"amount": "1.00"});
                }
                let answer = w.purchase(body).await;
                if answer.status == 201 {
                    acknowledged.lock().push(answer.body);
                }
                n += 1;
            }
        }));
    }
    while acknowledged.lock().len() < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = acknowledged.lock().clone();
    let copy = dir.path().join("copy");
    let output = Command::new(env!("CARGO_BIN_EXE_rewardsd"))
        .args(["backup", "--server", &server.base, "--to"])
        .arg(&copy)
        .env("REWARDS_ADMIN_KEY", ADMIN_KEY)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stats: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(stats["records"].as_u64().unwrap() > 0, "{stats}");
    println!("backup under load: {stats}");
    running.store(false, std::sync::atomic::Ordering::Release);
    for client in clients {
        client.await.unwrap();
    }
    let after = acknowledged.lock().len();
    assert!(after > before.len(), "purchases went on during the backup");
    // A second backup into the same directory is refused: it is not empty.
    let again = api
        .post(
            "/v1/backups",
            ADMIN_KEY,
            &json!({"to": copy.display().to_string()}),
        )
        .await;
    again.expect_error(409, "already_exists");
    api.post("/v1/backups", &w.key, &json!({"to": "/tmp/x"}))
        .await
        .expect_error(403, "forbidden");
    api.post("/v1/backups", ADMIN_KEY, &json!({"to": "relative/dir"}))
        .await
        .expect_error(400, "validation_failed");
    server.stop();

    // A store directory that is not a whole backup (no marker, written last) is refused.
    let refused = Command::new(env!("CARGO_BIN_EXE_rewardsd"))
        .args(["restore", "--from"])
        .arg(dir.path().join("live"))
        .arg("--data-dir")
        .arg(dir.path().join("not-restored"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a whole backup"));
    assert!(!dir.path().join("not-restored").exists());

    // Restored, it passes the audit (restore runs it), and serves what was acknowledged.
    let restored = dir.path().join("restored");
    let output = Command::new(env!("CARGO_BIN_EXE_rewardsd"))
        .args(["restore", "--from"])
        .arg(&copy)
        .arg("--data-dir")
        .arg(&restored)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("clean: no defect found"), "{report}");
    let server = Server::start(&restored, "sync");
    let w = World {
        api: server.client(),
        ..w.clone()
    };
    for purchase in &before {
        let id = purchase["id"].as_str().unwrap();
        let stored = w.api.get(&format!("/v1/purchases/{id}"), &w.key).await;
        let stored = stored.expect(200);
        assert_eq!(stored["awards"], purchase["awards"], "{id}");
        assert_eq!(stored["spend"], purchase["spend"], "{id}");
    }
    for wallet in &wallets {
        audit_wallet(&w, wallet).await;
    }
    server.stop();
}
