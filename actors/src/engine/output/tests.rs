//! Each format's encoder and packager on synthetic frames, the result
//! read back with the ffmpeg CLI: codecs, sizes, durations, loops and
//! colours as the Edit asks.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::engine::edit::{fill, Limits};
use crate::engine::plan::{plan_as, Deliverable};

/// BT.709 limited-range red.
const RED: (u8, u8, u8) = (63, 102, 240);

fn frame(width: u32, height: u32, (y, u, v): (u8, u8, u8)) -> Frame {
    let c = (width.div_ceil(2) * height.div_ceil(2)) as usize;
    Frame {
        width,
        height,
        y: vec![y; (width * height) as usize],
        u: vec![u; c],
        v: vec![v; c],
        a: None,
    }
}

fn plan_of(output: Value, what: Deliverable) -> Plan {
    let edit = json!({
        "timeline": { "tracks": [ { "clips": [
            { "asset": { "type": "title", "text": "x" }, "start": 0, "length": 2 } ] } ] },
        "output": output,
    });
    plan_as(
        &fill(&edit.to_string(), &Default::default(), &Limits::default()).expect("valid"),
        what,
        &Limits::default(),
    )
    .expect("plans")
}

/// Renders `plan` from solid red frames and a 440 Hz tone; the file's
/// bytes with every patch applied.
fn render(plan: &Plan) -> Vec<u8> {
    let mut enc = encoder(plan).expect("encoder");
    let fragments = crate::engine::output::Fragments {
        first: Duration::from_millis(500),
        rest: Duration::from_secs(1),
    };
    let mut pkg = packager(plan, fragments, None).expect("packager");
    let mut file = Vec::new();
    let mut apply = |pieces: Vec<Piece>| {
        for piece in pieces {
            match piece {
                Piece::Init(b) | Piece::Fragment(b, _) => file.extend_from_slice(&b),
                Piece::Patch { offset, bytes } => {
                    let at = offset as usize;
                    file[at..at + bytes.len()].copy_from_slice(&bytes);
                }
            }
        }
    };
    apply(pkg.start(&enc.streams()).expect("start"));
    let frames = (plan.duration * plan.rate.as_f64()).round().max(1.0) as i64;
    let red = frame(plan.width, plan.height, RED);
    // Frames handed back are dropped: each is a fresh copy of `red`.
    let (spares, _) = std::sync::mpsc::channel();
    let per_frame = (48_000.0 / plan.rate.as_f64()) as usize;
    let mut n = 0usize;
    for i in 0..frames {
        let mut packets = enc.video(red.clone(), i, false, &spares).expect("video");
        let tone: Vec<f32> = (0..per_frame)
            .flat_map(|k| {
                let s = ((n + k) as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.5;
                [s, s]
            })
            .collect();
        n += per_frame;
        packets.extend(enc.audio(&tone).expect("audio"));
        apply(pkg.packets(packets).expect("packets"));
    }
    apply(
        pkg.packets(enc.finish().expect("finish"))
            .expect("last packets"),
    );
    apply(pkg.finish().expect("trailer"));
    file
}

fn saved(bytes: &[u8], ext: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("out.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn probe(path: &std::path::Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            "-count_frames",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stream<'a>(probe: &'a Value, kind: &str) -> Option<&'a Value> {
    probe["streams"]
        .as_array()?
        .iter()
        .find(|s| s["codec_type"] == kind)
}

/// The first frame's centre pixel as RGB.
fn centre_rgb(path: &std::path::Path, width: u32, height: u32) -> [u8; 3] {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = ((height / 2 * width + width / 2) * 3) as usize;
    [out.stdout[at], out.stdout[at + 1], out.stdout[at + 2]]
}

fn reddish([r, g, b]: [u8; 3]) -> bool {
    r > 220 && g < 40 && b < 40
}

#[test]
fn webm_is_vp9_and_opus_with_a_known_duration() {
    let plan = plan_of(
        json!({ "format": "mp4", "resolution": "preview" }),
        Deliverable::Movie(Format::Webm),
    );
    let (_dir, path) = saved(&render(&plan), "webm");
    let p = probe(&path);
    assert_eq!(stream(&p, "video").unwrap()["codec_name"], "vp9");
    assert_eq!(stream(&p, "video").unwrap()["width"], 512);
    assert_eq!(stream(&p, "audio").unwrap()["codec_name"], "opus");
    // The duration written back into the header at the end.
    let d: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((d - 2.0).abs() < 0.1, "duration {d}");
    assert!(reddish(centre_rgb(&path, 512, 288)));
}

#[test]
fn mp3_is_audio_only_and_knows_its_length() {
    let plan = plan_of(
        json!({ "format": "mp3", "quality": "high" }),
        Deliverable::Movie(Format::Mp3),
    );
    let (_dir, path) = saved(&render(&plan), "mp3");
    let p = probe(&path);
    assert!(stream(&p, "video").is_none());
    let a = stream(&p, "audio").unwrap();
    assert_eq!(a["codec_name"], "mp3");
    assert_eq!(a["bit_rate"], "192000");
    let d: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((d - 2.0).abs() < 0.1, "duration {d}");
}

#[test]
fn gif_loops_or_plays_once_as_repeat_says() {
    for repeat in [true, false] {
        let plan = plan_of(
            json!({ "format": "gif", "resolution": "preview", "fps": 12, "repeat": repeat }),
            Deliverable::Movie(Format::Gif),
        );
        let bytes = render(&plan);
        let netscape = bytes.windows(11).any(|w| w == b"NETSCAPE2.0");
        assert_eq!(
            netscape, repeat,
            "the loop extension with repeat = {repeat}"
        );
        let (_dir, path) = saved(&bytes, "gif");
        let p = probe(&path);
        let v = stream(&p, "video").unwrap();
        assert_eq!(v["codec_name"], "gif");
        assert_eq!(v["nb_read_frames"], "24");
        assert!(reddish(centre_rgb(&path, 512, 288)));
    }
}

#[test]
fn stills_have_their_size_and_colour() {
    for (format, codec) in [
        (Format::Jpg, "mjpeg"),
        (Format::Png, "png"),
        (Format::Bmp, "bmp"),
    ] {
        let plan = plan_of(
            json!({ "format": "jpg", "resolution": "hd", "aspectRatio": "9:16" }),
            Deliverable::Movie(format),
        );
        let (_dir, path) = saved(&render(&plan), format.extension());
        let p = probe(&path);
        let v = stream(&p, "video").unwrap();
        assert_eq!(v["codec_name"], codec);
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(720), Some(1280))
        );
        let rgb = centre_rgb(&path, 720, 1280);
        assert!(reddish(rgb), "{format:?}: {rgb:?}");
    }
}

#[test]
fn scale_to_and_thumbnails_scale_the_composed_frame() {
    let output = json!({ "format": "mp4", "resolution": "hd", "scaleTo": "preview",
                          "thumbnail": { "capture": 1, "scale": 0.5 } });
    let plan = plan_of(output.clone(), Deliverable::Movie(Format::Png));
    assert_eq!((plan.width, plan.height), (1280, 720));
    assert_eq!((plan.output.width, plan.output.height), (512, 288));
    let (_dir, path) = saved(&render(&plan), "png");
    assert!(reddish(centre_rgb(&path, 512, 288)));
    let thumb = plan_of(output, Deliverable::Thumbnail);
    assert_eq!((thumb.output.width, thumb.output.height), (256, 144));
    assert_eq!(thumb.start, 1.0);
    assert_eq!(thumb.output.format, Format::Jpg);
}
