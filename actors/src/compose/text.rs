//! Titles rasterised with the fonts shipped in `actors/fonts/` (DejaVu
//! Sans, regular and bold: wide Unicode coverage, permissive licence).

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

use super::canvas::Picture;
use crate::plan::{Rgba, Title};

static REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// Padding around the text when it has a background, in font heights.
const PADDING: f32 = 0.35;

/// Renders a title as a picture just large enough for its lines (plus
/// padding when it has a background), for an output `output_height` tall.
pub fn render_title(title: &Title, output_height: u32) -> Picture {
    let font = match FontRef::try_from_slice(if title.bold { BOLD } else { REGULAR }) {
        Ok(font) => font,
        // The fonts are compiled in and parse; this only guards the type.
        Err(_) => return Picture::new(1, 1),
    };
    let px = (title.size * f64::from(output_height)).max(4.0) as f32;
    let scaled = font.as_scaled(PxScale::from(px));
    let line_height = scaled.height() + scaled.line_gap();
    let lines: Vec<&str> = title.text.lines().collect();
    let widths: Vec<f32> = lines.iter().map(|l| line_width(&scaled, l)).collect();
    let text_w = widths.iter().copied().fold(0.0f32, f32::max);
    let text_h = line_height * lines.len().max(1) as f32;
    let pad = if title.background.is_some() {
        px * PADDING
    } else {
        0.0
    };
    let w = (text_w + 2.0 * pad).ceil().max(1.0) as u32;
    let h = (text_h + 2.0 * pad).ceil().max(1.0) as u32;
    let mut picture = match title.background {
        Some(bg) => Picture::filled(w, h, bg),
        None => Picture::new(w, h),
    };
    for (i, line) in lines.iter().enumerate() {
        // Lines are centred on each other, as Shotstack's titles are.
        let x0 = pad + (text_w - widths[i]) / 2.0;
        let baseline = pad + scaled.ascent() + line_height * i as f32;
        draw_line(&mut picture, &scaled, line, x0, baseline, title.color);
    }
    picture
}

fn line_width<F: Font, S: ScaleFont<F>>(font: &S, line: &str) -> f32 {
    let mut width = 0.0;
    let mut previous = None;
    for c in line.chars() {
        let id = font.glyph_id(c);
        if let Some(prev) = previous {
            width += font.kern(prev, id);
        }
        width += font.h_advance(id);
        previous = Some(id);
    }
    width
}

fn draw_line<F: Font, S: ScaleFont<F>>(
    picture: &mut Picture,
    scaled: &S,
    line: &str,
    x0: f32,
    baseline: f32,
    color: Rgba,
) {
    let mut x = x0;
    let mut previous = None;
    for c in line.chars() {
        let id = scaled.glyph_id(c);
        if let Some(prev) = previous {
            x += scaled.kern(prev, id);
        }
        let glyph = id.with_scale_and_position(scaled.scale(), ab_glyph::point(x, baseline));
        x += scaled.h_advance(id);
        previous = Some(id);
        let Some(outlined) = scaled.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outlined.px_bounds();
        outlined.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i64 + i64::from(gx);
            let py = bounds.min.y as i64 + i64::from(gy);
            if px < 0 || py < 0 || px >= i64::from(picture.width) || py >= i64::from(picture.height)
            {
                return;
            }
            let i = (py as usize * picture.width as usize + px as usize) * 4;
            let a = coverage.clamp(0.0, 1.0) * f32::from(color[3]) / 255.0;
            let dst = &mut picture.data[i..i + 4];
            // "Over" onto the title's own background (or transparency).
            let da = f32::from(dst[3]) / 255.0;
            let out_a = a + da * (1.0 - a);
            if out_a <= 0.0 {
                return;
            }
            for ch in 0..3 {
                let v = (f32::from(color[ch]) * a + f32::from(dst[ch]) * da * (1.0 - a)) / out_a;
                dst[ch] = v.round().clamp(0.0, 255.0) as u8;
            }
            dst[3] = (out_a * 255.0).round() as u8;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::Position;

    fn title(text: &str, background: Option<Rgba>) -> Title {
        Title {
            text: text.into(),
            color: [255, 0, 0, 255],
            size: 0.1,
            background,
            position: Position::Center,
            offset: (0.0, 0.0),
            bold: false,
        }
    }

    #[test]
    fn text_has_the_colour_and_a_sensible_size() {
        let p = render_title(&title("Hello", None), 720);
        assert!(p.height >= 72 && p.height < 110, "{}", p.height);
        assert!(p.width > 150 && p.width < 400, "{}", p.width);
        let red = p
            .data
            .chunks_exact(4)
            .filter(|px| px[3] == 255 && px[0] == 255 && px[1] == 0)
            .count();
        assert!(red > 500, "{red} solid red pixels");
    }

    #[test]
    fn a_background_fills_the_box() {
        let p = render_title(&title("Hi", Some([0, 0, 255, 255])), 720);
        assert_eq!(p.pixel(0, 0), [0, 0, 255, 255]);
        let two = render_title(&title("Hi\nthere", None), 720);
        assert!(two.height > p.height);
    }
}
