//! The replicated log on a real three-server NATS JetStream cluster on loopback: records read
//! back in order (a record larger than one message too), a later writer fences an earlier one,
//! appends go on after a server is killed, and a store on the log moves between two nodes.
//!
//! The tests need `nats-server` (see `rewards_storage::nats_cluster`); without it they are
//! skipped with a message, unless `REWARDS_REQUIRE_NATS` is set, as CI sets it.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rewards_storage::keys::KeyBuilder;
use rewards_storage::log::{Log, Position};
use rewards_storage::nats_cluster::{nats_server, NatsCluster};
use rewards_storage::replicated::{ReplicatedLog, ReplicatedLogOptions};
use rewards_storage::{Durability, Space, Store, StoreError, StoreOptions, WriteSet};

static STREAMS: AtomicU32 = AtomicU32::new(0);

/// Options for a fresh stream of this test process.
fn options(cluster: &NatsCluster, writer: &str) -> ReplicatedLogOptions {
    let n = STREAMS.fetch_add(1, Ordering::Relaxed);
    ReplicatedLogOptions::new(
        cluster.urls(),
        &format!("TEST_{n}"),
        &format!("test.{n}"),
        writer,
    )
}

/// Opens the log, retrying while the cluster elects its first leaders.
fn open(options: &ReplicatedLogOptions) -> ReplicatedLog {
    let started = Instant::now();
    loop {
        match ReplicatedLog::open(options.clone()) {
            Ok(log) => return log,
            Err(error) if started.elapsed() < Duration::from_secs(60) => {
                eprintln!("waiting for the cluster: {error}");
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(error) => panic!("the log did not open in 60 s: {error}"),
        }
    }
}

fn read_all(log: &dyn Log, after: Position) -> Vec<(Position, Vec<u8>)> {
    let mut seen = Vec::new();
    log.read_after(after, &mut |position, record| {
        seen.push((position, record.to_vec()));
        Ok(())
    })
    .unwrap();
    seen
}

/// Runs `body` with a JetStream client of its own on `cluster`, beside the log under test.
fn with_jetstream<F, T>(
    cluster: &NatsCluster,
    body: impl FnOnce(async_nats::jetstream::Context) -> F,
) -> T
where
    F: std::future::Future<Output = T>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(cluster.urls()).await.unwrap();
        body(async_nats::jetstream::new(client)).await
    })
}

fn record(i: usize) -> Vec<u8> {
    format!("record {i} ").repeat(1 + i % 17).into_bytes()
}

/// `n` bytes no compressor shortens (xorshift).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// `n` bytes of eight-byte words drawn from 256: LZ4 shortens them about three times, and the
/// words' order is noise, so a large record stays larger than one message when compressed.
fn words(n: usize, seed: u64) -> Vec<u8> {
    let dictionary = noise(256 * 8, seed);
    noise(n.div_ceil(8), seed.wrapping_add(1))
        .iter()
        .flat_map(|&w| dictionary[usize::from(w) * 8..][..8].to_vec())
        .take(n)
        .collect()
}

/// The message at `sequence` as the servers hold it: its `Rewards-Encoding` header and its
/// payload's length.
fn stored(
    cluster: &NatsCluster,
    options: &ReplicatedLogOptions,
    sequence: u64,
) -> (Option<String>, usize) {
    let name = options.stream.clone();
    with_jetstream(cluster, |context| async move {
        let stream = context.get_stream(&name).await.unwrap();
        let message = stream.get_raw_message(sequence).await.unwrap();
        let encoding = message
            .headers
            .get("Rewards-Encoding")
            .map(|v| v.as_str().to_string());
        (encoding, message.payload.len())
    })
}

