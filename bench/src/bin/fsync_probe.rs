//! `fsync-probe`: the physical limit of durable writes on this machine. Appends 4 KiB to a file
//! and fdatasyncs it, many times, and prints the latency percentiles of one fdatasync and the
//! throughput of appends that share one (a group commit of N); then the same fdatasync after
//! writes into space the file already holds, as a log with segments prepared ahead would do.
//!
//! `fsync-probe [DIR] [ROUNDS]` (default: the current directory, 500 rounds).

use std::fs::OpenOptions;
use std::io::{Seek, Write};
use std::os::unix::io::AsRawFd;
use std::time::Instant;

fn fdatasync(file: &std::fs::File) {
    // SAFETY: a valid, open file descriptor.
    let rc = unsafe { libc::fdatasync(file.as_raw_fd()) };
    assert_eq!(
        rc,
        0,
        "fdatasync failed: {}",
        std::io::Error::last_os_error()
    );
}

/// The latency of each of `rounds` fdatasyncs, each after writing `block`, in microseconds, and
/// the process's CPU time (user and system) per fdatasync.
fn timed_syncs(
    file: &mut std::fs::File,
    block: &[u8],
    rounds: usize,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let cpu_before = cpu_seconds();
    let mut latencies_us: Vec<f64> = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        file.write_all(block)?;
        let started = Instant::now();
        fdatasync(file);
        latencies_us.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let cpu_us = (cpu_seconds() - cpu_before) / rounds.max(1) as f64 * 1e6;
    latencies_us.sort_by(f64::total_cmp);
    Ok((latencies_us, cpu_us))
}

fn report(what: &str, (latencies_us, cpu_us): (Vec<f64>, f64)) {
    let at = |q: f64| {
        latencies_us
            .get(((latencies_us.len().saturating_sub(1)) as f64 * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{what}: p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us, {cpu_us:.0} us of CPU each => at most {:.0} durable commits/s",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        1e6 / at(0.5)
    );
}

/// User and system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and a valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let rounds: usize = args.next().map_or(Ok(500), |r| r.parse())?;
    let path = std::path::Path::new(&dir).join("fsync-probe.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = vec![0xA5u8; 4096];
    let appended = timed_syncs(&mut file, &block, rounds)?;
    report(
        &format!("one fdatasync after a 4 KiB append ({rounds} rounds)"),
        appended,
    );
    // The same writes into space the file already holds (written with zeros and synced first,
    // as a log can prepare its segments ahead): the file's size no longer changes, so an
    // fdatasync has no metadata to commit through the file system's journal.
    let prepared_path = std::path::Path::new(&dir).join("fsync-probe-prepared.tmp");
    let mut prepared = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&prepared_path)?;
    prepared.write_all(&vec![0u8; block.len() * rounds])?;
    fdatasync(&prepared);
    prepared.seek(std::io::SeekFrom::Start(0))?;
    let overwritten = timed_syncs(&mut prepared, &block, rounds)?;
    report(
        &format!("one fdatasync after a 4 KiB write into prepared space ({rounds} rounds)"),
        overwritten,
    );
    drop(prepared);
    std::fs::remove_file(&prepared_path)?;
    for group in [10usize, 100, 1000] {
        let started = Instant::now();
        let commits = (rounds / 10).max(10);
        for _ in 0..commits {
            for _ in 0..group {
                file.write_all(&block[..512])?;
            }
            fdatasync(&file);
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "groups of {group} 512-byte records per fdatasync: {:.0} records/s ({:.0} us per fdatasync)",
            (commits * group) as f64 / seconds,
            seconds / commits as f64 * 1e6
        );
    }
    std::fs::remove_file(&path)?;
    Ok(())
}
