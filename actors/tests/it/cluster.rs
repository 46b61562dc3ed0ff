//! A cluster on loopback: three NATS JetStream servers and three `rewardsd` nodes, with traffic
//! (purchases, and achievements now and then) through every node. The owner is killed with
//! SIGKILL, then a NATS server; after each failover every acknowledged event is there exactly
//! once (purchases as they were answered), and every wallet equals its ledger. A paused owner
//! that wakes after another node took over refuses reads and writes, says so in its metrics,
//! and exits for its supervisor to restart it.
//!
//! Needs `nats-server` (see `rewards_storage::nats_cluster`): skipped with a message without
//! one, unless `REWARDS_REQUIRE_NATS` is set, as CI sets it. `REWARDS_CLUSTER_ROUNDS` sets the
//! rounds of owner kills (default 1), `REWARDS_PARTITION_ROUNDS` those of partition 1's owner
//! in the test of partitions (default 1).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rewards_storage::nats_cluster::{nats_server, NatsCluster};
use serde_json::{json, Value};

use crate::audit::audit;
use crate::support::{audit_wallet, basket, world, Api, Server, World, ADMIN_KEY};

const CONTACTS: usize = 6;
const CLIENTS: usize = 3;

/// Node `i`, publishing the shared checkpoint every two seconds.
fn start_node(dir: &Path, nats: &NatsCluster, i: usize) -> Server {
    start_node_with(dir, nats, i, 2000)
}

/// Node `i`, publishing the shared checkpoint every `snapshot_interval_ms` (0: never).
fn start_node_with(dir: &Path, nats: &NatsCluster, i: usize, snapshot_interval_ms: u64) -> Server {
    start_cluster_process(
        dir,
        &format!("node-{i}"),
        &format!("{i}"),
        &format!(
            "nats = {:?}\nnode = \"node-{i}\"\nlease_ms = 3000\ndeposed_grace_ms = 1500\n\
             snapshot_interval_ms = {snapshot_interval_ms}\n",
            nats.urls()
        ),
    )
}

/// A `rewardsd` with `cluster` as its `[cluster]` section, its configuration in `{name}.toml`
/// and its data in `data-{data}`.
fn start_cluster_process(dir: &Path, name: &str, data: &str, cluster: &str) -> Server {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!("checkpoint_interval_ms = 50\n\n[cluster]\n{cluster}"),
    )
    .unwrap();
    // The cluster's own steps at info: a failure's story is in the test's output.
    Server::start_custom(
        &dir.join(format!("data-{data}")),
        "sync",
        Some(&config),
        &[(
            "RUST_LOG",
            "warn,rewards_actors::cluster=info,rewards_storage::replicated=info",
        )],
        None,
    )
}

async fn metrics(api: &Api) -> String {
    match api.send(reqwest::Method::GET, "/metrics", None, None).await {
        Ok(answer) => answer.body.as_str().unwrap_or_default().to_string(),
        Err(_) => String::new(),
    }
}

