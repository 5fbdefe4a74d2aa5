//! From laid-out text to pixels: glyph coverage out of swash, and the
//! "over" blending of straight-alpha colour onto a picture.

use cosmic_text::{Buffer, LayoutGlyph, SwashCache, SwashContent};

use crate::engine::compose::canvas::Picture;
use crate::engine::plan::Rgba;

use super::fonts::FontBook;

/// Calls `plot(x, y, coverage, glyph)` for every covered pixel of every
/// glyph of `buffer`, the buffer's top-left corner at `origin`; lines that
/// start below `bottom` are not rasterised at all.
pub fn glyph_coverage(
    book: &mut FontBook,
    cache: &mut SwashCache,
    buffer: &mut Buffer,
    origin: (f32, f32),
    bottom: f32,
    mut plot: impl FnMut(i64, i64, u8, &LayoutGlyph),
) {
    buffer.shape_until_scroll(book.system(), false);
    for run in buffer.layout_runs() {
        if origin.1 + run.line_top > bottom {
            break;
        }
        for glyph in run.glyphs {
            let physical = glyph.physical((origin.0, origin.1 + run.line_y), 1.0);
            let Some(image) = cache.get_image(book.system(), physical.cache_key) else {
                continue;
            };
            let left = i64::from(physical.x) + i64::from(image.placement.left);
            let top = i64::from(physical.y) - i64::from(image.placement.top);
            let (w, h) = (
                image.placement.width as usize,
                image.placement.height as usize,
            );
            // Colour glyphs (emoji) keep only their shape: text is one colour.
            let (stride, alpha_at) = match image.content {
                SwashContent::Color => (4, 3),
                SwashContent::SubpixelMask => (4, 1),
                SwashContent::Mask => (1, 0),
            };
            for row in 0..h {
                for col in 0..w {
                    let Some(&a) = image.data.get((row * w + col) * stride + alpha_at) else {
                        continue;
                    };
                    if a > 0 {
                        plot(left + col as i64, top + row as i64, a, glyph);
                    }
                }
            }
        }
    }
}

/// Width of the widest line and total height of the laid-out buffer.
pub fn extent(book: &mut FontBook, buffer: &mut Buffer) -> (f32, f32) {
    buffer.shape_until_scroll(book.system(), false);
    let mut w: f32 = 0.0;
    let mut h: f32 = 0.0;
    for run in buffer.layout_runs() {
        w = w.max(run.line_w);
        h = h.max(run.line_top + run.line_height);
    }
    (w, h)
}

/// Blends `color`, its alpha scaled by `coverage` (0–255), over the pixel
/// at (`x`, `y`); pixels outside the picture are clipped.
pub fn blend(picture: &mut Picture, x: i64, y: i64, color: Rgba, coverage: u8) {
    if x < 0 || y < 0 || x >= i64::from(picture.width) || y >= i64::from(picture.height) {
        return;
    }
    let a = f32::from(coverage) / 255.0 * f32::from(color[3]) / 255.0;
    if a <= 0.0 {
        return;
    }
    let i = (y as usize * picture.width as usize + x as usize) * 4;
    let dst = &mut picture.data[i..i + 4];
    let da = f32::from(dst[3]) / 255.0;
    let out_a = a + da * (1.0 - a);
    for c in 0..3 {
        let v = (f32::from(color[c]) * a + f32::from(dst[c]) * da * (1.0 - a)) / out_a;
        dst[c] = v.round().clamp(0.0, 255.0) as u8;
    }
    dst[3] = (out_a * 255.0).round().clamp(0.0, 255.0) as u8;
}

/// Blends a solid rectangle (clipped to the picture).
pub fn fill(picture: &mut Picture, x: f32, y: f32, w: f32, h: f32, color: Rgba) {
    let x0 = x.round().max(0.0) as i64;
    let y0 = y.round().max(0.0) as i64;
    let x1 = ((x + w).round() as i64).min(i64::from(picture.width));
    let y1 = ((y + h).round() as i64).min(i64::from(picture.height));
    for py in y0..y1 {
        for px in x0..x1 {
            blend(picture, px, py, color, 255);
        }
    }
}

