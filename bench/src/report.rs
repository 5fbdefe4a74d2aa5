//! What a run measured, written as `RESULTS.md` (every figure beside its
//! peer's, the ratio and the target), `results.json` (every sample) and
//! `render-cost.png` (drawn by gnuplot).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::fixtures::{Size, CLIP_SECS, P720};
use crate::personalised::{self, Personalised};
use crate::runs::{Load, Render};
use crate::stats::{linear_fit, Samples};
use crate::timing::Arrival;
use crate::Result;

/// The hand-written part of the results (profiles, before/after, causes of
/// missed targets), kept beside the harness and appended to RESULTS.md.
const ANALYSIS: &str = "analysis.md";

#[derive(Debug, Default)]
pub struct RenderSamples {
    pub first_byte: Samples,
    pub first_fragment: Samples,
    pub last_byte: Samples,
    pub cpu: Samples,
    pub peak_rss: Samples,
}

impl RenderSamples {
    pub fn add(&mut self, r: &Render) {
        self.first_byte.push(r.arrival.first_byte.as_secs_f64());
        self.first_fragment
            .push(r.arrival.first_fragment.as_secs_f64());
        self.last_byte.push(r.arrival.last_byte.as_secs_f64());
        self.cpu.push(r.cpu_secs);
        self.peak_rss.push(r.peak_rss_mib);
    }

    fn to_json(&self) -> Value {
        json!({
            "first_byte_s": self.first_byte.to_json(),
            "first_fragment_s": self.first_fragment.to_json(),
            "last_byte_s": self.last_byte.to_json(),
            "cpu_s": self.cpu.to_json(),
            "peak_rss_mib": self.peak_rss.to_json(),
        })
    }
}

pub struct Cold {
    pub size: Size,
    pub ours: RenderSamples,
    /// Cold renders on a server whose sound cache is off: what the first
    /// viewer of a template gets.
    pub ours_first_viewer: RenderSamples,
    pub peer: RenderSamples,
    pub x264_wall: Samples,
    pub x264_cpu: Samples,
    /// x264 alone's input (the raw frames) read alone.
    pub read_wall: Samples,
    pub read_cpu: Samples,
    /// The background clip decoded alone, on one thread.
    pub decode_cpu: Samples,
    /// The peer run in the floor's loop, what the floor is compared with.
    pub peer_beside_floor: RenderSamples,
}

impl Cold {
    pub fn new(size: Size) -> Cold {
        Cold {
            size,
            ours: RenderSamples::default(),
            ours_first_viewer: RenderSamples::default(),
            peer: RenderSamples::default(),
            x264_wall: Samples::default(),
            x264_cpu: Samples::default(),
            read_wall: Samples::default(),
            read_cpu: Samples::default(),
            decode_cpu: Samples::default(),
            peer_beside_floor: RenderSamples::default(),
        }
    }

    /// The floor's CPU and wall time as ratios to the peer's in its loop.
    pub fn floor_ratios(&self) -> (f64, f64) {
        let peer = &self.peer_beside_floor;
        (
            self.floor_cpu() / peer.cpu.median(),
            self.floor_wall() / peer.last_byte.median(),
        )
    }

    /// The floor's CPU seconds: the work every render of the standard
    /// template must do whoever does it, x264 encoding the frames (x264
    /// alone less reading its input) and the decoder decoding the clip.
    pub fn floor_cpu(&self) -> f64 {
        self.x264_cpu.median() - self.read_cpu.median() + self.decode_cpu.median()
    }

    /// The floor's wall seconds: that work on every core at once, and no
    /// sooner than x264 alone encodes.
    pub fn floor_wall(&self) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        (self.floor_cpu() / cores).max(self.x264_wall.median() - self.read_wall.median())
    }
}

/// The cold figures on standard error, ours beside the peer's: what
/// `--cold-only` shows instead of a report.
/// The warm-cache figures of `--warm-only`, beside nginx's.
pub fn print_warm(w: &Warm) {
    let kinds = ["full GET", "bytes=0-1", "1 MiB middle range", "500 viewers"];
    let rows = w.kinds.iter().chain(std::iter::once(&w.viewers));
    for (k, [ours, nginx]) in kinds.iter().zip(rows) {
        eprintln!(
            "{k}: clipstream {} req/s (p99 {} ms) nginx {} req/s (p99 {} ms) ratio {:.2}",
            ours.rps.show(0),
            ours.p99_ms.show(2),
            nginx.rps.show(0),
            nginx.p99_ms.show(2),
            ratio(ours.rps.median(), nginx.rps.median())
        );
    }
}

