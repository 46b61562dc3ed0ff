//! The shared checkpoint: a copy of the whole data set in a replicated NATS object store, from
//! which a node whose copy the stream cannot rebuild (a new node after records left the stream,
//! or one away longer than `retain_for_absent_ms`) makes its copy by itself.
//!
//! - **Published by the owner**, every `snapshot_interval_ms`: a backup of its store
//!   ([`Store::backup`], which holds writes up for no more than an instant), rebased as of the
//!   stream position it covers ([`Store::rebase`]), packed as one tar archive and put in the
//!   `rewards_snapshots` bucket as object `p0`, with that position in its metadata. A put
//!   replaces the previous object only once it is whole; a reader checks the object's SHA-256
//!   digest.
//! - **Kept by the retention**: with snapshots on, the owner drops the stream's records only
//!   through the lower of the copies' checkpoint positions and the snapshot's position, so the
//!   stream always holds every record after the snapshot (and nothing is dropped until the
//!   first snapshot is published).
//! - **Restored by a lost copy**: a follower whose read of the stream reports records it needs
//!   as gone closes its copy, fetches the snapshot, replaces its copy with it, and follows the
//!   stream from the snapshot's position. A restore interrupted by a crash leaves a marker;
//!   the next start clears the half-replaced copy, and the node restores again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, object_store};
use rewards_storage::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ClusterConfig;

const BUCKET: &str = "rewards_snapshots";
/// The object's metadata key for the stream position the snapshot is as of.
const POSITION: &str = "position";
/// The object's metadata key for the log stream it was taken from (the stream's creation
/// time): a snapshot of a stream since deleted and made again is not this stream's.
const STREAM: &str = "stream";

/// Written in the data directory before a restore starts replacing the copy, removed once the
/// copy is whole: found at start, it means the copy in the directory is half replaced.
const RESTORING: &str = "RESTORING";
/// Locked by the node's process for its whole life: a second process on the same directory
/// is refused before it clears or restores anything.
const NODE_LOCK: &str = "NODE_LOCK";
/// Where the owner builds a snapshot, and where a restore fetches and unpacks one: inside the
/// data directory, so the moves into it are renames on one file system.
const OUTGOING: &str = "snapshot-out";
const INCOMING_ARCHIVE: &str = "snapshot-in.tar";
const INCOMING: &str = "snapshot-in";

/// A fetch that receives nothing for this long gives up (the object it read was replaced and
/// its chunks purged, or the servers are gone); the restore is tried again later.
const FETCH_IDLE: Duration = Duration::from_secs(30);

/// Entries of a node's data directory that are not its copy of the data.
fn kept(name: &str) -> bool {
    matches!(
        name,
        super::NODE_MARKER | RESTORING | NODE_LOCK | "lost+found"
    )
}

