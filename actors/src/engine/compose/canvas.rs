//! RGBA pictures (text and stills as they are rasterised) and the YUV
//! canvas every layer is blended onto.

use super::frame::Frame;
use crate::engine::plan::Rgba;

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

/// Limits on a layer's visibility besides its own alpha, for one frame.
#[derive(Debug, Clone, Copy)]
pub struct Coverage<'a> {
    /// The layer's opacity after fades, 0–256.
    pub alpha: u32,
    /// A multiplier (0–255) per canvas column: wipes and reveals.
    pub columns: Option<&'a [u8]>,
    /// A multiplier (0–255) per canvas pixel: a luma matte.
    pub matte: Option<&'a [u8]>,
}

impl Coverage<'_> {
    pub fn opaque() -> Coverage<'static> {
        Coverage {
            alpha: 256,
            columns: None,
            matte: None,
        }
    }
}

/// The output frame being composed: opaque YUV 4:2:0.
pub struct Canvas {
    pub frame: Frame,
    /// Effective alpha of each pixel of the area being drawn, reused.
    scratch: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            frame: Frame::filled(width, height, [0, 0, 0, 255]),
            scratch: Vec::new(),
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
        self.frame.fill(c);
    }

    /// Blends `src` with its top-left corner at (`x`, `y`) — which may lie
    /// outside the canvas — limited by `cov`.
    pub fn draw(&mut self, src: &Frame, x: i64, y: i64, cov: &Coverage) {
        if cov.alpha == 0 {
            return;
        }
        let (cw, ch) = (i64::from(self.frame.width), i64::from(self.frame.height));
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + i64::from(src.width)).min(cw);
        let y1 = (y + i64::from(src.height)).min(ch);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let (aw, ah) = ((x1 - x0) as usize, (y1 - y0) as usize);
        let plain =
            src.a.is_none() && cov.alpha >= 256 && cov.columns.is_none() && cov.matte.is_none();
        let width = self.frame.width as usize;
        let sw = src.width as usize;
        if plain {
            for row in 0..ah {
                let (dy, sy) = (y0 as usize + row, (y0 - y) as usize + row);
                let d = dy * width + x0 as usize;
                let s = sy * sw + (x0 - x) as usize;
                self.frame.y[d..d + aw].copy_from_slice(&src.y[s..s + aw]);
            }
            if x % 2 == 0 && y % 2 == 0 {
                self.copy_chroma(src, x, y, x0, y0, x1, y1);
                return;
            }
        }
        // The effective alpha of every pixel of the area, then luma, then
        // chroma with the mean alpha of each 2×2 block.
        let mut alpha = std::mem::take(&mut self.scratch);
        alpha.clear();
        alpha.resize(aw * ah, 0);
        for row in 0..ah {
            let (dy, sy) = (y0 as usize + row, (y0 - y) as usize + row);
            let out = &mut alpha[row * aw..(row + 1) * aw];
            let s = sy * sw + (x0 - x) as usize;
            match &src.a {
                Some(a) => out.copy_from_slice(&a[s..s + aw]),
                None => out.fill(255),
            }
            if cov.alpha < 256 {
                let alpha = cov.alpha as u16;
                for v in out.iter_mut() {
                    *v = ((u16::from(*v) * alpha) >> 8) as u8;
                }
            }
            if let Some(cols) = cov.columns {
                for (v, c) in out.iter_mut().zip(&cols[x0 as usize..x1 as usize]) {
                    *v = mul255(*v, *c);
                }
            }
            if let Some(matte) = cov.matte {
                let m = &matte[dy * width + x0 as usize..dy * width + x1 as usize];
                for (v, c) in out.iter_mut().zip(m) {
                    *v = mul255(*v, *c);
                }
            }
            if !plain {
                let d = dy * width + x0 as usize;
                blend_row(&mut self.frame.y[d..d + aw], &src.y[s..s + aw], out);
            }
        }
        self.blend_chroma(src, x, y, (x0, y0, x1, y1), &alpha);
        self.scratch = alpha;
    }

    /// Chroma of an opaque layer whose corner lies on the chroma grid.
    #[allow(clippy::too_many_arguments)]
    fn copy_chroma(&mut self, src: &Frame, x: i64, y: i64, x0: i64, y0: i64, x1: i64, y1: i64) {
        let (dcw, scw) = (
            self.frame.chroma_width() as usize,
            src.chroma_width() as usize,
        );
        let (cx0, cx1) = ((x0 / 2) as usize, ((x1 + 1) / 2) as usize);
        let (cy0, cy1) = ((y0 / 2) as usize, ((y1 + 1) / 2) as usize);
        let (sx0, sy0) = (((x0 - x) / 2) as usize, ((y0 - y) / 2) as usize);
        let n = (cx1 - cx0).min(scw - sx0);
        for (i, cy) in (cy0..cy1).enumerate() {
            let sy = sy0 + i;
            if sy >= src.chroma_height() as usize {
                break;
            }
            let d = cy * dcw + cx0;
            let s = sy * scw + sx0;
            self.frame.u[d..d + n].copy_from_slice(&src.u[s..s + n]);
            self.frame.v[d..d + n].copy_from_slice(&src.v[s..s + n]);
        }
    }

    /// Chroma blended with the mean alpha of each 2×2 block of `alpha`
    /// (the area's effective alpha), zero outside the area.
    fn blend_chroma(
        &mut self,
        src: &Frame,
        x: i64,
        y: i64,
        area: (i64, i64, i64, i64),
        alpha: &[u8],
    ) {
        let (x0, y0, x1, y1) = area;
        let aw = (x1 - x0) as usize;
        let dcw = self.frame.chroma_width() as usize;
        let (scw, sch) = (src.chroma_width() as i64, src.chroma_height() as i64);
        // The canvas chroma columns the area touches, and the source
        // column under each: `cx - shift`, clamped to the source.
        let (c0, c1) = (x0 / 2, (x1 + 1) / 2);
        let shift = (x + 1).div_euclid(2);
        let first = (shift - c0).clamp(0, c1 - c0) as usize;
        let last = (scw - 1 + shift - c0 + 1).clamp(first as i64, c1 - c0) as usize;
        let mut sums = vec![0u16; (c1 - c0) as usize];
        let mut means = vec![0u8; sums.len()];
        for cy in y0 / 2..(y1 + 1) / 2 {
            sums.fill(0);
            for ly in [2 * cy, 2 * cy + 1] {
                if ly < y0 || ly >= y1 {
                    continue;
                }
                let row = &alpha[(ly - y0) as usize * aw..][..aw];
                // An area starting on an odd column has that column alone
                // in its first block.
                let (blocks, pairs) = match sums.split_first_mut() {
                    Some((first, rest)) if x0 % 2 == 1 => {
                        *first += u16::from(row[0]);
                        (rest, &row[1..])
                    }
                    _ => (&mut sums[..], row),
                };
                for (s, pair) in blocks.iter_mut().zip(pairs.chunks(2)) {
                    *s += pair.iter().map(|&a| u16::from(a)).sum::<u16>();
                }
            }
            for (m, s) in means.iter_mut().zip(&sums) {
                *m = ((s + 2) / 4) as u8;
            }
            // The source chroma row under this canvas chroma row.
            let sy = ((2 * cy - y).max(0) / 2).min(sch - 1) as usize;
            let srow = sy * scw as usize;
            let drow = cy as usize * dcw + c0 as usize;
            let source = |i: usize| srow + (c0 + i as i64 - shift).clamp(0, scw - 1) as usize;
            for plane in 0..2 {
                let (dst, from) = match plane {
                    0 => (&mut self.frame.u[drow..drow + means.len()], &src.u),
                    _ => (&mut self.frame.v[drow..drow + means.len()], &src.v),
                };
                // Columns clamped to the source's edge, then the run in
                // step with it.
                for i in (0..first).chain(last..means.len()) {
                    dst[i] = mix(from[source(i)], dst[i], means[i]);
                }
                if first < last {
                    let run = &from[source(first)..][..last - first];
                    blend_row(&mut dst[first..last], run, &means[first..last]);
                }
            }
        }
    }
}