#[test]
fn records_come_back_in_order_and_a_large_one_whole() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let options = options(&cluster, "node-a");
    let log = open(&options);
    let mut written = Vec::new();
    for i in 0..40 {
        let bytes = match i {
            // Past the servers' one-megabyte message limit: stored as parts, as they are.
            20 => noise(2_500_000, 7),
            // Compressed, and still past the limit: its compressed bytes stored as parts.
            30 => words(5_000_000, 11),
            // Compressed whole.
            _ if i % 5 == 0 => record(i).repeat(40),
            _ => record(i),
        };
        let position = log.append(&bytes).unwrap();
        if let Some((previous, _)) = written.last() {
            assert!(position > *previous);
        }
        written.push((position, bytes));
    }
    assert_eq!(read_all(&log, 0), written);
    // What the servers hold: plain records as they are, compressible ones shorter and marked.
    let (small, _) = written[1];
    assert_eq!(
        stored(&cluster, &options, small),
        (None, written[1].1.len())
    );
    let (fifth, _) = written[5];
    let (encoding, length) = stored(&cluster, &options, fifth);
    assert_eq!(encoding.as_deref(), Some("lz4"));
    assert!(length * 5 < written[5].1.len(), "{length} bytes stored");
    let (noisy, _) = written[20];
    assert_eq!(stored(&cluster, &options, noisy).0, None);
    // The last part of the compressed large record: itself marked, the record in 2 parts or more.
    let (large, _) = written[30];
    assert_eq!(stored(&cluster, &options, large).0.as_deref(), Some("lz4"));
    assert!(large >= written[29].0 + 2);
    // From a position on: only what follows it.
    let (tenth, _) = written[9];
    assert_eq!(read_all(&log, tenth), written[10..].to_vec());
    let (last, _) = *written.last().unwrap();
    assert!(read_all(&log, last).is_empty());
    // Another opening reads the same records, compressed or not, whether it compresses its
    // own or not; its fence marker is not one of them.
    let reader = open(&ReplicatedLogOptions {
        compress: false,
        ..options.clone()
    });
    assert_eq!(read_all(&reader, 0), written);
    // And what it appends goes as it is.
    let plain = record(5).repeat(40);
    let position = reader.append(&plain).unwrap();
    assert_eq!(stored(&cluster, &options, position), (None, plain.len()));
    assert_eq!(read_all(&reader, last).last(), Some(&(position, plain)));
}

#[test]
fn a_later_writer_fences_off_the_earlier_one() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let options_a = options(&cluster, "node-a");
    let options_b = as_writer(&options_a, "node-b");
    let a = open(&options_a);
    let first = a.append(b"one").unwrap();
    let second = a.append(b"two").unwrap();

    let b = open(&options_b);
    // A's next append finds B's marker at the end: refused, and every later one too.
    assert!(matches!(a.append(b"lost"), Err(StoreError::Fenced(_))));
    assert!(a.is_fenced());
    assert!(matches!(a.append(b"lost too"), Err(StoreError::Fenced(_))));
    // B replays what A acknowledged, and goes on after it.
    assert_eq!(
        read_all(&b, 0),
        vec![(first, b"one".to_vec()), (second, b"two".to_vec())]
    );
    let third = b.append(b"three").unwrap();
    assert!(third > second);
    assert!(!b.is_fenced());
    let c = open(&options_a);
    let records: Vec<Vec<u8>> = read_all(&c, 0).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        records,
        [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
}

