//! A log on a replicated NATS JetStream stream: the [`Log`] seam for nodes that share the work.
//!
//! One stream per log, one subject in it. A record is one message, or several consecutive ones
//! when it is larger than the servers take in one message. Positions are the stream's sequence
//! numbers, so they increase but need not be consecutive.
//!
//! **The fence is on the log itself.** Every append carries
//! `Nats-Expected-Last-Subject-Sequence`: the stream takes it only if nothing was appended since
//! this writer's last append. Opening the log appends a fence marker at the end, so a writer
//! that opened it earlier has its next append refused, and everything it appended before the
//! marker is read back by the new writer's replay. A refused append reports
//! [`StoreError::Fenced`] and every later one is refused too: a deposed writer stops at once.
//!
//! **An append whose answer is lost is retried with the same message id** (`Nats-Msg-Id`), until
//! `append_deadline`. The stream's duplicate window recognises a retry of a message it already
//! stored and answers with the first one's sequence, so a record is never stored twice.
//!
//! Durability is the servers': an acknowledged message is on a quorum of the stream's replicas,
//! and with `jetstream { sync_interval: always }` in their configuration, on those disks.
//!
//! **A record is compressed** (a mark byte, its length and an LZ4 block, every message of it
//! marked with `Rewards-Encoding: lz4`) when that makes it shorter: each byte published is received,
//! replicated, written and fsynced by the servers, and delivered to every follower. Messages
//! without the header are read as they are, so a stream written without compression reads on.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{
    self,
    consumer::{pull::OrderedConfig, DeliverPolicy},
    context::PublishErrorKind,
    message::PublishMessage,
    stream::{Config as StreamConfig, LastRawMessageErrorKind, RetentionPolicy, StorageType},
};
use async_nats::HeaderMap;
use futures::StreamExt;
use parking_lot::Mutex;

use crate::log::{Log, Position, Visit, MAX_RECORD_BYTES};
use crate::store::StoreError;

/// Header of the marker a writer appends when it opens the log; its value names the writer.
const FENCE_HEADER: &str = "Rewards-Fence";
/// Header of a message that holds one part of a record: `part/parts`, counted from 1.
const PART_HEADER: &str = "Rewards-Part";
/// Header of every message of a compressed record; its value names the encoding.
const ENCODING_HEADER: &str = "Rewards-Encoding";
/// The one encoding there is: [`LZ4_MARK`], the record's length (u32, little-endian) and an
/// LZ4 block.
const LZ4: &str = "lz4";
/// The first byte of a compressed record: never a record format's version, so that a build
/// which does not know the header refuses the record as one of an unknown format.
const LZ4_MARK: u8 = 0xC4;
/// Bytes before the LZ4 block: the mark and the record's length.
const LZ4_HEAD: usize = 5;
/// Records shorter than this are published as they are: a few hundred bytes gain little.
const COMPRESS_FROM_BYTES: usize = 512;
/// LZ4 writes at most 255 bytes of output per byte of input: a compressed record that claims a
/// longer length than that allows is damaged, and its length is not allocated.
const LZ4_MAX_RATIO: usize = 255;
/// Room left in each message for its headers.
const HEADER_ROOM: usize = 1024;
/// Records read back and not yet visited, between the reading task and the caller.
const READ_AHEAD: usize = 256;

/// Where the log lives and who writes it.
#[derive(Clone, Debug)]
pub struct ReplicatedLogOptions {
    /// NATS server addresses (`nats://host:port`); the client fails over between them.
    pub servers: Vec<String>,
    /// The stream's name (letters, digits, `-` and `_`).
    pub stream: String,
    /// The one subject the stream holds.
    pub subject: String,
    /// Copies of each message: 3 survives the loss of one server with a quorum left.
    pub replicas: usize,
    /// This writer's name, written in its fence marker.
    pub writer: String,
    /// How long one request to the servers waits for its answer.
    pub request_timeout: Duration,
    /// How long an append keeps retrying an unanswered publish (a server lost, a leader being
    /// elected) before it reports the log unreachable.
    pub append_deadline: Duration,
    /// Whether records are compressed (when that makes them shorter). Reading takes both.
    pub compress: bool,
}

