//! `rewardsd demo`: the server starts with its demo world, prints keys and commands, and the
//! first printed command, a purchase, is awarded.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_commands_that_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rewardsd"))
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("demo"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("rewardsd demo starts");
    let stdout = child.stdout.take().unwrap();
    // Until the three commands are printed (or the process ends, which fails below).
    let commands: Vec<String> = tokio::task::spawn_blocking(move || {
        let mut commands = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.starts_with("curl ") {
                commands.push(line);
                if commands.len() == 3 {
                    break;
                }
            }
        }
        commands
    })
    .await
    .unwrap();
    assert_eq!(commands.len(), 3, "the demo printed {commands:?}");
    // curl -s -H 'Authorization: Bearer KEY' BASE/v1/purchases -d 'BODY'
    let purchase = &commands[0];
    let key = purchase
        .split("Bearer ")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap();
    let url = purchase
        .split("' ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap();
    let body: Value = serde_json::from_str(
        purchase
            .split("-d '")
            .nth(1)
            .unwrap()
            .trim_end_matches('\''),
    )
    .unwrap();
    let base = url.trim_end_matches("/v1/purchases");
    let api = Api::new(base);
    let answer = api.post("/v1/purchases", key, &body).await;
    let event = answer.expect(201);
    let awards = event["awards"].as_array().unwrap();
    assert!(awards.len() >= 3, "{event}");
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert!(child.wait().unwrap().success());
}
