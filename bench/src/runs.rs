//! One measured render, by Clipstream over HTTP or by the peer on a pipe,
//! alone or several at once, and the load generator `wrk`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use crate::fixtures::{self, Size};
use crate::procfs;
use crate::servers::{movie_name, Clipstream};
use crate::timing::{self, Arrival};
use crate::Result;

/// One render: when its bytes came, and what it cost.
#[derive(Debug, Clone, Copy)]
pub struct Render {
    pub arrival: Arrival,
    pub cpu_secs: f64,
    /// Peak RSS of the rendering process above the idle server's, per
    /// render at once (the peer's is its whole peak: the process exists
    /// only for the render).
    pub peak_rss_mib: f64,
}

fn client() -> Result<Client> {
    Ok(Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(0)
        .build()?)
}

/// Every thread's result, in order; a panicked thread is an error.
fn joined<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<T>>>,
    who: &str,
) -> Result<Vec<T>> {
    handles
        .into_iter()
        .map(|h| h.join().map_err(|_| format!("a {who} thread panicked"))?)
        .collect()
}

/// GETs `url` and reads the whole body, timing from just before the
/// request is sent.
pub fn get(client: &Client, url: &str) -> Result<Arrival> {
    let asked = Instant::now();
    let resp = client.get(url).send()?;
    if !resp.status().is_success() {
        let status = resp.status();
        return Err(format!("GET {url}: {status}: {}", resp.text()?).into());
    }
    timing::watch(asked, resp)
}

fn settle(server: &Clipstream, token: &str) -> Result<()> {
    server.settle(token)
}

/// `n` cold renders of the standard template at once, each a fresh token
/// fetched by its own client.
pub fn clipstream(server: &Clipstream, size: Size, secs: u32, n: usize) -> Result<Vec<Render>> {
    let movie = movie_name(size, secs);
    let tokens: Vec<String> = (0..n)
        .map(|_| server.token(&movie, &server.fresh_name()))
        .collect::<Result<_>>()?;
    let pid = server.pid();
    let clients: Vec<Client> = (0..n).map(|_| client()).collect::<Result<_>>()?;
    procfs::reset_peak(pid)?;
    let cpu_before = procfs::cpu_seconds(pid)?;
    let arrivals = std::thread::scope(|s| {
        let handles: Vec<_> = tokens
            .iter()
            .zip(&clients)
            .map(|(token, client)| s.spawn(move || get(client, &server.video_url(token))))
            .collect();
        joined(handles, "client")
    })?;
    for token in &tokens {
        settle(server, token)?;
    }
    let cpu = procfs::cpu_seconds(pid)? - cpu_before;
    let peak = procfs::peak_rss_mib(pid)? - server.idle_rss_mib;
    Ok(arrivals
        .into_iter()
        .map(|arrival| Render {
            arrival,
            cpu_secs: cpu / n as f64,
            peak_rss_mib: peak / n as f64,
        })
        .collect())
}

/// `n` peer renders at once: ffmpeg processes started together, each pipe
/// read by its own thread.
pub fn peer(
    fixtures_dir: &Path,
    size: Size,
    secs: u32,
    n: usize,
    tag: &str,
) -> Result<Vec<Render>> {
    let start = Arc::new(Barrier::new(n));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let start = start.clone();
                s.spawn(move || -> Result<Render> {
                    let name = format!("Peer{tag}x{i}");
                    let mut cmd = fixtures::peer_command(fixtures_dir, size, secs, &name);
                    start.wait();
                    run_piped(&mut cmd)
                })
            })
            .collect();
        joined(handles, "peer")
    })
}

pub fn run_piped(cmd: &mut Command) -> Result<Render> {
    let asked = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let arrival = timing::watch(asked, stdout);
    let usage = procfs::wait_with_usage(child)?;
    let errors = errors.join().unwrap_or_default();
    if !usage.success {
        return Err(format!("ffmpeg failed: {errors}").into());
    }
    Ok(Render {
        arrival: arrival?,
        cpu_secs: usage.cpu.as_secs_f64(),
        peak_rss_mib: usage.peak_rss_mib,
    })
}

