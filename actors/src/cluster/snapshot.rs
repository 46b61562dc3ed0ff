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
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, object_store};
use rewards_storage::Store;

use super::ClusterConfig;

const BUCKET: &str = "rewards_snapshots";
const OBJECT: &str = "p0";
/// The object's metadata key for the stream position the snapshot is as of.
const POSITION: &str = "position";

/// Written in the data directory before a restore starts replacing the copy, removed once the
/// copy is whole: found at start, it means the copy in the directory is half replaced.
const RESTORING: &str = "RESTORING";
/// Where the owner builds a snapshot, and where a restore fetches and unpacks one: inside the
/// data directory, so the moves into it are renames on one file system.
const OUTGOING: &str = "snapshot-out";
const INCOMING_ARCHIVE: &str = "snapshot-in.tar";
const INCOMING: &str = "snapshot-in";

/// Entries of a node's data directory that are not its copy of the data.
fn kept(name: &str) -> bool {
    name == super::NODE_MARKER || name == RESTORING
}

/// The snapshot bucket, connected.
#[derive(Clone)]
pub struct Snapshots {
    bucket: object_store::ObjectStore,
}

/// What publishing a snapshot did.
pub struct Published {
    pub position: u64,
    pub bytes: u64,
    pub records: u64,
}

impl Snapshots {
    /// Opens the bucket, creating it (file storage, `replicas` copies) when it is missing.
    pub async fn open(
        context: &jetstream::Context,
        config: &ClusterConfig,
    ) -> anyhow::Result<Snapshots> {
        if let Ok(bucket) = context.get_object_store(BUCKET).await {
            return Ok(Snapshots { bucket });
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
        Ok(Snapshots { bucket })
    }

    /// The stream position the published snapshot is as of; `None` when there is none.
    pub async fn position(&self) -> anyhow::Result<Option<u64>> {
        match self.bucket.info(OBJECT).await {
            Ok(info) if !info.deleted => {
                let position = info
                    .metadata
                    .get(POSITION)
                    .and_then(|p| p.parse::<u64>().ok())
                    .context("the snapshot has no position")?;
                Ok(Some(position))
            }
            Ok(_) => Ok(None),
            Err(error) if error.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).context("reading the snapshot's description"),
        }
    }

    /// Publishes a snapshot of `store`, built in `data_dir`: the backup and its archive are
    /// made on a thread of low priority, then uploaded; the building space is removed after,
    /// whatever happened.
    pub async fn publish(&self, store: Store, data_dir: &Path) -> anyhow::Result<Published> {
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
            // A deposed owner's snapshot, finished late, must not replace a newer one.
            if let Some(existing) = self.position().await? {
                anyhow::ensure!(
                    existing <= stats.position,
                    "a newer snapshot (as of {existing}) was published meanwhile"
                );
            }
            let mut file = tokio::fs::File::open(&archive)
                .await
                .with_context(|| format!("opening {}", archive.display()))?;
            let bytes = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            let meta = object_store::ObjectMetadata {
                name: OBJECT.to_string(),
                description: Some(format!("the data as of stream position {}", stats.position)),
                metadata: [(POSITION.to_string(), stats.position.to_string())].into(),
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

    /// Fetches the snapshot into `archive` if there is one as of a position at or after
    /// `needed_after` (the stream holds every record after it); answers its position.
    async fn fetch(&self, archive: &Path, needed_after: u64) -> anyhow::Result<Option<u64>> {
        let Some(position) = self.position().await? else {
            return Ok(None);
        };
        if position < needed_after {
            return Ok(None);
        }
        let mut object = self
            .bucket
            .get(OBJECT)
            .await
            .context("fetching the snapshot")?;
        let mut file = tokio::fs::File::create(archive)
            .await
            .with_context(|| format!("creating {}", archive.display()))?;
        tokio::io::copy(&mut object, &mut file)
            .await
            .context("fetching the snapshot")?;
        file.sync_all()
            .await
            .with_context(|| format!("syncing {}", archive.display()))?;
        // The object's own description is read again: a snapshot published meanwhile
        // replaced the one whose position was read first.
        let info = object.info();
        let fetched = info
            .metadata
            .get(POSITION)
            .and_then(|p| p.parse::<u64>().ok())
            .context("the snapshot has no position")?;
        Ok(Some(fetched))
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

/// Replaces the (closed) copy in `data_dir` with the shared checkpoint, if there is one the
/// stream can carry on from (as of a position at or after the stream's first record but one).
/// Answers the position the new copy is as of, or `None` when no snapshot would do. Run by
/// the follower's thread, outside any runtime.
pub fn restore(config: &ClusterConfig, data_dir: &Path) -> anyhow::Result<Option<u64>> {
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
        let first = context
            .get_stream(super::STREAM)
            .await
            .context("finding the log stream")?
            .info()
            .await
            .context("reading the log stream's state")?
            .state
            .first_sequence;
        let snapshots = Snapshots::open(&context, config).await?;
        snapshots.fetch(&archive, first.saturating_sub(1)).await
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
