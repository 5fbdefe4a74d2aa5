//! RGBA pictures and the canvas they are blended onto.

use crate::plan::Rgba;

/// A picture in 8-bit RGBA, not premultiplied, rows packed.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Picture {
    pub fn new(width: u32, height: u32) -> Picture {
        Picture {
            width,
            height,
            data: vec![0; width as usize * height as usize * 4],
        }
    }

    pub fn filled(width: u32, height: u32, color: Rgba) -> Picture {
        let mut p = Picture::new(width, height);
        for px in p.data.chunks_exact_mut(4) {
            px.copy_from_slice(&color);
        }
        p
    }

    pub fn pixel(&self, x: u32, y: u32) -> Rgba {
        let i = (y as usize * self.width as usize + x as usize) * 4;
        [
            self.data[i],
            self.data[i + 1],
            self.data[i + 2],
            self.data[i + 3],
        ]
    }
}

/// The output frame being composed: opaque RGBA.
pub struct Canvas {
    pub picture: Picture,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            picture: Picture::new(width, height),
        }
    }

    pub fn clear(&mut self, color: Rgba) {
        // The background is opaque: a translucent one is blended over black.
        let a = u32::from(color[3]);
        let c = [
            (u32::from(color[0]) * a / 255) as u8,
            (u32::from(color[1]) * a / 255) as u8,
            (u32::from(color[2]) * a / 255) as u8,
            255,
        ];
        for px in self.picture.data.chunks_exact_mut(4) {
            px.copy_from_slice(&c);
        }
    }

    /// Blends `src` with its top-left corner at (`x`, `y`) — which may lie
    /// outside the canvas — scaled in alpha by `opacity` (0–1).
    pub fn draw(&mut self, src: &Picture, x: i64, y: i64, opacity: f64) {
        let opacity = (opacity.clamp(0.0, 1.0) * 256.0) as u32;
        if opacity == 0 {
            return;
        }
        let (cw, ch) = (
            i64::from(self.picture.width),
            i64::from(self.picture.height),
        );
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + i64::from(src.width)).min(cw);
        let y1 = (y + i64::from(src.height)).min(ch);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let span = (x1 - x0) as usize * 4;
        for row in y0..y1 {
            let s = ((row - y) as usize * src.width as usize + (x0 - x) as usize) * 4;
            let d = (row as usize * self.picture.width as usize + x0 as usize) * 4;
            blend_row(
                &mut self.picture.data[d..d + span],
                &src.data[s..s + span],
                opacity,
            );
        }
    }
}

/// `dst = src·α + dst·(1−α)` per channel, α = src alpha × opacity/256.
fn blend_row(dst: &mut [u8], src: &[u8], opacity: u32) {
    for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let a = u32::from(s[3]) * opacity / 256;
        if a == 0 {
            continue;
        }
        if a >= 255 {
            d[..3].copy_from_slice(&s[..3]);
            continue;
        }
        let inv = 255 - a;
        for c in 0..3 {
            d[c] = ((u32::from(s[c]) * a + u32::from(d[c]) * inv + 127) / 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_clipped_and_blended() {
        let mut canvas = Canvas::new(4, 4);
        canvas.clear([0, 0, 255, 255]);
        canvas.draw(&Picture::filled(2, 2, [255, 0, 0, 255]), 3, -1, 1.0);
        assert_eq!(canvas.picture.pixel(3, 0), [255, 0, 0, 255]);
        assert_eq!(canvas.picture.pixel(2, 0), [0, 0, 255, 255]);
        assert_eq!(canvas.picture.pixel(3, 1), [0, 0, 255, 255]);
        canvas.draw(&Picture::filled(4, 4, [255, 255, 255, 255]), 0, 0, 0.5);
        let [r, _, b, _] = canvas.picture.pixel(0, 3);
        assert!((126..=130).contains(&r) && b == 255, "{r} {b}");
        canvas.draw(&Picture::filled(9, 9, [0, 0, 0, 255]), -100, -100, 1.0);
    }
}