/// Takes the node's lock on `data_dir` for as long as the returned file lives.
pub fn lock_node_directory(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join(NODE_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "{} is in use by another rewardsd process",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// The snapshot bucket, connected.
#[derive(Clone)]
pub struct Snapshots {
    bucket: object_store::ObjectStore,
    /// The partition's object in the bucket, and its log stream.
    object: String,
    stream: String,
}

/// What publishing a snapshot did.
pub struct Published {
    pub position: u64,
    pub bytes: u64,
    pub records: u64,
}

/// The log stream as a snapshot is checked against: which stream it is, and the sequences it
/// holds.
pub struct StreamState {
    pub identity: String,
    pub first: u64,
    pub last: u64,
}

/// The log stream `name`'s identity and extent.
pub async fn stream_state(context: &jetstream::Context, name: &str) -> anyhow::Result<StreamState> {
    let mut stream = context
        .get_stream(name)
        .await
        .context("finding the log stream")?;
    let info = stream
        .info()
        .await
        .context("reading the log stream's state")?;
    Ok(StreamState {
        identity: info.created.unix_timestamp_nanos().to_string(),
        first: info.state.first_sequence,
        last: info.state.last_sequence,
    })
}

/// A snapshot's description: the position it is as of, and the stream it was taken from.
struct Described {
    position: u64,
    stream: String,
}

fn described(info: &object_store::ObjectInfo) -> anyhow::Result<Described> {
    let position = info
        .metadata
        .get(POSITION)
        .and_then(|p| p.parse::<u64>().ok())
        .context("the snapshot has no position")?;
    let stream = info.metadata.get(STREAM).cloned().unwrap_or_default();
    Ok(Described { position, stream })
}

impl Snapshots {
    /// Opens the bucket, creating it (file storage, `replicas` copies) when it is missing.
    pub async fn open(
        context: &jetstream::Context,
        config: &ClusterConfig,
    ) -> anyhow::Result<Snapshots> {
        let placement = config.placement();
        let object = placement.snapshot_object();
        let stream = placement.stream();
        if let Ok(bucket) = context.get_object_store(BUCKET).await {
            return Ok(Snapshots {
                bucket,
                object,
                stream,
            });
        }
        let bucket = context
            .create_object_store(object_store::Config {
                bucket: BUCKET.to_string(),
                description: Some("rewardsd: the shared checkpoint of the data".to_string()),
                storage: jetstream::stream::StorageType::File,
                num_replicas: config.replicas,
                ..Default::default()
            })
            .await
            .context("creating the snapshot bucket")?;
        Ok(Snapshots {
            bucket,
            object,
            stream,
        })
    }

    async fn describe(&self) -> anyhow::Result<Option<Described>> {
        match self.bucket.info(&self.object).await {
            Ok(info) if !info.deleted => Ok(Some(described(&info)?)),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).context("reading the snapshot's description"),
        }
    }

    /// The stream position the published snapshot of the stream `identity` is as of; `None`
    /// when there is none (or only one of another stream).
    pub async fn position(&self, identity: &str) -> anyhow::Result<Option<u64>> {
        Ok(self
            .describe()
            .await?
            .filter(|d| d.stream == identity)
            .map(|d| d.position))
    }

    /// The position of the published snapshot of the log stream as it is now; `None` when
    /// there is none.
    pub async fn current(&self, context: &jetstream::Context) -> anyhow::Result<Option<u64>> {
        let stream = stream_state(context, &self.stream).await?;
        self.position(&stream.identity).await
    }

    /// Publishes a snapshot of `store`, built in `data_dir`: the backup and its archive are
    /// made on a thread of low priority, then uploaded, unless `still_owner` says otherwise by
    /// then or a newer snapshot of the same stream is there. The building space is removed
    /// after, whatever happened.
    pub async fn publish(
        &self,
        context: &jetstream::Context,
        store: Store,
        data_dir: &Path,
        still_owner: impl Fn() -> bool,
    ) -> anyhow::Result<Published> {
        let staging = data_dir.join(OUTGOING);
        // A thread of its own, lowered in priority for its whole (short) life.
        let (sender, receiver) = tokio::sync::oneshot::channel();
        {
            let staging = staging.clone();
            std::thread::Builder::new()
                .name("snapshot".into())
                .spawn(move || {
                    lower_priority();
                    let _ = sender.send(build(&store, &staging));
                })
                .context("starting the snapshot's thread")?;
        }
        let built = receiver.await.context("building the snapshot")?;
        let result = async {
            let (archive, stats) = built?;
            let stream = stream_state(context, &self.stream).await?;
            // A deposed owner's snapshot, finished late, must not replace a newer one.
            if let Some(existing) = self.describe().await? {
                anyhow::ensure!(
                    existing.stream != stream.identity || existing.position <= stats.position,
                    "a newer snapshot (as of {}) was published meanwhile",
                    existing.position
                );
            }
            anyhow::ensure!(still_owner(), "this node no longer owns the data");
            let mut file = tokio::fs::File::open(&archive)
                .await
                .with_context(|| format!("opening {}", archive.display()))?;
            let bytes = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            let meta = object_store::ObjectMetadata {
                name: self.object.clone(),
                description: Some(format!("the data as of stream position {}", stats.position)),
                metadata: [
                    (POSITION.to_string(), stats.position.to_string()),
                    (STREAM.to_string(), stream.identity),
                ]
                .into(),
                ..Default::default()
            };
            self.bucket
                .put(meta, &mut file)
                .await
                .context("uploading the snapshot")?;
            Ok(Published {
                position: stats.position,
                bytes,
                records: stats.records,
            })
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&staging).await;
        result
    }

    /// The position of the snapshot the stream can carry on from: of this stream, as of a
    /// position from the stream's first record but one to its last.
    async fn usable(&self, stream: &StreamState) -> anyhow::Result<Option<u64>> {
        Ok(self
            .position(&stream.identity)
            .await?
            .filter(|&p| p.saturating_add(1) >= stream.first && p <= stream.last))
    }

    /// Fetches the snapshot into `archive` and answers its position, checked again against
    /// `stream` (another may have been published since it was first described). Gives up when
    /// `stop` is set or nothing comes for [`FETCH_IDLE`].
    async fn fetch(
        &self,
        archive: &Path,
        stream: &StreamState,
        stop: &AtomicBool,
    ) -> anyhow::Result<u64> {
        let mut object = self
            .bucket
            .get(&self.object)
            .await
            .context("fetching the snapshot")?;
        let fetched = described(object.info())?;
        anyhow::ensure!(
            fetched.stream == stream.identity
                && fetched.position.saturating_add(1) >= stream.first
                && fetched.position <= stream.last,
            "the snapshot changed to one the stream cannot carry on from"
        );
        let mut file = tokio::fs::File::create(archive)
            .await
            .with_context(|| format!("creating {}", archive.display()))?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            anyhow::ensure!(!stop.load(Ordering::Acquire), "stopped");
            let read = tokio::time::timeout(FETCH_IDLE, object.read(&mut buffer))
                .await
                .map_err(|_| anyhow::anyhow!("nothing came for {} s", FETCH_IDLE.as_secs()))?
                .context("fetching the snapshot")?;
            let Some(chunk) = buffer.get(..read).filter(|c| !c.is_empty()) else {
                break;
            };
            file.write_all(chunk)
                .await
                .with_context(|| format!("writing {}", archive.display()))?;
        }
        file.sync_all()
            .await
            .with_context(|| format!("syncing {}", archive.display()))?;
        Ok(fetched.position)
    }
}

