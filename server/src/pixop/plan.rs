//! The checks and the plan of a Pixop processing request, without the
//! server around them: every field of the seed's `process-video` body
//! checked against the source's facts (a refusal names the field and the
//! values it takes), and the libavfilter chain, encoder and muxer that do
//! what it asks (`engine::media::pixop::Job`).
//!
//! This file depends only on serde, serde_json, serde_path_to_error,
//! ffmpeg-next and the actors crate, so that the fuzz target
//! `pixop_process` can include it by path (the server is a binary crate).

use clipstream_actors::engine::media::pixop::{self as media, Job, Scanning};
use ffmpeg_next::Rational;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A refused request: the field at fault (a dotted path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub message: String,
}

impl Refusal {
    pub fn bad_field(field: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// Something this server lacks (an encoder without formats): said
    /// against the codec asked.
    pub fn internal(message: impl Into<String>) -> Refusal {
        Refusal::bad_field("mediaContainerCodec.codec", message)
    }
}

/// The largest body taken.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Parses a `process-video` body; an empty one asks for nothing.
pub fn parse_request(body: &[u8]) -> Result<ProcessRequest, Refusal> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Refusal::bad_field(
            "",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ProcessRequest::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let path = if path == "." { String::new() } else { path };
        // An unknown field is named by serde, not by the path.
        let field = if path.is_empty() {
            unknown_field(&inner).unwrap_or_default()
        } else {
            path
        };
        Refusal::bad_field(&field, inner)
    })
}