pub fn print_cold(cold: &[Cold]) {
    for c in cold {
        let rows = [
            ("first byte", &c.ours.first_byte, &c.peer.first_byte),
            (
                "first fragment",
                &c.ours.first_fragment,
                &c.peer.first_fragment,
            ),
            ("last byte", &c.ours.last_byte, &c.peer.last_byte),
            ("CPU s", &c.ours.cpu, &c.peer.cpu),
            ("peak RSS MiB", &c.ours.peak_rss, &c.peer.peak_rss),
            (
                "first viewer: first fragment",
                &c.ours_first_viewer.first_fragment,
                &c.peer.first_fragment,
            ),
            (
                "first viewer: last byte",
                &c.ours_first_viewer.last_byte,
                &c.peer.last_byte,
            ),
            ("first viewer: CPU s", &c.ours_first_viewer.cpu, &c.peer.cpu),
        ];
        for (what, ours, peer) in rows {
            eprintln!(
                "{} {what}: clipstream {} peer {} ratio {:.2}",
                c.size.name,
                ours.show(3),
                peer.show(3),
                ours.median() / peer.median()
            );
        }
        eprintln!(
            "{} x264 alone: wall {} CPU {}; its input read alone: CPU {}; decoder alone: CPU {}",
            c.size.name,
            c.x264_wall.show(2),
            c.x264_cpu.show(2),
            c.read_cpu.show(2),
            c.decode_cpu.show(2)
        );
        let (cpu, wall) = c.floor_ratios();
        eprintln!(
            "{} floor: wall {:.2} ({wall:.2}× the peer's beside it), CPU {:.2} ({cpu:.2}×)",
            c.size.name,
            c.floor_wall(),
            c.floor_cpu(),
        );
    }
}

/// A row of section 1: ours, the peer's and their ratio.
fn ratio_row(
    md: &mut String,
    size: &str,
    name: &str,
    ours: &Samples,
    peer: &Samples,
) -> std::fmt::Result {
    writeln!(
        md,
        "| {size} | {name} | {} | {} | {:.2} |",
        ours.show(3),
        peer.show(3),
        ratio(ours.median(), peer.median())
    )
}

pub struct Scaling {
    pub size: Size,
    pub secs: u32,
    pub ours: RenderSamples,
    pub peer: RenderSamples,
}

impl Scaling {
    pub fn new(size: Size, secs: u32) -> Scaling {
        Scaling {
            size,
            secs,
            ours: RenderSamples::default(),
            peer: RenderSamples::default(),
        }
    }
}

#[derive(Debug, Default)]
pub struct LoadSamples {
    pub rps: Samples,
    pub mibps: Samples,
    pub p50_ms: Samples,
    pub p99_ms: Samples,
}

impl LoadSamples {
    pub fn add(&mut self, l: &Load) {
        self.rps.push(l.requests_per_sec);
        self.mibps.push(l.mib_per_sec);
        self.p50_ms.push(l.p50_ms);
        self.p99_ms.push(l.p99_ms);
    }

    fn to_json(&self) -> Value {
        json!({
            "requests_per_s": self.rps.to_json(),
            "mib_per_s": self.mibps.to_json(),
            "p50_ms": self.p50_ms.to_json(),
            "p99_ms": self.p99_ms.to_json(),
        })
    }
}

pub struct Warm {
    pub size: u64,
    /// Full GET, `bytes=0-1`, 1 MiB from the middle; Clipstream then nginx.
    pub kinds: [[LoadSamples; 2]; 3],
    /// 500 connections of full GETs; Clipstream then nginx.
    pub viewers: [LoadSamples; 2],
}

impl Warm {
    pub fn new(size: u64) -> Warm {
        Warm {
            size,
            kinds: Default::default(),
            viewers: Default::default(),
        }
    }
}

#[derive(Debug, Default)]
pub struct ColdViewers {
    pub started: Samples,
    pub wall: Samples,
    pub mibps: Samples,
    pub rps: Samples,
    pub first_byte_p50: Samples,
    pub first_byte_p99: Samples,
    pub last_byte_p50: Samples,
    pub last_byte_p99: Samples,
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

impl ColdViewers {
    pub fn add(&mut self, arrivals: &[Arrival], wall: f64, started: f64) {
        let first: Vec<f64> = arrivals
            .iter()
            .map(|a| a.first_byte.as_secs_f64() * 1000.0)
            .collect();
        let last: Vec<f64> = arrivals
            .iter()
            .map(|a| a.last_byte.as_secs_f64() * 1000.0)
            .collect();
        let bytes: u64 = arrivals.iter().map(|a| a.bytes).sum();
        self.started.push(started);
        self.wall.push(wall);
        self.mibps.push(bytes as f64 / 1_048_576.0 / wall);
        self.rps.push(arrivals.len() as f64 / wall);
        self.first_byte_p50.push(percentile(first.clone(), 50.0));
        self.first_byte_p99.push(percentile(first, 99.0));
        self.last_byte_p50.push(percentile(last.clone(), 50.0));
        self.last_byte_p99.push(percentile(last, 99.0));
    }
}

pub fn worst_last_byte(renders: &[Render]) -> f64 {
    renders
        .iter()
        .map(|r| r.arrival.last_byte.as_secs_f64())
        .fold(0.0, f64::max)
}

pub struct Report {
    reps: usize,
    pub cold: Vec<Cold>,
    pub scaling: Vec<Scaling>,
    /// `(n, worst last byte in s, peak RSS per render in MiB)`.
    pub capacity_ours: Vec<(usize, f64, f64)>,
    pub capacity_peer: Vec<(usize, f64, f64)>,
    pub cold_viewers: ColdViewers,
    pub warm: Option<Warm>,
    pub versions: Vec<(String, String)>,
    /// The main server's RSS idle, and after `n` renders one at a time.
    pub rss_kept: Option<(f64, f64, usize)>,
    /// The "personalised 60 s" scenario (segments), by size.
    pub personalised: Vec<(Size, Personalised)>,
    /// The cluster scenario (issue 21).
    pub cluster: Option<crate::cluster::Cluster>,
}

fn output_of(cmd: &str, args: &[&str]) -> String {
    match Command::new(cmd).args(args).output() {
        Ok(out) => {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        }
        Err(e) => format!("unavailable: {e}"),
    }
}

/// The date and time now, as the report's header gives it.
pub fn now_utc() -> String {
    output_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

/// The heading of the cluster scenario's section.
pub const CLUSTER_HEADING: &str = "8. Cluster (issue 21)";

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1_048_576.0);
    format!(
        "{model}, {cores} cores, {mem_gib:.1} GiB RAM, Linux {}",
        output_of("uname", &["-r"])
    )
}

