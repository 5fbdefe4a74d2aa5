//! Issue 18: an MP4's sound is encoded in chunks, one per fragment, each
//! by a fresh AAC encoder started a few frames before it. A listener must
//! not hear where one chunk ends and the next begins: around each chunk
//! boundary the decoded tone is as clean as anywhere else.

use std::path::Path;
use std::process::Command;

use clipstream_tests::media::{fixture, token};
use serde_json::{json, Value};

const SAMPLE_RATE: f64 = 48_000.0;
const TONE: f64 = 440.0;

/// Six seconds of the fixture's 440 Hz tone under a plain background:
/// fragments end at 0.4 s (the short first one), 2 s and 4 s.
fn movie() -> Value {
    json!({
        "timeline": {
            "background": "#000000",
            "soundtrack": { "src": "tone.wav" },
            "tracks": [
                { "clips": [ { "asset": { "type": "title", "text": "Tone", "style": "chunk" },
                               "start": 0, "length": 6 } ] }
            ]
        },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

/// The left channel of `path`'s sound, decoded by `ffmpeg -xerror` (so
/// the whole file decodes without an error) to f32 samples at 48 kHz.
fn left_channel(path: &Path) -> Vec<f64> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(path)
        .args([
            "-map", "0:a:0", "-ac", "2", "-ar", "48000", "-f", "f32le", "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(8)
        .map(|frame| f64::from(f32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]])))
        .collect()
}

/// The largest distance, in `samples`, from the best-fitting 440 Hz sine
/// (least squares over sine, cosine and an offset): a click is a sample
/// far from it.
fn worst_error(samples: &[f64], first: usize) -> (f64, f64) {
    let basis = |i: usize| {
        let t = (first + i) as f64 / SAMPLE_RATE;
        let w = std::f64::consts::TAU * TONE * t;
        [w.sin(), w.cos(), 1.0]
    };
    // Normal equations of the 3-parameter fit.
    let mut a = [[0.0f64; 3]; 3];
    let mut b = [0.0f64; 3];
    for (i, y) in samples.iter().enumerate() {
        let x = basis(i);
        for r in 0..3 {
            for c in 0..3 {
                a[r][c] += x[r] * x[c];
            }
            b[r] += x[r] * y;
        }
    }
    let k = solve(a, b);
    let worst = samples
        .iter()
        .enumerate()
        .map(|(i, y)| {
            let x = basis(i);
            (y - (k[0] * x[0] + k[1] * x[1] + k[2])).abs()
        })
        .fold(0.0, f64::max);
    (worst, k[0].hypot(k[1]))
}

/// A 3×3 system by Cramer's rule (the fit's matrix is well conditioned:
/// 20 ms holds nine periods of the tone).
fn solve(a: [[f64; 3]; 3], b: [f64; 3]) -> [f64; 3] {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(a);
    let with_b = |col: usize| {
        let mut m = a;
        for (row, v) in m.iter_mut().zip(b) {
            row[col] = v;
        }
        det(m) / d
    };
    [with_b(0), with_b(1), with_b(2)]
}

/// The worst error of 20 ms windows every 5 ms from `from` to `to`
/// seconds, and the tone's fitted amplitude in the first.
fn worst_between(samples: &[f64], from: f64, to: f64) -> (f64, f64) {
    let window = (0.020 * SAMPLE_RATE) as usize;
    let step = (0.005 * SAMPLE_RATE) as usize;
    let first = (from * SAMPLE_RATE) as usize;
    let last = (to * SAMPLE_RATE) as usize;
    let mut worst = 0.0f64;
    let mut amplitude = None;
    let mut at = first;
    while at <= last && at + window <= samples.len() {
        let (e, a) = worst_error(&samples[at..at + window], at);
        worst = worst.max(e);
        amplitude.get_or_insert(a);
        at += step;
    }
    (worst, amplitude.unwrap_or(0.0))
}

#[test]
fn the_sound_has_no_click_where_its_chunks_meet() {
    let f = fixture();
    let api = f.env.client();
    let t = token(&f, &movie(), json!({}));
    let r = api.anonymous().get(&format!("/render/{t}.mp4"));
    assert_eq!(r.status(), 200);
    let path = f.dir.path().join("tone.mp4");
    std::fs::write(&path, r.bytes().unwrap()).unwrap();
    api.wait_done(&t, "mp4", 60);
    let samples = left_channel(&path);
    assert!(
        samples.len() as f64 >= 5.9 * SAMPLE_RATE,
        "{} samples",
        samples.len()
    );
    // Windows over 50 ms on either side of each boundary (the decoder may
    // or may not drop the encoder's 1024 samples of priming: 21 ms).
    let near: Vec<(f64, (f64, f64))> = [0.4, 2.0, 4.0]
        .iter()
        .map(|b| (*b, worst_between(&samples, b - 0.05, b + 0.05)))
        .collect();
    // The same spans well inside fragments.
    let away: Vec<(f64, (f64, f64))> = [1.0, 1.5, 3.0, 5.0]
        .iter()
        .map(|c| (*c, worst_between(&samples, c - 0.05, c + 0.05)))
        .collect();
    let reference = away.iter().map(|(_, (e, _))| *e).fold(0.0, f64::max);
    for (at, (_, amplitude)) in near.iter().chain(&away) {
        // The fixture's sine (an eighth of full scale) as the mix has it.
        assert!(
            (0.06..0.16).contains(amplitude),
            "the tone at {at} s has amplitude {amplitude}"
        );
    }
    // A click at a splice (an encoder's first packet overlapping silence,
    // or a window that does not match its neighbour's) is a jump of a
    // good part of the tone's amplitude; the AAC's own error on a pure
    // tone is a small fraction of it (about 0.003 here, a thirtieth).
    // Allowed: one and a half times the worst error away from the
    // boundaries.
    for (at, (error, _)) in &near {
        assert!(
            *error <= reference * 1.5,
            "around {at} s the tone is {error} off a sine, elsewhere at most {reference} \
             (near the boundaries: {near:?}; away: {away:?})"
        );
    }
}