/// One ffmpeg run of the floor's parts (x264 alone, its input read alone,
/// the decoder alone): wall and CPU seconds.
pub fn alone(mut cmd: std::process::Command) -> Result<(f64, f64)> {
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let usage = procfs::wait_with_usage(child)?;
    if !usage.success {
        return Err(format!("{cmd:?} failed").into());
    }
    Ok((started.elapsed().as_secs_f64(), usage.cpu.as_secs_f64()))
}

/// `n` viewers GET one token at once: each viewer's arrival, the wall time
/// of them all, and how many renders the server started meanwhile.
pub fn viewers(server: &Clipstream, url: &str, n: usize) -> Result<(Vec<Arrival>, f64, f64)> {
    let clients: Vec<Client> = (0..n).map(|_| client()).collect::<Result<_>>()?;
    let started_before = server.metric("clipstream_cache_misses_total")?;
    let go = Arc::new(Barrier::new(n));
    let begun = Instant::now();
    let arrivals = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .map(|client| {
                let go = go.clone();
                s.spawn(move || {
                    go.wait();
                    get(client, url)
                })
            })
            .collect();
        joined(handles, "viewer")
    })?;
    let wall = begun.elapsed().as_secs_f64();
    let started = server.metric("clipstream_cache_misses_total")? - started_before;
    Ok((arrivals, wall, started))
}

/// What `wrk` measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub requests_per_sec: f64,
    pub mib_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn wrk_duration_ms(s: &str) -> Option<f64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => return None,
    })
}

fn wrk_size_mib(s: &str) -> Option<f64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "B" => v / 1_048_576.0,
        "KB" => v / 1024.0,
        "MB" => v,
        "GB" => v * 1024.0,
        "TB" => v * 1_048_576.0,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> Result<Load> {
    let mut load = Load {
        requests_per_sec: f64::NAN,
        mib_per_sec: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
    };
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => load.requests_per_sec = v.parse()?,
            ["Transfer/sec:", v] => load.mib_per_sec = wrk_size_mib(v).ok_or("Transfer/sec")?,
            ["50%", v] => load.p50_ms = wrk_duration_ms(v).ok_or("50%")?,
            ["99%", v] => load.p99_ms = wrk_duration_ms(v).ok_or("99%")?,
            ["Non-2xx", ..] => return Err(format!("wrk saw errors:\n{out}").into()),
            ["Socket", "errors:", ..] => {
                return Err(format!("wrk saw socket errors:\n{out}").into())
            }
            _ => {}
        }
    }
    if load.requests_per_sec.is_nan() || load.p99_ms.is_nan() {
        return Err(format!("unreadable wrk output:\n{out}").into());
    }
    Ok(load)
}

/// `wrk` with two threads (the machine's cores, shared with the server as
/// for every peer) and `connections` for `secs`.
pub fn wrk(url: &str, connections: usize, secs: u32, range: Option<&str>) -> Result<Load> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t", "2", "-c", &connections.to_string()]).args([
        "-d",
        &format!("{secs}s"),
        "--latency",
        "--timeout",
        "30s",
    ]);
    if let Some(range) = range {
        cmd.args(["-H", &format!("Range: {range}")]);
    }
    let out = cmd.arg(url).output()?;
    if !out.status.success() {
        return Err(format!("wrk: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let out = "Running 3s test @ http://127.0.0.1:1/x\n  2 threads and 16 connections\n\
            \x20 Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
            \x20   Latency    23.11ms   10.00ms  80.00ms   70.00%\n\
            \x20 Latency Distribution\n     50%  720.00us\n     75%   25.00ms\n\
            \x20    90%   30.00ms\n     99%    1.20s\n\
            \x20 2000 requests in 3.00s, 8.40GB read\nRequests/sec:    666.50\n\
            Transfer/sec:      2.80GB\n";
        let load = parse_wrk(out).expect("parses");
        assert_eq!(load.requests_per_sec, 666.5);
        assert!((load.mib_per_sec - 2867.2).abs() < 1e-6);
        assert_eq!((load.p50_ms, load.p99_ms), (0.72, 1200.0));
        assert!(parse_wrk(&format!("{out}  Non-2xx or 3xx responses: 5\n")).is_err());
    }
}
