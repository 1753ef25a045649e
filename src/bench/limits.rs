//! The machine's limits that decide how a run is spread: open files per process and ephemeral
//! ports per source address. Checked before a run, so the bench says which limit stops it
//! instead of failing halfway with a pile of connect errors.

use std::net::SocketAddr;

/// Files a process keeps open besides its client sockets (runtime, stdio, a listener, spare);
/// the same headroom `pulse serve` keeps below its open-file limit for its connection limit.
pub const FD_MARGIN: u64 = 256;
/// Concurrent connections one source address can make to one destination: the ephemeral port
/// range (32768–60999 here) less a margin for sockets in TIME_WAIT.
pub fn ports_per_source() -> u64 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999));
    (range.1.saturating_sub(range.0) + 1).saturating_sub(500)
}

/// This process's open-file limit: (soft, hard).
pub fn open_file_limit() -> (u64, u64) {
    // SAFETY: getrlimit only writes into the struct we pass.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return (1024, 1024);
    }
    (limit.rlim_cur as u64, limit.rlim_max as u64)
}

/// Raises the soft open-file limit to the hard one (allowed without privileges); returns the
/// limit in force afterwards. Child processes inherit it.
pub fn raise_open_file_limit() -> u64 {
    let (soft, hard) = open_file_limit();
    if soft < hard {
        let limit = libc::rlimit { rlim_cur: hard as libc::rlim_t, rlim_max: hard as libc::rlim_t };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
            return hard;
        }
    }
    soft
}

/// Why a run of `connections` concurrent clients cannot happen, if it cannot.
pub fn check(
    connections: u64,
    workers: u64,
    target: SocketAddr,
    spawned_server: bool,
    fd_limit: u64,
) -> Result<(), String> {
    let per_worker = connections.div_ceil(workers.max(1));
    if per_worker + FD_MARGIN > fd_limit {
        return Err(format!(
            "{per_worker} connections per client process exceed its open-file limit of {fd_limit}; \
             use more worker processes (--workers {})",
            connections.div_ceil(fd_limit.saturating_sub(FD_MARGIN).max(1))
        ));
    }
    if spawned_server && connections + FD_MARGIN > fd_limit {
        return Err(format!(
            "{connections} concurrent connections need as many open files in the one server \
             process --spawn starts, whose open-file limit is {fd_limit} (hard): one process \
             cannot hold them. Use at most {} clients at once (fewer clients, or without \
             --together), or run several instances behind a load balancer and pass --target",
            fd_limit - FD_MARGIN
        ));
    }
    let ports = ports_per_source();
    let sources = if target.ip().is_loopback() && target.is_ipv4() { workers } else { 1 };
    if per_worker.max(connections.div_ceil(sources)) > ports {
        return Err(format!(
            "{connections} connections from {sources} source address(es) to {target} exceed the \
             ~{ports} ephemeral ports one source address has per destination; use a 127.x.x.x \
             target so the bench can spread clients over loopback source addresses, or fewer \
             clients"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_say_which_one_stops_a_run() {
        let lo: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let remote: SocketAddr = "[::1]:80".parse().unwrap();
        assert!(check(19_000, 4, lo, true, 20_000).is_ok());
        let e = check(25_000, 5, lo, true, 20_000).unwrap_err();
        assert!(e.contains("server") && e.contains("20000"), "{e}");
        assert!(check(25_000, 5, lo, false, 20_000).is_ok());
        let e = check(25_000, 1, lo, false, 20_000).unwrap_err();
        assert!(e.contains("--workers 2"), "{e}");
        let e = check(40_000, 8, remote, false, 20_000).unwrap_err();
        assert!(e.contains("ephemeral ports"), "{e}");
    }
}
