//! `fsync-probe`: the physical limit of durable writes on this machine. Appends 4 KiB to a file
//! and fdatasyncs it, many times, and prints the latency percentiles of one fdatasync and the
//! throughput of appends that share one (a group commit of N).
//!
//! `fsync-probe [DIR] [ROUNDS]` (default: the current directory, 500 rounds).

use std::fs::OpenOptions;
use std::io::Write;
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
    let mut latencies_us: Vec<f64> = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        file.write_all(&block)?;
        let started = Instant::now();
        fdatasync(&file);
        latencies_us.push(started.elapsed().as_secs_f64() * 1e6);
    }
    latencies_us.sort_by(f64::total_cmp);
    let at = |q: f64| latencies_us[((latencies_us.len() - 1) as f64 * q) as usize];
    println!(
        "one fdatasync after a 4 KiB append ({rounds} rounds): p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us => at most {:.0} durable commits/s",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        1e6 / at(0.5)
    );
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