/// The backup of `store` in `staging`, rebased and packed: the archive's path and the backup's
/// figures.
fn build(store: &Store, staging: &Path) -> anyhow::Result<(PathBuf, rewards_storage::BackupStats)> {
    if staging.exists() {
        std::fs::remove_dir_all(staging)
            .with_context(|| format!("clearing {}", staging.display()))?;
    }
    std::fs::create_dir_all(staging).with_context(|| format!("creating {}", staging.display()))?;
    let copy = staging.join("copy");
    let stats = store.backup(&copy).context("backing the store up")?;
    Store::rebase(&copy, stats.position).context("rebasing the backup")?;
    let archive = staging.join("copy.tar");
    let file = std::fs::File::create(&archive)
        .with_context(|| format!("creating {}", archive.display()))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    builder
        .append_dir_all(".", &copy)
        .context("packing the snapshot")?;
    builder
        .into_inner()
        .context("packing the snapshot")?
        .into_inner()
        .map_err(|e| e.into_error())
        .context("packing the snapshot")?
        .sync_all()
        .context("packing the snapshot")?;
    Ok((archive, stats))
}

/// The building of a snapshot yields the cores to requests (nice 10), as checkpoints do.
fn lower_priority() {
    // SAFETY: setpriority on the calling thread (Linux: a thread is a process of its own to
    // it) only changes its scheduling priority; no memory is involved.
    #[cfg(target_os = "linux")]
    unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, 10);
    }
}

/// Clears what an interrupted restore left in `data_dir`: a copy half replaced (the marker is
/// there) goes whole, so the node starts as a new one and restores again; staging space goes.
pub fn clear_interrupted(data_dir: &Path) -> anyhow::Result<()> {
    for staging in [INCOMING, OUTGOING, INCOMING_ARCHIVE] {
        remove(&data_dir.join(staging))?;
    }
    if data_dir.join(RESTORING).exists() {
        tracing::warn!("a restore of the shared checkpoint was interrupted; its half-made copy is removed and the restore starts again");
        wipe(data_dir)?;
        remove(&data_dir.join(RESTORING))?;
        sync_dir(data_dir)?;
    }
    Ok(())
}