/// The node that owns the data, once one does and every node knows it. Meanwhile it acts as
/// the nodes' supervisor: a node that exited (it stepped down: a lease that lapsed on a busy
/// machine, a NATS election that outlasted it) is started again, as `Restart=always` would.
async fn owner(nodes: &mut [Option<Server>], dir: &Path, nats: &NatsCluster) -> usize {
    let started = Instant::now();
    loop {
        for (i, node) in nodes.iter_mut().enumerate() {
            if node.as_mut().is_some_and(Server::exited) {
                println!("node-{i} stepped down and exited; started again");
                *node = Some(start_node(dir, nats, i));
            }
        }
        let mut owner = None;
        let mut ready = 0;
        for (i, node) in nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            let api = node.client();
            if metrics(&api)
                .await
                .contains("rewards_cluster_partitions_owned 1")
            {
                owner = Some(i);
            }
            let health = api
                .send(reqwest::Method::GET, "/health/ready", None, None)
                .await;
            if health.is_ok_and(|h| h.status == 200) {
                ready += 1;
            }
        }
        if let Some(owner) = owner.filter(|_| ready == nodes.iter().flatten().count()) {
            return owner;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no node took the data over in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the unlabelled metric `name` in a `/metrics` text.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn clients_of(nodes: &[Option<Server>]) -> Vec<Api> {
    nodes.iter().flatten().map(Server::client).collect()
}

/// Posts `body` to `path` until it is answered 201 (or 200, a replay), through each node in
/// turn: connections refused and 503s (no owner yet, an owner being replaced) are retried with
/// the same external reference, so each event is made exactly once however often it is sent.
async fn post_until_answered(
    apis: &[Api],
    path: &str,
    pos_key: &str,
    body: &Value,
    first: usize,
) -> Value {
    let started = Instant::now();
    let mut attempt = first;
    loop {
        let api = &apis[attempt % apis.len()];
        attempt += 1;
        match api.try_post(path, pos_key, body).await {
            Ok(answer) if answer.status == 201 || answer.status == 200 => return answer.body,
            Ok(answer) if answer.status == 503 || answer.status == 409 => {}
            Ok(answer) => panic!("{path} refused: {} {}", answer.status, answer.body),
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{path} went unanswered for 90 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The events the cluster answered, by kind.
#[derive(Default)]
struct Answered {
    purchases: Vec<Value>,
    achievements: Vec<Value>,
}

impl Answered {
    fn count(&self) -> usize {
        self.purchases.len() + self.achievements.len()
    }
}

/// Clients sending purchases, and an achievement now and then, through every node until `stop`
/// is set.
fn traffic(
    apis: Vec<Api>,
    w: &World,
    round: usize,
    acknowledged: &Arc<Mutex<Answered>>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|client| {
            let apis = apis.clone();
            let pos_key = w.pos_key.clone();
            let acknowledged = acknowledged.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    let contact = (client + n) % CONTACTS;
                    let reference = format!("r{round}-c{client}-n{n}");
                    if n % 5 == 4 {
                        let body = json!({"identity": {"contact_code": format!("C-{contact}")},
                            "kind": "social_media", "classification": "like",
                            "external_reference": reference});
                        let answer = post_until_answered(
                            &apis,
                            "/v1/achievements",
                            &pos_key,
                            &body,
                            client + n,
                        )
                        .await;
                        acknowledged.lock().achievements.push(answer);
                    } else {
                        let mut body =
                            basket(json!({"contact_code": format!("C-{contact}")}), "10.00");
                        body["external_reference"] = json!(reference);
                        if n.is_multiple_of(3) {
                            body["spend"] = json!({"amount": "all"});
                        }
                        let answer = post_until_answered(
                            &apis,
                            "/v1/purchases",
                            &pos_key,
                            &body,
                            client + n,
                        )
                        .await;
                        acknowledged.lock().purchases.push(answer);
                    }
                    n += 1;
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_purchases_survive_failovers_exactly_once() {
    let Some(binary) = nats_server() else { return };
    let rounds: usize = std::env::var("REWARDS_CLUSTER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut nats = NatsCluster::start(binary);
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Option<Server>> = (0..3)
        .map(|i| Some(start_node(dir.path(), &nats, i)))
        .collect();
    let first_owner = owner(&mut nodes, dir.path(), &nats).await;
    println!("cluster: node-{first_owner} owns the data");

    // The world, made through a node that does not own the data: forwarded.
    let entry = nodes[(first_owner + 1) % 3].as_ref().unwrap().client();
    let w = world(&entry, "EUR").await;
    w.offer(json!({"name": "instant 10%", "goal": "spend", "award": {"kind": "percent", "percent": "10"}, "redeem": "instant"}))
        .await;
    w.offer(json!({"name": "deferred 1", "goal": "spend", "award": {"kind": "fixed", "amount": "1.00"}, "redeem": "deferred"}))
        .await;
    w.offer(json!({"name": "a like", "goal": "achievement", "conditions": {"classifications": ["like"]}, "award": {"kind": "fixed", "amount": "0.50"}, "redeem": "instant"}))
        .await;
    let mut wallets = Vec::new();
    for i in 0..CONTACTS {
        let contact = w.contact(json!({"code": format!("C-{i}")})).await;
        let wallet = contact["wallet_id"].as_str().unwrap().to_string();
        w.topup(&wallet, "50.00").await;
        wallets.push(wallet);
    }

    let acknowledged: Arc<Mutex<Answered>> = Arc::default();
    for round in 0..rounds {
        // The owner is killed under traffic; a follower takes over; the killed node comes back
        // as a follower.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients = traffic(clients_of(&nodes), &w, round, &acknowledged, &stop);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let victim = owner(&mut nodes, dir.path(), &nats).await;
        let before = acknowledged.lock().count();
        let killed = Instant::now();
        nodes[victim].take().unwrap().kill();
        let next = owner(&mut nodes, dir.path(), &nats).await;
        let took = killed.elapsed();
        // The new owner followed the stream as a follower: its takeover replayed only what its
        // copy had not read yet, a small part of the stream.
        let text = metrics(&nodes[next].as_ref().unwrap().client()).await;
        let replayed = gauge(&text, "rewards_cluster_takeover_replayed_records").unwrap_or(-1.0);
        let last = gauge(&text, "rewards_cluster_log_last_sequence").unwrap_or(-1.0);
        println!(
            "round {round}: node-{victim} killed after {before} events; node-{next} took over in {} ms, replaying {replayed} of the stream's {last} records",
            took.as_millis()
        );
        assert!(replayed >= 0.0 && last > 0.0, "{text}");
        assert!(
            replayed * 2.0 < last,
            "the takeover replayed {replayed} of {last} records"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        nodes[victim] = Some(start_node(dir.path(), &nats, victim));
        stop.store(true, std::sync::atomic::Ordering::Release);
        for client in clients {
            client.await.unwrap();
        }
    }

    // A NATS server is killed under traffic: the stream and the leases keep a quorum.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients = traffic(clients_of(&nodes), &w, rounds, &acknowledged, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.kill_server(0);
    let killed = Instant::now();
    let during = acknowledged.lock().count();
    while acknowledged.lock().count() < during + 30 {
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "events stalled for 60 s after a NATS server was killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "NATS server n0 killed: 30 more events answered in {} ms",
        killed.elapsed().as_millis()
    );
    stop.store(true, std::sync::atomic::Ordering::Release);
    for client in clients {
        client.await.unwrap();
    }
    nats.start_server(0);
    // With leases this short (3 s), a NATS election (4 to 9 s) can outlast the owner's lease:
    // then it steps down and exits, and its supervisor starts it again. After 10 s every
    // election is over; then the cluster settles.
    tokio::time::sleep(Duration::from_secs(10)).await;
    owner(&mut nodes, dir.path(), &nats).await;

    // Records every node has checkpointed leave the stream; the killed nodes came back on
    // their copies, and the balances below are checked on every node after the drop.
    let started = Instant::now();
    loop {
        let serving = owner(&mut nodes, dir.path(), &nats).await;
        let text = metrics(&nodes[serving].as_ref().unwrap().client()).await;
        let first = gauge(&text, "rewards_cluster_log_first_sequence").unwrap_or(0.0);
        // The owner shows the shared checkpoint's position once it published one or purged.
        let snapshot = gauge(&text, "rewards_cluster_snapshot_position");
        if let (true, Some(snapshot)) = (first > 1.0, snapshot) {
            println!("the stream starts at sequence {first}: the records before it were dropped");
            // Never past the shared checkpoint: a copy made from it finds the stream's next
            // record there.
            assert!(
                first - 1.0 <= snapshot,
                "the stream starts at {first}, after the shared checkpoint ({snapshot})"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no record left the stream in 60 s: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The owner shows every node's reported checkpoint position: who holds the stream back.
    let started = Instant::now();
    loop {
        let serving = owner(&mut nodes, dir.path(), &nats).await;
        let text = metrics(&nodes[serving].as_ref().unwrap().client()).await;
        if (0..3).all(|i| {
            text.contains(&format!(
                "rewards_cluster_node_checkpoint_position{{node=\"node-{i}\"}}"
            ))
        }) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the owner shows no checkpoint position of some node: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (purchases, achievements) = {
        let answered = acknowledged.lock();
        (answered.purchases.clone(), answered.achievements.clone())
    };
    check(&w, &clients_of(&nodes), &purchases, &achievements, &wallets).await;
    // The NATS server killed above is back and has caught up: every node sees the log's three
    // replicas current, and how far each is behind.
    let started = Instant::now();
    for node in nodes.iter().flatten() {
        loop {
            let text = metrics(&node.client()).await;
            if text.contains("rewards_cluster_log_replicas_current 3")
                && text.contains("rewards_cluster_replica_lag_records")
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the replicas are not reported current: {text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // A paused owner wakes after another node took over: its write is refused and it leaves.
    let stale = owner(&mut nodes, dir.path(), &nats).await;
    let stale_api = nodes[stale].as_ref().unwrap().client();
    let pid = nodes[stale].as_ref().unwrap().pid();
    signal(pid, libc::SIGSTOP);
    let started = Instant::now();
    let next = loop {
        let mut found = None;
        for (i, node) in nodes.iter().enumerate() {
            if i == stale {
                continue;
            }
            if let Some(node) = node {
                if metrics(&node.client())
                    .await
                    .contains("rewards_cluster_partitions_owned 1")
                {
                    found = Some(i);
                }
            }
        }
        if let Some(i) = found {
            break i;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no takeover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    signal(pid, libc::SIGCONT);
    // Its lease's window passed while it was paused: not even a read is answered from its copy.
    let read = stale_api
        .send(
            reqwest::Method::GET,
            &format!("/v1/wallets/{}", wallets[0]),
            Some(&w.key),
            None,
        )
        .await
        .expect("the deposed owner answers until it exits");
    assert_eq!(read.status, 503, "{}", read.body);
    let mut body = basket(json!({"contact_code": "C-0"}), "10.00");
    body["external_reference"] = json!("from-the-deposed-owner");
    let answer = stale_api
        .try_post("/v1/purchases", &w.pos_key, &body)
        .await
        .expect("the deposed owner answers until it exits");
    assert_eq!(answer.status, 503, "{}", answer.body);
    let deposed = Instant::now();
    loop {
        let text = metrics(&stale_api).await;
        if text.contains("rewards_cluster_deposed_total") {
            assert!(
                text.contains("rewards_cluster_partitions_owned 0"),
                "{text}"
            );
            break;
        }
        assert!(
            deposed.elapsed() < Duration::from_secs(5),
            "the deposed owner's metrics do not say so"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code = nodes[stale]
        .take()
        .unwrap()
        .wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(75), "a deposed owner exits with status 75");
    println!("node-{stale} paused, node-{next} took over, node-{stale} refused and left");
    // Nothing of the refused purchase is anywhere.
    let apis = clients_of(&nodes);
    let replay = post_until_answered(&apis, "/v1/purchases", &w.pos_key, &body, 0).await;
    let events = apis[0]
        .all(
            &format!("/v1/businesses/{}/events?type=purchase", w.business),
            &w.key,
        )
        .await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["external_reference"] == "from-the-deposed-owner")
            .count(),
        1
    );
    assert!(replay["id"].is_string());

    // The deposed node comes back with its disk lost: an empty directory, which the stream
    // alone no longer rebuilds (records left it above). It makes its copy from the shared
    // checkpoint by itself and follows the stream; the audit below checks that copy too.
    std::fs::remove_dir_all(dir.path().join(format!("data-{stale}"))).unwrap();
    nodes[stale] = Some(start_node(dir.path(), &nats, stale));
    let rejoined = nodes[stale].as_ref().unwrap().client();
    until_at_least(
        &rejoined,
        "rewards_cluster_snapshot_restores_total",
        1.0,
        Duration::from_secs(60),
    )
    .await;
    until_metric(
        &rejoined,
        "rewards_cluster_follower_lost 0",
        Duration::from_secs(30),
    )
    .await;
    println!("node-{stale} came back with an empty directory and restored the shared checkpoint");

    // Every node's own materialised copy is consistent, whatever it last saw.
    for node in nodes.iter_mut() {
        if let Some(node) = node.take() {
            node.stop();
        }
    }
    for i in 0..3 {
        let report = audit(&dir.path().join(format!("data-{i}")));
        assert_eq!(
            report.code,
            Some(0),
            "node-{i}: {}{}",
            report.stdout,
            report.stderr
        );
    }
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

/// Through every node: each acknowledged purchase is there as answered, each acknowledged
/// event exactly once, and every wallet equals its ledger.
async fn check(
    w: &World,
    apis: &[Api],
    acknowledged: &[Value],
    achievements: &[Value],
    wallets: &[String],
) {
    assert!(!acknowledged.is_empty() && !achievements.is_empty());
    for api in apis {
        let w = World {
            api: api.clone(),
            business: w.business.clone(),
            key: w.key.clone(),
            pos_key: w.pos_key.clone(),
        };
        crate::support::check_purchases_as_answered(&w, acknowledged).await;
        for (kind, answered) in [("purchase", acknowledged), ("achievement", achievements)] {
            let events = w
                .api
                .all(
                    &format!("/v1/businesses/{}/events?type={kind}", w.business),
                    &w.key,
                )
                .await;
            let mut references: Vec<&str> = events
                .iter()
                .filter_map(|e| e["external_reference"].as_str())
                .collect();
            references.sort_unstable();
            let stored = references.len();
            references.dedup();
            assert_eq!(references.len(), stored, "a {kind} was stored twice");
            assert_eq!(
                stored,
                answered.len(),
                "{kind} events stored but not acknowledged, or lost"
            );
            let mut ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
            ids.sort_unstable();
            for answer in answered {
                let id = answer["id"].as_str().unwrap();
                assert!(
                    ids.binary_search(&id).is_ok(),
                    "{kind} {id} is not in the event list"
                );
            }
        }
        for wallet in wallets {
            audit_wallet(&w, wallet).await;
        }
    }
    println!(
        "{} purchases and {} achievements checked through {} nodes",
        acknowledged.len(),
        achievements.len(),
        apis.len()
    );
}

/// Waits (at most `limit`) until the node's metrics hold `line`.
async fn until_metric(api: &Api, line: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let text = metrics(api).await;
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "no `{line}` in {limit:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the unlabelled metric `name` on `api` is at least `value`.
async fn until_at_least(api: &Api, name: &str, value: f64, limit: Duration) {
    let started = Instant::now();
    loop {
        let text = metrics(api).await;
        if gauge(&text, name).is_some_and(|v| v >= value) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{name} not at {value} in {limit:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts node `i`, whose copy the stream cannot rebuild (and which has no shared checkpoint to
/// restore), and waits until it says so.
async fn start_lost_node(dir: &Path, nats: &NatsCluster, i: usize) -> Server {
    let node = start_node_with(dir, nats, i, 0);
    until_metric(
        &node.client(),
        "rewards_cluster_follower_lost 1",
        Duration::from_secs(30),
    )
    .await;
    node
}

/// A lost node with the lease free: a quarter lease (750 ms here) would be enough for it to take
/// the lease; after four it still owns nothing, has never taken the data over, and is not ready
/// (it knows no owner).
async fn stays_without_the_data(api: &Api) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = metrics(api).await;
    assert!(
        text.contains("rewards_cluster_partitions_owned 0")
            && !text.contains("rewards_cluster_handoffs_total"),
        "{text}"
    );
    let health = api
        .send(reqwest::Method::GET, "/health/ready", None, None)
        .await
        .unwrap();
    assert_eq!(health.status, 503, "{}", health.body);
}

/// One node (publishing the shared checkpoint every `snapshot_interval_ms`) that owns the
/// data, a business and a contact whose wallet holds 20.00: the nodes, the world and the
/// wallet's id.
async fn one_owner_with_a_wallet(
    dir: &Path,
    nats: &NatsCluster,
    snapshot_interval_ms: u64,
) -> (Vec<Option<Server>>, World, String) {
    let mut nodes: Vec<Option<Server>> =
        vec![Some(start_node_with(dir, nats, 0, snapshot_interval_ms))];
    assert_eq!(owner(&mut nodes, dir, nats).await, 0);
    let w = world(&nodes[0].as_ref().unwrap().client(), "EUR").await;
    let contact = w.contact(json!({"code": "C-0"})).await;
    let wallet = contact["wallet_id"].as_str().unwrap().to_string();
    w.topup(&wallet, "20.00").await;
    (nodes, w, wallet)
}

/// The log stream, through a JetStream client of the test's own.
async fn log_stream(nats: &NatsCluster) -> async_nats::jetstream::stream::Stream {
    let client = async_nats::ConnectOptions::new()
        .connect(nats.urls().as_slice())
        .await
        .unwrap();
    async_nats::jetstream::new(client)
        .get_stream("REWARDS_P0")
        .await
        .unwrap()
}

/// The stream drops its first records (as a retention limit would) and a node joins with an
/// empty directory: its copy cannot be rebuilt from the stream. It says so, forwards requests,
/// and does not take the data over when the owner leaves (its store could not open on the
/// stream); with a healthy node's closed directory copied in, it follows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_the_stream_cannot_rebuild_forwards_but_never_takes_over() {
    let Some(binary) = nats_server() else { return };
    let nats = NatsCluster::start(binary);
    let dir = tempfile::tempdir().unwrap();
    // No shared checkpoint: the copy can only come from a healthy node.
    let (mut nodes, w, wallet) = one_owner_with_a_wallet(dir.path(), &nats, 0).await;

    // Every record but the last leaves the stream.
    let mut stream = log_stream(&nats).await;
    let last = stream.info().await.unwrap().state.last_sequence;
    stream.purge().sequence(last).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.first_sequence, last);

    nodes.push(Some(start_lost_node(dir.path(), &nats, 1).await));
    let joined = nodes[1].as_ref().unwrap().client();
    // It forwards to the owner.
    let through = World {
        api: joined.clone(),
        business: w.business.clone(),
        key: w.key.clone(),
        pos_key: w.pos_key.clone(),
    };
    audit_wallet(&through, &wallet).await;

    // The owner leaves, giving its lease up: the lost node does not take it, nor when it
    // starts again with the lease free.
    nodes[0].take().unwrap().stop();
    stays_without_the_data(&joined).await;
    nodes[1].take().unwrap().stop();
    nodes[1] = Some(start_lost_node(dir.path(), &nats, 1).await);
    stays_without_the_data(&nodes[1].as_ref().unwrap().client()).await;

    // The documented repair: the lost node stopped, a healthy node's closed directory copied
    // into its place. Both start; the repaired one follows the stream again.
    nodes[1].take().unwrap().stop();
    let (healthy, repaired) = (dir.path().join("data-0"), dir.path().join("data-1"));
    std::fs::remove_dir_all(&repaired).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&healthy)
        .arg(&repaired)
        .status()
        .unwrap();
    assert!(copied.success());
    nodes[0] = Some(start_node_with(dir.path(), &nats, 0, 0));
    nodes[1] = Some(start_node_with(dir.path(), &nats, 1, 0));
    owner(&mut nodes, dir.path(), &nats).await;
    for node in nodes.iter().flatten() {
        until_metric(
            &node.client(),
            "rewards_cluster_follower_lost 0",
            Duration::from_secs(10),
        )
        .await;
    }
    let w = World {
        api: nodes[1].as_ref().unwrap().client(),
        ..through
    };
    audit_wallet(&w, &wallet).await;
    for node in nodes.iter_mut() {
        node.take().unwrap().stop();
    }
}

/// The shared checkpoint: the owner publishes a snapshot of the data, the stream drops the
/// records it holds, and a node that joins with an empty directory (which the stream alone
/// could no longer rebuild) makes its copy from the snapshot by itself, follows the stream's
/// tail, and takes the data over with every write, before the snapshot and after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_after_records_left_the_stream_restores_the_shared_checkpoint() {
    let Some(binary) = nats_server() else { return };
    let nats = NatsCluster::start(binary);
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, w, wallet) = one_owner_with_a_wallet(dir.path(), &nats, 1000).await;

    // A snapshot covers everything written so far; the stream then drops it all but its
    // last message, as the retention would once every copy had checkpointed it.
    let mut stream = log_stream(&nats).await;
    let last = stream.info().await.unwrap().state.last_sequence;
    until_at_least(
        &nodes[0].as_ref().unwrap().client(),
        "rewards_cluster_snapshot_position",
        last as f64,
        Duration::from_secs(30),
    )
    .await;
    stream.purge().sequence(last).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.first_sequence, last);
    // The tail: written after the snapshot.
    w.topup(&wallet, "5.00").await;

    nodes.push(Some(start_node_with(dir.path(), &nats, 1, 1000)));
    let joined = nodes[1].as_ref().unwrap().client();
    until_at_least(
        &joined,
        "rewards_cluster_snapshot_restores_total",
        1.0,
        Duration::from_secs(60),
    )
    .await;
    until_metric(
        &joined,
        "rewards_cluster_follower_lost 0",
        Duration::from_secs(30),
    )
    .await;

    // The first owner leaves; the joined node takes the data over and has all of it.
    nodes[0].take().unwrap().stop();
    assert_eq!(owner(&mut nodes, dir.path(), &nats).await, 1);
    let w = World { api: joined, ..w };
    let balances = w.wallet(&wallet).await;
    assert_eq!(balances["balances"]["open"], "25.00", "{balances}");
    audit_wallet(&w, &wallet).await;
    let data = dir.path().join("data-1");
    for staging in ["snapshot-in", "snapshot-in.tar", "RESTORING", "BACKUP"] {
        assert!(!data.join(staging).exists(), "{staging} was left behind");
    }
    for node in nodes.iter_mut() {
        if let Some(node) = node.take() {
            node.stop();
        }
    }
}

/// A process of partition `partition` of two, named `name`.
fn start_partition_node(dir: &Path, nats: &NatsCluster, name: &str, partition: u16) -> Server {
    start_partition_node_of(dir, nats, name, partition, 2)
}

/// A process of partition `partition` of `partitions`, named `name`.
fn start_partition_node_of(
    dir: &Path,
    nats: &NatsCluster,
    name: &str,
    partition: u16,
    partitions: u16,
) -> Server {
    start_partition_process(dir, nats, name, partition, partitions, "")
}

/// A process of partition `partition` of `partitions`, named `name`, with `more` settings of
/// the `[cluster]` section.
fn start_partition_process(
    dir: &Path,
    nats: &NatsCluster,
    name: &str,
    partition: u16,
    partitions: u16,
    more: &str,
) -> Server {
    start_cluster_process(
        dir,
        name,
        name,
        &format!(
            "nats = {:?}\nnode = \"{name}\"\nlease_ms = 3000\ndeposed_grace_ms = 1500\n\
             snapshot_interval_ms = 2000\npartitions = {partitions}\npartition = {partition}\n\
             {more}",
            nats.urls()
        ),
    )
}

/// A contact of `w` with the code `code`, and its wallet topped up with `amount`: the wallet.
async fn funded_wallet(w: &World, code: &str, amount: &str) -> String {
    let contact = w.contact(json!({ "code": code })).await;
    let wallet = contact["wallet_id"].as_str().unwrap().to_string();
    w.topup(&wallet, amount).await;
    wallet
}

/// Waits until `process` exits for a partition count the cluster does not have (status 78).
async fn refused_to_join(mut process: Server, joined: &str) {
    let started = Instant::now();
    while !process.exited() {
        assert!(started.elapsed() < Duration::from_secs(30), "{joined}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(process.exit_code(), Some(78));
}

/// Waits until `api`'s process owns its partition.
async fn until_owner(api: &Api) {
    until_metric(
        api,
        "rewards_cluster_partitions_owned 1",
        Duration::from_secs(60),
    )
    .await;
}

/// Waits until `api` answers `/health/ready` with 200.
async fn until_ready(api: &Api) {
    let started = Instant::now();
    loop {
        let health = api
            .send(reqwest::Method::GET, "/health/ready", None, None)
            .await;
        if health.is_ok_and(|h| h.status == 200) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not ready in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` purchases for contact `C-0` of `w`, each sent through the processes of `apis` in
/// turn (and retried there until answered): the answers.
async fn purchases_through(apis: &[Api], w: &World, tag: &str, n: usize) -> Vec<Value> {
    let mut answers = Vec::new();
    for i in 0..n {
        let mut body = basket(json!({"contact_code": "C-0"}), "10.00");
        body["external_reference"] = json!(format!("{tag}-{i}"));
        if i % 3 == 2 {
            body["spend"] = json!({"amount": "all"});
        }
        answers.push(post_until_answered(apis, "/v1/purchases", &w.pos_key, &body, i).await);
    }
    answers
}

/// Every purchase answered is there once, as it was answered, read through `api`.
async fn each_there_once(api: &Api, w: &World, answers: &[Value]) {
    let mut ids: Vec<&str> = answers.iter().map(|a| a["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), answers.len(), "a purchase was answered twice");
    for answer in answers {
        let id = answer["id"].as_str().unwrap();
        let stored = api.get(&format!("/v1/purchases/{id}"), &w.key).await;
        let stored = stored.expect(200);
        assert_eq!(stored["amounts"], answer["amounts"], "{id}");
        assert_eq!(stored["spend"], answer["spend"], "{id}");
        assert_eq!(stored["wallet_id"], answer["wallet_id"], "{id}");
    }
}

/// Two partitions on three NATS servers: a process of partition 0 (a), two of partition 1
/// (b, then c). A business is made in the partition of the process that receives it, and its
/// ids and keys carry that partition, so every request, sent to any process, reaches the
/// owner of its business's partition: an operator's by the business in its path or body,
/// the others by their key. Each partition appends to its own stream. Killed with SIGKILL
/// under traffic through every process to a business of each partition, partition 1's owner
/// leaves partition 0 serving without a pause, and partition 1's other process takes it over
/// with every acknowledged event there once and each wallet equal to its ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_split_the_businesses_and_fail_over_alone() {
    use rewards_actors::cluster::Placement;
    let Some(binary) = nats_server() else { return };
    let nats = NatsCluster::start(binary);
    let dir = tempfile::tempdir().unwrap();
    let a = start_partition_node(dir.path(), &nats, "a", 0);
    let b = start_partition_node(dir.path(), &nats, "b", 1);
    until_owner(&a.client()).await;
    until_owner(&b.client()).await;
    let c = start_partition_node(dir.path(), &nats, "c", 1);
    until_ready(&c.client()).await;
    let (api_a, api_b, api_c) = (a.client(), b.client(), c.client());
    // Each knows the other partition's owner.
    for api in [&api_a, &api_b, &api_c] {
        until_metric(
            api,
            "rewards_cluster_other_partitions_with_owner 1",
            Duration::from_secs(60),
        )
        .await;
    }

    // Every process answers where each partition is served, for clients that go there
    // themselves.
    for api in [&api_a, &api_b, &api_c] {
        let map = api
            .send(reqwest::Method::GET, "/cluster", None, None)
            .await
            .unwrap();
        assert_eq!(map.status, 200);
        assert_eq!(map.body["partitions"], 2);
        let owners: Vec<(&str, &str)> = map.body["owners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["node"].as_str().unwrap(), o["url"].as_str().unwrap()))
            .collect();
        assert_eq!(
            owners,
            [("a", api_a.base.as_str()), ("b", api_b.base.as_str())]
        );
    }
    // A business made through a is partition 0's; one made through c (a follower of
    // partition 1) is made by b, partition 1's owner. Their keys go through any process.
    let w0 = world(&api_a, "EUR").await;
    let w1 = world(&api_c, "EUR").await;
    assert_eq!(Placement::of_id_text(&w0.business, 2), Some(0));
    assert_eq!(Placement::of_id_text(&w1.business, 2), Some(1));
    for key in [&w0.key, &w0.pos_key] {
        assert_eq!(Placement::of_secret(key, 2), Some(0));
    }
    for key in [&w1.key, &w1.pos_key] {
        assert_eq!(Placement::of_secret(key, 2), Some(1));
    }
    // The operator reads each business through the process of the other partition.
    for (api, w) in [(&api_b, &w0), (&api_a, &w1)] {
        let read = api
            .get(&format!("/v1/businesses/{}", w.business), ADMIN_KEY)
            .await;
        assert_eq!(read.expect(200)["id"], json!(w.business));
    }
    // The operator's key must work in every partition: it comes from the environment only.
    let operator = api_a
        .post("/v1/keys", ADMIN_KEY, &json!({"role": "operator"}))
        .await;
    assert_eq!(operator.status, 400, "{}", operator.body);
    assert!(operator.body.to_string().contains("REWARDS_ADMIN_KEY"));
    // A process that splits the data another way stops before it serves anything.
    let stray = start_partition_node_of(dir.path(), &nats, "stray", 2, 3);
    refused_to_join(stray, "a process with 3 partitions joined a cluster of 2").await;

    // Contacts and top-ups, through the other partition's processes.
    let w0 = World {
        api: api_b.clone(),
        ..w0
    };
    let w1 = World {
        api: api_a.clone(),
        ..w1
    };
    let wallets = [
        funded_wallet(&w0, "C-0", "20.00").await,
        funded_wallet(&w1, "C-0", "20.00").await,
    ];
    // A request that says it was forwarded, without this owner's token (a client's header,
    // or a sender that knew an earlier process), is neither served from the wrong partition
    // nor routed a second time: refused, to be sent again (partition 1's wallet at
    // partition 0's owner). Without the header it is routed.
    let said = reqwest::Client::new()
        .get(format!("{}/v1/wallets/{}", api_a.base, wallets[1]))
        .bearer_auth(&w1.key)
        .header("x-rewards-forwarded-by", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(said.status(), 503);
    let plain = api_a
        .get(&format!("/v1/wallets/{}", wallets[1]), &w1.key)
        .await;
    assert_eq!(plain.status, 200);
    // A key of one business does not reach the other's data, wherever it is sent.
    let other = api_c
        .get(&format!("/v1/wallets/{}", wallets[1]), &w0.key)
        .await;
    assert!(
        [403, 404].contains(&other.status.as_u16()),
        "{} {}",
        other.status,
        other.body
    );

    // The operator reaches a wallet and its contact by their ids alone, through any process:
    // they were drawn in their partition.
    for (partition, wallet) in wallets.iter().enumerate() {
        assert_eq!(
            Placement::of_id_text(wallet, 2),
            Some(partition as u16),
            "wallet {wallet}"
        );
        for api in [&api_a, &api_b, &api_c] {
            let read = api.get(&format!("/v1/wallets/{wallet}"), ADMIN_KEY).await;
            let contact = read.expect(200)["contact_id"].as_str().unwrap().to_string();
            assert_eq!(Placement::of_id_text(&contact, 2), Some(partition as u16));
            let read = api.get(&format!("/v1/contacts/{contact}"), ADMIN_KEY).await;
            assert_eq!(read.expect(200)["id"], json!(contact));
        }
    }

    // An operator's batch of both partitions' purchases, interleaved: each partition's owner
    // takes its own, and every item's answer comes back in its place. An item that names no
    // business is refused where the batch landed. Sent again through a process of the other
    // partition, every item is a replay of its first answer.
    let items: Vec<Value> = (0..6)
        .map(|i| {
            let w = if i % 2 == 0 { &w0 } else { &w1 };
            let mut item = basket(json!({"contact_code": "C-0"}), "1.00");
            item["business_id"] = json!(w.business);
            item["external_reference"] = json!(format!("split-{i}"));
            item
        })
        .chain([basket(json!({"contact_code": "C-0"}), "1.00")])
        .collect();
    let batch = json!({ "items": items });
    let mut first: Option<Vec<Value>> = None;
    for api in [&api_a, &api_c] {
        let answer = api.post("/v1/purchases:batch", ADMIN_KEY, &batch).await;
        let results = answer.expect(200)["results"].as_array().unwrap().clone();
        assert_eq!(results.len(), 7);
        for (i, result) in results.iter().take(6).enumerate() {
            assert_eq!(result["status"], 201, "item {i}: {result}");
            assert_eq!(
                result["body"]["wallet_id"],
                json!(wallets[i % 2]),
                "item {i}"
            );
            let id = result["body"]["id"].as_str().unwrap();
            assert_eq!(Placement::of_id_text(id, 2), Some((i % 2) as u16));
        }
        assert_eq!(results[6]["status"], 400, "{}", results[6]);
        // Another key than the operator's is not split: refused whole, as it would be
        // anywhere.
        let stranger = api.post("/v1/purchases:batch", "not-a-key", &batch).await;
        assert_eq!(stranger.status, 401, "{}", stranger.body);
        match &first {
            None => first = Some(results),
            Some(first) => {
                for (again, before) in results.iter().zip(first).take(6) {
                    assert_eq!(again["body"]["id"], before["body"]["id"]);
                }
            }
        }
    }

    // A backup of the cluster is every partition's copy, each under `p<N>` of the directory
    // named (on its owner's machine: here the same one), whichever process takes it; each
    // restores and passes the audit.
    let copies = dir.path().join("backup");
    let backup = api_c
        .post(
            "/v1/backups",
            ADMIN_KEY,
            &json!({"to": copies.display().to_string()}),
        )
        .await;
    let backup = backup.expect(201).clone();
    assert_eq!(backup["to"], json!(copies.display().to_string()));
    let partitions = backup["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 2);
    for (partition, copy) in partitions.iter().enumerate() {
        assert_eq!(copy["partition"], json!(partition));
        let from = copies.join(format!("p{partition}"));
        assert_eq!(copy["to"], json!(from.display().to_string()));
        let restored = std::process::Command::new(env!("CARGO_BIN_EXE_rewardsd"))
            .args(["restore", "--from"])
            .arg(&from)
            .arg("--data-dir")
            .arg(dir.path().join(format!("restored-p{partition}")))
            .output()
            .unwrap();
        assert_eq!(
            restored.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&restored.stdout),
            String::from_utf8_lossy(&restored.stderr)
        );
    }
    // Taken again into the same directory, every partition's copy is there already.
    let again = api_a
        .post(
            "/v1/backups",
            ADMIN_KEY,
            &json!({"to": copies.display().to_string()}),
        )
        .await;
    again.expect_error(409, "already_exists");
    // A path taken by a file: refused as on one server, nothing written.
    let taken = dir.path().join("taken");
    std::fs::write(&taken, b"x").unwrap();
    let refused = api_a
        .post(
            "/v1/backups",
            ADMIN_KEY,
            &json!({"to": taken.display().to_string()}),
        )
        .await;
    refused.expect_error(409, "already_exists");
    assert_eq!(std::fs::read(&taken).unwrap(), b"x");

    // A terminal shared by a business of each partition, and a processor that reports for
    // it: the processor and its key are made in every partition, and its card purchase is
    // routed in every partition, one answer listing both businesses.
    w0.merchant_with_tap(json!({"name": "M0"}), "T-SHARED")
        .await;
    w1.merchant_with_tap(json!({"name": "M1"}), "T-SHARED")
        .await;
    let processor = api_c
        .post("/v1/processors", ADMIN_KEY, &json!({"name": "Net"}))
        .await;
    let processor = processor.expect(201)["id"].as_str().unwrap().to_string();
    let network = api_b
        .post(
            "/v1/keys",
            ADMIN_KEY,
            &json!({"role": "processor", "processor_id": processor}),
        )
        .await;
    let network = network.expect(201).clone();
    let (network, network_id) = (
        network["key"].as_str().unwrap().to_string(),
        network["id"].as_str().unwrap().to_string(),
    );
    let card = crate::processor::transaction("T-SHARED", "NET-1", "42.00", "tok_x");
    let mut first: Option<Value> = None;
    for api in [&api_a, &api_b, &api_c] {
        let answer = api.post("/v1/processor/purchases", &network, &card).await;
        assert_eq!(answer.replay, first.is_some(), "{}", answer.body);
        let body = answer.expect(200).clone();
        let mut businesses: Vec<&str> = body["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["business_id"].as_str().unwrap())
            .collect();
        businesses.sort_unstable();
        let mut expected = [w0.business.as_str(), w1.business.as_str()];
        expected.sort_unstable();
        assert_eq!(businesses, expected, "{body}");
        // Every partition took it once: the others answer the same purchases again.
        match &first {
            None => first = Some(body),
            Some(first) => assert_eq!(&body, first),
        }
    }
    api_a
        .post(
            "/v1/processor/purchases",
            &network,
            &crate::processor::transaction("T-NOWHERE", "NET-2", "1.00", "tok_x"),
        )
        .await
        .expect_error(404, "tap_not_found");
    let batch = api_c
        .post(
            "/v1/processor/purchases:batch",
            &network,
            &json!({"items": [
                crate::processor::transaction("T-SHARED", "NET-3", "5.00", "tok_x"),
                crate::processor::transaction("T-NOWHERE", "NET-4", "5.00", "tok_x"),
            ]}),
        )
        .await;
    let results = batch.expect(200)["results"].as_array().unwrap().clone();
    assert_eq!(results[0]["status"], 200, "{}", results[0]);
    assert_eq!(results[0]["body"]["routes"].as_array().unwrap().len(), 2);
    assert_eq!(results[1]["status"], 404, "{}", results[1]);
    // Revoked through any process, the key stops working in every partition.
    let revoked = api_a
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/keys/{network_id}"),
            Some(ADMIN_KEY),
            None,
        )
        .await
        .unwrap();
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    let refused = api_b.post("/v1/processor/purchases", &network, &card).await;
    assert_eq!(refused.status, 401, "{}", refused.body);

    let all = [api_a.clone(), api_b.clone(), api_c.clone()];
    let mut answered0 = purchases_through(&all, &w0, "p0-before", 6).await;
    let mut answered1 = purchases_through(&all, &w1, "p1-before", 6).await;

    // Each partition appended to its own stream.
    let client = async_nats::ConnectOptions::new()
        .connect(nats.urls().as_slice())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    for stream in ["REWARDS_P0", "REWARDS_P1"] {
        let mut stream = js.get_stream(stream).await.unwrap();
        let messages = stream.info().await.unwrap().state.messages;
        assert!(
            messages > 0,
            "nothing on {}",
            stream.cached_info().config.name
        );
    }
    // The process that had another count left no stream of its partition behind.
    assert!(
        js.get_stream("REWARDS_P2").await.is_err(),
        "a refused process made its partition's stream"
    );

    // Traffic through every process to a business of each partition (purchases, and an
    // achievement now and then), under which partition 1's owner is killed.
    let busy = [world(&api_a, "EUR").await, world(&api_c, "EUR").await];
    let mut busy_wallets = vec![Vec::new(), Vec::new()];
    for (w, wallets) in busy.iter().zip(busy_wallets.iter_mut()) {
        for i in 0..CONTACTS {
            wallets.push(funded_wallet(w, &format!("C-{i}"), "50.00").await);
        }
    }
    let busy_answered: [Arc<Mutex<Answered>>; 2] = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for (w, answered) in busy.iter().zip(&busy_answered) {
        clients.extend(traffic(all.to_vec(), w, 0, answered, &stop));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Partition 1's owner dies. Partition 0 goes on serving through a, and takes more events
    // before partition 1 is taken over (which waits for the lease to lapse).
    b.kill();
    let at_kill = busy_answered[0].lock().count();
    let w0 = World {
        api: api_a.clone(),
        ..w0
    };
    for i in 0..3 {
        let mut body = basket(json!({"contact_code": "C-0"}), "10.00");
        body["external_reference"] = json!(format!("p0-during-{i}"));
        let answer = api_a.post("/v1/purchases", &w0.pos_key, &body).await;
        answered0.push(answer.expect(201).clone());
    }
    // Partition 1 is served again once c takes it over, through a.
    answered1.extend(purchases_through(&[api_a.clone(), api_c.clone()], &w1, "p1-after", 4).await);
    until_owner(&api_c).await;
    assert!(
        busy_answered[0].lock().count() > at_kill,
        "partition 0 took nothing while partition 1 had no owner"
    );
    // More rounds (`REWARDS_PARTITION_ROUNDS`, default 1): the killed process comes back as a
    // follower of partition 1, catches up, and partition 1's owner is killed again, under the
    // same traffic.
    let rounds: usize = std::env::var("REWARDS_PARTITION_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let (mut owner, mut api_c) = (c, api_c);
    for round in 1..rounds {
        let name = if round % 2 == 1 { "b" } else { "c" };
        let back = start_partition_node(dir.path(), &nats, name, 1);
        let back_api = back.client();
        until_ready(&back_api).await;
        until_metric(
            &back_api,
            "rewards_cluster_follower_lost 0",
            Duration::from_secs(60),
        )
        .await;
        let at_kill = busy_answered[1].lock().count();
        owner.kill();
        until_owner(&back_api).await;
        let started = Instant::now();
        while busy_answered[1].lock().count() < at_kill + 10 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "partition 1 took nothing after round {round}'s takeover"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("round {round}: {name} took partition 1 over");
        (owner, api_c) = (back, back_api);
    }
    let c = owner;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    for client in clients {
        client.await.unwrap();
    }
    // Every event answered under the kills is there once, on every live process's view, and
    // every wallet equals its ledger.
    for ((w, answered), wallets) in busy.iter().zip(&busy_answered).zip(&busy_wallets) {
        let (purchases, achievements) = {
            let answered = answered.lock();
            (answered.purchases.clone(), answered.achievements.clone())
        };
        check(
            w,
            &[api_a.clone(), api_c.clone()],
            &purchases,
            &achievements,
            wallets,
        )
        .await;
    }
    // a learns the new owner within a quarter lease; until then it answers 503.
    let started = Instant::now();
    while api_a
        .get(&format!("/v1/wallets/{}", wallets[1]), &w1.key)
        .await
        .status
        != 200
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "a never found partition 1's new owner"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for (w, wallet, answers) in [
        (&w0, &wallets[0], &answered0),
        (&w1, &wallets[1], &answered1),
    ] {
        each_there_once(&api_a, w, answers).await;
        audit_wallet(w, wallet).await;
    }
    // Through partition 1's new owner too.
    let w0_via_c = World {
        api: api_c.clone(),
        ..w0
    };
    each_there_once(&api_c, &w0_via_c, &answered0).await;
    audit_wallet(&w0_via_c, &wallets[0]).await;
    // The operator reads purchases of both partitions by their ids alone, through either.
    for (partition, answers) in [&answered0, &answered1].into_iter().enumerate() {
        for answer in answers.iter().take(5) {
            let id = answer["id"].as_str().unwrap();
            assert_eq!(Placement::of_id_text(id, 2), Some(partition as u16));
            for api in [&api_a, &api_c] {
                let read = api.get(&format!("/v1/purchases/{id}"), ADMIN_KEY).await;
                assert_eq!(read.expect(200)["amounts"], answer["amounts"], "{id}");
            }
        }
    }
    drop((a, c));
}

/// Which processes own their partition now, by `/metrics`.
async fn owning(processes: &[(String, Option<Server>)]) -> Vec<String> {
    let mut owning = Vec::new();
    for (name, process) in processes {
        let Some(process) = process else { continue };
        if metrics(&process.client())
            .await
            .contains("rewards_cluster_partitions_owned 1")
        {
            owning.push(name.clone());
        }
    }
    owning
}

/// Two machines (each running a process of both partitions), the first alone at first: it
/// owns both partitions. When the second starts, the first hands one partition off (its
/// process stops cleanly and exits for its supervisor to start it again), and the second
/// machine's process of that partition takes it: one partition each, and it stays so. Every
/// acknowledged purchase is there once after, and each wallet equals its ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_over_the_machines_one_at_a_time() {
    let Some(binary) = nats_server() else { return };
    let nats = NatsCluster::start(binary);
    let dir = tempfile::tempdir().unwrap();
    let start = |name: &str| {
        let (host, partition) = name.split_once('-').unwrap();
        let partition: u16 = partition.trim_start_matches('p').parse().unwrap();
        start_partition_process(
            dir.path(),
            &nats,
            name,
            partition,
            2,
            &format!("host = \"{host}\"\nrebalance_interval_ms = 1000\n"),
        )
    };
    let mut processes: Vec<(String, Option<Server>)> = ["a-p0", "a-p1"]
        .iter()
        .map(|name| (name.to_string(), Some(start(name))))
        .collect();
    for (_, process) in &processes {
        until_owner(&process.as_ref().unwrap().client()).await;
    }
    let api = processes[0].1.as_ref().unwrap().client();
    let api_p1 = processes[1].1.as_ref().unwrap().client();
    let w0 = world(&api, "EUR").await;
    let w1 = world(&api_p1, "EUR").await;
    let wallets = [
        funded_wallet(&w0, "C-0", "20.00").await,
        funded_wallet(&w1, "C-0", "20.00").await,
    ];
    let apis = [api.clone(), api_p1.clone()];
    let mut answered0 = purchases_through(&apis, &w0, "before-0", 3).await;
    let mut answered1 = purchases_through(&apis, &w1, "before-1", 3).await;

    // The second machine joins.
    for name in ["b-p0", "b-p1"] {
        processes.push((name.to_string(), Some(start(name))));
    }
    let started = Instant::now();
    let mut balanced_since: Option<Instant> = None;
    let mut restarts = 0;
    loop {
        // The supervisor: a process that exited is started again.
        for (name, process) in processes.iter_mut() {
            if process.as_mut().is_some_and(Server::exited) {
                println!("{name} exited; started again");
                restarts += 1;
                *process = Some(start(name));
            }
        }
        let owning = owning(&processes).await;
        let on = |host: &str| owning.iter().filter(|n| n.starts_with(host)).count();
        if on("a-") == 1 && on("b-") == 1 {
            let since = *balanced_since.get_or_insert_with(Instant::now);
            // Stays balanced across several rebalance intervals.
            if since.elapsed() > Duration::from_secs(4) {
                break;
            }
        } else {
            balanced_since = None;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the partitions did not spread: {owning:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One partition moved, by one hand-off (a process on the first machine exited once).
    assert_eq!(restarts, 1, "more than one partition moved");

    // Served through the processes of either machine, with nothing lost.
    let apis: Vec<Api> = processes
        .iter()
        .filter_map(|(_, p)| p.as_ref().map(Server::client))
        .collect();
    answered0.extend(purchases_through(&apis, &w0, "after-0", 3).await);
    answered1.extend(purchases_through(&apis, &w1, "after-1", 3).await);
    for (w, wallet, answers) in [
        (&w0, &wallets[0], &answered0),
        (&w1, &wallets[1], &answered1),
    ] {
        let w = World {
            api: apis[3].clone(),
            business: w.business.clone(),
            key: w.key.clone(),
            pos_key: w.pos_key.clone(),
        };
        each_there_once(&apis[3], &w, answers).await;
        audit_wallet(&w, wallet).await;
    }
}

/// A cluster made before the partition count was recorded (its partition 0 stream has a
/// history, the count bucket does not exist) was not split: a process started split refuses
/// to join it (exit 78), and the count recorded is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsplit_cluster_with_a_history_is_not_split_later() {
    let Some(binary) = nats_server() else { return };
    let nats = NatsCluster::start(binary);
    let dir = tempfile::tempdir().unwrap();
    // The servers take a moment to listen and to elect a meta leader.
    let started = Instant::now();
    let js = loop {
        let attempt = async {
            let client = async_nats::ConnectOptions::new()
                .connect(nats.urls().as_slice())
                .await
                .ok()?;
            let js = async_nats::jetstream::new(client);
            js.create_stream(async_nats::jetstream::stream::Config {
                name: "REWARDS_P0".into(),
                subjects: vec!["rewards.p0.log".into()],
                num_replicas: 3,
                ..Default::default()
            })
            .await
            .ok()?;
            Some(js)
        };
        if let Some(js) = attempt.await {
            break js;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "NATS did not take a stream"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    js.publish("rewards.p0.log", "a record of an earlier version".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let split = start_partition_node(dir.path(), &nats, "split", 1);
    refused_to_join(split, "a split process joined an unsplit cluster").await;
    let recorded = js
        .get_key_value("rewards_cluster")
        .await
        .unwrap()
        .get("partitions")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&recorded[..], b"1");
}