#[test]
fn appends_go_on_when_a_server_is_killed_and_none_is_lost_or_doubled() {
    let Some(binary) = nats_server() else { return };
    let mut cluster = NatsCluster::start(binary);
    let options = options(&cluster, "node-a");
    let log = open(&options);
    let rounds: usize = std::env::var("REWARDS_NATS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut acknowledged = Vec::new();
    let mut i = 0;
    for round in 0..rounds {
        for _ in 0..50 {
            acknowledged.push((log.append(&record(i)).unwrap(), record(i)));
            i += 1;
        }
        // Each server in turn, leader or not: a quorum of two is left.
        let victim = round % 3;
        cluster.kill_server(victim);
        for _ in 0..50 {
            acknowledged.push((log.append(&record(i)).unwrap(), record(i)));
            i += 1;
        }
        cluster.start_server(victim);
    }
    assert!(!log.is_fenced());
    let read = read_all(&log, 0);
    assert_eq!(read.len(), acknowledged.len(), "records lost or doubled");
    assert_eq!(read, acknowledged);
    eprintln!("{} appends over {rounds} server kills", acknowledged.len());
}

fn key(i: u64) -> Vec<u8> {
    KeyBuilder::new().u8(7).u64(i).finish()
}

/// The same log options for another writer (another node).
fn as_writer(options: &ReplicatedLogOptions, writer: &str) -> ReplicatedLogOptions {
    ReplicatedLogOptions {
        writer: writer.to_string(),
        ..options.clone()
    }
}

/// A write set of one event record.
fn event(key: Vec<u8>, value: Vec<u8>) -> WriteSet {
    let mut set = WriteSet::new();
    set.put_raw(Space::Events, key, value);
    set
}

fn store_on(dir: &Path, options: &ReplicatedLogOptions) -> Store {
    let options = options.clone();
    Store::open_on(
        dir,
        StoreOptions {
            durability: Durability::Sync,
            ..StoreOptions::default()
        },
        move |_checkpoint| Ok(Box::new(open(&options))),
    )
    .unwrap()
}

#[test]
fn a_store_moves_to_another_node_and_the_first_is_fenced() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let log_options = options(&cluster, "node-a");
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = store_on(dir_a.path(), &log_options);
    for i in 0..100u64 {
        let mut set = WriteSet::new();
        set.put_raw(Space::Events, key(i), i.to_be_bytes().to_vec());
        set.add_counter(b"total", [i as i64, 1]);
        a.write(set).unwrap();
        if i == 60 {
            // Some of it materialised on node A: the stream keeps the records all the same.
            a.checkpoint().unwrap();
        }
    }

    // Node B takes the log over with an empty directory: it replays the whole stream.
    let options_b = as_writer(&log_options, "node-b");
    let b = store_on(dir_b.path(), &options_b);
    let total: i64 = (0..100).sum();
    assert_eq!(b.counter(b"total").unwrap(), [total, 100]);
    for i in 0..100u64 {
        assert_eq!(
            b.get_raw(Space::Events, &key(i)).unwrap(),
            Some(i.to_be_bytes().to_vec())
        );
    }

    // A's next write is refused by the log: nothing of it is acknowledged or visible anywhere.
    assert!(a.write(event(key(1000), b"stale".to_vec())).is_err());
    assert!(a.is_poisoned());
    b.write(event(key(101), b"b".to_vec())).unwrap();
    b.close();
    drop(b);

    // A third opening (node A again, with its own checkpoint) sees B's write and not A's.
    a.close();
    drop(a);
    let again = store_on(dir_a.path(), &log_options);
    assert_eq!(again.get_raw(Space::Events, &key(1000)).unwrap(), None);
    assert_eq!(
        again.get_raw(Space::Events, &key(101)).unwrap(),
        Some(b"b".to_vec())
    );
    assert_eq!(again.counter(b"total").unwrap(), [total, 100]);
}

