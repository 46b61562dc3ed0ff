//! `alloc-probe`: how many heap allocations a purchase costs in the in-process pipeline.
//!
//! `cargo run --release -p rewards-bench --features count-allocs --bin alloc-probe [PURCHASES]
//! [pipeline|http]` (default 20,000 purchases, both parts), two parts, counted over every thread of the process:
//!
//! - the in-process pipeline: 10,000 wallets and 10 offers, random baskets of 1 to 10 lines,
//!   30 % spending all they can, submitted 1,000 at a time with durability `sync`, after a
//!   warm-up that makes every wallet's actor resident. Per purchase: the allocations, frees and
//!   bytes of building the validated purchases, and of the pipeline (actors, store, log,
//!   checkpoints);
//! - over HTTP: a server in the same process on loopback, 1,000 contacts, three-line baskets
//!   (30 % spending all) from 8 connections whose clients allocate nothing while counted. Per
//!   purchase: everything the server allocated, from reading the request to writing the answer.

use rand::SeedableRng;
use rewards_actors::config::Config;
use rewards_bench::counting::{counts, Counts};
use rewards_bench::inproc::{create_contacts, purchase_jobs, setup, submit_purchases};
use rewards_storage::Durability;

fn per(counts: Counts, purchases: usize) -> String {
    let n = purchases as f64;
    format!(
        "{:7.1} allocations {:7.1} frees {:9.0} bytes",
        counts.allocations as f64 / n,
        counts.frees as f64 / n,
        counts.bytes as f64 / n
    )
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let purchases: usize = args.next().map_or(Ok(20_000), |p| p.parse())?;
    let part = args.next();
    anyhow::ensure!(
        matches!(part.as_deref(), None | Some("pipeline" | "http")),
        "usage: alloc-probe [PURCHASES] [pipeline|http]"
    );
    println!("{purchases} purchases, per purchase:");
    if part.as_deref() != Some("http") {
        pipeline(purchases)?;
    }
    if part.as_deref() != Some("pipeline") {
        let (http, failed, served) = over_http::run(purchases, 1000)?;
        println!("  over HTTP          {}", per(http, purchases));
        anyhow::ensure!(failed == 0, "{failed} purchases over HTTP failed");
        drop(served);
    }
    Ok(())
}

fn pipeline(purchases: usize) -> anyhow::Result<()> {
    let wallets = 10_000;
    let dir = tempfile::tempdir()?;
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        durability: Durability::Sync,
        ..Config::default()
    };
    actix::System::new().block_on(async move {
        let (app, store, _arbiters) = rewards_actors::server::open_app(&config)?;
        let snapshot = setup(&app).await;
        let contacts = create_contacts(&app, &snapshot, wallets).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Warm-up: every wallet resident, the store's tables and the log's buffers grown.
        for _ in 0..wallets / 1000 * 3 {
            let jobs = purchase_jobs(&snapshot, &contacts, &mut rng, 1000);
            submit_purchases(&app, jobs).await;
        }
        let (mut building, mut pipeline) = (Counts::default(), Counts::default());
        let mut done = 0;
        while done < purchases {
            let n = (purchases - done).min(1000);
            let before = counts();
            let jobs = purchase_jobs(&snapshot, &contacts, &mut rng, n);
            let built = counts();
            submit_purchases(&app, jobs).await;
            let after = counts();
            building = building + (built - before);
            pipeline = pipeline + (after - built);
            done += n;
        }
        println!("  building the input {}", per(building, purchases));
        println!("  the pipeline       {}", per(pipeline, purchases));
        store.close();
        anyhow::Ok(())
    })
}

mod over_http {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use rand::{Rng, SeedableRng};
    use rewards_bench::counting::{counts, Counts};
    use rewards_bench::served::Served;
    use serde_json::json;
    const CONNECTIONS: usize = 8;

