//! The ten title styles of the Edit (`title.style`), each a look of its
//! own. Lengths are in ems of the title's font size.
//!
//! | style       | look |
//! |-------------|------|
//! | minimal     | DejaVu Sans regular, as typed, nothing else |
//! | blockbuster | Bebas Neue Bold: heavy condensed capitals, large, with a soft drop shadow |
//! | vogue       | EB Garamond serif capitals, widely tracked, between two hairline rules |
//! | sketchy     | Cabin Sketch: hand-drawn, hatched letters |
//! | skinny      | Lato Thin: hairline strokes, slightly tracked |
//! | chunk       | League Spartan Black capitals on a solid box (black unless `background`) |
//! | chunkLight  | League Spartan Light capitals on a solid box (black unless `background`) |
//! | marker      | Kaushan Script: a brush-marker hand with a contrasting outline |
//! | future      | League Spartan capitals, very wide tracking, underlined by a bar |
//! | subtitle    | DejaVu Sans, smaller, on a translucent dark box |

use crate::engine::edit::TitleStyle;
use crate::engine::plan::Rgba;

use super::fonts;

/// Horizontal lines drawn with the text, in the text's colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rules {
    None,
    /// A hairline above and below the text.
    AboveBelow,
    /// A bar under the text.
    Below,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shadow {
    pub dx: f32,
    pub dy: f32,
    pub blur: f32,
    /// Opacity of the shadow, 0–1.
    pub alpha: f32,
}

/// A box behind the text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Panel {
    /// Used when the title sets no `background`.
    pub color: Rgba,
    pub pad_x: f32,
    pub pad_y: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    pub family: &'static str,
    pub weight: u16,
    pub uppercase: bool,
    /// Extra space after every letter.
    pub tracking: f32,
    /// Font size relative to the title's `size`.
    pub scale: f32,
    /// Line height relative to the font size.
    pub line_height: f32,
    /// Width of an outline in the contrasting colour; 0 for none.
    pub outline: f32,
    pub shadow: Option<Shadow>,
    /// The style's own box; a `background` on a style without one gets a
    /// box with [`BACKGROUND_PAD`].
    pub panel: Option<Panel>,
    pub rules: Rules,
}

/// Padding of the box a `background` adds to a style without its own.
pub const BACKGROUND_PAD: (f32, f32) = (0.35, 0.2);

const PLAIN: Look = Look {
    family: fonts::SANS,
    weight: 400,
    uppercase: false,
    tracking: 0.0,
    scale: 1.0,
    line_height: 1.2,
    outline: 0.0,
    shadow: None,
    panel: None,
    rules: Rules::None,
};

const SOLID_BLACK: Panel = Panel {
    color: [0, 0, 0, 255],
    pad_x: 0.4,
    pad_y: 0.2,
};

pub fn look(style: TitleStyle) -> Look {
    match style {
        TitleStyle::Minimal => PLAIN,
        TitleStyle::Blockbuster => Look {
            family: fonts::CONDENSED,
            weight: 700,
            uppercase: true,
            tracking: 0.02,
            scale: 1.6,
            line_height: 1.0,
            shadow: Some(Shadow {
                dx: 0.05,
                dy: 0.06,
                blur: 0.04,
                alpha: 0.75,
            }),
            ..PLAIN
        },
        TitleStyle::Vogue => Look {
            family: fonts::SERIF,
            uppercase: true,
            tracking: 0.25,
            scale: 1.2,
            line_height: 1.3,
            rules: Rules::AboveBelow,
            ..PLAIN
        },
        TitleStyle::Sketchy => Look {
            family: fonts::SKETCH,
            scale: 1.25,
            ..PLAIN
        },
        TitleStyle::Skinny => Look {
            family: fonts::THIN,
            weight: 100,
            tracking: 0.08,
            scale: 1.2,
            ..PLAIN
        },
        TitleStyle::Chunk => Look {
            family: fonts::GEOMETRIC,
            weight: 900,
            uppercase: true,
            line_height: 1.05,
            panel: Some(SOLID_BLACK),
            ..PLAIN
        },
        TitleStyle::ChunkLight => Look {
            family: fonts::GEOMETRIC,
            weight: 300,
            uppercase: true,
            line_height: 1.05,
            panel: Some(SOLID_BLACK),
            ..PLAIN
        },
        TitleStyle::Marker => Look {
            family: fonts::BRUSH,
            scale: 1.3,
            outline: 0.06,
            ..PLAIN
        },
        TitleStyle::Future => Look {
            family: fonts::GEOMETRIC,
            uppercase: true,
            tracking: 0.35,
            line_height: 1.3,
            rules: Rules::Below,
            ..PLAIN
        },
        TitleStyle::Subtitle => Look {
            scale: 0.8,
            line_height: 1.3,
            panel: Some(Panel {
                color: [0, 0, 0, 0xa0],
                pad_x: 0.5,
                pad_y: 0.25,
            }),
            ..PLAIN
        },
    }
}

/// What outlines and shadows are drawn in: black or white, whichever
/// contrasts more with the text (WCAG's contrast ratio).
pub fn contrast(color: Rgba) -> Rgba {
    let linear = |c: u8| {
        let c = f32::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * linear(color[0]) + 0.7152 * linear(color[1]) + 0.0722 * linear(color[2]);
    let against_black = (l + 0.05) / 0.05;
    let against_white = 1.05 / (l + 0.05);
    if against_white > against_black {
        [255, 255, 255, 255]
    } else {
        [0, 0, 0, 255]
    }
}
