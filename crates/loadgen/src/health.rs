//! The load generator's own health: CPU time from `/proc/self/stat` (Linux; zero
//! elsewhere) and the judgement whether it kept up with its own schedule.

/// CPU seconds (user + system) this process used so far; 0.0 when unknown.
pub(crate) fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) end with ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // USER_HZ is 100 on every Linux ABI pushbench targets.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Resident memory of this process, bytes, from `/proc/self/status`; 0 when unknown.
pub(crate) fn process_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Logical cores.
pub(crate) fn cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Host name, from the kernel or the environment.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Lag (p99, microseconds) beyond which the publisher is judged to have fallen behind.
pub(crate) const LAG_LIMIT_US: u64 = 50_000;
/// CPU share beyond which the load generator is judged saturated.
pub(crate) const CPU_LIMIT: f64 = 0.90;

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_cpu() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        if cfg!(target_os = "linux") {
            assert!(super::process_cpu_seconds() >= 0.0);
        }
        assert!(super::cores() >= 1);
    }
}