/// Versions of everything measured.
pub fn versions(binary: &str) -> Vec<(String, String)> {
    let x264 = output_of(
        "dpkg-query",
        &["-W", "-f", "${Package} ${Version}", "libx264-164"],
    );
    vec![
        (
            "clipstream".into(),
            format!(
                "{} (git {})",
                output_of(binary, &["--version"]),
                output_of("git", &["describe", "--always", "--dirty"])
            ),
        ),
        ("rustc".into(), output_of("rustc", &["-V"])),
        ("ffmpeg".into(), output_of("ffmpeg", &["-version"])),
        ("x264".into(), x264),
        ("nginx".into(), output_of("nginx", &["-v"])),
        ("wrk".into(), output_of("wrk", &["-v"])),
    ]
}

/// Ratio of Clipstream's median to its peer's, and whether it meets
/// `target` (`at_most`: lower is better).
fn ratio(ours: f64, peer: f64) -> f64 {
    ours / peer
}

pub fn verdict(r: f64, target: f64, at_most: bool) -> String {
    let met = if at_most { r <= target } else { r >= target };
    let sign = if at_most { "≤" } else { "≥" };
    if met {
        format!("{sign} {target} — **met**")
    } else {
        let by = if at_most {
            r / target - 1.0
        } else {
            1.0 - r / target
        };
        format!("{sign} {target} — **not met** (by {:.1} %)", by * 100.0)
    }
}

/// A row of the targets table.
fn target(targets: &mut String, what: &str, r: f64, t: f64, at_most: bool) {
    let _ = writeln!(targets, "| {what} | {r:.2} | {} |", verdict(r, t, at_most));
}

/// A row of the targets table for a ratio with a floor (section 2): when
/// the floor itself is above the target, no renderer doing the template's
/// work with the same encoder and decoder can meet it here, and the row
/// says so.
fn target_above_floor(targets: &mut String, what: &str, r: f64, t: f64, floor: f64) {
    let mut v = verdict(r, t, true);
    if floor > t {
        let _ = write!(
            v,
            "; the floor is {floor:.2}× (section 2): out of reach on this machine"
        );
    } else {
        let _ = write!(v, "; the floor is {floor:.2}× (section 2)");
    }
    let _ = writeln!(targets, "| {what} | {r:.2} | {v} |");
}

impl Report {
    pub fn new(reps: usize) -> Report {
        Report {
            reps,
            cold: Vec::new(),
            scaling: Vec::new(),
            capacity_ours: Vec::new(),
            capacity_peer: Vec::new(),
            cold_viewers: ColdViewers::default(),
            warm: None,
            versions: Vec::new(),
            rss_kept: None,
            personalised: Vec::new(),
            cluster: None,
        }
    }

    /// Every (size, seconds, ours, peer) point, the cold ones included.
    fn points(&self) -> Vec<(Size, u32, &RenderSamples, &RenderSamples)> {
        let mut v: Vec<_> = self
            .cold
            .iter()
            .map(|c| (c.size, CLIP_SECS, &c.ours, &c.peer))
            .collect();
        v.extend(
            self.scaling
                .iter()
                .map(|s| (s.size, s.secs, &s.ours, &s.peer)),
        );
        v
    }

    pub fn write(&self, out: &Path, took_secs: f64) -> Result<()> {
        std::fs::create_dir_all(out)?;
        let mut md = String::new();
        self.header(&mut md, took_secs)?;
        let mut targets = String::new();
        let body = self.body(&mut targets)?;
        writeln!(md, "## Targets\n")?;
        writeln!(
            md,
            "| Target | Clipstream / peer | Verdict |\n|---|---|---|"
        )?;
        md.push_str(&targets);
        md.push('\n');
        md.push_str(&body);
        if let Ok(analysis) = std::fs::read_to_string(out.join(ANALYSIS)) {
            md.push('\n');
            md.push_str(&analysis);
        }
        std::fs::write(out.join("RESULTS.md"), md)?;
        std::fs::write(
            out.join("results.json"),
            serde_json::to_string_pretty(&self.to_json())?,
        )?;
        self.chart(out)
    }