/// The premise of retrying an unanswered append: a publish repeated with the same message id
/// and the same expected sequence is recognised as the one already stored (the same sequence,
/// flagged a duplicate), not refused as if another writer had appended.
#[test]
fn a_repeated_publish_is_answered_as_the_first_not_fenced() {
    use async_nats::jetstream::{self, message::PublishMessage, stream::Config};
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let options = options(&cluster, "node-a");
    // The stream, created as the log creates it.
    drop(open(&options));
    with_jetstream(&cluster, |context| async move {
        let mut stream = context
            .get_or_create_stream(Config {
                name: options.stream.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        let publish = || {
            PublishMessage::build()
                .payload("once".into())
                .message_id("writer.1")
                .expected_last_subject_sequence(last)
        };
        let first = context
            .send_publish(options.subject.clone(), publish())
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(!first.duplicate);
        assert_eq!(first.sequence, last + 1);
        let again = context
            .send_publish(options.subject.clone(), publish())
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(again.duplicate);
        assert_eq!(again.sequence, first.sequence);
        // Another id with the same stale expectation is refused: that is the fence.
        let stale = PublishMessage::build()
            .payload("other".into())
            .message_id("writer.2")
            .expected_last_subject_sequence(last);
        let refused = context
            .send_publish(options.subject.clone(), stale)
            .await
            .unwrap()
            .await
            .unwrap_err();
        assert_eq!(
            refused.kind(),
            jetstream::context::PublishErrorKind::WrongLastSequence
        );
    });
}

/// Publishes one part of a record as the log writes the parts of a large one (marked with
/// `encoding`, if any), after the message at `after`; answers its sequence.
fn publish_part(
    cluster: &NatsCluster,
    options: &ReplicatedLogOptions,
    payload: &[u8],
    part: &'static str,
    encoding: Option<&'static str>,
    after: u64,
) -> u64 {
    use async_nats::jetstream::message::PublishMessage;
    let subject = options.subject.clone();
    let payload = bytes::Bytes::copy_from_slice(payload);
    with_jetstream(cluster, |context| async move {
        let mut message = PublishMessage::build()
            .payload(payload)
            .header("Rewards-Part", part)
            .expected_last_subject_sequence(after);
        if let Some(encoding) = encoding {
            message = message.header("Rewards-Encoding", encoding);
        }
        context
            .send_publish(subject, message)
            .await
            .unwrap()
            .await
            .unwrap()
            .sequence
    })
}

/// A writer that stopped between the parts of a large record never acknowledged it: the next
/// writer's replay drops the parts before its fence marker and delivers whole records only.
#[test]
fn a_record_cut_short_before_a_fence_is_dropped() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let options_a = options(&cluster, "node-a");
    let a = open(&options_a);
    let whole = a.append(b"whole").unwrap();
    // The first of two parts, as the log writes them, then nothing: the writer died.
    publish_part(&cluster, &options_a, b"first half", "1/2", None, whole);
    drop(a);
    let options_b = as_writer(&options_a, "node-b");
    let b = open(&options_b);
    assert_eq!(read_all(&b, 0), vec![(whole, b"whole".to_vec())]);
    let next = b.append(b"after").unwrap();
    let records: Vec<Vec<u8>> = read_all(&b, 0).into_iter().map(|(_, r)| r).collect();
    assert_eq!(records, [b"whole".to_vec(), b"after".to_vec()]);
    assert!(
        next > whole + 2,
        "the part and the fence marker lie between"
    );
}

/// A reader that meets the first parts of a record whose writer is still appending the rest
/// answers a position before them, so that its next read delivers the record whole.
#[test]
fn a_read_in_the_middle_of_a_record_leaves_it_for_the_next() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let options_a = options(&cluster, "node-a");
    let a = open(&options_a);
    let whole = a.append(b"whole").unwrap();
    let publish = |payload: &[u8], part, after| {
        publish_part(&cluster, &options_a, payload, part, None, after)
    };
    let first = publish(b"first half, ", "1/2", whole);
    let follow = as_writer(&options_a, "node-b");
    let reader = ReplicatedLog::follow(follow).unwrap();
    let mut seen = Vec::new();
    let through = reader
        .read_after(0, &mut |position, record| {
            seen.push((position, record.to_vec()));
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, vec![(whole, b"whole".to_vec())]);
    assert_eq!(
        through, whole,
        "not past the first part of an unfinished record"
    );
    let second = publish(b"second half", "2/2", first);
    assert_eq!(
        read_all(&reader, through),
        vec![(second, b"first half, second half".to_vec())]
    );
}

/// A compressed record in two parts, the second published after a reader met the first: the
/// reader's next read delivers it whole and decompressed. Parts that disagree on their
/// encoding, and an encoding this build does not know, stop the read with an error instead of
/// delivering anything.
#[test]
fn compressed_parts_come_back_whole_and_a_foreign_encoding_is_an_error() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let options_a = options(&cluster, "node-a");
    let a = open(&options_a);
    let whole = a.append(b"whole").unwrap();
    let record = b"a record of words said again and again, ".repeat(40);
    let compressed = rewards_storage::replicated::compress(&record).unwrap();
    let (head, tail) = compressed.split_at(compressed.len() / 2);
    let publish = |payload: &[u8], part, encoding, after| {
        publish_part(&cluster, &options_a, payload, part, encoding, after)
    };
    let first = publish(head, "1/2", Some("lz4"), whole);
    let reader = ReplicatedLog::follow(as_writer(&options_a, "node-b")).unwrap();
    let through = reader.read_after(0, &mut |_, _| Ok(())).unwrap();
    assert_eq!(
        through, whole,
        "not past the first part of an unfinished record"
    );
    let second = publish(tail, "2/2", Some("lz4"), first);
    assert_eq!(read_all(&reader, through), vec![(second, record)]);

    let third = publish(head, "1/2", Some("lz4"), second);
    let fourth = publish(tail, "2/2", None, third);
    let mut delivered = 0;
    let error = reader
        .read_after(second, &mut |_, _| {
            delivered += 1;
            Ok(())
        })
        .unwrap_err();
    assert!(error.to_string().contains("disagree"), "{error}");
    publish(b"\x28\xb5\x2f\xfd", "1/1", Some("zstd"), fourth);
    let error = reader
        .read_after(fourth, &mut |_, _| {
            delivered += 1;
            Ok(())
        })
        .unwrap_err();
    assert!(error.to_string().contains("Rewards-Encoding"), "{error}");
    assert_eq!(delivered, 0);
}

