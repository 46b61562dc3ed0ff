//! The load generator against a real server: it sets up its world, sends traffic in each mode,
//! reports what the contract of its JSON report promises, and its money check passes.

use std::time::Duration;

use rewards_loadtest::Args;

use crate::support::{Server, ADMIN_KEY};

fn args(target: &str, json: &std::path::Path) -> Args {
    Args {
        target: target.to_string(),
        admin_key: ADMIN_KEY.to_string(),
        contacts: 200,
        connections: 8,
        rate: None,
        duration: Duration::from_millis(1500),
        batch_size: 0,
        spend_share: 0.5,
        read_share: 0.1,
        offers: 10,
        seed: 42,
        json: Some(json.to_path_buf()),
        no_check: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_reports_and_checks_the_money() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sync");
    let json = dir.path().join("report.json");
    let closed = args(&server.base, &json);
    let batched = Args {
        batch_size: 10,
        ..args(&server.base, &json)
    };
    let open = Args {
        rate: Some(200.0),
        ..args(&server.base, &json)
    };
    for (mode, run) in [("closed", closed), ("batched", batched), ("open", open)] {
        let report = rewards_loadtest::run(run).await.expect("the run completes");
        assert_eq!(report.money_mismatches(), 0, "{mode}");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(
            written,
            report.to_json(),
            "{mode}: --json writes the report"
        );
        assert!(
            written["requests_per_second"].as_f64().unwrap() > 0.0,
            "{mode}"
        );
        assert!(
            written["events_per_second"].as_f64().unwrap() > 0.0,
            "{mode}"
        );
        assert!(written["errors"].is_object(), "{mode}");
        for field in ["p50", "p90", "p99", "p999", "max"] {
            assert!(
                written["latency_ms"][field].as_f64().unwrap() > 0.0,
                "{mode} {field}"
            );
        }
        assert!(
            written["money_check"]["wallets_checked"].as_u64().unwrap() > 0,
            "{mode}"
        );
        let errors = written["errors"].as_object().unwrap();
        assert!(
            errors.keys().all(|code| code != "transport"),
            "{mode}: {errors:?}"
        );
    }
    server.stop();
}