    fn header(&self, md: &mut String, took_secs: f64) -> Result<()> {
        writeln!(md, "# Clipstream benchmark results\n")?;
        writeln!(
            md,
            "Written by `bench/run.sh` (the harness: `bench/src/`); do not edit by hand \
             above the analysis — edit `bench/{ANALYSIS}` instead.\n"
        )?;
        let date = output_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
        writeln!(md, "- Date: {date}; the scenarios took {:.0} s", took_secs)?;
        writeln!(md, "- Machine: {}", machine())?;
        for (what, v) in &self.versions {
            writeln!(md, "- {what}: {v}")?;
        }
        writeln!(
            md,
            "\nEvery figure is the median of {} runs, with the spread (min–max) in \
             brackets. Clipstream and its peer run interleaved (alternating which goes first), so \
             their ratio is taken inside one run; absolute times on this shared 2-core machine \
             drift 3–8 % between runs. Clipstream runs as `clipstream serve` (release build, \
             its default configuration (`log.level = info`) but `render.workers = 16`, so that \
             concurrent renders really run at once); the peer is the ffmpeg CLI composing the same template in one \
             `filter_complex` (`overlay`, `drawtext`, `amix`) with the same encoder settings \
             (x264 `veryfast` CRF 23, a keyframe a second, no B-frames, AAC 128 kb/s), writing \
             fragmented MP4 to a pipe. Cold renders get a fresh token (a new NAME) each time.\n",
            self.reps
        )?;
        Ok(())
    }

    fn body(&self, targets: &mut String) -> Result<String> {
        let mut md = String::new();

        writeln!(md, "## 1. Cold render through `GET /render/<token>.mp4`\n")?;
        writeln!(
            md,
            "Seconds from the request (Clipstream) or the process start (peer) to the first \
             body byte, to the end of the first complete `moof`+`mdat` pair, and to the last \
             byte; a 10 s timeline.\n"
        )?;
        writeln!(
            md,
            "| Size | Figure | Clipstream | Peer (ffmpeg CLI) | Ratio |\n|---|---|---|---|---|"
        )?;
        for c in &self.cold {
            for (name, ours, peer) in [
                ("first byte", &c.ours.first_byte, &c.peer.first_byte),
                (
                    "first fragment",
                    &c.ours.first_fragment,
                    &c.peer.first_fragment,
                ),
                ("last byte", &c.ours.last_byte, &c.peer.last_byte),
            ] {
                ratio_row(&mut md, c.size.name, name, ours, peer)?;
            }
            let n = c.size.name;
            target_above_floor(
                targets,
                &format!("{n} cold render total ≤ 0.85× peer"),
                ratio(c.ours.last_byte.median(), c.peer.last_byte.median()),
                0.85,
                c.floor_ratios().1,
            );
            target(
                targets,
                &format!("{n} first complete fragment ≤ 0.5× peer"),
                ratio(
                    c.ours.first_fragment.median(),
                    c.peer.first_fragment.median(),
                ),
                0.5,
                true,
            );
        }
        writeln!(
            md,
            "\nEach token above is new, its template is not: the sound of the template \
             (soundtrack, the clip's own audio) was encoded by an earlier render and is \
             taken from the sound cache, as it is for every viewer of a personalised \
             template but the first. The first viewer's render, on a second server with \
             `render.sound_cache_bytes = 0`, mixes and encodes the sound too:\n"
        )?;
        writeln!(
            md,
            "| Size | Figure | Clipstream, sound not cached | Peer (ffmpeg CLI) | Ratio |\n|---|---|---|---|---|"
        )?;
        for c in &self.cold {
            for (name, ours, peer) in [
                (
                    "first fragment",
                    &c.ours_first_viewer.first_fragment,
                    &c.peer.first_fragment,
                ),
                (
                    "last byte",
                    &c.ours_first_viewer.last_byte,
                    &c.peer.last_byte,
                ),
                ("CPU s", &c.ours_first_viewer.cpu, &c.peer.cpu),
            ] {
                ratio_row(&mut md, c.size.name, name, ours, peer)?;
            }
        }

        writeln!(
            md,
            "\n## 2. Ceiling: x264 alone, and the floor of a render\n"
        )?;
        writeln!(
            md,
            "x264 with the same settings on the same number of frames ({} at {} fps), read raw \
             from memory (`/dev/shm`) and written nowhere: what encoding alone costs on this \
             machine. Overhead is the render's wall time above it.\n",
            CLIP_SECS * crate::fixtures::FPS,
            crate::fixtures::FPS
        )?;
        writeln!(
            md,
            "| Size | x264 alone: wall s | x264 alone: CPU s | Clipstream wall s | Clipstream overhead | Peer wall s | Peer overhead |\n|---|---|---|---|---|---|---|"
        )?;
        for c in &self.cold {
            let x = c.x264_wall.median();
            let o = c.ours.last_byte.median();
            let p = c.peer.last_byte.median();
            writeln!(
                md,
                "| {} | {} | {} | {o:.2} | +{:.2} s ({:.2}×) | {p:.2} | +{:.2} s ({:.2}×) |",
                c.size.name,
                c.x264_wall.show(2),
                c.x264_cpu.show(2),
                o - x,
                o / x,
                p - x,
                p / x
            )?;
        }

        writeln!(
            md,
            "\nThe floor: the work every render of the standard template has to do, whoever \
             renders it with the same encoder and decoder. Its CPU is x264 alone less reading \
             its raw input (the same ffmpeg reading the frames into `-f null`), plus the \
             background clip decoded alone on one thread (`-threads 1`, the cheapest way; \
             `-f null`). Its wall time is that CPU spread over every core, or x264 alone less \
             its read if that is longer. Compositing, the sound, muxing and serving are all \
             above it. These runs take turns with a peer run of their own, and the floor's ratios \
             are to that peer's figures (the machine's speed drifts between loops); a ratio \
             target below the floor's own ratio cannot be met here. The last column compares \
             section 1's renders with the floor as a ratio of ratios: (Clipstream / its peer) \
             over (floor / its peer).\n"
        )?;
        writeln!(
            md,
            "| Size | x264 alone CPU s | its input read alone CPU s | decoder alone CPU s | peer CPU s | floor CPU s | floor / peer CPU | Clipstream CPU over the floor | peer wall s | floor wall s | floor / peer wall | Clipstream wall over the floor |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
        )?;
        for c in &self.cold {
            let (fc, fw) = (c.floor_cpu(), c.floor_wall());
            let (rc, rw) = c.floor_ratios();
            let ours_cpu = c.ours.cpu.median() / c.peer.cpu.median();
            let ours_wall = c.ours.last_byte.median() / c.peer.last_byte.median();
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {fc:.2} | {rc:.2} | {:.2}× | {} | {fw:.2} | {rw:.2} | {:.2}× |",
                c.size.name,
                c.x264_cpu.show(2),
                c.read_cpu.show(2),
                c.decode_cpu.show(2),
                c.peer_beside_floor.cpu.show(2),
                ours_cpu / rc,
                c.peer_beside_floor.last_byte.show(2),
                ours_wall / rw
            )?;
        }