/// A follower's copy: opened without the replay of an opening, it reads what the stream holds
/// by passes (which stop when asked), and sees later writes at its next pass.
#[test]
fn a_follower_catches_up_by_passes_and_stops_when_asked() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let log_options = options(&cluster, "node-a");
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = store_on(dir_a.path(), &log_options);
    let write = |from: u64, to: u64| {
        for i in from..to {
            a.write(event(key(i), i.to_be_bytes().to_vec())).unwrap();
        }
    };
    write(0, 50);
    let follow = as_writer(&log_options, "node-b");
    let b = Store::open_on(
        dir_b.path(),
        StoreOptions {
            replay_at_open: false,
            ..StoreOptions::default()
        },
        move |_| Ok(Box::new(ReplicatedLog::follow(follow)?)),
    )
    .unwrap();
    assert_eq!(b.replayed_at_open(), 0);
    assert_eq!(b.get_raw(Space::Events, &key(0)).unwrap(), None);
    // A pass told to stop at once reads nothing; a whole pass reads everything.
    assert_eq!(b.catch_up(&|| true).unwrap(), 0);
    assert_eq!(b.catch_up(&|| false).unwrap(), 50);
    assert_eq!(
        b.get_raw(Space::Events, &key(49)).unwrap(),
        Some(49u64.to_be_bytes().to_vec())
    );
    // The follower writes nothing (its log refuses), and the writer is not fenced by it.
    assert!(b.write(event(key(1000), b"no".to_vec())).is_err());
    write(50, 60);
    assert_eq!(b.catch_up(&|| false).unwrap(), 10);
    assert_eq!(b.applied_position(), a.applied_position());
    assert_eq!(b.catch_up(&|| false).unwrap(), 0);
    // A new writer's fence marker holds no record: the follower reads past it once, and its
    // next pass starts after it (an idle stream costs a follower no consumer).
    let takeover = as_writer(&log_options, "node-c");
    let dir_c = tempfile::tempdir().unwrap();
    let c = store_on(dir_c.path(), &takeover);
    let stream = takeover.stream.clone();
    let marker = with_jetstream(&cluster, |context| async move {
        let mut stream = context.get_stream(&stream).await.unwrap();
        stream.info().await.unwrap().state.last_sequence
    });
    assert!(marker > a.applied_position());
    assert_eq!(b.catch_up(&|| false).unwrap(), 0);
    assert_eq!(b.followed_position(), marker);
    assert_eq!(b.applied_position(), a.applied_position());
    c.write(event(key(70), b"after the takeover".to_vec()))
        .unwrap();
    assert_eq!(b.catch_up(&|| false).unwrap(), 1);
    assert_eq!(b.followed_position(), c.applied_position());
    assert!(b.get_raw(Space::Events, &key(70)).unwrap().is_some());
}

