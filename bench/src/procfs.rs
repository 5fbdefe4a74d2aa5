//! CPU time and memory of processes, from `/proc` for a running server and
//! from `wait4(2)` for a child that ran to its end.

use std::process::Child;
use std::time::Duration;

use crate::Result;

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// CPU seconds `pid` has used so far, its own (every thread's) and its
/// reaped children's.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it do not.
    let rest = stat
        .rsplit_once(')')
        .ok_or("an unreadable /proc/PID/stat")?
        .1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14-17, so 11-14 after `)`.
    let ticks: Result<Vec<u64>> = fields
        .get(11..15)
        .ok_or("a short /proc/PID/stat")?
        .iter()
        .map(|f| Ok(f.parse::<u64>()?))
        .collect();
    Ok(ticks?.iter().sum::<u64>() as f64 / clock_ticks())
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// Resident memory of `pid` now, in MiB.
pub fn rss_mib(pid: u32) -> Result<f64> {
    Ok(status_kib(pid, "VmRSS")? as f64 / 1024.0)
}

/// Peak resident memory of `pid` since it started or since the last
/// [`reset_peak`], in MiB.
pub fn peak_rss_mib(pid: u32) -> Result<f64> {
    Ok(status_kib(pid, "VmHWM")? as f64 / 1024.0)
}

/// Starts `pid`'s peak-RSS count again from its present RSS (Linux's
/// `clear_refs` value 5).
pub fn reset_peak(pid: u32) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
    Ok(())
}

/// What a child used, once it has exited.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu: Duration,
    pub peak_rss_mib: f64,
    pub success: bool,
}

/// Waits for `child` and reads its resource use (it and its own reaped
/// children) from the kernel.
pub fn wait_with_usage(child: Child) -> Result<Usage> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our unreaped child (Child::drop neither waits nor
    // kills), and both out-pointers are valid for the call.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if got != pid {
        return Err(std::io::Error::last_os_error().into());
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Usage {
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    })
}

/// The parent of `pid`, from `/proc/PID/stat` (`None` once it exited).
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds used so far by `pid` and every live process under it:
/// PostgreSQL runs a process per connection, and the postmaster reaps
/// those that end, so their time is in its children's count.
pub fn tree_cpu_seconds(pid: u32) -> Result<f64> {
    let all: Vec<u32> = std::fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let parents: Vec<(u32, u32)> = all.iter().filter_map(|&p| Some((p, parent(p)?))).collect();
    let mut tree = vec![pid];
    // Breadth first; a process tree is shallow, and the bound keeps a
    // malformed one (a pid reused mid-walk) from looping.
    let mut i = 0;
    while i < tree.len() && tree.len() <= parents.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|&&(_, pp)| pp == p).map(|&(c, _)| c));
        i += 1;
    }
    let mut total = cpu_seconds(pid)?;
    for &p in &tree[1..] {
        // A process that exited meanwhile counts in its parent's reaped
        // children's time, not here.
        total += cpu_seconds(p).unwrap_or(0.0);
    }
    Ok(total)
}