impl ReplicatedLogOptions {
    /// Options with a 1 s request timeout and a 30 s append deadline. An acknowledgement takes
    /// milliseconds; one that has not come in a second is most likely lost with a server, and
    /// the retry (deduplicated by its message id) reaches the stream's new leader.
    pub fn new(servers: Vec<String>, stream: &str, subject: &str, writer: &str) -> Self {
        ReplicatedLogOptions {
            servers,
            stream: stream.to_string(),
            subject: subject.to_string(),
            replicas: 3,
            writer: writer.to_string(),
            request_timeout: Duration::from_secs(1),
            append_deadline: Duration::from_secs(30),
            compress: true,
        }
    }
}

struct WriterState {
    /// Sequence of the last message this writer appended (or found at the end when it opened).
    last: u64,
    /// Set once an append was refused because another writer appended: every later one is.
    fenced: Option<String>,
    /// Counter in this writer's message ids.
    next_id: u64,
}

/// A [`Log`] on a JetStream stream; see the module's documentation.
pub struct ReplicatedLog {
    /// The client's own runtime: one worker thread, so that the log can be used from plain
    /// threads (the store's writer) and from inside another runtime alike.
    runtime: Option<tokio::runtime::Runtime>,
    context: jetstream::Context,
    options: ReplicatedLogOptions,
    /// Unique to this opening of the log: the prefix of its message ids.
    token: String,
    /// Bytes of record per message.
    part_bytes: usize,
    /// Opened to follow the stream, not to write it: no fence marker, appends refused.
    follower: bool,
    state: Mutex<WriterState>,
}

fn unreachable(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("replicated log: {what}: {error}"))
}

/// A token no other opening of any log shares: the writer, the clock and the process.
fn opening_token(writer: &str) -> String {
    static OPENINGS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{writer}.{nanos:x}.{:x}.{:x}",
        std::process::id(),
        OPENINGS.fetch_add(1, Ordering::Relaxed)
    )
}

/// What one publish came to.
enum Appended {
    Stored(u64),
    Fenced(String),
}

impl ReplicatedLog {
    /// Connects, creates the stream if it is missing, and fences off any earlier writer by
    /// appending a marker at the end. Records before the marker are this writer's to replay
    /// with [`Log::read_after`]; appends that lose a race with a later opening are refused.
    pub fn open(options: ReplicatedLogOptions) -> Result<ReplicatedLog, StoreError> {
        ReplicatedLog::connect_to(options, false)
    }

