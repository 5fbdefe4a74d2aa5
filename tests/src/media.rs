//! Media for and from the end-to-end tests: fixtures made with the ffmpeg
//! CLI and a project holding them, and renders read back with ffprobe and
//! ffmpeg — frames as packed RGB, sound as RMS levels — so that tests
//! check what a viewer would see and hear.

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::{json, Api, Env};

/// Makes a media file with the ffmpeg CLI.
pub fn ffmpeg(args: &[&str], out: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// A 2-second 320×240 H.264 video with AAC sound: the bytes.
pub fn small_mp4() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("small.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        &path,
    );
    std::fs::read(&path).expect("the video made")
}

/// A red 160×90 PNG at `path`.
pub fn red_png(path: &Path) {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=160x90",
            "-frames:v",
            "1",
        ],
        path,
    );
}

pub fn upload(api: &Api, uid: &str, name: &str, path: &Path) {
    let r = api.put(
        &format!("/v1/data/{uid}/{name}"),
        std::fs::read(path).unwrap(),
    );
    assert_eq!(r.status(), 201);
}

/// A server with a project holding `red.png` (160×90) and `tone.wav`
/// (440 Hz, 30 s), and a scratch directory.
pub struct Fixture {
    pub env: Env,
    pub uid: String,
    pub dir: tempfile::TempDir,
}

pub fn fixture() -> Fixture {
    fixture_with(&[])
}

pub fn fixture_with(settings: &[(&str, &str)]) -> Fixture {
    let env = Env::with_settings(settings);
    let api = env.client();
    let uid = api.create_project("video");
    let dir = tempfile::tempdir().unwrap();
    let red = dir.path().join("red.png");
    red_png(&red);
    let tone = dir.path().join("tone.wav");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=30:sample_rate=48000",
        ],
        &tone,
    );
    upload(&api, &uid, "red.png", &red);
    upload(&api, &uid, "tone.wav", &tone);
    Fixture { env, uid, dir }
}

/// Stores `movie_json` as movie `m` and asks for a render of it.
pub fn token(f: &Fixture, movie_json: &Value, params: Value) -> String {
    token_named(f, "m", movie_json, params)
}

/// Stores `movie_json` as movie `name` and asks for a render of it. A
/// token names a movie, not its content: tests that render several
/// movies give each its own name.
pub fn token_named(f: &Fixture, name: &str, movie_json: &Value, params: Value) -> String {
    let api = f.env.client();
    assert_eq!(
        api.put(&format!("/v1/sdl/{}/{name}", f.uid), movie_json.to_string())
            .status(),
        201
    );
    let r = api
        .request(Method::POST, &format!("/v2/render/{}", f.uid))
        .json(&json!({ "movie": name, "params": params }))
        .send()
        .unwrap();
    let (status, body) = json(r);
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// What ffprobe prints for `path` with `args`; a failure is the test's.
fn probe(args: &[&str], path: &Path) -> Vec<u8> {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The container's duration in seconds, as ffprobe reads it.
pub fn duration(path: &Path) -> f64 {
    let out = probe(
        &["-show_entries", "format=duration", "-of", "csv=p=0"],
        path,
    );
    String::from_utf8_lossy(&out).trim().parse().unwrap()
}

/// ffprobe's streams (with counted frames) and format.
pub fn ffprobe(path: &Path) -> Value {
    let out = probe(
        &[
            "-show_streams",
            "-show_format",
            "-count_frames",
            "-of",
            "json",
        ],
        path,
    );
    serde_json::from_slice(&out).unwrap()
}

/// The frame shown at `t` seconds, as packed RGB.
pub fn frame(path: &Path, t: f64) -> Vec<u8> {
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg.args(["-v", "error"]);
    // FFmpeg 5.1's image2 demuxer loses a large JPEG's end after `-ss`,
    // even `-ss 0`: the first frame is read without it.
    if t > 0.0 {
        ffmpeg.args(["-ss", &t.to_string()]);
    }
    let out = ffmpeg
        .arg("-i")
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    out.stdout
}

/// The RGB pixel at (`x`, `y`) of a `width` wide frame.
pub fn at(frame: &[u8], x: u32, y: u32, width: u32) -> [u8; 3] {
    let i = ((y * width + x) * 3) as usize;
    [frame[i], frame[i + 1], frame[i + 2]]
}

/// The RGB pixel at (`x`, `y`) of the frame shown at `t` seconds.
pub fn pixel(path: &Path, t: f64, x: u32, y: u32, width: u32) -> [u8; 3] {
    at(&frame(path, t), x, y, width)
}

pub fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= 40)
}

/// Root-mean-square level of the audio between `from` and `to` seconds.
pub fn rms(path: &Path, from: f64, to: f64) -> f64 {
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-ss",
            &from.to_string(),
            "-t",
            &(to - from).to_string(),
            "-i",
        ])
        .arg(path)
        .args(["-vn", "-ac", "1", "-f", "f32le", "-"])
        .output()
        .expect("ffmpeg");
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert!(!samples.is_empty(), "no audio between {from} and {to}");
    (samples
        .iter()
        .map(|s| f64::from(*s) * f64::from(*s))
        .sum::<f64>()
        / samples.len() as f64)
        .sqrt()
}