/// Records the stream no longer holds (its retention dropped them) are a loss a copy that
/// needs them cannot read past: a new follower and a new owner both get `LogLost`, not an I/O
/// error to retry, while a copy already past them follows on.
#[test]
fn a_copy_that_needs_records_gone_from_the_stream_is_told_they_are_lost() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let log_options = options(&cluster, "node-a");
    let dir_a = tempfile::tempdir().unwrap();
    let a = store_on(dir_a.path(), &log_options);
    for i in 0..40 {
        a.write(event(key(i), i.to_be_bytes().to_vec())).unwrap();
    }
    let follower = |dir: &Path, writer: &str| {
        let follow = as_writer(&log_options, writer);
        Store::open_on(
            dir,
            StoreOptions {
                replay_at_open: false,
                ..StoreOptions::default()
            },
            move |_| Ok(Box::new(ReplicatedLog::follow(follow)?)),
        )
        .unwrap()
    };
    let dir_b = tempfile::tempdir().unwrap();
    let b = follower(dir_b.path(), "node-b");
    assert_eq!(b.catch_up(&|| false).unwrap(), 40);
    // The stream drops its first records, as a retention limit would.
    let stream = log_options.stream.clone();
    let first = with_jetstream(&cluster, |context| async move {
        let mut stream = context.get_stream(&stream).await.unwrap();
        stream.purge().sequence(20).await.unwrap();
        stream.info().await.unwrap().state.first_sequence
    });
    assert_eq!(first, 20);
    a.write(event(key(40), b"after the purge".to_vec()))
        .unwrap();
    // A copy already past the dropped records reads on.
    assert_eq!(b.catch_up(&|| false).unwrap(), 1);
    // A new copy cannot be made from the stream alone.
    let dir_c = tempfile::tempdir().unwrap();
    let c = follower(dir_c.path(), "node-c");
    match c.catch_up(&|| false) {
        Err(StoreError::LogLost(reason)) => assert!(reason.contains("no longer"), "{reason}"),
        other => panic!("a copy missing records read on: {other:?}"),
    }
    // Nor can an owner's store open on it.
    let dir_d = tempfile::tempdir().unwrap();
    let takeover = as_writer(&log_options, "node-d");
    match Store::open_on(dir_d.path(), StoreOptions::default(), move |_| {
        Ok(Box::new(ReplicatedLog::open(takeover)?))
    }) {
        Err(StoreError::LogLost(reason)) => assert!(reason.contains("no longer"), "{reason}"),
        Err(other) => panic!("the opening failed otherwise: {other}"),
        Ok(_) => panic!("a store opened on a stream missing its first records"),
    }
    // A stream emptied whole: a copy that had read it all misses nothing; an empty one does.
    b.catch_up(&|| false).unwrap();
    let stream = log_options.stream.clone();
    let emptied = with_jetstream(&cluster, |context| async move {
        let mut stream = context.get_stream(&stream).await.unwrap();
        stream.purge().await.unwrap();
        stream.info().await.unwrap().state.clone()
    });
    assert_eq!(emptied.messages, 0);
    assert_eq!(b.catch_up(&|| false).unwrap(), 0);
    let dir_e = tempfile::tempdir().unwrap();
    let e = follower(dir_e.path(), "node-e");
    assert!(matches!(e.catch_up(&|| false), Err(StoreError::LogLost(_))));
}