    fn connect_to(
        options: ReplicatedLogOptions,
        follower: bool,
    ) -> Result<ReplicatedLog, StoreError> {
        if options.servers.is_empty() {
            return Err(StoreError::Refused(
                "replicated log: no NATS servers given".to_string(),
            ));
        }
        if !(1..=5).contains(&options.replicas) {
            return Err(StoreError::Refused(format!(
                "replicated log: replicas must be 1 to 5, not {}",
                options.replicas
            )));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("log-nats")
            .enable_all()
            .build()
            .map_err(|e| unreachable("starting the client's runtime", e))?;
        // The servers may be electing a leader (one was just lost): connecting and finding the
        // stream is retried until the append deadline.
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        let (context, max_payload) = loop {
            match block_on_runtime(&runtime, connect(options.clone())) {
                Ok(connected) => break connected,
                Err(error) if started.elapsed() < options.append_deadline => {
                    tracing::warn!(%error, "the replicated log is not reachable yet; retrying");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(error) => return Err(unreachable("connecting", error)),
            }
        };
        let mut log = ReplicatedLog {
            runtime: Some(runtime),
            context,
            token: opening_token(&options.writer),
            part_bytes: max_payload.saturating_sub(HEADER_ROOM).max(1),
            follower,
            options,
            state: Mutex::new(WriterState {
                last: 0,
                fenced: None,
                next_id: 0,
            }),
        };
        if !follower {
            log.fence_earlier_writers()?;
        }
        Ok(log)
    }

    /// Connects to read the stream and follow it, without fencing anyone: every append is
    /// refused. A cluster's follower keeps its copy close to the stream with it.
    pub fn follow(options: ReplicatedLogOptions) -> Result<ReplicatedLog, StoreError> {
        ReplicatedLog::connect_to(options, true)
    }

    /// Appends this writer's marker after whatever is at the end, retrying while other writers
    /// append in between.
    fn fence_earlier_writers(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        for _ in 0..100 {
            let last = match self.last_sequence() {
                Ok(last) => last,
                // A leader being elected: as for an append, retried until the deadline.
                Err(error) if started.elapsed() < self.options.append_deadline => {
                    tracing::warn!(%error, "the fence is retried");
                    std::thread::sleep(Duration::from_millis(250));
                    continue;
                }
                Err(error) => return Err(error),
            };
            let mut headers = HeaderMap::new();
            headers.insert(FENCE_HEADER, self.options.writer.as_str());
            let id = self.take_id();
            match self.publish(Vec::new(), headers, last, id)? {
                Appended::Stored(sequence) => {
                    self.state.get_mut().last = sequence;
                    tracing::info!(
                        stream = %self.options.stream,
                        writer = %self.options.writer,
                        fence = sequence,
                        "the replicated log is fenced for this writer"
                    );
                    return Ok(());
                }
                Appended::Fenced(_) => continue,
            }
        }
        Err(unreachable(
            "fencing",
            "other writers kept appending; another process is opening the same log",
        ))
    }

    /// The sequence of the subject's last message (0 when it has none): what the fence header
    /// is checked against.
    fn last_sequence(&self) -> Result<u64, StoreError> {
        let context = self.context.clone();
        let name = self.options.stream.clone();
        let subject = self.options.subject.clone();
        self.run(async move {
            let stream = context.get_stream_no_info(&name).await?;
            subject_last(&stream, &subject).await
        })
        .map_err(|e| unreachable("reading the stream's state", e))
    }

    fn take_id(&self) -> String {
        let mut state = self.state.lock();
        state.next_id += 1;
        format!("{}.{}", self.token, state.next_id)
    }

    /// Publishes one message that expects `expected` to be the subject's last sequence,
    /// retrying an unanswered publish with the same id until the append deadline.
    fn publish(
        &self,
        payload: Vec<u8>,
        headers: HeaderMap,
        expected: u64,
        id: String,
    ) -> Result<Appended, StoreError> {
        let started = Instant::now();
        let payload = bytes::Bytes::from(payload);
        let mut pause = Duration::from_millis(50);
        loop {
            let context = self.context.clone();
            let subject = self.options.subject.clone();
            let mut publish = PublishMessage::build()
                .payload(payload.clone())
                .message_id(&id)
                .expected_last_subject_sequence(expected);
            for (name, values) in headers.iter() {
                for value in values {
                    publish = publish.header(name.clone(), value.clone());
                }
            }
            let outcome =
                self.run(async move { context.send_publish(subject, publish).await?.await });
            let error = match outcome {
                Ok(ack) if ack.sequence > expected => return Ok(Appended::Stored(ack.sequence)),
                Ok(ack) => {
                    return Err(StoreError::Io(format!(
                        "replicated log: the stream acknowledged sequence {} after {expected}",
                        ack.sequence
                    )))
                }
                Err(error) => error,
            };
            match error.kind() {
                PublishErrorKind::WrongLastSequence => {
                    return Ok(Appended::Fenced(error.to_string()));
                }
                // Not a refusal: "wrong last sequence" without a sequence (error code 10164)
                // is what a replicated stream answers while another publish with an expected
                // sequence is in flight on the subject, most often this writer's own earlier
                // attempt at the same record. It is retried like a lost answer: the next
                // attempt is either recognised as a duplicate of the one that landed, or
                // refused with the stream's actual last sequence (10071) if another writer won.
                PublishErrorKind::Other
                    if error.to_string().contains("wrong last sequence")
                        && started.elapsed() < self.options.append_deadline =>
                {
                    metrics::counter!("rewards_log_append_retries_total").increment(1);
                    tracing::warn!(error = %error, "an append met another in flight; retried");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                PublishErrorKind::MaxPayloadExceeded => {
                    return Err(unreachable("appending", error));
                }
                // "No stream" is also what a publish hears while the stream's leader is being
                // elected (no server answers for it): retried like a lost answer.
                _ if started.elapsed() >= self.options.append_deadline => {
                    return Err(unreachable(
                        &format!(
                            "no append for {} s",
                            self.options.append_deadline.as_secs_f64()
                        ),
                        error,
                    ));
                }
                _ => {
                    metrics::counter!("rewards_log_append_retries_total").increment(1);
                    tracing::warn!(error = %error, "an append to the replicated log is retried");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Runs `future` on the client's runtime and waits for it on this thread.
    fn run<T: Send + 'static>(&self, future: impl Future<Output = T> + Send + 'static) -> T {
        // `runtime` is only taken in `drop`.
        #[allow(clippy::unwrap_used)]
        block_on_runtime(self.runtime.as_ref().unwrap(), future)
    }

    /// One pass of [`Log::read_after`]: every record after `position` to the subject's last,
    /// or the reason it stopped, with the position of the last record visited.
    fn read_pass(&self, position: Position, visit: &mut Visit<'_>) -> Result<Position, Pass> {
        let context = self.context.clone();
        let name = self.options.stream.clone();
        let subject = self.options.subject.clone();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
        // A stream that stops delivering before the end is an error, not a wait without end.
        let idle = (self.options.request_timeout * 10).max(Duration::from_secs(10));
        let reader = async move {
            let mut stream = context.get_stream(&name).await.map_err(Stop::transient)?;
            let state = stream.info().await.map_err(Stop::transient)?.state.clone();
            // The stream's own sequence survives purges, where its subject's last message may
            // be gone: a copy is judged against it before anything is read.
            if state.last_sequence < position {
                return Err(Stop::Lost(format!(
                    "stream {name} ends at {}, before position {position} that a checkpoint covers",
                    state.last_sequence
                )));
            }
            if state.first_sequence > position + 1 {
                return Err(Stop::Lost(format!(
                    "records {} to {} are no longer in stream {name}",
                    position + 1,
                    state.first_sequence - 1
                )));
            }
            let last = subject_last(&stream, &subject)
                .await
                .map_err(Stop::transient)?;
            if last <= position {
                return Ok(position);
            }
            let consumer = stream
                .create_consumer(OrderedConfig {
                    filter_subject: subject,
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: position + 1,
                    },
                    ..Default::default()
                })
                .await
                .map_err(Stop::transient)?;
            let mut messages = consumer.messages().await.map_err(Stop::transient)?;
            let mut delivered = position;
            let mut behind = false;
            loop {
                let next = tokio::time::timeout(idle, messages.next())
                    .await
                    .map_err(|_| {
                        Stop::Transient(format!(
                            "stream {name} delivered nothing for {} s after sequence {delivered} (its last is {last})",
                            idle.as_secs()
                        ))
                    })?;
                let Some(message) = next else {
                    return Err(Stop::Transient(format!(
                        "stream {name} stopped delivering after sequence {delivered} (its last is {last})"
                    )));
                };
                let message = message.map_err(Stop::transient)?;
                let info = message.info().map_err(Stop::transient)?;
                let (sequence, pending) = (info.stream_sequence, info.pending);
                // The stream's one subject numbers its messages without gaps: a gap is records
                // dropped while this pass read (a purge below a copy it did not know of), and a
                // copy that skipped them would be wrong, not merely behind.
                if sequence > delivered + 1 {
                    return Err(Stop::Lost(format!(
                        "records {} to {} left stream {name} while they were being read",
                        delivered + 1,
                        sequence - 1
                    )));
                }
                // An ordered consumer that resets before its first message starts again from
                // the stream's beginning (async-nats 0.51 recreates it with "deliver all"):
                // what lies before `position` or was delivered already is skipped, never
                // applied again over newer changes.
                if sequence > delivered {
                    let read = classify(message.headers.as_ref(), message.payload.clone())
                        .map_err(Stop::Permanent)?;
                    if sender.send((sequence, read)).await.is_err() {
                        break;
                    }
                    delivered = sequence;
                }
                if sequence >= last {
                    break;
                }
                // Nothing more pending before the subject's last (as the stream's leader told
                // it): this consumer reads a replica that is behind, and the rest comes as that
                // replica catches up. Ending the pass at the stream's last here would skip the
                // records in between.
                if pending == 0 && !behind {
                    behind = true;
                    tracing::info!(
                        stream = %name,
                        delivered,
                        last,
                        "the consumer's replica is behind the stream's last; reading on as it catches up"
                    );
                }
            }
            Ok(delivered)
        };
        // `runtime` is only taken in `drop`.
        #[allow(clippy::unwrap_used)]
        let task = self.runtime.as_ref().unwrap().spawn(reader);
        let mut assembly: Option<Assembly> = None;
        let mut last_visited = position;
        // Where a later pass may start without losing anything: past every message read
        // except the parts of a record still being appended.
        let mut settled = position;
        while let Some((sequence, read)) = futures::executor::block_on(receiver.recv()) {
            match read {
                // A record cut short by a writer that stopped part way was never
                // acknowledged: it is dropped.
                Read::Fence => {
                    assembly = None;
                    settled = sequence;
                }
                Read::Whole { bytes, compressed } => {
                    assembly = None;
                    deliver(visit, sequence, &bytes, compressed)?;
                    last_visited = sequence;
                    settled = sequence;
                }
                Read::Part {
                    part,
                    parts,
                    bytes,
                    compressed,
                } => {
                    let mut current = match assembly.take() {
                        Some(a) if a.next == part && a.parts == parts => {
                            if a.compressed != compressed {
                                return Err(Pass::Visit(unreachable(
                                    "reading back",
                                    format!(
                                        "the part at sequence {sequence} and the parts \
                                         before it of one record disagree on its encoding"
                                    ),
                                )));
                            }
                            a
                        }
                        _ if part == 1 => Assembly {
                            parts,
                            next: 1,
                            bytes: Vec::new(),
                            compressed,
                        },
                        // A later part whose first was before `position` (or cut off):
                        // nothing to deliver.
                        _ => {
                            settled = sequence;
                            continue;
                        }
                    };
                    current.bytes.extend_from_slice(&bytes);
                    current.next += 1;
                    if part == parts {
                        deliver(visit, sequence, &current.bytes, current.compressed)?;
                        last_visited = sequence;
                        settled = sequence;
                    } else {
                        assembly = Some(current);
                    }
                }
            }
        }
        match futures::executor::block_on(task) {
            // The parts of a record its writer is still appending are read again next time.
            Ok(Ok(_)) if assembly.is_some() => Ok(settled),
            Ok(Ok(delivered)) => Ok(delivered.max(settled)),
            Ok(Err(Stop::Lost(error))) => Err(Pass::Visit(StoreError::LogLost(format!(
                "replicated log: {error}"
            )))),
            Ok(Err(Stop::Permanent(error))) => Err(Pass::Visit(unreachable("reading back", error))),
            Ok(Err(Stop::Transient(error))) => Err(Pass::Transient {
                error,
                visited: last_visited,
            }),
            Err(error) => Err(Pass::Visit(unreachable("reading back", error))),
        }
    }

    /// The writer that opened this log, as its fence marker names it.
    pub fn writer(&self) -> &str {
        &self.options.writer
    }

    /// Whether another writer has taken the log over (an append was refused).
    pub fn is_fenced(&self) -> bool {
        self.state.lock().fenced.is_some()
    }
}

/// Connects to the servers and finds (or creates) the log's stream; answers the JetStream
/// context and the largest message the servers take.
/// Drops the stream's messages through `position`, a position every copy of the data has
/// checkpointed (so none of them reads before it again), and answers how many went. The
/// subject's last message always stays: a writer's fence expects it as the last sequence, and
/// a stream emptied of it would refuse the owner's next append.
pub async fn purge_through(
    context: &jetstream::Context,
    stream: &str,
    position: Position,
) -> Result<u64, String> {
    let mut stream = context
        .get_stream(stream)
        .await
        .map_err(|e| e.to_string())?;
    let state = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .clone();
    // Everything before `upto` goes.
    let upto = position.saturating_add(1).min(state.last_sequence);
    if upto <= state.first_sequence {
        return Ok(0);
    }
    let purged = stream
        .purge()
        .sequence(upto)
        .await
        .map_err(|e| e.to_string())?;
    Ok(purged.purged)
}

async fn connect(
    options: ReplicatedLogOptions,
) -> Result<(jetstream::Context, usize), async_nats::Error> {
    let connect = async_nats::ConnectOptions::new()
        .name(&options.writer)
        .connection_timeout(options.request_timeout.max(Duration::from_secs(5)))
        .request_timeout(Some(options.request_timeout));
    let client = connect.connect(options.servers.as_slice()).await?;
    let context = jetstream::ContextBuilder::new()
        .timeout(options.request_timeout)
        .build(client.clone());
    let stream = context
        .get_or_create_stream(StreamConfig {
            name: options.stream.clone(),
            subjects: vec![options.subject.clone()],
            storage: StorageType::File,
            num_replicas: options.replicas,
            retention: RetentionPolicy::Limits,
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            ..Default::default()
        })
        .await?;
    let replicas = stream.cached_info().config.num_replicas;
    if replicas != options.replicas {
        tracing::warn!(
            stream = %options.stream,
            configured = options.replicas,
            found = replicas,
            "the log's stream exists with another replica count; it is used as it is"
        );
    }
    Ok((context, client.max_payload()))
}

/// The sequence of `subject`'s last message in `stream`, 0 when it has none.
async fn subject_last<I>(
    stream: &jetstream::stream::Stream<I>,
    subject: &str,
) -> Result<u64, async_nats::Error> {
    match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => Ok(message.sequence),
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(error) => Err(error.into()),
    }
}

/// Spawns `future` on `runtime` and waits for its output without entering the runtime, so a
/// caller inside another runtime does not trip tokio's nesting check.
fn block_on_runtime<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = T> + Send + 'static,
) -> T {
    let task = runtime.spawn(future);
    match futures::executor::block_on(task) {
        Ok(output) => output,
        // The task neither panics (it only awaits the client) nor is aborted.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

impl Drop for ReplicatedLog {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Why a reading task stopped: records the copy needs are gone from the stream; for good (a
/// message that cannot be read as a record's part); or for now (a timeout, a server lost).
enum Stop {
    Lost(String),
    Permanent(String),
    Transient(String),
}

impl Stop {
    fn transient(error: impl std::fmt::Display) -> Stop {
        Stop::Transient(error.to_string())
    }
}

/// How one pass of reading back ended, short of the end.
enum Pass {
    /// The caller's visit failed, or the stream cannot give what is asked: stop.
    Visit(StoreError),
    /// Worth another pass from after `visited`.
    Transient { error: String, visited: Position },
}

/// A record assembled from its parts while the log is read back.
struct Assembly {
    parts: u32,
    next: u32,
    bytes: Vec<u8>,
    compressed: bool,
}

/// One message read back: its sequence, its headers' meaning and its payload.
enum Read {
    Fence,
    Whole {
        bytes: bytes::Bytes,
        compressed: bool,
    },
    Part {
        part: u32,
        parts: u32,
        bytes: bytes::Bytes,
        compressed: bool,
    },
}

fn classify(headers: Option<&HeaderMap>, payload: bytes::Bytes) -> Result<Read, String> {
    let Some(headers) = headers else {
        return Ok(Read::Whole {
            bytes: payload,
            compressed: false,
        });
    };
    if headers.get(FENCE_HEADER).is_some() {
        return Ok(Read::Fence);
    }
    let compressed = match headers.get(ENCODING_HEADER).map(|v| v.as_str()) {
        None => false,
        Some(LZ4) => true,
        Some(other) => {
            return Err(format!(
                "a message's {ENCODING_HEADER} header reads {other:?}"
            ))
        }
    };
    let Some(value) = headers.get(PART_HEADER) else {
        return Ok(Read::Whole {
            bytes: payload,
            compressed,
        });
    };
    let text = value.as_str();
    let parsed = text
        .split_once('/')
        .and_then(|(part, parts)| Some((part.parse::<u32>().ok()?, parts.parse::<u32>().ok()?)));
    match parsed {
        Some((part, parts)) if part >= 1 && part <= parts => Ok(Read::Part {
            part,
            parts,
            bytes: payload,
            compressed,
        }),
        _ => Err(format!("a message's {PART_HEADER} header reads {text:?}")),
    }
}

/// Visits the record at `sequence`, decompressed first when it was published compressed.
fn deliver(
    visit: &mut Visit<'_>,
    sequence: Position,
    bytes: &[u8],
    compressed: bool,
) -> Result<(), Pass> {
    if !compressed {
        return visit(sequence, bytes).map_err(Pass::Visit);
    }
    let record = decompress(bytes).map_err(|error| {
        Pass::Visit(unreachable(
            "reading back",
            format!("the record at sequence {sequence} cannot be decompressed: {error}"),
        ))
    })?;
    visit(sequence, &record).map_err(Pass::Visit)
}

/// The record as it is published compressed: [`LZ4_MARK`], its length (u32, little-endian) and
/// an LZ4 block; `None` when that is not shorter than the record itself.
pub fn compress(record: &[u8]) -> Option<Vec<u8>> {
    let length = u32::try_from(record.len()).ok()?;
    let mut out = vec![0; LZ4_HEAD + lz4_flex::block::get_maximum_output_size(record.len())];
    let (head, body) = out.split_at_mut(LZ4_HEAD);
    let (mark, length_bytes) = head.split_at_mut(1);
    mark.fill(LZ4_MARK);
    length_bytes.copy_from_slice(&length.to_le_bytes());
    let written = lz4_flex::block::compress_into(record, body).ok()?;
    let total = LZ4_HEAD + written;
    if total >= record.len() {
        return None;
    }
    out.truncate(total);
    Some(out)
}

/// The record [`compress`] made `bytes` from. A block that does not decode to its stated length
/// is an error, never a panic, and that length is allocated only when the block could hold it.
/// (An LZ4 block carries no checksum: a changed byte that still decodes comes back changed, as
/// a plain record's would; the servers checksum what they store.)
pub fn decompress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let Some((&LZ4_MARK, rest)) = bytes.split_first() else {
        return Err("it does not begin as a compressed record".to_string());
    };
    let (head, body) = rest
        .split_first_chunk::<4>()
        .ok_or("it is shorter than its length")?;
    let length = usize::try_from(u32::from_le_bytes(*head)).map_err(|e| e.to_string())?;
    // A record is published compressed only when that is shorter than the record.
    if length <= bytes.len()
        || length > MAX_RECORD_BYTES
        || length > body.len().saturating_mul(LZ4_MAX_RATIO)
    {
        return Err(format!(
            "it claims {length} bytes from a block of {}",
            body.len()
        ));
    }
    let mut record = vec![0; length];
    let written =
        lz4_flex::block::decompress_into(body, &mut record).map_err(|e| format!("{e:?}"))?;
    if written != length {
        return Err(format!(
            "it holds {written} bytes, not the {length} it claims"
        ));
    }
    Ok(record)
}

impl Log for ReplicatedLog {
    fn append(&self, record: &[u8]) -> Result<Position, StoreError> {
        if self.follower {
            return Err(StoreError::Refused(
                "this log was opened to follow the stream, not to write it".to_string(),
            ));
        }
        if let Some(reason) = &self.state.lock().fenced {
            return Err(StoreError::Fenced(reason.clone()));
        }
        let compressed = if self.options.compress && record.len() >= COMPRESS_FROM_BYTES {
            compress(record)
        } else {
            None
        };
        let published = compressed.as_deref().unwrap_or(record);
        let parts: Vec<&[u8]> = if published.len() <= self.part_bytes {
            vec![published]
        } else {
            published.chunks(self.part_bytes).collect()
        };
        let count = parts.len();
        for (index, part) in parts.into_iter().enumerate() {
            let mut headers = HeaderMap::new();
            if count > 1 {
                headers.insert(PART_HEADER, format!("{}/{count}", index + 1).as_str());
            }
            if compressed.is_some() {
                headers.insert(ENCODING_HEADER, LZ4);
            }
            let expected = self.state.lock().last;
            let id = self.take_id();
            match self.publish(part.to_vec(), headers, expected, id)? {
                Appended::Stored(sequence) => self.state.lock().last = sequence,
                Appended::Fenced(error) => {
                    let reason = format!(
                        "another writer appended to stream {} after sequence {expected}: {error}",
                        self.options.stream
                    );
                    tracing::error!(writer = %self.options.writer, %reason, "this writer is fenced off the replicated log");
                    metrics::counter!("rewards_log_appends_fenced_total").increment(1);
                    self.state.lock().fenced = Some(reason.clone());
                    return Err(StoreError::Fenced(reason));
                }
            }
        }
        metrics::counter!("rewards_log_record_bytes_total").increment(record.len() as u64);
        metrics::counter!("rewards_log_published_bytes_total").increment(published.len() as u64);
        Ok(self.state.lock().last)
    }

    fn read_after(
        &self,
        position: Position,
        visit: &mut Visit<'_>,
    ) -> Result<Position, StoreError> {
        // A replay that meets a server being lost or a leader being elected goes on from the
        // last record it delivered, until the append deadline.
        let started = Instant::now();
        let mut from = position;
        let mut pause = Duration::from_millis(100);
        loop {
            match self.read_pass(from, visit) {
                Ok(last) => return Ok(last),
                Err(Pass::Visit(error)) => return Err(error),
                Err(Pass::Transient { error, visited }) => {
                    if started.elapsed() >= self.options.append_deadline {
                        return Err(unreachable("reading back", error));
                    }
                    tracing::warn!(%error, after = visited, "reading the replicated log back is retried");
                    from = visited;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// The stream keeps its records: other nodes replay them from their own checkpoints, so
    /// one writer's checkpoint does not cover what they need. The stream's retention (its age
    /// and size limits, set on the stream) decides what goes.
    fn truncate_through(&self, _position: Position) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// A purchase-like record: repeated ids and texts among numbers.
    fn record() -> Vec<u8> {
        let mut record = vec![1u8];
        for i in 0..200u32 {
            record.extend_from_slice(b"\x01\x05\x11\x00\x00\x00wallet-0000000042");
            record.extend_from_slice(&i.to_le_bytes());
            record.extend_from_slice(b"MILK-1L dairy grocery EUR 4.50");
        }
        record
    }

    #[test]
    fn a_record_comes_back_from_its_compressed_form() {
        let record = record();
        let compressed = compress(&record).unwrap();
        assert!(compressed.len() * 3 < record.len(), "{}", compressed.len());
        assert_eq!(compressed[0], LZ4_MARK);
        assert_ne!(compressed[0], crate::batch::VERSION);
        assert_eq!(decompress(&compressed).unwrap(), record);
    }

    #[test]
    fn a_record_compression_does_not_shorten_is_left_as_it_is() {
        assert_eq!(compress(b""), None);
        assert_eq!(compress(b"\x01abc"), None);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        assert_eq!(compress(&noise), None);
    }

    /// Damaged compressed records, cut short or with bytes changed anywhere, are refused or
    /// read as some record, never a panic, and never a length the block could not hold.
    #[test]
    fn a_damaged_compressed_record_is_an_error_not_a_panic() {
        let record = record();
        let compressed = compress(&record).unwrap();
        for cut in 0..compressed.len() {
            assert!(decompress(&compressed[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..compressed.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut damaged = compressed.clone();
                damaged[at] ^= flip;
                if let Ok(read) = decompress(&damaged) {
                    let claimed = u32::from_le_bytes(damaged[1..LZ4_HEAD].try_into().unwrap());
                    assert_eq!(read.len(), claimed as usize);
                }
            }
        }
        // A length far past what the block could hold is refused before any allocation.
        let mut huge = vec![LZ4_MARK];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0x10, b'x']);
        assert!(decompress(&huge).unwrap_err().contains("claims"));
        // A length no longer than the block: never published compressed.
        let mut short = vec![LZ4_MARK];
        short.extend_from_slice(&6u32.to_le_bytes());
        short.extend_from_slice(&[0x10, b'x']);
        assert!(decompress(&short).unwrap_err().contains("claims"));
        // Not a compressed record at all.
        assert!(decompress(&record).is_err());
        assert!(decompress(b"").is_err());
    }
}