        writeln!(md, "\n## 3. Capacity\n")?;
        writeln!(
            md,
            "CPU seconds per second of rendered media: the server process's utime+stime \
             delta over the render (all its threads), the peer's from wait4(2).\n"
        )?;
        writeln!(md, "| Size | Clipstream CPU s / media s | Peer CPU s / media s | Ratio |\n|---|---|---|---|")?;
        for c in &self.cold {
            let secs = f64::from(CLIP_SECS);
            let o = c.ours.cpu.median() / secs;
            let p = c.peer.cpu.median() / secs;
            writeln!(
                md,
                "| {} | {o:.3} ({:.3}–{:.3}) | {p:.3} ({:.3}–{:.3}) | {:.2} |",
                c.size.name,
                c.ours.cpu.min() / secs,
                c.ours.cpu.max() / secs,
                c.peer.cpu.min() / secs,
                c.peer.cpu.max() / secs,
                o / p
            )?;
            target_above_floor(
                targets,
                &format!("{} CPU-seconds per media second ≤ 0.85× peer", c.size.name),
                o / p,
                0.85,
                c.floor_ratios().0,
            );
        }
        writeln!(
            md,
            "\nConcurrent 720p renders of a 10 s timeline, started together (one run each): \
             they keep up with real time when the last of them ends within 10 s. Peak RSS per \
             render: the VmHWM of a freshly started Clipstream server during the renders, above \
             its idle RSS, divided by the renders at once; the peer's is each ffmpeg process's \
             whole peak (wait4's ru_maxrss).\n"
        )?;
        writeln!(
            md,
            "| Concurrent | Clipstream: slowest s | keeps up | peak RSS / render MiB | Peer: slowest s | keeps up | peak RSS / render MiB |\n|---|---|---|---|---|---|---|"
        )?;
        let rows = self.capacity_ours.len().max(self.capacity_peer.len());
        let cell = |v: Option<&(usize, f64, f64)>| match v {
            Some(&(_, s, rss)) => format!(
                "{s:.2} | {} | {rss:.0}",
                if s <= f64::from(CLIP_SECS) {
                    "yes"
                } else {
                    "no"
                }
            ),
            None => "— | — | —".to_owned(),
        };
        for i in 0..rows {
            writeln!(
                md,
                "| {} | {} | {} |",
                i + 1,
                cell(self.capacity_ours.get(i)),
                cell(self.capacity_peer.get(i))
            )?;
        }
        let keeps = |v: &[(usize, f64, f64)]| {
            v.iter()
                .filter(|r| r.1 <= f64::from(CLIP_SECS))
                .map(|r| r.0)
                .max()
                .unwrap_or(0)
        };
        let (ko, kp) = (keeps(&self.capacity_ours), keeps(&self.capacity_peer));
        writeln!(
            md,
            "\nKeeping up with real time on 2 cores: **Clipstream {ko}, peer {kp}** concurrent \
             720p renders."
        )?;
        if let Some((idle, after, n)) = self.rss_kept {
            writeln!(
                md,
                "\nMemory kept: the main server's RSS was {idle:.0} MiB idle and {after:.0} MiB \
                 after its {n} renders of sections 1 and 6 (one at a time, all finished), \
                 {:.1} MiB per render. The \"peak RSS above idle\" column of section 6 includes \
                 what earlier renders left behind.",
                (after - idle) / n as f64
            )?;
        }
        let worst_rss = self.capacity_ours.iter().map(|r| r.2).fold(0.0, f64::max);
        let _ = writeln!(
            targets,
            "| Peak RSS per concurrent 720p render ≤ 120 MiB | {worst_rss:.0} MiB (worst of 1–{} at once) | {} |",
            self.capacity_ours.len(),
            if worst_rss <= 120.0 { "≤ 120 MiB — **met**".to_owned() } else {
                format!("≤ 120 MiB — **not met** (by {:.0} %)", (worst_rss / 120.0 - 1.0) * 100.0)
            }
        );

