//! The bench's inputs, made by the ffmpeg CLI from lavfi sources so every
//! run renders the same bytes, and the standard template: as a Clipstream
//! Edit and as the peer's one `filter_complex`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::Result;

/// Seconds of each fixture clip and of the MP3.
pub const CLIP_SECS: u32 = 10;
pub const FPS: u32 = 25;
/// The font Clipstream's titles use, so both sides draw the same glyphs.
pub const FONT: &str = "actors/fonts/DejaVuSans.ttf";

/// One output size of the standard template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    pub name: &'static str,
    /// The Edit's `output.resolution`.
    pub resolution: &'static str,
    pub width: u32,
    pub height: u32,
}

pub const P360: Size = Size {
    name: "360p",
    resolution: "mobile",
    width: 640,
    height: 360,
};
pub const P720: Size = Size {
    name: "720p",
    resolution: "hd",
    width: 1280,
    height: 720,
};
pub const P1080: Size = Size {
    name: "1080p",
    resolution: "1080",
    width: 1920,
    height: 1080,
};

impl Size {
    /// The background clip: the 1080p fixture for 1080p, the 720p one
    /// (scaled down for 360p) otherwise.
    pub fn clip(&self) -> &'static str {
        if self.height > 720 {
            "clip1080.mp4"
        } else {
            "clip720.mp4"
        }
    }

    pub fn megapixels(&self) -> f64 {
        f64::from(self.width * self.height) / 1e6
    }
}

/// `(file, ffmpeg arguments after -y)`: each made once, kept while its
/// recipe is unchanged.
fn recipes() -> Vec<(&'static str, Vec<String>)> {
    let clip = |w: u32, h: u32| {
        format!(
            "-f lavfi -i testsrc2=size={w}x{h}:rate={FPS}:duration={CLIP_SECS} \
             -f lavfi -i sine=frequency=440:beep_factor=4:sample_rate=48000:duration={CLIP_SECS} \
             -map 0:v -map 1:a -c:v libx264 -preset veryfast -g {FPS} -pix_fmt yuv420p \
             -c:a aac -b:a 128k -ac 2 -flags +bitexact -fflags +bitexact -map_metadata -1"
        )
    };
    let split = |s: String| words(&s);
    vec![
        ("clip720.mp4", split(clip(1280, 720))),
        ("clip1080.mp4", split(clip(1920, 1080))),
        (
            "logo.png",
            split(
                "-f lavfi -i testsrc=size=400x200:rate=1,format=rgba,\
                 geq=r=r(X\\,Y):g=g(X\\,Y):b=b(X\\,Y):a=128+127*X/W \
                 -frames:v 1 -flags +bitexact"
                    .into(),
            ),
        ),
        (
            "music.mp3",
            split(format!(
                "-f lavfi -i sine=frequency=220:sample_rate=48000:duration={CLIP_SECS} \
                 -ac 2 -c:a libmp3lame -b:a 128k -flags +bitexact -fflags +bitexact -map_metadata -1"
            )),
        ),
    ]
}

/// Makes the fixtures in `dir` (skipping those made by the same recipe).
pub fn make(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut made = Vec::new();
    for (name, args) in recipes() {
        let path = dir.join(name);
        let recipe_file = dir.join(format!("{name}.recipe"));
        let recipe = args.join(" ");
        let current = std::fs::read_to_string(&recipe_file).ok();
        if !path.exists() || current.as_deref() != Some(recipe.as_str()) {
            let out = Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
                .args(&args)
                .arg(&path)
                .output()?;
            if !out.status.success() {
                return Err(
                    format!("making {name}: {}", String::from_utf8_lossy(&out.stderr)).into(),
                );
            }
            std::fs::write(&recipe_file, &recipe)?;
        }
        made.push(path);
    }
    Ok(made)
}