/// serde names an unknown field between backticks: "unknown field `x`".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessRequest {
    pub media_container_codec: Option<ContainerCodec>,
    pub apple_prores_profile: Option<String>,
    pub dnxhd_hr_profile: Option<String>,
    pub scanning: Option<ScanningRequest>,
    pub chroma_subsampling: Option<ChromaRequest>,
    pub bitrate: Option<BitrateRequest>,
    pub deinterlacer: Option<String>,
    pub denoiser: Option<String>,
    pub stabilizer: Option<String>,
    pub scaler: Option<String>,
    pub resolution: Option<ResolutionRequest>,
    pub clarity_boost: Option<String>,
    pub frame_rate_converter: Option<String>,
    pub frame_rate: Option<FrameRateRequest>,
    pub post_processor: Option<String>,
    pub range: Option<RangeRequest>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerCodec {
    pub container: Option<String>,
    pub codec: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScanningRequest {
    pub tag: Option<String>,
    pub scanning_type: Option<String>,
    pub interlaced_field_order: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChromaRequest {
    pub yuv: Option<String>,
    pub bits: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitrateRequest {
    pub mbps: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResolutionRequest {
    pub tag: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub aspect_ratio_tag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameRateRequest {
    pub tag: Option<String>,
    pub fps: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RangeRequest {
    pub start_position_milliseconds: Option<u64>,
    pub end_position_milliseconds: Option<u64>,
}

/// What the source is, from its ingestion.
#[derive(Debug, Clone)]
pub struct Source {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub duration_ms: u64,
    pub yuv: Option<String>,
    pub bits: Option<u32>,
    pub scanning: Scanning,
    pub bit_rate: i64,
    /// Display aspect ratio, num/den.
    pub display_aspect: (u32, u32),
}

impl Source {
    pub fn of(metadata: &Value) -> Source {
        let num = |v: &Value| v.as_u64().unwrap_or(0);
        let scanning = |v: &Value| match (
            v["scanningType"].as_str(),
            v["interlacedFieldOrder"].as_str(),
        ) {
            (Some("interlaced"), Some("bottom_field")) => Scanning::BottomFieldFirst,
            (Some("interlaced"), Some("top_field")) => Scanning::TopFieldFirst,
            (Some("interlaced"), _) => Scanning::Interlaced,
            (Some("progressive"), _) => Scanning::Progressive,
            _ => Scanning::Unknown,
        };
        // What the container states wins: idet takes fine moving detail
        // (test patterns, text) for combing, so its verdict decides only
        // when the metadata says nothing.
        let by_metadata = scanning(&metadata["scanning"]["metadata"]);
        let by_heuristics = scanning(&metadata["scanning"]["heuristics"]);
        let ratio = |v: &Value| {
            v.as_str()
                .and_then(|s| s.split_once(':'))
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        };
        let (width, height) = (
            num(&metadata["frameWidth"]) as u32,
            num(&metadata["frameHeight"]) as u32,
        );
        Source {
            width,
            height,
            fps: metadata["averageFramerate"].as_f64().unwrap_or(25.0),
            duration_ms: num(&metadata["durationInMillis"]),
            yuv: metadata["pixelFormat"]["chromaSubsampling"]["yuv"]
                .as_str()
                .map(str::to_owned),
            bits: metadata["pixelFormat"]["chromaSubsampling"]["bits"]
                .as_u64()
                .map(|b| b as u32),
            scanning: if by_metadata == Scanning::Unknown {
                by_heuristics
            } else {
                by_metadata
            },
            bit_rate: metadata["bitrate"].as_i64().unwrap_or(0),
            display_aspect: ratio(&metadata["displayAspectRatio"]).unwrap_or((width, height)),
        }
    }
}

/// A processing plan: the job and what the answer and record say of it.
#[derive(Debug)]
pub struct Plan {
    pub job: Job,
    pub container: &'static str,
    pub codec: &'static str,
    pub profile: Option<String>,
    pub pixel_format: String,
    pub yuv: String,
    pub bits: u32,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Each filter: the request's name and the libavfilter text it runs.
    pub filters: Vec<(String, String)>,
    /// Pixop's own algorithms and what runs in their place.
    pub equivalents: Map<String, Value>,
    pub extension: &'static str,
    pub content_type: &'static str,
}

fn one_of<'a>(field: &str, value: &str, allowed: &[&'a str]) -> Result<&'a str, Refusal> {
    allowed
        .iter()
        .find(|a| **a == value)
        .copied()
        .ok_or_else(|| {
            Refusal::bad_field(
                field,
                format!(
                    "{value:?} is not one of the permitted values: {}",
                    allowed.join(", ")
                ),
            )
        })
}

const CONTAINERS: [&str; 4] = ["mov", "mxf", "mp4", "mts"];
const CODECS: [&str; 7] = ["h264", "prores", "dnxhd", "xdcam", "hevc", "mpeg2", "ffv1"];
const PRORES_PROFILES: [&str; 6] = ["proxy", "lt", "standard", "hq", "4444", "4444xq"];
const DNX_PROFILES: [&str; 10] = [
    "dnxhd_lb",
    "dnxhd_sq",
    "dnxhd_hq",
    "dnxhd_hqx",
    "dnxhd_444",
    "dnxhr_lb",
    "dnxhr_sq",
    "dnxhr_hq",
    "dnxhr_hqx",
    "dnxhr_444",
];
const YUVS: [&str; 6] = ["4:1:0", "4:1:1", "4:2:0", "4:2:2", "4:4:0", "4:4:4"];
const BITS: [u32; 5] = [8, 10, 12, 14, 16];

/// The containers each codec may go in (what FFmpeg's muxers take).
fn container_takes(container: &str, codec: &str) -> bool {
    match container {
        "mov" => true,
        "mp4" => matches!(codec, "h264" | "hevc" | "mpeg2"),
        "mts" => matches!(codec, "h264" | "hevc" | "mpeg2" | "xdcam"),
        "mxf" => matches!(codec, "dnxhd" | "mpeg2" | "xdcam"),
        _ => false,
    }
}

fn default_container(codec: &str) -> &'static str {
    match codec {
        "h264" | "hevc" => "mp4",
        "mpeg2" => "mts",
        "xdcam" => "mxf",
        _ => "mov",
    }
}

/// The FFmpeg pixel format of a subsampling and depth, if there is one.
fn pixel_format(yuv: &str, bits: u32) -> Option<String> {
    let base = match yuv {
        "4:2:0" => "yuv420p",
        "4:2:2" => "yuv422p",
        "4:4:4" => "yuv444p",
        "4:4:0" => "yuv440p",
        "4:1:1" => "yuv411p",
        "4:1:0" => "yuv410p",
        _ => return None,
    };
    let name = if bits == 8 {
        base.to_owned()
    } else {
        format!("{base}{bits}le")
    };
    // Only formats libavutil knows.
    name.parse::<ffmpeg_next::format::Pixel>()
        .ok()
        .filter(|p| *p != ffmpeg_next::format::Pixel::None)
        .map(|_| name)
}

/// The frame rate of a tag, as an exact rational.
fn tag_rate(tag: &str) -> Option<Rational> {
    Some(match tag {
        "film_ntsc" => Rational::new(24000, 1001),
        "film" => Rational::new(24, 1),
        "video_pal" => Rational::new(25, 1),
        "video_ntsc" => Rational::new(30000, 1001),
        "video_hd" => Rational::new(30, 1),
        "video_pal_fast" => Rational::new(50, 1),
        "video_ntsc_fast" => Rational::new(60000, 1001),
        "video_hd_fast" => Rational::new(60, 1),
        _ => return None,
    })
}
const RATE_TAGS: [&str; 8] = [
    "film_ntsc",
    "film",
    "video_pal",
    "video_ntsc",
    "video_hd",
    "video_pal_fast",
    "video_ntsc_fast",
    "video_hd_fast",
];

/// The rational of a rate in frames per second: whole rates as n/1,
/// NTSC-style rates (within 0.001 of n·1000/1001, such as 23.976 or
/// 29.97, or a measured 23.976023…) as exactly n·1000/1001, which
/// DNxHD's bitrate table and MXF require, and other rates to the
/// thousandth.
fn rate_of(fps: f64) -> Rational {
    let whole = fps.round();
    if whole >= 1.0 && (fps - whole).abs() < 0.0005 {
        return Rational::new(whole as i32, 1);
    }
    let n = (fps * 1.001).round();
    if n >= 1.0 && (fps - n * 1000.0 / 1001.0).abs() < 0.001 {
        return Rational::new((n as i32).saturating_mul(1000), 1001);
    }
    let milli = (fps * 1000.0).round() as i32;
    Rational::new(milli, 1000).reduce()
}

fn even(n: u32) -> u32 {
    (n + 1) & !1
}

/// Checks `req` against the source and makes the plan.
pub fn plan(req: &ProcessRequest, source: &Source) -> Result<Plan, Refusal> {
    let mut equivalents = Map::new();
    let mut filters: Vec<(String, String)> = Vec::new();

    // Codec and container.
    let (container_asked, codec_asked) = match &req.media_container_codec {
        Some(cc) => (cc.container.as_deref(), cc.codec.as_deref()),
        None => (None, None),
    };
    let codec = match codec_asked {
        Some(c) => one_of("mediaContainerCodec.codec", c, &CODECS)?,
        None => "h264",
    };
    let container = match container_asked {
        Some(c) => one_of("mediaContainerCodec.container", c, &CONTAINERS)?,
        None => default_container(codec),
    };
    if !container_takes(container, codec) {
        let takes: Vec<&str> = CODECS
            .iter()
            .copied()
            .filter(|c| container_takes(container, c))
            .collect();
        return Err(Refusal::bad_field(
            "mediaContainerCodec",
            format!(
                "a {container} file cannot hold {codec} here; {container} takes: {}",
                takes.join(", ")
            ),
        ));
    }
    if req.apple_prores_profile.is_some() && codec != "prores" {
        return Err(Refusal::bad_field(
            "appleProresProfile",
            "is given only when mediaContainerCodec.codec is prores",
        ));
    }
    if req.dnxhd_hr_profile.is_some() && codec != "dnxhd" {
        return Err(Refusal::bad_field(
            "dnxhdHrProfile",
            "is given only when mediaContainerCodec.codec is dnxhd",
        ));
    }
    let prores = match &req.apple_prores_profile {
        Some(p) => Some(one_of("appleProresProfile", p, &PRORES_PROFILES)?),
        None if codec == "prores" => Some("standard"),
        None => None,
    };
    let dnx = match &req.dnxhd_hr_profile {
        Some(p) => Some(one_of("dnxhdHrProfile", p, &DNX_PROFILES)?),
        None if codec == "dnxhd" => Some("dnxhr_sq"),
        None => None,
    };

    // Range.
    let (mut start, mut end) = (None, None);
    if let Some(range) = &req.range {
        for (field, value) in [
            (
                "range.startPositionMilliseconds",
                range.start_position_milliseconds,
            ),
            (
                "range.endPositionMilliseconds",
                range.end_position_milliseconds,
            ),
        ] {
            if let Some(v) = value {
                if v > source.duration_ms {
                    return Err(Refusal::bad_field(
                        field,
                        format!(
                            "must be from 0 to the video's duration, {} ms",
                            source.duration_ms
                        ),
                    ));
                }
            }
        }
        start = range.start_position_milliseconds.filter(|s| *s > 0);
        end = range.end_position_milliseconds;
        if let (Some(s), Some(e)) = (range.start_position_milliseconds, end) {
            if e <= s {
                return Err(Refusal::bad_field(
                    "range.endPositionMilliseconds",
                    "must be after startPositionMilliseconds",
                ));
            }
        }
    }

    // Scanning of the output.
    let mut interlaced: Option<Scanning> = None;
    let mut force_progressive = false;
    if let Some(s) = &req.scanning {
        if s.tag.is_some() && (s.scanning_type.is_some() || s.interlaced_field_order.is_some()) {
            return Err(Refusal::bad_field(
                "scanning",
                "give either tag or scanningType (with interlacedFieldOrder), not both",
            ));
        }
        if let Some(tag) = &s.tag {
            match one_of(
                "scanning.tag",
                tag,
                &["auto", "progressive", "interlaced_tff", "interlaced_bff"],
            )? {
                "progressive" => force_progressive = true,
                "interlaced_tff" => interlaced = Some(Scanning::TopFieldFirst),
                "interlaced_bff" => interlaced = Some(Scanning::BottomFieldFirst),
                _ => {}
            }
        }
        if let Some(kind) = &s.scanning_type {
            match one_of(
                "scanning.scanningType",
                kind,
                &["progressive", "interlaced"],
            )? {
                "progressive" => {
                    if s.interlaced_field_order.is_some() {
                        return Err(Refusal::bad_field(
                            "scanning.interlacedFieldOrder",
                            "is given only when scanningType is interlaced",
                        ));
                    }
                    force_progressive = true;
                }
                _ => {
                    interlaced = Some(match s.interlaced_field_order.as_deref() {
                        None => Scanning::TopFieldFirst,
                        Some(o) => match one_of(
                            "scanning.interlacedFieldOrder",
                            o,
                            &["top_field", "bottom_field"],
                        )? {
                            "bottom_field" => Scanning::BottomFieldFirst,
                            _ => Scanning::TopFieldFirst,
                        },
                    })
                }
            }
        } else if s.interlaced_field_order.is_some() {
            return Err(Refusal::bad_field(
                "scanning.interlacedFieldOrder",
                "is given only when scanningType is interlaced",
            ));
        }
    }
    let source_interlaced = matches!(
        source.scanning,
        Scanning::TopFieldFirst | Scanning::BottomFieldFirst | Scanning::Interlaced
    );

    // Deinterlacing.
    let mut deinterlacer = match &req.deinterlacer {
        Some(d) => Some(one_of(
            "deinterlacer",
            d,
            &["deint", "yadif", "bwdif", "weston3f"],
        )?),
        None => None,
    };
    if deinterlacer.is_none() && force_progressive && source_interlaced {
        // Progressive output of an interlaced source needs one: said in
        // the answer, not done silently.
        deinterlacer = Some("bwdif");
        equivalents.insert(
            "scanning".into(),
            json!("progressive output of an interlaced source: bwdif added"),
        );
    }
    if let Some(d) = deinterlacer {
        let filter = match d {
            "yadif" => "yadif=mode=send_frame:parity=auto:deint=all",
            "weston3f" => "w3fdif=filter=complex:deint=all",
            _ => "bwdif=mode=send_frame:parity=auto:deint=all",
        };
        if d == "deint" {
            equivalents.insert("deinterlacer".into(), json!("deint → bwdif (Bob Weaver)"));
        }
        filters.push((d.to_owned(), filter.to_owned()));
    }
    // Interlacing kept as the source has it when nothing says otherwise.
    if interlaced.is_none() && !force_progressive && deinterlacer.is_none() && source_interlaced {
        interlaced = Some(match source.scanning {
            Scanning::BottomFieldFirst => Scanning::BottomFieldFirst,
            _ => Scanning::TopFieldFirst,
        });
    }

    let fields_coded = match (codec, dnx) {
        ("hevc", _) => Some("the hevc encoder here"),
        (_, Some(p)) if p.starts_with("dnxhr_") => Some("DNxHR profiles"),
        _ => None,
    };
    if let (Some(_), Some(coder)) = (interlaced, fields_coded) {
        return Err(Refusal::bad_field(
            "scanning",
            format!("interlaced output is not coded by {coder}; ask for progressive output (with a deinterlacer for an interlaced source) or another codec"),
        ));
    }

    // Denoising, stabilising.
    if let Some(d) = &req.denoiser {
        match one_of("denoiser", d, &["denoise", "hqdn3d"])? {
            "hqdn3d" => filters.push(("hqdn3d".into(), "hqdn3d".into())),
            _ => {
                equivalents.insert(
                    "denoiser".into(),
                    json!("denoise → nlmeans (non-local means)"),
                );
                filters.push(("denoise".into(), "nlmeans=s=3:p=7:r=9".into()));
            }
        }
    }
    if let Some(s) = &req.stabilizer {
        one_of("stabilizer", s, &["dejit"])?;
        equivalents.insert("stabilizer".into(), json!("dejit → deshake"));
        filters.push(("dejit".into(), "deshake".into()));
    }

    // Scaling.
    let scaler = match &req.scaler {
        Some(s) => Some(one_of("scaler", s, &["pabsr1", "dvres", "scale"])?),
        None => None,
    };
    match scaler {
        Some("pabsr1") => {
            return Err(Refusal::bad_field(
                "scaler",
                "pabsr1 (Pixop Super Resolution) has no open equivalent here; use scale (bicubic)",
            ))
        }
        Some("dvres") => {
            return Err(Refusal::bad_field(
                "scaler",
                "dvres (Pixop Deep Restoration) has no open equivalent here; use scale (bicubic)",
            ))
        }
        _ => {}
    }
    if let Some(boost) = &req.clarity_boost {
        let level = one_of(
            "clarityBoost",
            boost,
            &[
                "none",
                "marginal",
                "very_low",
                "low",
                "medium",
                "high",
                "very_high",
            ],
        )?;
        if level != "none" {
            return Err(Refusal::bad_field(
                "clarityBoost",
                "applies only with the pabsr1 scaler, which has no open equivalent here; use none",
            ));
        }
    }
    let (mut width, mut height) = (source.width, source.height);
    if let Some(r) = &req.resolution {
        if let Some(tag) = &r.tag {
            if r.width.is_some() || r.height.is_some() || r.aspect_ratio_tag.is_some() {
                return Err(Refusal::bad_field(
                    "resolution",
                    "give either tag or width/height (with aspectRatioTag), not both",
                ));
            }
            (width, height) = match one_of(
                "resolution.tag",
                tag,
                &["hd_1080p", "uhd_4k", "uhd_8k", "2x", "3x", "4x"],
            )? {
                "hd_1080p" => (1920, 1080),
                "uhd_4k" => (3840, 2160),
                "uhd_8k" => (7680, 4320),
                "2x" => (
                    source.width.saturating_mul(2),
                    source.height.saturating_mul(2),
                ),
                "3x" => (
                    source.width.saturating_mul(3),
                    source.height.saturating_mul(3),
                ),
                _ => (
                    source.width.saturating_mul(4),
                    source.height.saturating_mul(4),
                ),
            };
        } else {
            if r.width.is_none() && r.height.is_none() {
                return Err(Refusal::bad_field(
                    "resolution",
                    "give a tag, or width and/or height",
                ));
            }
            if r.width.is_some() && r.height.is_some() && r.aspect_ratio_tag.is_some() {
                return Err(Refusal::bad_field(
                    "resolution",
                    "width, height and aspectRatioTag together are a bad request: give two of them at most",
                ));
            }
            if let Some(w) = r.width {
                if !(16..=7680).contains(&w) {
                    return Err(Refusal::bad_field(
                        "resolution.width",
                        "must be from 16 to 7680",
                    ));
                }
            }
            if let Some(h) = r.height {
                if !(16..=4320).contains(&h) {
                    return Err(Refusal::bad_field(
                        "resolution.height",
                        "must be from 16 to 4320",
                    ));
                }
            }
            let aspect = match r.aspect_ratio_tag.as_deref() {
                None => None,
                Some(t) => Some(
                    match one_of(
                        "resolution.aspectRatioTag",
                        t,
                        &["display", "storage", "16:9", "4:3"],
                    )? {
                        "display" => source.display_aspect,
                        "storage" => (source.width, source.height),
                        "16:9" => (16, 9),
                        _ => (4, 3),
                    },
                ),
            };
            let aspect = aspect.unwrap_or(source.display_aspect);
            let ratio = f64::from(aspect.0.max(1)) / f64::from(aspect.1.max(1));
            (width, height) = match (r.width, r.height) {
                (Some(w), Some(h)) => (w, h),
                (Some(w), None) => (w, even((f64::from(w) / ratio).round() as u32)),
                (None, Some(h)) => (even((f64::from(h) * ratio).round() as u32), h),
                (None, None) => (width, height),
            };
        }
        // The output, whichever way it was reached (a multiple of the
        // source, or a side computed from an aspect ratio), stays within
        // what the encoders are set up for: 8K at most.
        if !(16..=7680).contains(&width) || !(16..=4320).contains(&height) {
            return Err(Refusal::bad_field(
                "resolution",
                format!(
                    "the output would be {width}x{height}: it must be from 16 to 7680 wide and from 16 to 4320 high"
                ),
            ));
        }
    } else if scaler == Some("scale") {
        return Err(Refusal::bad_field(
            "scaler",
            "scale needs a resolution to scale to",
        ));
    }
    if (width, height) != (source.width, source.height) {
        filters.push((
            "scale".into(),
            format!("scale={width}:{height}:flags=bicubic"),
        ));
    }
    // A size reached through an aspect ratio is that shape on screen:
    // square pixels, whatever the source's were.
    if req
        .resolution
        .as_ref()
        .is_some_and(|r| r.aspect_ratio_tag.is_some())
    {
        filters.push(("setsar".into(), "setsar=1".into()));
    }

    // Frame rate.
    let asked_rate = match &req.frame_rate {
        Some(f) => {
            if f.tag.is_some() && f.fps.is_some() {
                return Err(Refusal::bad_field(
                    "frameRate",
                    "give either tag or fps, not both",
                ));
            }
            match (&f.tag, f.fps) {
                (Some(t), None) => Some(
                    tag_rate(one_of("frameRate.tag", t, &RATE_TAGS)?)
                        .ok_or_else(|| Refusal::bad_field("frameRate.tag", "unknown"))?,
                ),
                (None, Some(fps)) => {
                    if !(0.001..=999.0).contains(&fps) {
                        return Err(Refusal::bad_field(
                            "frameRate.fps",
                            "must be from 0.001 to 999",
                        ));
                    }
                    Some(rate_of(fps))
                }
                _ => return Err(Refusal::bad_field("frameRate", "give a tag or fps")),
            }
        }
        None => None,
    };
    let converter = match &req.frame_rate_converter {
        Some(c) => Some(one_of(
            "frameRateConverter",
            c,
            &["fps", "fblend", "mcinterpolate"],
        )?),
        None => None,
    };
    if converter.is_some() && asked_rate.is_none() {
        return Err(Refusal::bad_field(
            "frameRateConverter",
            "needs a frameRate to convert to",
        ));
    }
    let out_rate = asked_rate.unwrap_or_else(|| rate_of(source.fps));
    // Explicit interlacing weaves two progressive frames into one: the
    // conversion runs to twice the output rate first.
    let explicit_interlace = interlaced.is_some() && !source_interlaced
        || (interlaced.is_some() && deinterlacer.is_some());
    let convert_to = if explicit_interlace {
        Rational::new(out_rate.numerator() * 2, out_rate.denominator()).reduce()
    } else {
        out_rate
    };
    let rate_text = format!("{}/{}", convert_to.numerator(), convert_to.denominator());
    if asked_rate.is_some() || explicit_interlace {
        let (name, filter) = match converter.unwrap_or("fps") {
            "fblend" => ("fblend", format!("framerate=fps={rate_text}")),
            "mcinterpolate" => (
                "mcinterpolate",
                format!("minterpolate=fps={rate_text}:mi_mode=mci"),
            ),
            _ => ("fps", format!("fps={rate_text}")),
        };
        filters.push((name.to_owned(), filter));
    }
    if let Some(p) = &req.post_processor {
        one_of("postProcessor", p, &["filmgrain"])?;
        equivalents.insert(
            "postProcessor".into(),
            json!("filmgrain → noise (temporal grain)"),
        );
        filters.push(("filmgrain".into(), "noise=alls=10:allf=t".into()));
    }
    if explicit_interlace {
        let scan = if interlaced == Some(Scanning::BottomFieldFirst) {
            "bff"
        } else {
            "tff"
        };
        filters.push((
            "interlace".into(),
            format!("interlace=scan={scan}:lowpass=linear"),
        ));
    }

    // Pixel format.
    let asked_yuv = match req
        .chroma_subsampling
        .as_ref()
        .and_then(|c| c.yuv.as_deref())
    {
        Some(y) => Some(one_of("chromaSubsampling.yuv", y, &YUVS)?.to_owned()),
        None => None,
    };
    let asked_bits = match req.chroma_subsampling.as_ref().and_then(|c| c.bits) {
        Some(b) if BITS.contains(&b) => Some(b),
        Some(b) => {
            return Err(Refusal::bad_field(
                "chromaSubsampling.bits",
                format!("{b} is not one of the permitted values: 8, 10, 12, 14, 16"),
            ))
        }
        None => None,
    };
    // Profiles fix the format; a request that says otherwise is refused.
    let fixed: Option<(&str, u32)> = match (prores, dnx, codec) {
        (Some("4444" | "4444xq"), _, _) => Some(("4:4:4", 10)),
        (Some(_), _, _) => Some(("4:2:2", 10)),
        (_, Some("dnxhr_444" | "dnxhd_444"), _) => Some(("4:4:4", 10)),
        (_, Some("dnxhr_hqx" | "dnxhd_hqx"), _) => Some(("4:2:2", 10)),
        (_, Some(_), _) => Some(("4:2:2", 8)),
        (_, _, "xdcam") => Some(("4:2:2", 8)),
        _ => None,
    };
    let (yuv, bits) = match fixed {
        Some((y, b)) => {
            if asked_yuv.as_deref().is_some_and(|a| a != y) || asked_bits.is_some_and(|a| a != b) {
                return Err(Refusal::bad_field(
                    "chromaSubsampling",
                    format!("this codec profile is {y} at {b} bits; leave chromaSubsampling out or give those"),
                ));
            }
            (y.to_owned(), b)
        }
        None => (
            asked_yuv
                .clone()
                .or_else(|| source.yuv.clone())
                .unwrap_or_else(|| "4:2:0".to_owned()),
            asked_bits.or(source.bits).unwrap_or(8),
        ),
    };
    let encoder = match codec {
        "h264" => "libx264",
        "hevc" => "libx265",
        "prores" => "prores_ks",
        "dnxhd" => "dnxhd",
        "ffv1" => "ffv1",
        _ => "mpeg2video",
    };
    let supported = encoder_formats(encoder);
    let mut pix = pixel_format(&yuv, bits);
    let explicit = asked_yuv.is_some() || asked_bits.is_some();
    if pix.as_ref().is_none_or(|p| !supported.contains(p)) {
        if explicit {
            let takes: Vec<String> = supported
                .iter()
                .filter_map(|p| {
                    let chroma = media::chroma_of(p.parse().ok()?)?;
                    Some(format!("{} at {} bits", chroma.yuv, chroma.bits))
                })
                .collect();
            return Err(Refusal::bad_field(
                "chromaSubsampling",
                format!(
                    "{codec} cannot be {yuv} at {bits} bits here; it takes: {}",
                    takes.join(", ")
                ),
            ));
        }
        // Inherited from a source the codec cannot keep: its nearest.
        pix = [
            pixel_format(&yuv, 8),
            pixel_format("4:2:0", bits),
            pixel_format("4:2:0", 8),
        ]
        .into_iter()
        .flatten()
        .find(|p| supported.contains(p))
        .or_else(|| supported.first().cloned());
    }
    let pix = pix.ok_or_else(|| Refusal::internal(format!("{encoder} lists no pixel format")))?;
    let chroma = pix
        .parse()
        .ok()
        .and_then(media::chroma_of)
        .ok_or_else(|| Refusal::internal(format!("{pix} has no chroma subsampling")))?;
    // Subsampled chroma needs whole chroma samples.
    let (cw, ch) = match chroma.yuv.as_str() {
        "4:2:0" => (2, 2),
        "4:2:2" => (2, 1),
        "4:1:1" => (4, 1),
        "4:1:0" => (4, 4),
        "4:4:0" => (1, 2),
        _ => (1, 1),
    };
    if width % cw != 0 || height % ch != 0 {
        return Err(Refusal::bad_field(
            "resolution",
            format!("{width}x{height} does not divide into {} chroma samples: width must be a multiple of {cw} and height of {ch}", chroma.yuv),
        ));
    }
    filters.push(("format".into(), format!("format={pix}")));

    // Encoder options and bitrate.
    let mut options: Vec<(String, String)> = Vec::new();
    let mut profile = None;
    let mut constant_rate = false;
    let asked_bitrate = match &req.bitrate {
        Some(b) if (0.01..=4000.0).contains(&b.mbps) => Some((b.mbps * 1_000_000.0) as i64),
        Some(_) => {
            return Err(Refusal::bad_field(
                "bitrate.mbps",
                "must be from 0.01 to 4000.0",
            ))
        }
        None => None,
    };
    let fps = f64::from(out_rate);
    let mut bit_rate = None;
    match codec {
        "h264" | "hevc" | "mpeg2" => {
            bit_rate = Some(asked_bitrate.unwrap_or_else(|| {
                // The source's rate per pixel per second, kept.
                let area = f64::from(width) * f64::from(height) * fps;
                let source_area = f64::from(source.width.max(1))
                    * f64::from(source.height.max(1))
                    * source.fps.max(1.0);
                let scaled = source.bit_rate.max(0) as f64 * area / source_area;
                let floor = if codec == "mpeg2" {
                    2_000_000.0
                } else {
                    200_000.0
                };
                scaled.max(floor) as i64
            }));
            if codec == "h264" {
                if let Some(order) = interlaced {
                    let first = if order == Scanning::BottomFieldFirst {
                        "bff=1"
                    } else {
                        "tff=1"
                    };
                    options.push(("x264-params".into(), first.into()));
                }
            }
            if codec == "hevc" {
                options.push(("x265-params".into(), "log-level=error".into()));
            }
        }
        "prores" => {
            let p = prores.unwrap_or("standard");
            let number = PRORES_PROFILES.iter().position(|x| *x == p).unwrap_or(2);
            options.push(("profile".into(), number.to_string()));
            profile = Some(p.to_owned());
        }
        "dnxhd" => {
            let p = dnx.unwrap_or("dnxhr_sq");
            profile = Some(p.to_owned());
            if let Some(hr) = p.strip_prefix("dnxhr_") {
                options.push(("profile".into(), format!("dnxhr_{hr}")));
            } else {
                // DNxHD is a fixed table of sizes, rates and bitrates.
                let rate = dnxhd_bitrate(p, width, height, out_rate).ok_or_else(|| {
                    Refusal::bad_field(
                        "dnxhdHrProfile",
                        format!("{p} is coded only at 1920x1080 and 23.976, 24, 25, 29.97, 50 or 59.94 fps (444 up to 29.97); use a dnxhr_ profile for {width}x{height} at {fps:.3} fps"),
                    )
                })?;
                options.push(("profile".into(), "dnxhd".into()));
                bit_rate = Some(rate);
            }
        }
        "xdcam" => {
            if !matches!((width, height), (1920, 1080) | (1280, 720)) {
                return Err(Refusal::bad_field(
                    "resolution",
                    format!("xdcam (XDCAM HD422) is 1920x1080 or 1280x720, not {width}x{height}"),
                ));
            }
            if asked_bitrate.is_some_and(|b| b != 50_000_000) {
                return Err(Refusal::bad_field(
                    "bitrate.mbps",
                    "xdcam (XDCAM HD422) is 50 Mbps",
                ));
            }
            bit_rate = Some(50_000_000);
            constant_rate = true;
            for (k, v) in [
                ("profile", "0"),
                ("level", "2"),
                ("g", "12"),
                ("bf", "2"),
                ("intra_vlc", "1"),
                ("non_linear_quant", "1"),
                // Non-linear quantisation takes a qmax of 28 at most.
                ("qmin", "1"),
                ("qmax", "12"),
                ("dc", "10"),
            ] {
                options.push((k.into(), v.into()));
            }
        }
        _ => {}
    }
    if asked_bitrate.is_some() && !matches!(codec, "h264" | "hevc" | "mpeg2" | "xdcam") {
        return Err(Refusal::bad_field(
            "bitrate",
            format!("{codec} takes no bitrate: its rate is set by its profile (or it is lossless)"),
        ));
    }
    let (muxer, extension, content_type) = match container {
        "mov" => ("mov", "mov", "video/quicktime"),
        "mxf" => ("mxf", "mxf", "application/mxf"),
        "mp4" => ("mp4", "mp4", "video/mp4"),
        _ => ("mpegts", "mts", "video/mp2t"),
    };
    let graph = filters
        .iter()
        .map(|(_, f)| f.as_str())
        .collect::<Vec<_>>()
        .join(",");
    Ok(Plan {
        job: Job {
            filters: graph,
            encoder: encoder.to_owned(),
            options,
            bit_rate,
            constant_rate,
            muxer: muxer.to_owned(),
            interlaced,
            frame_rate: Some(out_rate),
            start_ms: start,
            end_ms: end,
        },
        container,
        codec,
        profile,
        pixel_format: pix,
        yuv: chroma.yuv,
        bits: chroma.bits,
        width,
        height,
        fps,
        filters,
        equivalents,
        extension,
        content_type,
    })
}

/// DNxHD's bitrate for a profile at 1920x1080 and a frame rate, from its
/// table; none where DNxHD has no such entry.
fn dnxhd_bitrate(profile: &str, width: u32, height: u32, rate: Rational) -> Option<i64> {
    if (width, height) != (1920, 1080) {
        return None;
    }
    let r = (rate.numerator(), rate.denominator());
    // (lb, sq, hq, 444) in Mbps; hqx codes at hq's rate with 10 bits.
    let row: (i64, i64, i64, Option<i64>) = match r {
        (24000, 1001) => (36, 115, 175, Some(350)),
        (24, 1) => (36, 115, 175, Some(350)),
        (25, 1) => (36, 120, 185, Some(365)),
        (30000, 1001) => (45, 145, 220, Some(440)),
        (50, 1) => (75, 240, 365, None),
        (60000, 1001) => (90, 290, 440, None),
        _ => return None,
    };
    let mbps = match profile {
        "dnxhd_lb" => row.0,
        "dnxhd_sq" => row.1,
        "dnxhd_hq" | "dnxhd_hqx" => row.2,
        "dnxhd_444" => row.3?,
        _ => return None,
    };
    Some(mbps * 1_000_000)
}

/// The pixel formats an encoder takes, by name.
fn encoder_formats(encoder: &str) -> Vec<String> {
    clipstream_actors::engine::media::init();
    ffmpeg_next::encoder::find_by_name(encoder)
        .and_then(|c| c.video().ok())
        .and_then(|v| v.formats().map(|f| f.collect::<Vec<_>>()))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.descriptor().map(|d| d.name().to_owned()))
        .collect()
}
