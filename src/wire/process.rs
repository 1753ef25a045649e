//! CPU time and resident memory of this process, read from the kernel at each call.

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct ProcessReport {
    /// User plus system CPU time since the process started.
    pub cpu_seconds: f64,
    /// Resident set size.
    pub rss_bytes: u64,
}

/// Reads this process's CPU time and resident memory now.
pub fn report() -> ProcessReport {
    ProcessReport { cpu_seconds: cpu_seconds(), rss_bytes: rss_bytes().unwrap_or(0) }
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn rss_bytes() -> Option<u64> {
    // /proc/self/statm: size resident shared text lib data dt, in pages.
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(resident * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plausible_values() {
        let before = report();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = report();
        assert!(after.rss_bytes > 1 << 20, "rss {}", after.rss_bytes);
        assert!(after.cpu_seconds > before.cpu_seconds);
    }
}
