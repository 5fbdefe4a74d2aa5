//! The CSS of html assets: the properties we draw, their values, and the
//! cascade (tag defaults, then the asset's `css` rules by specificity, then
//! `style=` attributes; `!important` last). Inherited properties pass from
//! parent to child as in CSS; `background-color`, `padding` and `margin`
//! do not.
//!
//! Supported: `color`, `background-color` (also `background` with a
//! colour), `font-family`, `font-size` (px, pt, em, rem, %), `font-weight`,
//! `font-style`, `text-align`, `line-height`, `letter-spacing`, `padding`
//! and `margin` (and their `-top`/`-right`/`-bottom`/`-left`; margins do
//! not collapse and no tag has default margins), `text-decoration`
//! (underline, line-through), `text-transform`. Other properties are
//! ignored.

use crate::engine::plan::Rgba;

/// The font size of the root, as in browsers.
pub const ROOT_SIZE: f32 = 16.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TextAlign {
    Start,
    Left,
    Right,
    Center,
    Justify,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LineHeight {
    Normal,
    Factor(f32),
    Px(f32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    pub color: Rgba,
    pub background: Option<Rgba>,
    /// As written, first choice first; resolved against the font book
    /// when text is set.
    pub families: Vec<String>,
    pub size: f32,
    pub weight: u16,
    pub italic: bool,
    pub underline: bool,
    pub strike: bool,
    pub align: TextAlign,
    pub line_height: LineHeight,
    /// Pixels.
    pub letter_spacing: f32,
    /// Pixels: top, right, bottom, left.
    pub padding: [f32; 4],
    /// Pixels: top, right, bottom, left; margins of neighbours add up
    /// (they do not collapse).
    pub margin: [f32; 4],
    pub transform: Transform,
}

/// `text-transform`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    None,
    Uppercase,
    Lowercase,
    Capitalize,
}

impl Transform {
    /// `text` transformed; `word_start` says whether the text before it
    /// ended a word (for `capitalize`).
    pub fn apply(self, text: &str, mut word_start: bool) -> String {
        match self {
            Transform::None => text.to_owned(),
            Transform::Uppercase => text.to_uppercase(),
            Transform::Lowercase => text.to_lowercase(),
            Transform::Capitalize => {
                let mut out = String::with_capacity(text.len());
                for c in text.chars() {
                    if word_start && c.is_alphabetic() {
                        out.extend(c.to_uppercase());
                    } else {
                        out.push(c);
                    }
                    word_start = c.is_whitespace();
                }
                out
            }
        }
    }
}

impl Style {
    pub fn root() -> Style {
        Style {
            color: [0, 0, 0, 255],
            background: None,
            families: vec!["sans-serif".into()],
            size: ROOT_SIZE,
            weight: 400,
            italic: false,
            underline: false,
            strike: false,
            align: TextAlign::Start,
            line_height: LineHeight::Normal,
            letter_spacing: 0.0,
            padding: [0.0; 4],
            margin: [0.0; 4],
            transform: Transform::None,
        }
    }

    /// What a child starts from: the inherited properties.
    pub fn inherit(&self) -> Style {
        Style {
            background: None,
            padding: [0.0; 4],
            margin: [0.0; 4],
            ..self.clone()
        }
    }

    pub fn line_height_px(&self) -> f32 {
        match self.line_height {
            LineHeight::Normal => self.size * 1.2,
            LineHeight::Factor(f) => self.size * f,
            LineHeight::Px(px) => px,
        }
        .max(1.0)
    }

    /// A tag's own defaults, as a browser's style sheet gives them.
    pub fn tag_defaults(&mut self, tag: &str) {
        match tag {
            "b" | "strong" => self.weight = 700,
            "i" | "em" => self.italic = true,
            "u" => self.underline = true,
            "s" | "del" => self.strike = true,
            "h1" => self.heading(2.0),
            "h2" => self.heading(1.5),
            "h3" => self.heading(1.17),
            _ => {}
        }
    }

    fn heading(&mut self, em: f32) {
        self.size *= em;
        self.weight = 700;
    }

    /// Applies declarations `(name, value)`: `font-size` first, because
    /// `em` lengths of the others are relative to it.
    pub fn apply<'a>(&mut self, parent: &Style, declarations: &[(&'a str, &'a str)]) {
        for (name, value) in declarations {
            if *name == "font-size" {
                if let Some(size) = font_size(value, parent.size) {
                    self.size = size.clamp(1.0, 1000.0);
                }
            }
        }
        for (name, value) in declarations {
            self.apply_one(parent, name, value.trim());
        }
    }

    fn apply_one(&mut self, parent: &Style, name: &str, value: &str) {
        let em = self.size;
        match name {
            "color" => {
                if let Some(c) = color(value) {
                    self.color = c;
                }
            }
            "background-color" | "background" => {
                if let Some(c) = color(value) {
                    self.background = Some(c);
                }
            }
            "font-family" => {
                let families: Vec<String> = value
                    .split(',')
                    .map(|f| f.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
                    .filter(|f| !f.is_empty())
                    .collect();
                if !families.is_empty() {
                    self.families = families;
                }
            }
            "font-weight" => {
                self.weight = match value {
                    "normal" => 400,
                    "bold" => 700,
                    "bolder" => (parent.weight + 300).min(900),
                    "lighter" => parent.weight.saturating_sub(300).max(100),
                    n => match n.parse::<u16>() {
                        Ok(w) if (1..=1000).contains(&w) => w,
                        _ => return,
                    },
                }
            }
            "font-style" => {
                self.italic = match value {
                    "italic" | "oblique" => true,
                    "normal" => false,
                    _ => return,
                }
            }
            "text-decoration" | "text-decoration-line" => {
                if value == "none" {
                    self.underline = false;
                    self.strike = false;
                }
                for word in value.split_whitespace() {
                    match word {
                        "underline" => self.underline = true,
                        "line-through" => self.strike = true,
                        _ => {}
                    }
                }
            }
            "text-align" => {
                self.align = match value {
                    "left" => TextAlign::Left,
                    "right" | "end" => TextAlign::Right,
                    "center" => TextAlign::Center,
                    "justify" => TextAlign::Justify,
                    "start" => TextAlign::Start,
                    _ => return,
                }
            }
            "line-height" => {
                self.line_height = if value == "normal" {
                    LineHeight::Normal
                } else if let Ok(f) = value.parse::<f32>() {
                    LineHeight::Factor(f.clamp(0.0, 100.0))
                } else if let Some(px) = length(value, em, em) {
                    LineHeight::Px(px.clamp(0.0, 10_000.0))
                } else {
                    return;
                }
            }
            "letter-spacing" => {
                if value == "normal" {
                    self.letter_spacing = 0.0;
                } else if let Some(px) = length(value, em, em) {
                    self.letter_spacing = px.clamp(-em, 10.0 * em);
                }
            }
            "padding" | "margin" => {
                // Percentages are of the containing block's width, which
                // is not known yet: the parent's font size stands in.
                let Some(sides) = sides(value, em, parent.size) else {
                    return;
                };
                if name == "padding" {
                    self.padding = sides;
                } else {
                    self.margin = sides;
                }
            }
            "padding-top" | "padding-right" | "padding-bottom" | "padding-left" | "margin-top"
            | "margin-right" | "margin-bottom" | "margin-left" => {
                if let Some(px) = length(value, em, em) {
                    let px = px.clamp(0.0, 10_000.0);
                    let (kind, side) = name.split_once('-').unwrap_or((name, "top"));
                    let i = match side {
                        "top" => 0,
                        "right" => 1,
                        "bottom" => 2,
                        _ => 3,
                    };
                    if kind == "padding" {
                        self.padding[i] = px;
                    } else {
                        self.margin[i] = px;
                    }
                }
            }
            "text-transform" => {
                self.transform = match value {
                    "uppercase" => Transform::Uppercase,
                    "lowercase" => Transform::Lowercase,
                    "capitalize" => Transform::Capitalize,
                    "none" => Transform::None,
                    _ => return,
                }
            }
            _ => {}
        }
    }
}

/// One to four lengths, CSS's order (top, right, bottom, left); negative
/// ones count as 0.
fn sides(value: &str, em: f32, percent_of: f32) -> Option<[f32; 4]> {
    let sides: Option<Vec<f32>> = value
        .split_whitespace()
        .map(|v| length(v, em, percent_of).map(|px| px.clamp(0.0, 10_000.0)))
        .collect();
    match sides?.as_slice() {
        [a] => Some([*a; 4]),
        [v, h] => Some([*v, *h, *v, *h]),
        [t, h, b] => Some([*t, *h, *b, *h]),
        [t, r, b, l] => Some([*t, *r, *b, *l]),
        _ => None,
    }
}

/// A `font-size`: a length, a percentage of the parent's, or a keyword.
fn font_size(value: &str, parent: f32) -> Option<f32> {
    let keyword = match value {
        "xx-small" => Some(9.0),
        "x-small" => Some(10.0),
        "small" => Some(13.0),
        "medium" => Some(16.0),
        "large" => Some(18.0),
        "x-large" => Some(24.0),
        "xx-large" => Some(32.0),
        "smaller" => Some(parent / 1.2),
        "larger" => Some(parent * 1.2),
        _ => None,
    };
    keyword.or_else(|| length(value, parent, parent))
}

/// A length in pixels: `px`, `pt`, `em` (of `em`), `rem`, `%` (of
/// `percent_of`), or a bare 0.
pub fn length(value: &str, em: f32, percent_of: f32) -> Option<f32> {
    let value = value.trim();
    let number = |suffix: &str| value.strip_suffix(suffix)?.trim().parse::<f32>().ok();
    let px = if let Some(n) = number("px") {
        n
    } else if let Some(n) = number("rem") {
        n * ROOT_SIZE
    } else if let Some(n) = number("em") {
        n * em
    } else if let Some(n) = number("pt") {
        n * 4.0 / 3.0
    } else if let Some(n) = number("%") {
        n * percent_of / 100.0
    } else if value.parse::<f32>().ok()? == 0.0 {
        0.0
    } else {
        return None;
    };
    px.is_finite().then_some(px)
}

/// A CSS colour: `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa` (CSS's order,
/// alpha last), `rgb()`/`rgba()`, `transparent` and the basic names.
pub fn color(value: &str) -> Option<Rgba> {
    let value = value.trim().to_ascii_lowercase();
    if let Some(hex) = value.strip_prefix('#') {
        let digits: Option<Vec<u8>> = hex
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect();
        let d = digits?;
        return match d.len() {
            3 => Some([d[0] * 17, d[1] * 17, d[2] * 17, 255]),
            4 => Some([d[0] * 17, d[1] * 17, d[2] * 17, d[3] * 17]),
            6 => Some([d[0] * 16 + d[1], d[2] * 16 + d[3], d[4] * 16 + d[5], 255]),
            8 => Some([
                d[0] * 16 + d[1],
                d[2] * 16 + d[3],
                d[4] * 16 + d[5],
                d[6] * 16 + d[7],
            ]),
            _ => None,
        };
    }
    if let Some(args) = value
        .strip_prefix("rgba(")
        .or_else(|| value.strip_prefix("rgb("))
        .and_then(|v| v.strip_suffix(')'))
    {
        let parts: Vec<&str> = args
            .split([',', ' ', '/'])
            .filter(|p| !p.is_empty())
            .collect();
        let channel = |p: &str| -> Option<u8> {
            let v = match p.strip_suffix('%') {
                Some(pc) => pc.parse::<f32>().ok()? * 2.55,
                None => p.parse::<f32>().ok()?,
            };
            Some(v.round().clamp(0.0, 255.0) as u8)
        };
        let alpha = |p: &str| -> Option<u8> {
            let v = match p.strip_suffix('%') {
                Some(pc) => pc.parse::<f32>().ok()? / 100.0,
                None => p.parse::<f32>().ok()?,
            };
            Some((v.clamp(0.0, 1.0) * 255.0).round() as u8)
        };
        return match parts.as_slice() {
            [r, g, b] => Some([channel(r)?, channel(g)?, channel(b)?, 255]),
            [r, g, b, a] => Some([channel(r)?, channel(g)?, channel(b)?, alpha(a)?]),
            _ => None,
        };
    }
    Some(match value.as_str() {
        "transparent" => [0, 0, 0, 0],
        "black" => [0, 0, 0, 255],
        "white" => [255, 255, 255, 255],
        "red" => [255, 0, 0, 255],
        "lime" => [0, 255, 0, 255],
        "green" => [0, 128, 0, 255],
        "blue" => [0, 0, 255, 255],
        "yellow" => [255, 255, 0, 255],
        "cyan" | "aqua" => [0, 255, 255, 255],
        "magenta" | "fuchsia" => [255, 0, 255, 255],
        "gray" | "grey" => [128, 128, 128, 255],
        "silver" => [192, 192, 192, 255],
        "maroon" => [128, 0, 0, 255],
        "navy" => [0, 0, 128, 255],
        "olive" => [128, 128, 0, 255],
        "purple" => [128, 0, 128, 255],
        "teal" => [0, 128, 128, 255],
        "orange" => [255, 165, 0, 255],
        "pink" => [255, 192, 203, 255],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_lengths_and_em() {
        assert_eq!(color("#f00"), Some([255, 0, 0, 255]));
        assert_eq!(color("#00ff0080"), Some([0, 255, 0, 128]));
        assert_eq!(color("rgba(0, 0, 255, 0.5)"), Some([0, 0, 255, 128]));
        assert_eq!(color("Yellow"), Some([255, 255, 0, 255]));
        assert_eq!(color("#12"), None);
        assert_eq!(length("2em", 10.0, 0.0), Some(20.0));
        assert_eq!(length("50%", 0.0, 30.0), Some(15.0));
        assert_eq!(length("12pt", 0.0, 0.0), Some(16.0));
        assert_eq!(length("big", 0.0, 0.0), None);
        let root = Style::root();
        let mut s = root.inherit();
        s.apply(
            &root,
            &[
                ("padding", "1em 2px"),
                ("font-size", "200%"),
                ("margin-left", "-3px"),
                ("margin-top", "1em"),
            ],
        );
        assert_eq!(s.margin, [32.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            Transform::Capitalize.apply("hello big world", true),
            "Hello Big World"
        );
        assert_eq!(Transform::Capitalize.apply("lo there", false), "lo There");
        assert_eq!(s.size, 32.0);
        assert_eq!(s.padding, [32.0, 2.0, 32.0, 2.0]);
    }
}
