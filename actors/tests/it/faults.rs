//! Faults of the machine under the server: a failed fsync stops writes and the process (exit 70)
//! without losing anything acknowledged, and the server starts cleanly once the fault is gone;
//! running out of file descriptors refuses connections, never the store.

use std::time::Duration;

use serde_json::json;

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
        match w
            .api
            .send(
                reqwest::Method::POST,
                "/v1/purchases",
                Some(&w.pos_key),
                Some(serde_json::to_vec(&body).unwrap()),
            )
            .await
        {
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
    let server = Server::start(dir.path(), "sync");
    let w = World {
        api: server.client(),
        ..w
    };
    w.api.get("/health/ready", &w.key).await.expect(200);
    for answer in &acknowledged {
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
    // Far more idle connections than the server may hold: the surplus waits in the backlog
    // (or is refused by the kernel) instead of taking descriptors the store needs.
    let mut idle = Vec::new();
    for _ in 0..400 {
        if let Ok(stream) = std::net::TcpStream::connect(&address) {
            idle.push(stream);
        }
    }
    // The store keeps writing through it all: idle connections are closed after the header
    // timeout, and the requests go through.
    for n in 0..20 {
        let mut body = basket(json!({"contact_code": "C-1"}), "1.00");
        body["external_reference"] = json!(format!("D-{n}"));
        let mut answer = None;
        for _ in 0..60 {
            match w
                .api
                .send(
                    reqwest::Method::POST,
                    "/v1/purchases",
                    Some(&w.pos_key),
                    Some(serde_json::to_vec(&body).unwrap()),
                )
                .await
            {
                Ok(a) => {
                    answer = Some(a);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        let answer = answer.expect("a request got through");
        assert_eq!(answer.status.as_u16(), 201, "{}", answer.body);
    }
    drop(idle);
    w.api.get("/health/ready", &w.key).await.expect(200);
    server.stop();
}
