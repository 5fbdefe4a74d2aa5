//! Titles (`type: title`): a text in one of the ten styles, set as large as
//! `size` asks, wrapped to the output's width, lines centred on each other.

use cosmic_text::{Align, Attrs, Buffer, Family, Metrics, Shaping, SwashCache, Weight};

use super::fonts::FontBook;
use super::raster::{extent, fill, glyph_coverage, Mask};
use super::styles::{self, Rules, BACKGROUND_PAD};
use crate::engine::compose::canvas::Picture;
use crate::engine::plan::Title;

/// A title wraps at this fraction of the output width.
const WRAP: f32 = 0.9;

/// Renders `title` for a `output_w`×`output_h` output, as a picture just
/// large enough for it and its box, outline and shadow — but no taller
/// than the output: lines that would not fit in the frame are cut.
pub fn render(
    book: &mut FontBook,
    cache: &mut SwashCache,
    title: &Title,
    output_w: u32,
    output_h: u32,
) -> Picture {
    let look = styles::look(title.style);
    let px = (title.size as f32 * output_h as f32 * look.scale).max(4.0);
    let text = if look.uppercase {
        title.text.to_uppercase()
    } else {
        title.text.clone()
    };
    let panel = match (look.panel, title.background) {
        (Some(p), bg) => Some((bg.unwrap_or(p.color), p.pad_x, p.pad_y)),
        (None, Some(bg)) => Some((bg, BACKGROUND_PAD.0, BACKGROUND_PAD.1)),
        (None, None) => None,
    };
    let (pad_x, pad_y) = panel.map_or((0.0, 0.0), |(_, x, y)| (x * px, y * px));
    let rule = if look.rules == Rules::None {
        0.0
    } else {
        (0.05 * px).max(1.0)
    };
    // Room for what the effects add around the glyphs, and for scripts
    // whose strokes reach past their advance.
    let effects = look.outline.max(0.0)
        + look
            .shadow
            .map_or(0.0, |s| s.dx.abs().max(s.dy.abs()) + s.blur);
    let margin = ((effects + 0.15) * px).ceil();

    let attrs = Attrs::new()
        .family(Family::Name(look.family))
        .weight(Weight(book.nearest_weight(
            Family::Name(look.family),
            look.weight,
            false,
        )))
        .letter_spacing(look.tracking);
    let mut buffer = Buffer::new(book.system(), Metrics::new(px, px * look.line_height));
    let wrap_w = (output_w as f32 * WRAP - 2.0 * (pad_x + margin)).max(px);
    buffer.set_size(Some(wrap_w), None);
    buffer.set_text(&text, &attrs, Shaping::Advanced, Some(Align::Center));
    let (text_w, text_h) = extent(book, &mut buffer);
    // Lines are centred inside the wrap width: shift them to our origin.
    let shift = (wrap_w - text_w) / 2.0;
    // Trailing tracking after the last letter would push the text off
    // centre; take it back.
    let tracking_px = look.tracking * px;
    let text_w = (text_w - tracking_px).max(1.0);

    let rules_h = match look.rules {
        Rules::None => 0.0,
        Rules::AboveBelow => 2.0 * (rule + 0.3 * px),
        Rules::Below => rule + 0.3 * px,
    };
    let inner_w = text_w + 2.0 * margin;
    let inner_h = text_h + 2.0 * margin + rules_h;
    let w = (inner_w + 2.0 * pad_x).ceil().max(1.0) as u32;
    let h = ((inner_h + 2.0 * pad_y).ceil().max(1.0) as u32).min(output_h.max(1));
    let mut picture = match panel {
        Some((color, ..)) => Picture::filled(w, h, color),
        None => Picture::new(w, h),
    };
    let rule_above = if look.rules == Rules::AboveBelow {
        rule + 0.3 * px
    } else {
        0.0
    };
    let origin = (pad_x + margin - shift, pad_y + margin + rule_above);

    let mut mask = Mask::new(w, h);
    glyph_coverage(book, cache, &mut buffer, origin, h as f32, |x, y, a, _| {
        mask.add(x, y, a)
    });
    let contrast = styles::contrast(title.color);
    if let Some(shadow) = look.shadow {
        let soft = mask.shadow(
            (shadow.dx * px).round() as i64,
            (shadow.dy * px).round() as i64,
            (shadow.blur * px).round() as i64,
        );
        let mut color = contrast;
        color[3] = (shadow.alpha * f32::from(title.color[3])).round() as u8;
        soft.paint(&mut picture, color);
    }
    if look.outline > 0.0 {
        let mut color = contrast;
        color[3] = title.color[3];
        mask.dilated(look.outline * px).paint(&mut picture, color);
    }
    mask.paint(&mut picture, title.color);

    let left = pad_x + margin;
    match look.rules {
        Rules::None => {}
        Rules::AboveBelow => {
            fill(
                &mut picture,
                left,
                pad_y + margin,
                text_w,
                rule,
                title.color,
            );
            let below = pad_y + margin + rule_above + text_h + 0.3 * px;
            fill(&mut picture, left, below, text_w, rule, title.color);
        }
        Rules::Below => {
            let below = pad_y + margin + text_h + 0.3 * px;
            fill(&mut picture, left, below, text_w, rule, title.color);
        }
    }
    picture
}
