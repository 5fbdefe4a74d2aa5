//! The "personalised 60 s" scenario (issue 18): a background video, a logo
//! and a soundtrack for 60 s, `Hello {{NAME}}` for 0–5 s and a closing
//! card with `{{NAME}}` for 55–60 s. Measured: (a) the first token of a
//! template, (b) a second token with another NAME (only its personalised
//! segments are rendered), (c) a fresh template's token asked for its HLS
//! segment at 40 s, to its last byte; beside the peer, the ffmpeg CLI
//! rendering the whole 60 s. Each template is a new copy of the
//! background clip (other bytes, so other segment keys): (a) and (c)
//! measure a cold template.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::fixtures::{self, Size, CLIP_SECS, FONT, FPS};
use crate::runs::{self, Render};
use crate::servers::Clipstream;
use crate::stats::Samples;
use crate::Result;

pub const SECS: u32 = 60;
/// The HLS segment of (c): 2 s segments, so 40–42 s.
const SEEK_SEGMENT: u32 = 20;

/// The template over the background clip `clip` (an asset name).
pub fn edit(size: Size, clip: &str) -> Value {
    let clips: Vec<Value> = (0..SECS / CLIP_SECS)
        .map(|i| {
            json!({ "asset": { "type": "video", "src": clip },
                        "start": i * CLIP_SECS, "length": CLIP_SECS })
        })
        .collect();
    json!({
        "timeline": {
            "soundtrack": { "src": "music.mp3", "volume": 0.5 },
            "tracks": [
                { "clips": [
                    { "asset": { "type": "title", "text": "Hello {{NAME}}", "style": "minimal" },
                      "start": 0, "length": 5, "transition": { "in": "fadeFast" } },
                    { "asset": { "type": "title", "text": "See you soon, {{NAME}}", "style": "minimal" },
                      "start": SECS - 5, "length": 5 }
                ] },
                { "clips": [{
                    "asset": { "type": "image", "src": "logo.png" },
                    "start": 0, "length": SECS,
                    "fit": "contain", "scale": 0.25, "position": "topRight",
                }] },
                { "clips": clips },
            ],
        },
        "output": { "format": "mp4", "resolution": size.resolution, "fps": FPS },
    })
}

/// The peer: the same 60 s composed by the ffmpeg CLI in one
/// `filter_complex`, the names drawn only in their seconds.
fn peer_command(dir: &Path, size: Size, name: &str) -> Command {
    let loops = (SECS / CLIP_SECS).saturating_sub(1).to_string();
    let (w, h) = (size.width, size.height);
    let clip = dir.join(size.clip());
    let bg = if clip.ends_with("clip720.mp4") && h != 720 {
        format!("[0:v]scale={w}:{h},setsar=1[bg]")
    } else {
        "[0:v]null[bg]".to_owned()
    };
    let end = SECS - 5;
    let graph = format!(
        "{bg};[1:v]scale={}:-1[logo];[bg][logo]overlay=x=W-w:y=0[v1];\
         [v1]drawtext=fontfile={FONT}:text='Hello {name}':fontsize=h*0.06:fontcolor=white:\
         x=(w-text_w)/2:y=(h-text_h)/2:enable='lt(t\\,5)':alpha='min(t/0.5\\,1)'[v2];\
         [v2]drawtext=fontfile={FONT}:text='See you soon {name}':fontsize=h*0.06:fontcolor=white:\
         x=(w-text_w)/2:y=(h-text_h)/2:enable='gte(t\\,{end})'[v];\
         [2:a]volume=0.5[m];[0:a][m]amix=inputs=2:duration=first:normalize=0[a]",
        w / 4
    );
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-stream_loop", &loops, "-i"])
        .arg(&clip)
        .arg("-i")
        .arg(dir.join("logo.png"))
        .arg("-i")
        .arg(dir.join("music.mp3"))
        .args(["-filter_complex", &graph, "-map", "[v]", "-map", "[a]"])
        .args(["-t", &SECS.to_string()])
        .args(fixtures::video_encoder_args())
        .args(fixtures::audio_encoder_args())
        .args(fixtures::fmp4_to_pipe());
    cmd
}

/// The measurements of one size.
#[derive(Default)]
pub struct Personalised {
    pub first_wall: Samples,
    pub first_cpu: Samples,
    pub second_wall: Samples,
    pub second_cpu: Samples,
    pub seek_wall: Samples,
    pub peer_wall: Samples,
    pub peer_cpu: Samples,
}