/// The standard template as a Clipstream Edit: `secs` of the background
/// clip (repeated), the logo at 25 % of the frame width top-right, the
/// title fading in over 0.5 s, the MP3 at half volume.
pub fn edit(size: Size, secs: u32) -> Value {
    let clips: Vec<Value> = (0..secs / CLIP_SECS)
        .map(|i| {
            json!({
                "asset": { "type": "video", "src": size.clip() },
                "start": i * CLIP_SECS,
                "length": CLIP_SECS,
            })
        })
        .collect();
    json!({
        "timeline": {
            "soundtrack": { "src": "music.mp3", "volume": 0.5 },
            "tracks": [
                { "clips": [{
                    "asset": { "type": "title", "text": "Hello {{NAME}}", "style": "minimal" },
                    "start": 0, "length": secs,
                    "transition": { "in": "fadeFast" },
                }] },
                { "clips": [{
                    // A 2:1 logo contained in a 16:9 frame spans its width.
                    "asset": { "type": "image", "src": "logo.png" },
                    "start": 0, "length": secs,
                    "fit": "contain", "scale": 0.25, "position": "topRight",
                }] },
                { "clips": clips },
            ],
        },
        "output": { "format": "mp4", "resolution": size.resolution, "fps": FPS },
    })
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// x264 as Clipstream sets it (CONTRACT section 6): `veryfast`, CRF 23, a
/// keyframe each second, no B-frames.
pub fn video_encoder_args() -> Vec<String> {
    words(&format!(
        "-c:v libx264 -preset veryfast -crf 23 -g {FPS} -bf 0 -pix_fmt yuv420p"
    ))
}

/// AAC as Clipstream sets it: 128 kb/s, stereo, 48 kHz.
pub fn audio_encoder_args() -> Vec<String> {
    words("-c:a aac -b:a 128k -ar 48000 -ac 2")
}

/// The fragmented MP4 on stdout that both the peer and Clipstream send.
pub fn fmp4_to_pipe() -> Vec<String> {
    [
        "-movflags",
        "frag_keyframe+empty_moov+default_base_moof",
        "-f",
        "mp4",
        "pipe:1",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The peer: the ffmpeg CLI composing the same template in one
/// `filter_complex` and writing fragmented MP4 to a pipe.
pub fn peer_command(dir: &Path, size: Size, secs: u32, name: &str) -> Command {
    let loops = (secs / CLIP_SECS).saturating_sub(1).to_string();
    let (w, h) = (size.width, size.height);
    let clip = dir.join(size.clip());
    let bg = if clip.ends_with("clip720.mp4") && h != 720 {
        format!("[0:v]scale={w}:{h},setsar=1[bg]")
    } else {
        "[0:v]null[bg]".to_owned()
    };
    // drawtext's text is escaped for the filter graph: only letters and
    // digits are used in names, so quoting is enough.
    let graph = format!(
        "{bg};[1:v]scale={}:-1[logo];[bg][logo]overlay=x=W-w:y=0[v1];\
         [v1]drawtext=fontfile={FONT}:text='Hello {name}':fontsize=h*0.06:fontcolor=white:\
         x=(w-text_w)/2:y=(h-text_h)/2:alpha='min(t/0.5\\,1)'[v];\
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
        .args(["-t", &secs.to_string()])
        .args(video_encoder_args())
        .args(audio_encoder_args())
        .args(fmp4_to_pipe());
    cmd
}

/// ffmpeg reading the raw frames of `size` in `raw` (see [`raw_frames`]).
fn raw_input(raw: &Path, size: Size) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p"])
        .args(["-s", &format!("{}x{}", size.width, size.height)])
        .args(["-r", &FPS.to_string(), "-i"])
        .arg(raw);
    cmd
}

/// The ceiling: x264 alone on the same number of raw frames, read from a
/// file already in memory, with the same settings.
pub fn encode_only_command(raw: &Path, size: Size) -> Command {
    let mut cmd = raw_input(raw, size);
    cmd.args(video_encoder_args())
        .args(["-an", "-f", "null", "-"]);
    cmd
}

/// The raw frames of [`encode_only_command`] read and thrown away: what
/// x264 alone spends on its input rather than on encoding.
pub fn raw_read_command(raw: &Path, size: Size) -> Command {
    let mut cmd = raw_input(raw, size);
    cmd.args(["-f", "null", "-"]);
    cmd
}

/// The background clip of `size` decoded on one thread (as Clipstream
/// decodes it) and thrown away: the other work every render of the
/// template must do.
pub fn decode_only_command(fixtures: &Path, size: Size) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-threads", "1", "-i"])
        .arg(fixtures.join(size.clip()))
        .args(["-map", "0:v", "-f", "null", "-"]);
    cmd
}

/// Decodes the background clip of `size` to raw YUV in `dir` (in memory
/// when `dir` is a tmpfs) for [`encode_only_command`].
pub fn raw_frames(fixtures: &Path, dir: &Path, size: Size) -> Result<PathBuf> {
    let raw = dir.join(format!("clipstream-bench-{}.yuv", size.name));
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(fixtures.join(size.clip()))
        .args(["-vf", &format!("scale={}:{}", size.width, size.height)])
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p"])
        .arg(&raw)
        .output()?;
    if !out.status.success() {
        return Err(format!("raw frames: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(raw)
}