        if let Some(w) = &self.warm {
            writeln!(md, "\n## 4. Warm cache\n")?;
            writeln!(
                md,
                "`wrk -t2 -c{} -d…s` on one cached 720p render ({:.2} MiB), beside nginx \
                 (started by the harness on a loopback port from its own config: sendfile, \
                 keep-alive, no access log, a worker per core) serving the same file.\n",
                crate::WARM_CONNECTIONS,
                w.size as f64 / 1_048_576.0
            )?;
            writeln!(
                md,
                "| Request | Clipstream req/s | nginx req/s | Ratio | Clipstream MiB/s | nginx MiB/s | Clipstream p99 ms | nginx p99 ms |\n|---|---|---|---|---|---|---|---|"
            )?;
            let kinds = ["full GET", "`Range: bytes=0-1`", "1 MiB middle range"];
            for (k, [ours, nginx]) in kinds.iter().zip(&w.kinds) {
                let r = ratio(ours.rps.median(), nginx.rps.median());
                writeln!(
                    md,
                    "| {k} | {} | {} | {r:.2} | {} | {} | {} | {} |",
                    ours.rps.show(0),
                    nginx.rps.show(0),
                    ours.mibps.show(0),
                    nginx.mibps.show(0),
                    ours.p99_ms.show(2),
                    nginx.p99_ms.show(2)
                )?;
            }
            let r = |i: usize| ratio(w.kinds[i][0].rps.median(), w.kinds[i][1].rps.median());
            target(targets, "Warm full GET ≥ 0.9× nginx", r(0), 0.9, false);
            target(targets, "Warm `bytes=0-1` ≥ 0.8× nginx", r(1), 0.8, false);

            writeln!(md, "\n## 5. Viewers\n")?;
            let v = &self.cold_viewers;
            writeln!(
                md,
                "{} viewers GET one cold token at once (each its own connection): renders \
                 started (the server's `cache_misses` counter) {}; all done in {} s; {} MiB/s \
                 and {} requests/s delivered; first byte p50 {} ms, p99 {} ms; last byte \
                 p50 {} ms, p99 {} ms. A single cold 720p render's last byte, for scale: {:.0} ms.\n",
                crate::COLD_VIEWERS,
                v.started.show(0),
                v.wall.show(2),
                v.mibps.show(0),
                v.rps.show(1),
                v.first_byte_p50.show(0),
                v.first_byte_p99.show(0),
                v.last_byte_p50.show(0),
                v.last_byte_p99.show(0),
                self.cold
                    .iter()
                    .find(|c| c.size == P720)
                    .map_or(f64::NAN, |c| c.ours.last_byte.median() * 1000.0)
            )?;
            let one = v.started.max() == 1.0 && v.started.min() == 1.0;
            let _ = writeln!(
                targets,
                "| {} cold viewers start exactly 1 render | {} | {} |",
                crate::COLD_VIEWERS,
                v.started.show(0),
                if one {
                    "= 1 — **met**"
                } else {
                    "= 1 — **not met**"
                }
            );
            writeln!(
                md,
                "{} connections of full GETs of a warm token (`wrk -c{}`), beside nginx:\n",
                crate::WARM_VIEWERS,
                crate::WARM_VIEWERS
            )?;
            writeln!(
                md,
                "| Server | req/s | MiB/s | p50 ms | p99 ms |\n|---|---|---|---|---|"
            )?;
            for (who, l) in ["Clipstream", "nginx"].iter().zip(&w.viewers) {
                writeln!(
                    md,
                    "| {who} | {} | {} | {} | {} |",
                    l.rps.show(0),
                    l.mibps.show(0),
                    l.p50_ms.show(1),
                    l.p99_ms.show(1)
                )?;
            }
            writeln!(
                md,
                "\nRatio Clipstream / nginx: {:.2} in requests/s.",
                ratio(w.viewers[0].rps.median(), w.viewers[1].rps.median())
            )?;
        }