/// One byte of coverage per pixel, for effects drawn from the text's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Mask {
    pub fn new(width: u32, height: u32) -> Mask {
        Mask {
            width,
            height,
            data: vec![0; width as usize * height as usize],
        }
    }

    pub fn get(&self, x: i64, y: i64) -> u8 {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return 0;
        }
        self.data[y as usize * self.width as usize + x as usize]
    }

    pub fn add(&mut self, x: i64, y: i64, a: u8) {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return;
        }
        let p = &mut self.data[y as usize * self.width as usize + x as usize];
        *p = (*p).max(a);
    }

    /// The shape grown by `radius` pixels in every direction (a disc), for
    /// outlines.
    pub fn dilated(&self, radius: f32) -> Mask {
        let r = radius.ceil() as i64;
        let offsets: Vec<(i64, i64)> = (-r..=r)
            .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
            .filter(|(dx, dy)| ((dx * dx + dy * dy) as f32).sqrt() <= radius + 0.5)
            .collect();
        // The square around each pixel, computed separably, tells cheaply
        // which pixels no ink can reach: only the band along the edges of
        // the letters needs the disc.
        let square = self.max_filter(r, true).max_filter(r, false);
        let mut out = Mask::new(self.width, self.height);
        for y in 0..i64::from(self.height) {
            for x in 0..i64::from(self.width) {
                let i = y as usize * self.width as usize + x as usize;
                let own = self.data[i];
                if own == 255 || square.data[i] == 0 {
                    out.data[i] = own;
                    continue;
                }
                let mut m = own;
                for (dx, dy) in &offsets {
                    m = m.max(self.get(x + dx, y + dy));
                    if m == 255 {
                        break;
                    }
                }
                out.data[i] = m;
            }
        }
        out
    }

    /// The maximum over `r` pixels either side, along rows or columns.
    fn max_filter(&self, r: i64, horizontal: bool) -> Mask {
        let mut out = Mask::new(self.width, self.height);
        for y in 0..i64::from(self.height) {
            for x in 0..i64::from(self.width) {
                let m = (-r..=r)
                    .map(|k| {
                        if horizontal {
                            self.get(x + k, y)
                        } else {
                            self.get(x, y + k)
                        }
                    })
                    .max()
                    .unwrap_or(0);
                out.data[y as usize * self.width as usize + x as usize] = m;
            }
        }
        out
    }

    /// The shape moved by (`dx`, `dy`) and softened by a box blur of
    /// `radius` pixels, for drop shadows.
    pub fn shadow(&self, dx: i64, dy: i64, radius: i64) -> Mask {
        let mut moved = Mask::new(self.width, self.height);
        for y in 0..i64::from(self.height) {
            for x in 0..i64::from(self.width) {
                moved.data[y as usize * self.width as usize + x as usize] =
                    self.get(x - dx, y - dy);
            }
        }
        if radius <= 0 {
            return moved;
        }
        let blur = |m: &Mask, horizontal: bool| {
            let mut out = Mask::new(m.width, m.height);
            let n = (2 * radius + 1) as u32;
            for y in 0..i64::from(m.height) {
                for x in 0..i64::from(m.width) {
                    let sum: u32 = (-radius..=radius)
                        .map(|k| {
                            u32::from(if horizontal {
                                m.get(x + k, y)
                            } else {
                                m.get(x, y + k)
                            })
                        })
                        .sum();
                    out.data[y as usize * m.width as usize + x as usize] = (sum / n) as u8;
                }
            }
            out
        };
        blur(&blur(&moved, true), false)
    }

    /// Paints `color` over `picture` through this mask.
    pub fn paint(&self, picture: &mut Picture, color: Rgba) {
        for y in 0..i64::from(self.height) {
            for x in 0..i64::from(self.width) {
                let a = self.get(x, y);
                if a > 0 {
                    blend(picture, x, y, color, a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mask;

    #[test]
    fn dilation_grows_a_dot_into_a_disc() {
        let mut m = Mask::new(21, 21);
        m.add(10, 10, 255);
        let d = m.dilated(4.0);
        assert_eq!(d.get(14, 10), 255);
        assert_eq!(d.get(10, 6), 255);
        assert_eq!(d.get(13, 13), 255, "inside the disc");
        assert_eq!(d.get(14, 14), 0, "the corner of the square is not");
        assert_eq!(d.get(15, 10), 0);
        let s = m.shadow(2, 3, 0);
        assert_eq!((s.get(12, 13), s.get(10, 10)), (255, 0));
    }
}