fn remove(path: &Path) -> anyhow::Result<()> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Removes the copy of the data in `data_dir` (every entry but the node's markers).
fn wipe(data_dir: &Path) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(data_dir).with_context(|| format!("reading {}", data_dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", data_dir.display()))?;
        if !kept(&entry.file_name().to_string_lossy()) {
            remove(&entry.path())?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Replaces the (closed) copy in `data_dir`, read through `copy_position`, with the shared
/// checkpoint, when the stream dropped records the copy needs and holds everything after the
/// snapshot. Answers the position the new copy is as of, or `None` when the copy is left as it
/// is: no snapshot will do, or the copy is not behind the stream's first record (a stream that
/// ends before the copy's position lost its history; the copy is kept for an operator).
/// `hold` is told the snapshot's position before the fetch, so the node reports it as its
/// checkpoint and the owner keeps the records after it meanwhile. Run by the follower's thread,
/// outside any runtime; gives up when `stop` is set.
pub fn restore(
    config: &ClusterConfig,
    data_dir: &Path,
    copy_position: u64,
    hold: &dyn Fn(u64),
    stop: &AtomicBool,
) -> anyhow::Result<Option<u64>> {
    let started = Instant::now();
    let archive = data_dir.join(INCOMING_ARCHIVE);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime for the restore")?;
    let fetched = runtime.block_on(async {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(config.nats.as_slice())
            .await
            .context("connecting to NATS")?;
        let context = jetstream::new(client);
        let stream = stream_state(&context, &config.placement().stream()).await?;
        if copy_position > stream.last {
            tracing::error!(
                copy_position,
                stream_last = stream.last,
                "the log stream ends before this node's copy: the stream's history was lost, not the copy's; the copy is kept and not replaced"
            );
            return Ok(None);
        }
        if copy_position.saturating_add(1) >= stream.first {
            // The stream holds what the copy needs now (a gap a purge made while it read).
            return Ok(None);
        }
        let snapshots = Snapshots::open(&context, config).await?;
        let Some(position) = snapshots.usable(&stream).await? else {
            return Ok(None);
        };
        hold(position);
        snapshots.fetch(&archive, &stream, stop).await.map(Some)
    });
    drop(runtime);
    let position = match fetched {
        Ok(Some(position)) => position,
        Ok(None) => {
            remove(&archive)?;
            return Ok(None);
        }
        Err(error) => {
            remove(&archive)?;
            return Err(error);
        }
    };
    if let Err(error) = replace(data_dir, &archive, position) {
        // Whatever was moved or not, the half-made copy goes: the node starts again from an
        // empty copy, which is lost, and restores again later.
        if let Err(cleared) = clear_interrupted(data_dir) {
            tracing::error!(
                error = format!("{cleared:#}"),
                "a failed restore could not be cleared"
            );
        }
        return Err(error);
    }
    tracing::info!(
        position,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "this node's copy was made from the shared checkpoint"
    );
    Ok(Some(position))
}

/// Makes every file and directory under `dir` durable (tar writes without syncing).
fn sync_tree(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", path.display()))?;
        }
    }
    sync_dir(dir)
}

/// Replaces the copy in `data_dir` with the snapshot in `archive`, as of `position`.
fn replace(data_dir: &Path, archive: &Path, position: u64) -> anyhow::Result<()> {
    // From here until the marker goes, the directory's copy is not whole.
    std::fs::write(data_dir.join(RESTORING), format!("{position}\n"))
        .with_context(|| format!("marking {} as being restored", data_dir.display()))?;
    sync_dir(data_dir)?;
    let incoming = data_dir.join(INCOMING);
    remove(&incoming)?;
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    tar::Archive::new(std::io::BufReader::new(file))
        .unpack(&incoming)
        .context("unpacking the snapshot")?;
    anyhow::ensure!(
        incoming.join(rewards_storage::BACKUP_MARKER).is_file(),
        "the snapshot is not a whole backup (no {} file)",
        rewards_storage::BACKUP_MARKER
    );
    // Durable before the old copy goes: the marker's removal below must not outlive a new
    // copy whose files a power cut would leave empty.
    sync_tree(&incoming)?;
    for entry in
        std::fs::read_dir(data_dir).with_context(|| format!("reading {}", data_dir.display()))?
    {
        let entry = entry.with_context(|| format!("reading {}", data_dir.display()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !kept(&name) && name != INCOMING && name != INCOMING_ARCHIVE {
            remove(&entry.path())?;
        }
    }
    for entry in
        std::fs::read_dir(&incoming).with_context(|| format!("reading {}", incoming.display()))?
    {
        let entry = entry.with_context(|| format!("reading {}", incoming.display()))?;
        let name = entry.file_name();
        // A node's copy is not a backup to restore a server from.
        let text = name.to_string_lossy();
        if kept(&text) || text == rewards_storage::BACKUP_MARKER {
            continue;
        }
        std::fs::rename(entry.path(), data_dir.join(&name))
            .with_context(|| format!("moving {} into place", entry.path().display()))?;
    }
    remove(&incoming)?;
    remove(archive)?;
    sync_dir(data_dir)?;
    remove(&data_dir.join(RESTORING))?;
    sync_dir(data_dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_restore_cut_short_leaves_an_empty_copy_and_the_markers() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        for file in [super::super::NODE_MARKER, NODE_LOCK, "LOCK", "version"] {
            std::fs::write(data.join(file), "x").unwrap();
        }
        for sub in [
            "keyspaces/3",
            "lost+found",
            "snapshot-in/keyspaces",
            "snapshot-out/copy",
        ] {
            std::fs::create_dir_all(data.join(sub)).unwrap();
        }
        std::fs::write(data.join(INCOMING_ARCHIVE), "tar").unwrap();
        // Without the marker only the staging space goes: the copy is whole.
        clear_interrupted(data).unwrap();
        assert_eq!(
            names(data),
            [
                "CLUSTER_NODE",
                "LOCK",
                "NODE_LOCK",
                "keyspaces",
                "lost+found",
                "version"
            ]
        );
        // With it, the half-made copy goes too, and the marker last.
        std::fs::write(data.join(RESTORING), "7\n").unwrap();
        clear_interrupted(data).unwrap();
        assert_eq!(names(data), ["CLUSTER_NODE", "NODE_LOCK", "lost+found"]);
    }

    #[test]
    fn one_process_holds_a_node_directory() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_node_directory(dir.path()).unwrap();
        let refused = lock_node_directory(dir.path()).unwrap_err();
        assert!(format!("{refused:#}").contains("in use"), "{refused:#}");
        drop(held);
        lock_node_directory(dir.path()).unwrap();
    }
}