/// `a·b/255`, rounded.
fn mul255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    ((t + (t >> 8)) >> 8) as u8
}

/// `s·a + d·(1−a)` for `a` in 0–255. In 16 bits (255·255 + 127 fits) and
/// without branches, so that the compiler vectorises the rows.
fn mix(s: u8, d: u8, a: u8) -> u8 {
    let (s, d, a) = (u16::from(s), u16::from(d), u16::from(a));
    ((s * a + d * (255 - a) + 127) / 255) as u8
}

fn blend_row(dst: &mut [u8], src: &[u8], alpha: &[u8]) {
    for ((d, s), a) in dst.iter_mut().zip(src).zip(alpha) {
        *d = mix(*s, *d, *a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= 3)
    }

    #[test]
    fn draws_clipped_and_opaque() {
        let mut canvas = Canvas::new(8, 8);
        canvas.clear([0, 0, 255, 255]);
        canvas.draw(
            &Frame::filled(4, 4, [255, 0, 0, 255]),
            6,
            -2,
            &Coverage::opaque(),
        );
        assert!(near(canvas.frame.rgb_at(7, 0), [255, 0, 0]));
        assert!(near(canvas.frame.rgb_at(5, 0), [0, 0, 255]));
        assert!(near(canvas.frame.rgb_at(7, 2), [0, 0, 255]));
        canvas.draw(
            &Frame::filled(9, 9, [0, 0, 0, 255]),
            -100,
            -100,
            &Coverage::opaque(),
        );
    }

    #[test]
    fn an_odd_corner_still_gets_its_colour() {
        let mut canvas = Canvas::new(8, 8);
        canvas.clear([0, 0, 255, 255]);
        canvas.draw(
            &Frame::filled(4, 4, [255, 0, 0, 255]),
            1,
            1,
            &Coverage::opaque(),
        );
        assert!(
            near(canvas.frame.rgb_at(3, 3), [255, 0, 0]),
            "{:?}",
            canvas.frame.rgb_at(3, 3)
        );
        assert!(near(canvas.frame.rgb_at(6, 6), [0, 0, 255]));
    }

    #[test]
    fn opacity_columns_and_matte_limit_a_layer() {
        let mut canvas = Canvas::new(4, 2);
        canvas.clear([0, 0, 0, 255]);
        let white = Frame::filled(4, 2, [255, 255, 255, 255]);
        let half = Coverage {
            alpha: 128,
            ..Coverage::opaque()
        };
        canvas.draw(&white, 0, 0, &half);
        let y = canvas.frame.y[0];
        assert!((123..=128).contains(&y), "half of 16..235: {y}");

        canvas.clear([0, 0, 0, 255]);
        let cols = [255, 255, 0, 0];
        canvas.draw(
            &white,
            0,
            0,
            &Coverage {
                columns: Some(&cols),
                ..Coverage::opaque()
            },
        );
        assert_eq!((canvas.frame.y[0], canvas.frame.y[3]), (235, 16));

        canvas.clear([0, 0, 0, 255]);
        let matte = [0, 0, 0, 0, 255, 255, 255, 255];
        canvas.draw(
            &white,
            0,
            0,
            &Coverage {
                matte: Some(&matte),
                ..Coverage::opaque()
            },
        );
        assert_eq!((canvas.frame.y[0], canvas.frame.y[4]), (16, 235));
    }

    /// Chroma as the 2×2 mean of the layer's alpha sets it, pixel by pixel:
    /// what `blend_chroma` computes a row at a time.
    fn chroma_by_pixel(canvas: &Frame, src: &Frame, x: i64, y: i64) -> (Vec<u8>, Vec<u8>) {
        let (w, h) = (i64::from(canvas.width), i64::from(canvas.height));
        let alpha = |lx: i64, ly: i64| -> u32 {
            let (sx, sy) = (lx - x, ly - y);
            let inside = (0..w).contains(&lx)
                && (0..h).contains(&ly)
                && (0..i64::from(src.width)).contains(&sx)
                && (0..i64::from(src.height)).contains(&sy);
            if inside {
                u32::from(src.alpha_at(sx as u32, sy as u32))
            } else {
                0
            }
        };
        let (mut u, mut v) = (canvas.u.clone(), canvas.v.clone());
        let (cw, ch) = (
            i64::from(canvas.chroma_width()),
            i64::from(canvas.chroma_height()),
        );
        let (scw, sch) = (
            i64::from(src.chroma_width()),
            i64::from(src.chroma_height()),
        );
        for cy in 0..ch {
            for cx in 0..cw {
                let (lx, ly) = (2 * cx, 2 * cy);
                let sum =
                    alpha(lx, ly) + alpha(lx + 1, ly) + alpha(lx, ly + 1) + alpha(lx + 1, ly + 1);
                let a = ((sum + 2) / 4) as u8;
                if a == 0 {
                    continue;
                }
                let sx = ((lx - x).max(0) / 2).min(scw - 1);
                let sy = ((ly - y).max(0) / 2).min(sch - 1);
                let (s, d) = ((sy * scw + sx) as usize, (cy * cw + cx) as usize);
                u[d] = mix(src.u[s], u[d], a);
                v[d] = mix(src.v[s], v[d], a);
            }
        }
        (u, v)
    }

    #[test]
    fn chroma_follows_the_mean_alpha_of_each_block_at_any_corner() {
        // A 5×3 layer with alpha and chroma varying across it, on a 9×7
        // canvas: odd sizes, odd and even corners, clipped on every side.
        let mut layer = Frame::filled(5, 3, [200, 30, 90, 255]);
        layer.a = Some((0..15).map(|i| (i * 37 % 256) as u8).collect());
        layer.u = (0..6).map(|i| 40 + 30 * i as u8).collect();
        layer.v = (0..6).map(|i| 220 - 25 * i as u8).collect();
        for x in -4..=8 {
            for y in -3..=6 {
                let mut canvas = Canvas::new(9, 7);
                canvas.clear([10, 120, 240, 255]);
                let expected = chroma_by_pixel(&canvas.frame, &layer, x, y);
                canvas.draw(&layer, x, y, &Coverage::opaque());
                assert_eq!((canvas.frame.u, canvas.frame.v), expected, "at ({x}, {y})");
            }
        }
    }

    #[test]
    fn a_translucent_layer_blends() {
        let mut canvas = Canvas::new(2, 2);
        canvas.clear([0, 0, 0, 255]);
        let mut red = Frame::filled(2, 2, [255, 0, 0, 255]);
        red.a = Some(vec![0, 255, 0, 255]);
        canvas.draw(&red, 0, 0, &Coverage::opaque());
        assert_eq!(canvas.frame.y[0], 16);
        assert!(canvas.frame.y[1] > 60);
    }
}
