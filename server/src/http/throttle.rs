//! Slowing down credential guessing: a client address that sends too many
//! wrong key/secret pairs within a window is answered 429 until the window
//! ends, whatever it sends (so a guess that happens to be right during the
//! block teaches the guesser nothing).
//!
//! IPv6 clients are counted per /64, the smallest block one subscriber is
//! usually given, so hopping addresses inside it does not reset the count.
//! The table is bounded: past `MAX_CLIENTS` entries, expired ones go first
//! and then the oldest eighth, so a flood of addresses costs bounded memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_CLIENTS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

pub struct AuthThrottle {
    max_failures: u32,
    window: Duration,
    clients: Mutex<HashMap<IpAddr, Window>>,
}

/// The client is blocked; it may try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after_secs: u64,
}

/// The address failures are counted under.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl AuthThrottle {
    /// `max_failures` of 0 turns the throttle off.
    pub fn new(max_failures: u32, window: Duration) -> AuthThrottle {
        AuthThrottle {
            max_failures,
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Window>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `ip` may try credentials now.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Blocked> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let clients = self.clients();
        match clients.get(&client_key(ip)) {
            Some(w) if w.failures >= self.max_failures => {
                let left = self.window.saturating_sub(now.duration_since(w.started));
                if left.is_zero() {
                    Ok(())
                } else {
                    Err(Blocked {
                        retry_after_secs: left.as_secs_f64().ceil() as u64,
                    })
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong key or secret from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        if self.max_failures == 0 {
            return;
        }
        let mut clients = self.clients();
        if clients.len() >= MAX_CLIENTS {
            let window = self.window;
            clients.retain(|_, w| now.duration_since(w.started) < window);
            if clients.len() >= MAX_CLIENTS {
                // An eighth at a time, so the scan is paid once per many
                // insertions.
                let mut starts: Vec<Instant> = clients.values().map(|w| w.started).collect();
                let cut = starts.len() / 8;
                let (_, cutoff, _) = starts.select_nth_unstable(cut);
                let cutoff = *cutoff;
                clients.retain(|_, w| w.started > cutoff);
            }
        }
        let entry = clients.entry(client_key(ip)).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(entry.started) >= self.window {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_is_blocked_after_its_failures_until_the_window_ends() {
        let throttle = AuthThrottle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(throttle.check(ip("192.0.2.7"), t0).is_ok());
            throttle.failed(ip("192.0.2.7"), t0);
        }
        assert_eq!(
            throttle.check(ip("192.0.2.7"), t0 + Duration::from_secs(1)),
            Err(Blocked {
                retry_after_secs: 59
            })
        );
        // Other clients are not affected.
        assert!(throttle.check(ip("192.0.2.8"), t0).is_ok());
        assert!(throttle
            .check(ip("192.0.2.7"), t0 + Duration::from_secs(60))
            .is_ok());
        // A new window starts from zero.
        throttle.failed(ip("192.0.2.7"), t0 + Duration::from_secs(61));
        assert!(throttle
            .check(ip("192.0.2.7"), t0 + Duration::from_secs(62))
            .is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_count_and_mapped_v4_is_v4() {
        let throttle = AuthThrottle::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        throttle.failed(ip("2001:db8:1:2::1"), t0);
        throttle.failed(ip("2001:db8:1:2:ffff::9"), t0);
        assert!(throttle.check(ip("2001:db8:1:2::77"), t0).is_err());
        assert!(throttle.check(ip("2001:db8:1:3::1"), t0).is_ok());
        throttle.failed(ip("::ffff:192.0.2.1"), t0);
        throttle.failed(ip("192.0.2.1"), t0);
        assert!(throttle.check(ip("192.0.2.1"), t0).is_err());
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_addresses() {
        let throttle = AuthThrottle::new(5, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 + 1000) {
            throttle.failed(IpAddr::V4(i.into()), t0);
        }
        assert!(throttle.clients().len() <= MAX_CLIENTS);
    }

    #[test]
    fn zero_turns_it_off() {
        let throttle = AuthThrottle::new(0, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..100 {
            throttle.failed(ip("192.0.2.7"), t0);
        }
        assert!(throttle.check(ip("192.0.2.7"), t0).is_ok());
    }
}