        writeln!(md, "\n## 6. Scaling\n")?;
        writeln!(
            md,
            "Render time and cost against the timeline's length (720p) and the frame's size \
             (10 s). Cost should be proportional to pixels × seconds: CPU s per megapixel-second \
             should not change, and a line `CPU = a + b·(MP·s)` should fit.\n\n\
             ![render cost against duration and resolution](render-cost.png)\n"
        )?;
        writeln!(
            md,
            "| Size | Seconds | MP·s | Clipstream wall s | Clipstream CPU s | CPU s per MP·s | peak RSS above idle MiB | Peer wall s | Peer CPU s | Peer CPU s per MP·s | Wall ratio |\n|---|---|---|---|---|---|---|---|---|---|---|"
        )?;
        let mut points = self.points();
        points.sort_by(|a, b| {
            (a.0.megapixels() * f64::from(a.1)).total_cmp(&(b.0.megapixels() * f64::from(b.1)))
        });
        let mut fit_ours = Vec::new();
        let mut fit_peer = Vec::new();
        for (size, secs, ours, peer) in &points {
            let mps = size.megapixels() * f64::from(*secs);
            fit_ours.push((mps, ours.cpu.median()));
            fit_peer.push((mps, peer.cpu.median()));
            writeln!(
                md,
                "| {} | {secs} | {mps:.1} | {} | {} | {:.3} | {:.0} | {} | {} | {:.3} | {:.2} |",
                size.name,
                ours.last_byte.show(2),
                ours.cpu.show(2),
                ours.cpu.median() / mps,
                ours.peak_rss.median(),
                peer.last_byte.show(2),
                peer.cpu.show(2),
                peer.cpu.median() / mps,
                ratio(ours.last_byte.median(), peer.last_byte.median())
            )?;
        }
        if fit_ours.len() >= 3 {
            let (a, b, r2) = linear_fit(&fit_ours);
            let (pa, pb, pr2) = linear_fit(&fit_peer);
            writeln!(
                md,
                "\nLeast-squares line, CPU s against MP·s: Clipstream a = {a:.2} s, b = {b:.3} \
                 s per MP·s, R² = {r2:.4}; peer a = {pa:.2} s, b = {pb:.3}, R² = {pr2:.4}."
            )?;
            let _ =
                writeln!(
                targets,
                "| Cost grows linearly with pixels × seconds | R² {r2:.3} (peer {pr2:.3}) | {} |",
                if r2 >= 0.98 { "R² ≥ 0.98 — **met**" } else { "R² ≥ 0.98 — **not met**" }
            );
        }
        self.personalised_section(&mut md, targets)?;
        if let Some(c) = &self.cluster {
            c.markdown(CLUSTER_HEADING, &mut md, targets)?;
        }
        Ok(md)
    }

    fn chart(&self, out: &Path) -> Result<()> {
        let mut by_secs = String::new();
        let mut by_size = String::new();
        for (size, secs, ours, peer) in self.points() {
            let line = |x: f64| {
                format!(
                    "{x} {} {} {} {}\n",
                    ours.cpu.median(),
                    peer.cpu.median(),
                    ours.last_byte.median(),
                    peer.last_byte.median()
                )
            };
            if size == P720 {
                by_secs.push_str(&line(f64::from(secs)));
            }
            if secs == CLIP_SECS {
                by_size.push_str(&format!("{} ", size.height));
                by_size.push_str(&line(size.megapixels()));
            }
        }
        let sort = |s: &str| {
            let mut lines: Vec<&str> = s.lines().collect();
            lines.sort_by(|a, b| {
                let key = |l: &str| l.split(' ').next().and_then(|v| v.parse::<f64>().ok());
                key(a)
                    .partial_cmp(&key(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            lines.join("\n") + "\n"
        };
        let dir = std::env::temp_dir().join("clipstream-bench-chart");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("secs.dat"), sort(&by_secs))?;
        std::fs::write(dir.join("size.dat"), sort(&by_size))?;
        let png = std::path::absolute(out.join("render-cost.png"))?;
        let script = format!(
            r##"set terminal pngcairo size 1400,560 font "DejaVu Sans,11"
set output "{png}"
set multiplot layout 1,2 title "Render cost of the standard template (medians, one run)"
set grid
set key top left
set xlabel "timeline length (s), 720p"
set ylabel "seconds"
set xrange [0:*]
set yrange [0:*]
plot "{d}/secs.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "Clipstream CPU s", \
     "" using 1:3 with linespoints lw 2 pt 5 lc rgb "#d62728" title "ffmpeg CLI CPU s", \
     "" using 1:4 with linespoints lw 1 dt 2 pt 6 lc rgb "#1f77b4" title "Clipstream wall s", \
     "" using 1:5 with linespoints lw 1 dt 2 pt 4 lc rgb "#d62728" title "ffmpeg CLI wall s"
set xlabel "megapixels per frame, 10 s (360p, 720p, 1080p)"
plot "{d}/size.dat" using 2:3 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "Clipstream CPU s", \
     "" using 2:4 with linespoints lw 2 pt 5 lc rgb "#d62728" title "ffmpeg CLI CPU s", \
     "" using 2:5 with linespoints lw 1 dt 2 pt 6 lc rgb "#1f77b4" title "Clipstream wall s", \
     "" using 2:6 with linespoints lw 1 dt 2 pt 4 lc rgb "#d62728" title "ffmpeg CLI wall s", \
     "" using 2:3:(sprintf("%dp", $1)) with labels offset 0,1.2 notitle
unset multiplot
"##,
            png = png.display(),
            d = dir.display()
        );
        let gp = dir.join("chart.gp");
        std::fs::write(&gp, script)?;
        let out = Command::new("gnuplot").arg(&gp).output()?;
        if !out.status.success() {
            return Err(format!("gnuplot: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(())
    }

    /// Section 7: the "personalised 60 s" scenario, and its targets.
    fn personalised_section(&self, md: &mut String, targets: &mut String) -> Result<()> {
        if self.personalised.is_empty() {
            return Ok(());
        }
        writeln!(md, "\n## 7. Personalised 60 s (segments)\n")?;
        writeln!(
            md,
            "A background video, a logo and a soundtrack for {secs} s; `Hello {{{{NAME}}}}` for \
             0–5 s and a closing card with the name for 55–60 s. (a) the first token of a new \
             template (a new copy of the background clip: other bytes, so no segment is \
             cached), (b) a second token of it with another NAME (only the segments showing \
             the name are rendered), (c) a token of another new template asked for its HLS \
             segment at 40 s, to that segment's last byte. Peer: the ffmpeg CLI rendering the \
             whole {secs} s. The floor of (a) is six times section 2's floor of the 10 s clip \
             (the background is that clip six times), without the sound.\n",
            secs = personalised::SECS
        )?;
        writeln!(
            md,
            "| Size | Peer wall s | Peer CPU s | (a) wall s | (a) CPU s | (b) wall s | (b) CPU s | (c) s |\n|---|---|---|---|---|---|---|---|"
        )?;
        for (size, p) in &self.personalised {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                size.name,
                p.peer_wall.show(2),
                p.peer_cpu.show(2),
                p.first_wall.show(2),
                p.first_cpu.show(2),
                p.second_wall.show(2),
                p.second_cpu.show(2),
                p.seek_wall.show(2)
            )?;
        }
        for (size, p) in &self.personalised {
            let n = size.name;
            let peer_wall = p.peer_wall.median();
            let floor = self
                .cold
                .iter()
                .find(|c| c.size.name == n)
                .map_or(0.0, |c| {
                    c.floor_wall() * f64::from(personalised::SECS / CLIP_SECS) / peer_wall
                });
            target_above_floor(
                targets,
                &format!("{n} personalised 60 s: (a) first token ≤ 0.85× peer"),
                ratio(p.first_wall.median(), peer_wall),
                0.85,
                floor,
            );
            target(
                targets,
                &format!("{n} personalised 60 s: (b) second token's last byte ≤ 0.3× peer"),
                ratio(p.second_wall.median(), peer_wall),
                0.3,
                true,
            );
            target(
                targets,
                &format!("{n} personalised 60 s: (b) second token's CPU ≤ 0.25× peer"),
                ratio(p.second_cpu.median(), p.peer_cpu.median()),
                0.25,
                true,
            );
            target(
                targets,
                &format!("{n} personalised 60 s: (c) HLS segment at 40 s ≤ 0.1× peer's total"),
                ratio(p.seek_wall.median(), peer_wall),
                0.1,
                true,
            );
        }
        Ok(())
    }

    fn to_json(&self) -> Value {
        let points: Vec<Value> = self
            .points()
            .into_iter()
            .map(|(size, secs, ours, peer)| {
                json!({ "size": size.name, "secs": secs, "clipstream": ours.to_json(), "peer": peer.to_json() })
            })
            .collect();
        let x264: Vec<Value> = self
            .cold
            .iter()
            .map(|c| {
                json!({
                    "size": c.size.name,
                    "wall_s": c.x264_wall.to_json(),
                    "cpu_s": c.x264_cpu.to_json(),
                    "input_read_wall_s": c.read_wall.to_json(),
                    "input_read_cpu_s": c.read_cpu.to_json(),
                    "decoder_alone_cpu_s": c.decode_cpu.to_json(),
                    "floor_cpu_s": c.floor_cpu(),
                    "floor_wall_s": c.floor_wall(),
                    "peer_beside_floor": c.peer_beside_floor.to_json(),
                })
            })
            .collect();
        let first_viewer: Vec<Value> = self
            .cold
            .iter()
            .map(|c| json!({ "size": c.size.name, "clipstream": c.ours_first_viewer.to_json() }))
            .collect();
        let v = &self.cold_viewers;
        json!({
            "reps": self.reps,
            "renders": points,
            "x264_alone": x264,
            "first_viewer_of_a_template": first_viewer,
            "capacity": { "clipstream": self.capacity_ours, "peer": self.capacity_peer },
            "cold_viewers": {
                "started": v.started.to_json(), "wall_s": v.wall.to_json(),
                "mib_per_s": v.mibps.to_json(), "requests_per_s": v.rps.to_json(),
                "first_byte_p50_ms": v.first_byte_p50.to_json(), "first_byte_p99_ms": v.first_byte_p99.to_json(),
                "last_byte_p50_ms": v.last_byte_p50.to_json(), "last_byte_p99_ms": v.last_byte_p99.to_json(),
            },
            "warm": self.warm.as_ref().map(|w| json!({
                "bytes": w.size,
                "full": [w.kinds[0][0].to_json(), w.kinds[0][1].to_json()],
                "bytes_0_1": [w.kinds[1][0].to_json(), w.kinds[1][1].to_json()],
                "middle_mib": [w.kinds[2][0].to_json(), w.kinds[2][1].to_json()],
                "viewers": [w.viewers[0].to_json(), w.viewers[1].to_json()],
            })),
            "versions": self.versions,
            "cluster": self.cluster.as_ref().map(crate::cluster::Cluster::to_json),
            "rss_kept_mib": self.rss_kept,
            "personalised_60s": self.personalised.iter().map(|(size, p)| json!({
                "size": size.name,
                "peer": { "wall_s": p.peer_wall.to_json(), "cpu_s": p.peer_cpu.to_json() },
                "first_token": { "wall_s": p.first_wall.to_json(), "cpu_s": p.first_cpu.to_json() },
                "second_token": { "wall_s": p.second_wall.to_json(), "cpu_s": p.second_cpu.to_json() },
                "hls_segment_at_40s_wall_s": p.seek_wall.to_json(),
            })).collect::<Vec<_>>(),
        })
    }
}