    /// A three-line basket for contact `c{contact}`, 30 % of them spending all they can.
    fn request(rng: &mut impl Rng, contact: usize, key: &str) -> Vec<u8> {
        let mut lines = Vec::new();
        for _ in 0..3 {
            let (sku, family) = [
                ("MILK-1L", "dairy"),
                ("BREAD", "bakery"),
                ("SKU-3", "other"),
            ][rng.gen_range(0..3)];
            lines.push(json!({
                "sku": sku, "family": family, "quantity": rng.gen_range(1..4).to_string(),
                "unit_price": format!("{}.{:02}", rng.gen_range(0..20), rng.gen_range(0..100)),
                "tax_rate": "0.19",
            }));
        }
        let mut body = json!({
            "identity": {"contact_code": format!("c{contact}")},
            "lines": lines,
            "classification": "grocery",
        });
        if rng.gen_bool(0.3) {
            body["spend"] = json!({"amount": "all"});
        }
        let body = body.to_string();
        format!(
            "POST /v1/purchases HTTP/1.1\r\nHost: probe\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// Sends each request and reads its answer; answers how many were not 2xx. Allocates
    /// nothing.
    fn drive(stream: &mut TcpStream, requests: &[Vec<u8>], buffer: &mut [u8]) -> usize {
        let mut failed = 0;
        for request in requests {
            stream.write_all(request).expect("write");
            let mut filled = 0;
            let (head, length) = loop {
                let n = stream.read(&mut buffer[filled..]).expect("read");
                assert!(n > 0, "the server closed the connection");
                filled += n;
                if let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                    break (end + 4, content_length(&buffer[..end]));
                }
            };
            while filled < head + length {
                let n = stream.read(&mut buffer[filled..]).expect("read");
                assert!(n > 0, "the server closed the connection");
                filled += n;
            }
            if !buffer.starts_with(b"HTTP/1.1 2") {
                failed += 1;
            }
        }
        failed
    }

    fn content_length(head: &[u8]) -> usize {
        const NAME: &[u8] = b"content-length:";
        head.split(|&b| b == b'\n')
            .find(|line| line.len() > NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME))
            .map(|line| {
                line[NAME.len()..]
                    .iter()
                    .filter(|d| d.is_ascii_digit())
                    .fold(0, |n, d| n * 10 + usize::from(d - b'0'))
            })
            .expect("a content-length")
    }

    /// Sends `requests` over `CONNECTIONS` connections; answers the counts and the failures.
    fn send_all(port: u16, requests: &[Vec<u8>]) -> (Counts, usize) {
        let chunk = requests.len().div_ceil(CONNECTIONS);
        let mut streams: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        let mut buffers = vec![vec![0u8; 1 << 16]; CONNECTIONS];
        let before = counts();
        let failed = std::thread::scope(|scope| {
            let workers: Vec<_> = streams
                .iter_mut()
                .zip(buffers.iter_mut())
                .zip(requests.chunks(chunk))
                .map(|((stream, buffer), share)| scope.spawn(move || drive(stream, share, buffer)))
                .collect();
            workers.into_iter().map(|w| w.join().expect("client")).sum()
        });
        (counts() - before, failed)
    }

    pub fn run(purchases: usize, contacts: usize) -> anyhow::Result<(Counts, usize, Served)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::new();
        let served = runtime.block_on(async {
            let served = Served::start(&client).await?;
            for c in 0..contacts {
                served.contact(&client, &format!("c{c}")).await?;
            }
            anyhow::Ok(served)
        })?;
        let (port, key) = (served.port, served.key.clone());
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        // Warm-up: every contact's wallet resident, three purchases each.
        let warm: Vec<Vec<u8>> = (0..contacts * 3)
            .map(|i| request(&mut rng, i % contacts, &key))
            .collect();
        let (_, failed) = send_all(port, &warm);
        anyhow::ensure!(failed == 0, "{failed} warm-up purchases failed");
        let measured: Vec<Vec<u8>> = (0..purchases)
            .map(|_| {
                let contact = rng.gen_range(0..contacts);
                request(&mut rng, contact, &key)
            })
            .collect();
        let (counts, failed) = send_all(port, &measured);
        Ok((counts, failed, served))
    }
}
