//! Logs an operator can use: `--log-format json` writes one JSON object per line, a refusal is
//! logged once at debug with its code, and a storage fault at error saying what it means for
//! the data.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{Api, ADMIN_KEY};

/// A started server: the process, its address once it listens, and its stderr as it is read.
type Started = (
    std::process::Child,
    Option<String>,
    std::thread::JoinHandle<String>,
);

/// Starts `rewardsd --log-format json` with debug logs.
fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Started {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rewardsd"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--durability",
            "sync",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(dir)
        .env("REWARDS_ADMIN_KEY", ADMIN_KEY)
        .env(
            "RUST_LOG",
            "debug,fjall=warn,lsm_tree=warn,actix=warn,h2=warn,mio=warn",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("rewardsd starts");
    // Read as it comes, so a full pipe never blocks the server.
    let mut stderr = child.stderr.take().expect("piped stderr");
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = lines.find_map(|line| {
        line.ok()?
            .strip_prefix("rewardsd listening on ")
            .map(|a| a.trim().to_string())
    });
    std::thread::spawn(move || for _ in lines {});
    (child, address, logs)
}

/// Everything the process wrote to stderr, once it has ended; each line must be JSON.
fn json_lines(logs: std::thread::JoinHandle<String>) -> Vec<Value> {
    let text = logs
        .join()
        .expect("the stderr reader ends with the process");
    text.lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_tell_refusals_at_debug_and_faults_at_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address, logs) = start(dir.path(), &[]);
    let api = Api::new(&address.expect("the server listens"));
    let refused = api
        .post("/v1/businesses", ADMIN_KEY, &json!({"currency": "EUR"}))
        .await;
    refused.expect_error(400, "validation_failed");
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert!(child.wait().unwrap().success());
    let lines = json_lines(logs);
    assert!(
        lines.iter().any(|l| l["message"] == "listening"),
        "{lines:?}"
    );
    let refusals: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request refused")
        .collect();
    assert_eq!(refusals.len(), 1, "{lines:?}");
    assert_eq!(refusals[0]["level"], "DEBUG");
    assert_eq!(refusals[0]["code"], "validation_failed");
    assert_eq!(refusals[0]["status"], 400);

    // The first commit fails as a broken disk's would: the process stops, and says at error
    // level that nothing acknowledged was lost.
    let broken = tempfile::tempdir().unwrap();
    let (mut child, address, logs) = start(broken.path(), &[("REWARDS_FAIL_COMMIT_AFTER", "0")]);
    if let Some(address) = address {
        let api = Api::new(&address);
        let _ = api
            .send(
                reqwest::Method::POST,
                "/v1/businesses",
                Some(ADMIN_KEY),
                Some(serde_json::to_vec(&json!({"name": "Shop", "currency": "EUR"})).unwrap()),
            )
            .await;
    }
    let mut status = None;
    for _ in 0..300 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status.and_then(|s| s.code()), Some(70));
    let lines = json_lines(logs);
    let fault = lines
        .iter()
        .find(|l| {
            l["level"] == "ERROR"
                && l["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("storage failed")
        })
        .unwrap_or_else(|| panic!("no fault logged: {lines:?}"));
    assert!(
        fault["message"]
            .as_str()
            .unwrap()
            .contains("nothing acknowledged was lost"),
        "{fault}"
    );
}
