//! The Shotstack Edit, field for field as in the seed's "Schemas" section
//! (`shared/seeds/shotstack-api-v1.txt`), plus `webm` output from the
//! contract. Every field is a [`Tpl`], so a template may hold a placeholder
//! wherever a value goes. Unknown keys are errors: a misspelt key must not be
//! silently ignored.
//!
//! Ranges and limits are checked in `validate.rs`; this module owns shape
//! and enumerated values.

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::path::{at_key, nested_error};
use super::tpl::Tpl;

type Opt<T> = Option<Tpl<T>>;
type List<T> = Tpl<Vec<Tpl<T>>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Edit {
    pub timeline: Tpl<Timeline>,
    pub output: Tpl<Output>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<List<MergeField>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Opt<String>,
    /// Deprecated in the seed and without effect; accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Opt<Disk>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Disk {
    Local,
    Mount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soundtrack: Opt<Soundtrack>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Opt<Color>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fonts: Option<List<Font>>,
    pub tracks: List<Track>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Opt<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Soundtrack {
    pub src: Tpl<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Opt<AudioEffect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Opt<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AudioEffect {
    FadeIn,
    FadeOut,
    FadeInFadeOut,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Font {
    pub src: Tpl<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Track {
    pub clips: List<Clip>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Clip {
    pub asset: Tpl<Asset>,
    pub start: Tpl<f64>,
    pub length: Tpl<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Opt<Fit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Opt<Position>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Opt<Offset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Opt<Transition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Opt<Speeded<MotionEffect>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Opt<Filter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opacity: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Opt<Transformation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Fit {
    Crop,
    Cover,
    Contain,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Position {
    Top,
    TopRight,
    Right,
    BottomRight,
    Bottom,
    BottomLeft,
    Left,
    TopLeft,
    Center,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Offset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Opt<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transition {
    #[serde(rename = "in", default, skip_serializing_if = "Option::is_none")]
    pub in_: Opt<Speeded<TransitionKind>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Opt<Speeded<TransitionKind>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransitionKind {
    Fade,
    Reveal,
    WipeLeft,
    WipeRight,
    SlideLeft,
    SlideRight,
    SlideUp,
    SlideDown,
    CarouselLeft,
    CarouselRight,
    CarouselUp,
    CarouselDown,
    ShuffleTopRight,
    ShuffleRightTop,
    ShuffleRightBottom,
    ShuffleBottomRight,
    ShuffleBottomLeft,
    ShuffleLeftBottom,
    ShuffleLeftTop,
    ShuffleTopLeft,
    Zoom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MotionEffect {
    ZoomIn,
    ZoomOut,
    SlideLeft,
    SlideRight,
    SlideUp,
    SlideDown,
}

/// A transition or motion effect with its speed suffix (`fadeSlow`,
/// `zoomInFast`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speeded<K> {
    pub kind: K,
    pub speed: Speed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Speed {
    Slow,
    #[default]
    Normal,
    Fast,
}

/// The names a [`Speeded`] kind can take, and which of them have speed
/// variants (the seed lists `zoom` as a transition without them).
pub trait SpeededKind: Sized + Copy + Serialize + DeserializeOwned + 'static {
    const NAMES: &'static [&'static str];
    fn has_speeds(self) -> bool {
        true
    }
}

impl SpeededKind for TransitionKind {
    const NAMES: &'static [&'static str] = &[
        "fade",
        "reveal",
        "wipeLeft",
        "wipeRight",
        "slideLeft",
        "slideRight",
        "slideUp",
        "slideDown",
        "carouselLeft",
        "carouselRight",
        "carouselUp",
        "carouselDown",
        "shuffleTopRight",
        "shuffleRightTop",
        "shuffleRightBottom",
        "shuffleBottomRight",
        "shuffleBottomLeft",
        "shuffleLeftBottom",
        "shuffleLeftTop",
        "shuffleTopLeft",
        "zoom",
    ];
    fn has_speeds(self) -> bool {
        self != TransitionKind::Zoom
    }
}

impl SpeededKind for MotionEffect {
    const NAMES: &'static [&'static str] = &[
        "zoomIn",
        "zoomOut",
        "slideLeft",
        "slideRight",
        "slideUp",
        "slideDown",
    ];
}

impl<'de, K: SpeededKind> Deserialize<'de> for Speeded<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let (base, speed) = if let Some(base) = name.strip_suffix("Slow") {
            (base, Speed::Slow)
        } else if let Some(base) = name.strip_suffix("Fast") {
            (base, Speed::Fast)
        } else {
            (name.as_str(), Speed::Normal)
        };
        let kind = K::deserialize(serde_json::Value::String(base.to_owned())).ok();
        match kind {
            Some(kind) if speed == Speed::Normal || kind.has_speeds() => Ok(Speeded { kind, speed }),
            _ => Err(de::Error::custom(format!(
                "unknown value `{name}`, expected one of {} (each may end in Slow or Fast, except zoom)",
                K::NAMES.join(", ")
            ))),
        }
    }
}

impl<K: SpeededKind> Serialize for Speeded<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let base = serde_json::to_value(self.kind).map_err(serde::ser::Error::custom)?;
        let base = base.as_str().unwrap_or_default();
        let suffix = match self.speed {
            Speed::Slow => "Slow",
            Speed::Normal => "",
            Speed::Fast => "Fast",
        };
        s.serialize_str(&format!("{base}{suffix}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Filter {
    Boost,
    Contrast,
    Darken,
    Greyscale,
    Lighten,
    Muted,
    Negative,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transformation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Opt<Rotate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew: Opt<Skew>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip: Opt<Flip>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rotate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub angle: Opt<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Skew {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Opt<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Flip {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal: Opt<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical: Opt<bool>,
}

/// One of the seed's six asset types, chosen by its `type` key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Asset {
    Video(VideoAsset),
    Image(ImageAsset),
    Title(TitleAsset),
    Html(HtmlAsset),
    Audio(AudioAsset),
    Luma(LumaAsset),
}

const ASSET_TYPES: &[&str] = &["video", "image", "title", "html", "audio", "luma"];

impl<'de> Deserialize<'de> for Asset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (kind, map) = tagged(d, "type")?;
        match kind.as_str() {
            "video" => variant(map).map(Asset::Video),
            "image" => variant(map).map(Asset::Image),
            "title" => variant(map).map(Asset::Title),
            "html" => variant(map).map(Asset::Html),
            "audio" => variant(map).map(Asset::Audio),
            "luma" => variant(map).map(Asset::Luma),
            other => Err(at_key(
                "type",
                de::Error::unknown_variant(other, ASSET_TYPES),
            )),
        }
    }
}

/// Splits an internally tagged object into its tag (the string at `key`)
/// and its other fields.
fn tagged<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
) -> Result<(String, Map<String, Value>), D::Error> {
    let mut map = Map::<String, Value>::deserialize(d)?;
    match map.remove(key) {
        Some(Value::String(tag)) => Ok((tag, map)),
        Some(other) => Err(at_key(
            key,
            de::Error::invalid_type(unexpected(&other), &"a string"),
        )),
        None => Err(de::Error::missing_field(key)),
    }
}

/// Deserialises the fields of a tagged variant, keeping the JSON path of
/// an error inside it (see `path::nested_error`).
pub(super) fn variant<T: DeserializeOwned, E: de::Error>(map: Map<String, Value>) -> Result<T, E> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(nested_error)
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("a number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VideoAsset {
    pub src: Tpl<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_effect: Opt<AudioEffect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Opt<Crop>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageAsset {
    pub src: Tpl<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Opt<Crop>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TitleAsset {
    pub text: Tpl<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Opt<TitleStyle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Opt<Color>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Opt<TitleSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Opt<Color>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Opt<Position>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Opt<Offset>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TitleStyle {
    Minimal,
    Blockbuster,
    Vogue,
    Sketchy,
    Skinny,
    Chunk,
    ChunkLight,
    Marker,
    Future,
    Subtitle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TitleSize {
    XxSmall,
    XSmall,
    Small,
    Medium,
    Large,
    XLarge,
    XxLarge,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HtmlAsset {
    pub html: Tpl<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub css: Opt<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Opt<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Opt<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Opt<Color>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Opt<Position>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AudioAsset {
    pub src: Tpl<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Opt<AudioEffect>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LumaAsset {
    pub src: Tpl<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Opt<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Crop {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bottom: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Opt<f64>,
}

/// A colour written `#RRGGBB` or `#AARRGGBB` (alpha first, as in the seed),
/// or `transparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color {
    pub a: u8,
    pub r: u8,
    pub g: u8,
    pub b: u8,
}

impl Color {
    /// The colour as `[r, g, b, a]`, the order pictures are drawn in.
    pub fn rgba(&self) -> [u8; 4] {
        [self.r, self.g, self.b, self.a]
    }
}

impl std::str::FromStr for Color {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid colour `{s}`, expected #RRGGBB, #AARRGGBB or transparent");
        // Shotstack's own templates write a see-through background so.
        if s.eq_ignore_ascii_case("transparent") {
            return Ok(Color {
                a: 0,
                r: 0,
                g: 0,
                b: 0,
            });
        }
        let hex = s.strip_prefix('#').ok_or_else(bad)?;
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        match hex.len() {
            6 => Ok(Color {
                a: 255,
                r: byte(0)?,
                g: byte(2)?,
                b: byte(4)?,
            }),
            8 => Ok(Color {
                a: byte(0)?,
                r: byte(2)?,
                g: byte(4)?,
                b: byte(6)?,
            }),
            _ => Err(bad()),
        }
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

impl Serialize for Color {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Color { a, r, g, b } = *self;
        if a == 255 {
            s.serialize_str(&format!("#{r:02x}{g:02x}{b:02x}"))
        } else {
            s.serialize_str(&format!("#{a:02x}{r:02x}{g:02x}{b:02x}"))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MergeField {
    pub find: String,
    pub replace: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Output {
    pub format: Tpl<Format>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Opt<Resolution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Opt<AspectRatio>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Opt<Size>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Opt<Fps>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to: Opt<Resolution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Opt<Quality>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Opt<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute: Opt<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Opt<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster: Opt<Poster>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Opt<Thumbnail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations: Option<List<Destination>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Format {
    Mp4,
    Webm,
    Gif,
    Jpg,
    Png,
    Bmp,
    Mp3,
}

impl Format {
    /// Still images may be larger than video frames (see the Size schema).
    pub fn is_image(self) -> bool {
        matches!(self, Format::Jpg | Format::Png | Format::Bmp)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    #[serde(rename = "preview")]
    Preview,
    #[serde(rename = "mobile")]
    Mobile,
    #[serde(rename = "sd")]
    Sd,
    #[serde(rename = "hd")]
    Hd,
    #[serde(rename = "1080")]
    FullHd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AspectRatio {
    #[serde(rename = "16:9")]
    Landscape,
    #[serde(rename = "9:16")]
    Portrait,
    #[serde(rename = "1:1")]
    Square,
    #[serde(rename = "4:5")]
    ShortPortrait,
    #[serde(rename = "4:3")]
    Classic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Quality {
    Low,
    Medium,
    High,
}

/// Frames per second: one of the seed's enumerated rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Fps(pub f64);

impl Fps {
    pub const ALLOWED: [f64; 11] = [
        12.0, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0,
    ];
}

impl<'de> Deserialize<'de> for Fps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fps = f64::deserialize(d)?;
        if Fps::ALLOWED.iter().any(|a| (a - fps).abs() < 1e-9) {
            Ok(Fps(fps))
        } else {
            Err(de::Error::custom(format!(
                "unsupported fps {fps}, expected one of 12, 15, 23.976, 24, 25, 29.97, 30, 48, 50, 59.94, 60"
            )))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Size {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Opt<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Opt<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Range {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Opt<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Opt<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Poster {
    pub capture: Tpl<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Thumbnail {
    pub capture: Tpl<f64>,
    pub scale: Tpl<f64>,
}

/// Where a finished render is sent, chosen by its `provider` key.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "provider", rename_all = "camelCase")]
pub enum Destination {
    Shotstack(ShotstackDestination),
    Mux(MuxDestination),
    S3(S3Destination),
}

const PROVIDERS: &[&str] = &["shotstack", "mux", "s3"];

impl<'de> Deserialize<'de> for Destination {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (provider, map) = tagged(d, "provider")?;
        match provider.as_str() {
            "shotstack" => variant(map).map(Destination::Shotstack),
            "mux" => variant(map).map(Destination::Mux),
            "s3" => variant(map).map(Destination::S3),
            other => Err(at_key(
                "provider",
                de::Error::unknown_variant(other, PROVIDERS),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShotstackDestination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Opt<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MuxDestination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Opt<MuxOptions>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MuxOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback_policy: Option<List<PlaybackPolicy>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Opt<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PlaybackPolicy {
    Public,
    Signed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Destination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Opt<S3Options>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Options {
    pub region: Tpl<String>,
    pub bucket: Tpl<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Opt<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Opt<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Opt<String>,
}
