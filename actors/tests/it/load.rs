//! The load generator against a real server: it sets up its world, sends traffic in each mode
//! (processor traffic too), reports what the contract of its JSON report promises, and its money
//! check passes.

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
        warmup: Duration::ZERO,
        batch_size: 0,
        spend_share: 0.5,
        read_share: 0.1,
        offers: 10,
        seed: 42,
        json: Some(json.to_path_buf()),
        no_check: false,
        processor_share: 0.0,
        match_share: 0.5,
        claim_share: 0.2,
        unknown_card_share: 0.1,
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
        warmup: Duration::from_millis(300),
        ..args(&server.base, &json)
    };
    let processor = Args {
        processor_share: 0.5,
        seed: 43,
        ..args(&server.base, &json)
    };
    for (mode, run) in [
        ("closed", closed),
        ("batched", batched),
        ("open", open),
        ("processor", processor),
    ] {
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
        if mode == "processor" {
            let p = &written["processor"];
            assert!(p["routes_per_second"].as_f64().unwrap() > 0.0, "{p}");
            // Three businesses share each TAP: every transaction has three routes.
            assert_eq!(
                p["routes"].as_u64().unwrap(),
                3 * p["transactions"].as_u64().unwrap(),
                "{p}"
            );
            let outcomes = p["outcomes"].as_object().unwrap();
            for outcome in ["rewarded", "unclaimed"] {
                assert!(outcomes.contains_key(outcome), "{outcome} in {p}");
            }
            assert!(
                outcomes.contains_key("matched") || outcomes.contains_key("pos_matched"),
                "no match in {p}"
            );
        } else {
            assert!(written["processor"].is_null(), "{mode}");
        }
        // The open loop splits its latency: the wait for a free connection, then the request.
        let parts = &written["open_loop"];
        if mode == "open" {
            let (waited, round_trip) = (
                &parts["waited_for_a_connection_ms"],
                &parts["round_trip_ms"],
            );
            let share = waited["share_over_5ms"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&share), "{parts}");
            assert!(round_trip["p50"].as_f64().unwrap() > 0.0, "{parts}");
            // Neither part exceeds the whole it is part of.
            for part in [waited, round_trip] {
                assert!(
                    part["max"].as_f64().unwrap() <= written["latency_ms"]["max"].as_f64().unwrap(),
                    "{parts}"
                );
            }
        } else {
            assert!(parts.is_null(), "{mode}: {parts}");
        }
        let errors = written["errors"].as_object().unwrap();
        assert!(
            errors.keys().all(|code| code != "transport"),
            "{mode}: {errors:?}"
        );
    }
    server.stop();
}