/// A new template: a copy of the background clip with other bytes (an
/// MP4 `free` box appended, which players skip) and a movie over it.
fn new_template(server: &Clipstream, fixtures_dir: &Path, size: Size, n: u64) -> Result<String> {
    let mut clip = std::fs::read(fixtures_dir.join(size.clip()))?;
    clip.extend_from_slice(&[0, 0, 0, 16]);
    clip.extend_from_slice(b"free");
    clip.extend_from_slice(&n.to_be_bytes());
    let clip_name = format!("copy{n}-{}", size.clip());
    server.upload(&clip_name, clip)?;
    let movie = format!("personalised-{}-{n}", size.name);
    server.put_movie(&movie, &edit(size, &clip_name))?;
    Ok(movie)
}

/// One token's whole MP4: its arrival and the server's CPU until cached.
fn measured(server: &Clipstream, client: &Client, url: &str, token: &str) -> Result<(f64, f64)> {
    let before = crate::procfs::cpu_seconds(server.pid())?;
    let arrival = runs::get(client, url)?;
    server.settle(token)?;
    let cpu = crate::procfs::cpu_seconds(server.pid())? - before;
    Ok((arrival.last_byte.as_secs_f64(), cpu))
}

/// Runs the scenario `reps` times for `size`, interleaved with the peer.
pub fn run(
    server: &Clipstream,
    fixtures_dir: &Path,
    size: Size,
    reps: usize,
    parallel: u32,
    templates: &mut u64,
) -> Result<Personalised> {
    let client = Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .pool_max_idle_per_host(0)
        .build()?;
    let mut p = Personalised::default();
    for rep in 0..reps {
        *templates += 1;
        let movie = new_template(server, fixtures_dir, size, *templates)?;
        let first = server.token_parallel(&movie, &server.fresh_name(), parallel)?;
        let (wall, cpu) = measured(server, &client, &server.video_url(&first), &first)?;
        p.first_wall.push(wall);
        p.first_cpu.push(cpu);
        let second = server.token_parallel(&movie, &server.fresh_name(), parallel)?;
        let (wall, cpu) = measured(server, &client, &server.video_url(&second), &second)?;
        p.second_wall.push(wall);
        p.second_cpu.push(cpu);

        *templates += 1;
        let cold = new_template(server, fixtures_dir, size, *templates)?;
        let token = server.token_parallel(&cold, &server.fresh_name(), parallel)?;
        let url = format!("{}/render/{token}/{SEEK_SEGMENT}.m4s", server.url);
        let asked = Instant::now();
        runs::get(&client, &url)?;
        p.seek_wall.push(asked.elapsed().as_secs_f64());
        // The render the seek started runs on until it is done or, with
        // no viewer left, cancelled: let it end before the next
        // measurement.
        server.idle()?;

        let Render {
            arrival, cpu_secs, ..
        } = run_peer(fixtures_dir, size, &format!("P{rep}"))?;
        p.peer_wall.push(arrival.last_byte.as_secs_f64());
        p.peer_cpu.push(cpu_secs);
    }
    Ok(p)
}

fn run_peer(dir: &Path, size: Size, name: &str) -> Result<Render> {
    runs::run_piped(&mut peer_command(dir, size, name))
}

/// Prints the medians and the ratios to the peer's, with the issue's
/// targets.
pub fn print(size: Size, p: &Personalised) {
    let ratio = |a: &Samples, b: &Samples| a.median() / b.median();
    eprintln!(
        "personalised {SECS} s, {}: peer {} s wall, {} s CPU",
        size.name,
        p.peer_wall.show(2),
        p.peer_cpu.show(2)
    );
    eprintln!(
        "  (a) first token:   {} s wall ({:.2}x), {} s CPU ({:.2}x); target <= 0.85x",
        p.first_wall.show(2),
        ratio(&p.first_wall, &p.peer_wall),
        p.first_cpu.show(2),
        ratio(&p.first_cpu, &p.peer_cpu)
    );
    eprintln!(
        "  (b) second token:  {} s wall ({:.2}x, target <= 0.3x), {} s CPU ({:.2}x, target <= 0.25x)",
        p.second_wall.show(2),
        ratio(&p.second_wall, &p.peer_wall),
        p.second_cpu.show(2),
        ratio(&p.second_cpu, &p.peer_cpu)
    );
    eprintln!(
        "  (c) HLS segment at 40 s of a cold template: {} s to its last byte ({:.2}x the peer's total; target <= 0.1x)",
        p.seek_wall.show(2),
        ratio(&p.seek_wall, &p.peer_wall)
    );
}