/// Dropping what every copy has checkpointed: the stream keeps its last message, so the owner
/// appends on unfenced; a copy past the drop reads on; a store reopened on its directory
/// replays only after its checkpoint; and a read that meets a gap (records gone while it read)
/// reports its copy lost rather than skipping them.
#[test]
fn records_every_copy_checkpointed_leave_the_stream_and_a_gap_is_a_loss() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let log_options = options(&cluster, "node-a");
    let dir_a = tempfile::tempdir().unwrap();
    let a = store_on(dir_a.path(), &log_options);
    for i in 0..30 {
        a.write(event(key(i), i.to_be_bytes().to_vec())).unwrap();
    }
    a.checkpoint().unwrap();
    let through = a.checkpointed_position();
    assert_eq!(through, a.applied_position());
    let stream = log_options.stream.clone();
    let (purged, state) = with_jetstream(&cluster, |context| async move {
        let purged = rewards_storage::replicated::purge_through(&context, &stream, through)
            .await
            .unwrap();
        let mut stream = context.get_stream(&stream).await.unwrap();
        (purged, stream.info().await.unwrap().state.clone())
    });
    // Everything but the last message went: the fence expects it.
    assert!(purged >= 29, "{purged} purged");
    assert_eq!(state.messages, 1);
    assert_eq!(state.first_sequence, state.last_sequence);
    // The owner appends on: its fence still finds the last sequence it expects.
    a.write(event(key(30), b"after the drop".to_vec())).unwrap();
    a.close_without_checkpoint();
    drop(a);
    // Reopened on its directory, the copy replays only what came after its checkpoint.
    let a = store_on(dir_a.path(), &as_writer(&log_options, "node-a2"));
    assert_eq!(a.replayed_at_open(), 1);
    assert!(a.get_raw(Space::Events, &key(0)).unwrap().is_some());
    assert!(a.get_raw(Space::Events, &key(30)).unwrap().is_some());
    // Nothing to drop twice: the last message stays however far the checkpoint goes.
    a.checkpoint().unwrap();
    let through = a.checkpointed_position();
    let stream = log_options.stream.clone();
    let kept = with_jetstream(&cluster, |context| async move {
        rewards_storage::replicated::purge_through(&context, &stream, through)
            .await
            .unwrap();
        let mut stream = context.get_stream(&stream).await.unwrap();
        stream.info().await.unwrap().state.messages
    });
    assert_eq!(kept, 1);
    // A gap in the middle of what a copy reads: that copy is lost, not quietly incomplete.
    for i in 31..40 {
        a.write(event(key(i), i.to_be_bytes().to_vec())).unwrap();
    }
    let start = a.checkpointed_position();
    let stream = log_options.stream.clone();
    with_jetstream(&cluster, |context| async move {
        let stream = context.get_stream(&stream).await.unwrap();
        assert!(stream.delete_message(start + 4).await.unwrap());
    });
    let follower = ReplicatedLog::follow(as_writer(&log_options, "node-b")).unwrap();
    let mut read = 0;
    match follower.read_after(start, &mut |_, _| {
        read += 1;
        Ok(())
    }) {
        Err(StoreError::LogLost(reason)) => assert!(reason.contains("while"), "{reason}"),
        other => panic!("a read across a gap went on: {other:?}"),
    }
    assert!(read < 9, "{read} records read across the gap");
}

/// A backup of an owner's store, rebased to the stream position it is as of, is a copy that
/// needs only the stream's records after that position: with everything before it dropped
/// from the stream, it opens, replays the tail alone, and holds every record.
#[test]
fn a_rebased_backup_is_a_copy_that_needs_only_the_tail() {
    let Some(binary) = nats_server() else { return };
    let cluster = NatsCluster::start(binary);
    let log_options = options(&cluster, "node-a");
    let dir_a = tempfile::tempdir().unwrap();
    let a = store_on(dir_a.path(), &log_options);
    for i in 0..30u64 {
        a.write(event(key(i), i.to_be_bytes().to_vec())).unwrap();
        if i == 10 {
            a.checkpoint().unwrap();
        }
    }
    let copies = tempfile::tempdir().unwrap();
    let copy = copies.path().join("copy");
    let stats = a.backup(&copy).unwrap();
    assert_eq!(stats.position, a.applied_position());
    Store::rebase(&copy, stats.position).unwrap();
    assert!(!copy.join("log").exists(), "the backup's own log goes");
    for i in 30..45u64 {
        a.write(event(key(i), i.to_be_bytes().to_vec())).unwrap();
    }
    // Everything the backup holds leaves the stream (its last message stays, as always).
    let stream = log_options.stream.clone();
    let first = with_jetstream(&cluster, |context| async move {
        let mut stream = context.get_stream(&stream).await.unwrap();
        stream.purge().sequence(stats.position + 1).await.unwrap();
        stream.info().await.unwrap().state.first_sequence
    });
    assert_eq!(first, stats.position + 1);
    let follow = as_writer(&log_options, "node-b");
    let b = Store::open_on(&copy, StoreOptions::default(), move |checkpoint| {
        assert_eq!(
            checkpoint, stats.position,
            "the copy opens at the backup's position"
        );
        Ok(Box::new(ReplicatedLog::follow(follow)?))
    })
    .unwrap();
    assert_eq!(b.replayed_at_open(), 15, "only the writes after the backup");
    for i in 0..45u64 {
        assert_eq!(
            b.get_raw(Space::Events, &key(i)).unwrap(),
            Some(i.to_be_bytes().to_vec()),
            "record {i}"
        );
    }
    b.close();
    drop(b);
    drop(a);
}
