//! `clipstream-bench`: every scenario of the benchmark (issue 6), each run
//! interleaved with its peer in the same run, written to `bench/RESULTS.md`
//! with a chart. `bench/run.sh` installs what it needs, builds the release
//! binaries and runs this from the repository's root.

mod cluster;
mod fixtures;
mod personalised;
mod procfs;
mod report;
mod runs;
mod servers;
mod stats;
mod timing;

use std::path::{Path, PathBuf};
use std::time::Instant;

use fixtures::{Size, CLIP_SECS, P1080, P360, P720};
use report::{Cold, Report, Scaling, Warm};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The options: `--reps N` (at least 5 for a report; fewer to try the
/// harness), `--out DIR` for RESULTS.md and the chart.
struct Options {
    reps: usize,
    out: PathBuf,
    work: PathBuf,
    /// Seconds of each wrk measurement.
    wrk_secs: u32,
    /// Only the cold renders and x264 alone, printed, not written: for
    /// trying a change to the render path quickly.
    cold_only: bool,
    /// Only Clipstream's concurrent renders, printed: for trying a change
    /// to a render's memory.
    capacity_only: bool,
    /// Only the warm cache beside nginx, printed: for trying a change to
    /// serving.
    warm_only: bool,
    /// Only the "personalised 60 s" scenario (segments), printed.
    personalised_only: bool,
    /// The `parallel` of its render requests (0: not given).
    parallel: u32,
    /// Only the cluster scenario (issue 21), printed and written into
    /// RESULTS.md's cluster section, the other sections left as they are.
    cluster_only: bool,
    /// Prerenders of the cluster's throughput runs.
    cluster_renders: usize,
}

fn options() -> Result<Options> {
    let mut o = Options {
        reps: 5,
        out: PathBuf::from("bench"),
        work: PathBuf::from("target/bench"),
        wrk_secs: 3,
        cold_only: false,
        capacity_only: false,
        warm_only: false,
        personalised_only: false,
        parallel: 0,
        cluster_only: false,
        cluster_renders: 24,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--reps" => o.reps = value()?.parse()?,
            "--out" => o.out = value()?.into(),
            "--work" => o.work = value()?.into(),
            "--wrk-secs" => o.wrk_secs = value()?.parse()?,
            "--cold-only" => o.cold_only = true,
            "--capacity-only" => o.capacity_only = true,
            "--warm-only" => o.warm_only = true,
            "--personalised-only" => o.personalised_only = true,
            "--parallel" => o.parallel = value()?.parse()?,
            "--cluster-only" => o.cluster_only = true,
            "--cluster-renders" => o.cluster_renders = value()?.parse()?,
            "-h" | "--help" => {
                println!("clipstream-bench [--reps N] [--out DIR] [--work DIR] [--wrk-secs S] [--cold-only] [--capacity-only] [--warm-only] [--personalised-only [--parallel N]] [--cluster-only] [--cluster-renders K]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if o.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    if o.cluster_renders == 0 {
        return Err("--cluster-renders must be at least 1".into());
    }
    Ok(o)
}

fn say(began: Instant, what: &str) {
    eprintln!("[{:6.1}s] {what}", began.elapsed().as_secs_f64());
}

/// The sizes and lengths measured: the cold scenario's two, and the
/// scaling scenario's others.
const COLD: [Size; 2] = [P720, P1080];
const SCALING: [(Size, u32); 3] = [(P360, 10), (P720, 30), (P720, 60)];
/// Concurrent renders tried for capacity, from one up, until the renders
/// no longer keep up with real time.
const MAX_CONCURRENT: usize = 8;
pub const COLD_VIEWERS: usize = 100;
pub const WARM_VIEWERS: usize = 500;
/// Connections for the warm-cache request rates.
pub const WARM_CONNECTIONS: usize = 16;

/// A fresh server for the capacity runs, with only the 720p template.
fn capacity_server(
    o: &Options,
    fixtures_dir: &Path,
    env: &[(&str, &str)],
) -> Result<servers::Clipstream> {
    servers::Clipstream::start(
        &o.work.join("data-capacity"),
        fixtures_dir,
        &[(P720, CLIP_SECS)],
        env,
    )
}

/// The "personalised 60 s" scenario at each cold size, on a server of its
/// own (so that no other scenario's segments are in its cache).
fn personalised_runs(
    o: &Options,
    fixtures_dir: &Path,
    env: &[(&str, &str)],
    began: Instant,
) -> Result<Vec<(Size, personalised::Personalised)>> {
    let server =
        servers::Clipstream::start(&o.work.join("data-personalised"), fixtures_dir, &[], env)?;
    let mut templates = 0;
    let mut out = Vec::new();
    for size in COLD {
        say(
            began,
            &format!("personalised {} s, {}", personalised::SECS, size.name),
        );
        let p = personalised::run(
            &server,
            fixtures_dir,
            size,
            o.reps,
            o.parallel,
            &mut templates,
        )?;
        out.push((size, p));
    }
    Ok(out)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("clipstream-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let o = options()?;
    let began = Instant::now();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fixtures_dir = o.work.join("fixtures");
    say(began, "fixtures");
    fixtures::make(&fixtures_dir)?;
    let mut movies: Vec<(Size, u32)> = COLD.iter().map(|&s| (s, CLIP_SECS)).collect();
    movies.extend(SCALING);
    // The templates as files too, beside their sources, for profiling one
    // render without a server: `clipstream render FILE --param NAME=x`.
    for &(size, secs) in &movies {
        let file = fixtures_dir.join(format!("{}.json", servers::movie_name(size, secs)));
        std::fs::write(file, fixtures::edit(size, secs).to_string())?;
    }
    // Render workers beyond the cores, so the capacity runs really run at
    // once; everything else as users run it (logs at `info`).
    let server_env = [("CLIPSTREAM_RENDER_WORKERS", "16")];
    if o.capacity_only {
        let fresh = capacity_server(&o, &fixtures_dir, &server_env)?;
        for n in 1..=MAX_CONCURRENT {
            let r = runs::clipstream(&fresh, P720, CLIP_SECS, n)?;
            eprintln!(
                "{n} at once: slowest {:.2} s, peak RSS per render {:.0} MiB",
                report::worst_last_byte(&r),
                r[0].peak_rss_mib
            );
        }
        return Ok(());
    }
    if o.cluster_only {
        let c = cluster::run(&o.work, &fixtures_dir, o.reps, o.cluster_renders, &|w| {
            say(began, w)
        })?;
        c.print();
        cluster::splice(&o.out, &c, report::CLUSTER_HEADING)?;
        say(
            began,
            &format!(
                "cluster section written: {}",
                o.out.join("RESULTS.md").display()
            ),
        );
        return Ok(());
    }
    if o.personalised_only {
        for (size, p) in personalised_runs(&o, &fixtures_dir, &server_env, began)? {
            personalised::print(size, &p);
        }
        return Ok(());
    }
    let server =
        servers::Clipstream::start(&o.work.join("data"), &fixtures_dir, &movies, &server_env)?;
    say(began, &format!("clipstream at {}", server.url));
    if o.warm_only {
        report::print_warm(&warm_cache(&o, &server, began)?);
        return Ok(());
    }
    // The first viewer of a template: no earlier render's sound to take.
    let no_sound_cache = [
        server_env.as_slice(),
        &[("CLIPSTREAM_RENDER_SOUND_CACHE_BYTES", "0")],
    ]
    .concat();
    let first_viewer = servers::Clipstream::start(
        &o.work.join("data-first-viewer"),
        &fixtures_dir,
        &COLD.map(|s| (s, CLIP_SECS)),
        &no_sound_cache,
    )?;
    // Warm-up: binaries, fixtures and the page cache, discarded.
    runs::clipstream(&server, P720, CLIP_SECS, 1)?;
    runs::peer(&fixtures_dir, P720, CLIP_SECS, 1, "warm")?;

    let mut report = Report::new(o.reps);
    let shm = Path::new("/dev/shm");
    let raw_dir = if shm.is_dir() { shm } else { o.work.as_path() };
    let raws: Vec<PathBuf> = COLD
        .iter()
        .map(|&s| fixtures::raw_frames(&fixtures_dir, raw_dir, s))
        .collect::<Result<_>>()?;
    let mut cold: Vec<Cold> = COLD.iter().map(|&s| Cold::new(s)).collect();
    for rep in 0..o.reps {
        say(began, &format!("cold renders, {}/{}", rep + 1, o.reps));
        for c in cold.iter_mut() {
            // Who goes first turns with each rep, so that drift within a
            // rep, and a colder machine for the run after a large process
            // has exited, fall on each of the three in turn.
            for turn in 0..3 {
                match (rep + turn) % 3 {
                    0 => c
                        .ours
                        .add(&runs::clipstream(&server, c.size, CLIP_SECS, 1)?[0]),
                    1 => c
                        .ours_first_viewer
                        .add(&runs::clipstream(&first_viewer, c.size, CLIP_SECS, 1)?[0]),
                    _ => c.peer.add(
                        &runs::peer(&fixtures_dir, c.size, CLIP_SECS, 1, &rep.to_string())?[0],
                    ),
                }
            }
        }
    }
    // x264 alone in a loop of its own: each run reads a gigabyte of raw
    // frames and frees its memory on exit, and the render after it ran
    // slower for that (the first fragment at 1080p: 0.20–0.46 s against
    // 0.19–0.24 s for renders that never followed it). The decoder alone
    // and a peer run beside them make the floor (report section 2).
    for rep in 0..o.reps {
        say(
            began,
            &format!("x264 and the decoder alone, {}/{}", rep + 1, o.reps),
        );
        for (c, raw) in cold.iter_mut().zip(&raws) {
            // The floor is compared with a peer run of this loop: the
            // machine's speed drifts between loops.
            let tag = format!("f{rep}");
            c.peer_beside_floor
                .add(&runs::peer(&fixtures_dir, c.size, CLIP_SECS, 1, &tag)?[0]);
            let (wall, cpu) = runs::alone(fixtures::encode_only_command(raw, c.size))?;
            c.x264_wall.push(wall);
            c.x264_cpu.push(cpu);
            let (wall, cpu) = runs::alone(fixtures::raw_read_command(raw, c.size))?;
            c.read_wall.push(wall);
            c.read_cpu.push(cpu);
            let (_, cpu) = runs::alone(fixtures::decode_only_command(&fixtures_dir, c.size))?;
            c.decode_cpu.push(cpu);
        }
    }
    drop(first_viewer);
    for raw in &raws {
        let _ = std::fs::remove_file(raw);
    }
    if o.cold_only {
        report::print_cold(&cold);
        return Ok(());
    }
    report.cold = cold;

    report.personalised = personalised_runs(&o, &fixtures_dir, &server_env, began)?;

    let mut scaling: Vec<Scaling> = SCALING.iter().map(|&(s, d)| Scaling::new(s, d)).collect();
    for rep in 0..o.reps {
        say(began, &format!("scaling, {}/{}", rep + 1, o.reps));
        for sc in scaling.iter_mut() {
            let tag = format!("s{rep}");
            sc.ours
                .add(&runs::clipstream(&server, sc.size, sc.secs, 1)?[0]);
            sc.peer
                .add(&runs::peer(&fixtures_dir, sc.size, sc.secs, 1, &tag)?[0]);
        }
    }
    report.scaling = scaling;
    // Memory the server keeps once its renders are over.
    let renders_done = 1 + o.reps * (COLD.len() + SCALING.len());
    report.rss_kept = Some((
        server.idle_rss_mib,
        procfs::rss_mib(server.pid())?,
        renders_done,
    ));

    // Capacity: n renders at once keep up when every one ends within the
    // media's own duration. A fresh server, so that memory its allocator
    // kept from the larger renders above does not count as these renders'.
    let fresh = capacity_server(&o, &fixtures_dir, &server_env)?;
    let real_time = f64::from(CLIP_SECS);
    let (mut ours_up, mut peer_up) = (true, true);
    for n in 1..=MAX_CONCURRENT {
        if !ours_up && !peer_up {
            break;
        }
        say(began, &format!("capacity: {n} concurrent 720p renders"));
        if ours_up {
            let r = runs::clipstream(&fresh, P720, CLIP_SECS, n)?;
            let worst = report::worst_last_byte(&r);
            ours_up = worst <= real_time;
            report.capacity_ours.push((n, worst, r[0].peak_rss_mib));
        }
        if peer_up {
            let r = runs::peer(&fixtures_dir, P720, CLIP_SECS, n, &format!("c{n}"))?;
            let worst = report::worst_last_byte(&r);
            peer_up = worst <= real_time;
            report.capacity_peer.push((n, worst, r[0].peak_rss_mib));
        }
    }

    drop(fresh);
    for rep in 0..o.reps {
        say(
            began,
            &format!(
                "{COLD_VIEWERS} viewers of a cold token, {}/{}",
                rep + 1,
                o.reps
            ),
        );
        let token = server.token(&servers::movie_name(P720, CLIP_SECS), &server.fresh_name())?;
        let (arrivals, wall, started) =
            runs::viewers(&server, &server.video_url(&token), COLD_VIEWERS)?;
        report.cold_viewers.add(&arrivals, wall, started);
    }

    report.warm = Some(warm_cache(&o, &server, began)?);
    drop(server);
    report.cluster = Some(cluster::run(
        &o.work,
        &fixtures_dir,
        o.reps,
        o.cluster_renders,
        &|w| say(began, w),
    )?);
    report.versions = report::versions(servers::BINARY);
    say(began, "writing the report");
    report.write(&o.out, began.elapsed().as_secs_f64())?;
    say(
        began,
        &format!("done: {}", o.out.join("RESULTS.md").display()),
    );
    Ok(())
}

/// The warm cache: one cached 720p render, and nginx serving the same file.
fn warm_cache(o: &Options, server: &servers::Clipstream, began: Instant) -> Result<Warm> {
    let token = server.token(&servers::movie_name(P720, CLIP_SECS), "Warm")?;
    let url = server.video_url(&token);
    runs::get(&reqwest::blocking::Client::new(), &url)?;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while !server.is_cached(&token)? {
        if Instant::now() > deadline {
            return Err(format!("{token} never reached the cache").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let cached = server.cached_file(&token)?;
    let size = std::fs::metadata(&cached)?.len();
    let nginx_dir = std::path::absolute(o.work.join("nginx"))?;
    let renders_dir = std::path::absolute(server.data_dir.join("renders"))?;
    let nginx = servers::Nginx::start(&nginx_dir, &renders_dir)?;
    let nginx_url = format!(
        "{}/{}",
        nginx.url,
        cached
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let middle = size / 2 - 512 * 1024;
    let middle_range = format!("bytes={middle}-{}", middle + 1024 * 1024 - 1);
    let mut warm = Warm::new(size);
    for rep in 0..o.reps {
        say(
            began,
            &format!("warm cache with wrk, {}/{}", rep + 1, o.reps),
        );
        for (i, range) in [None, Some("bytes=0-1"), Some(middle_range.as_str())]
            .iter()
            .enumerate()
        {
            let pair = [(&url, 0), (&nginx_url, 1)];
            let order: Vec<_> = if rep % 2 == 0 {
                pair.to_vec()
            } else {
                pair.iter().rev().copied().collect()
            };
            for (u, who) in order {
                let load = runs::wrk(u, WARM_CONNECTIONS, o.wrk_secs, *range)?;
                warm.kinds[i][who].add(&load);
            }
        }
        for (u, who) in [(&url, 0), (&nginx_url, 1)] {
            let load = runs::wrk(u, WARM_VIEWERS, o.wrk_secs, None)?;
            warm.viewers[who].add(&load);
        }
    }
    Ok(warm)
}
