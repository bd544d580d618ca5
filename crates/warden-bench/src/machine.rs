//! What the machine did during a window: CPU time of the server, of this process and of
//! every process, read from `/proc`.

/// CPU seconds used so far by every thread of process `pid` (from schedstat, in ns).
pub fn process_cpu_secs(pid: u32) -> Option<f64> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns: u64 = 0;
    for e in dir.flatten() {
        let text = std::fs::read_to_string(e.path().join("schedstat")).ok()?;
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// The one-minute load average.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Logical CPUs available to this process.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
}

/// CPU counters at one instant.
pub struct Sample {
    pub server: Option<f64>,
    pub me: Option<f64>,
    pub machine: Option<(u64, u64)>,
}

/// Reads the counters now.
pub fn sample(server_pid: Option<u32>) -> Sample {
    Sample {
        server: server_pid.and_then(process_cpu_secs),
        me: process_cpu_secs(std::process::id()),
        machine: machine_jiffies(),
    }
}
