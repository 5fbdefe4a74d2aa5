//! Frames in planar YUV 4:2:0, the format every layer is composed in and
//! the encoders take. Composing in the encoder's own format means a
//! decoded video frame reaches the output without a round trip through
//! RGB, which is most of the cost of a render after encoding itself.
//!
//! Colours are BT.709 with limited ("TV") range, the convention of HD web
//! video; the encoders tag their streams so. Alpha, when a layer has it,
//! is a full-resolution plane; chroma is blended with the mean alpha of
//! its 2×2 block.

use crate::engine::plan::Rgba;

/// A picture in YUV 4:2:0: luma `width`×`height`, chroma
/// `ceil(width/2)`×`ceil(height/2)`, rows packed; an optional full-size
/// alpha plane (`None`: opaque).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    pub a: Option<Vec<u8>>,
}

/// The size of a chroma plane for a luma plane of `n` pixels across.
pub fn chroma(n: u32) -> u32 {
    n.div_ceil(2)
}

impl Frame {
    /// An opaque frame filled with one colour.
    pub fn filled(width: u32, height: u32, color: Rgba) -> Frame {
        let (y, u, v) = rgb_to_yuv(color[0], color[1], color[2]);
        let (cw, ch) = (chroma(width) as usize, chroma(height) as usize);
        Frame {
            width,
            height,
            y: vec![y; width as usize * height as usize],
            u: vec![u; cw * ch],
            v: vec![v; cw * ch],
            a: None,
        }
    }

    pub fn chroma_width(&self) -> u32 {
        chroma(self.width)
    }

    pub fn chroma_height(&self) -> u32 {
        chroma(self.height)
    }

    /// Fills the frame with one opaque colour, keeping its buffers.
    pub fn fill(&mut self, color: Rgba) {
        let (y, u, v) = rgb_to_yuv(color[0], color[1], color[2]);
        self.y.fill(y);
        self.u.fill(u);
        self.v.fill(v);
        if let Some(a) = self.a.as_mut() {
            a.fill(255);
        }
    }

    /// The RGB colour at (`x`, `y`), for tests and diagnostics.
    pub fn rgb_at(&self, x: u32, y: u32) -> [u8; 3] {
        let l = self.y[(y * self.width + x) as usize];
        let c = ((y / 2) * self.chroma_width() + x / 2) as usize;
        yuv_to_rgb(l, self.u[c], self.v[c])
    }

    /// The alpha at (`x`, `y`): 255 for an opaque frame.
    pub fn alpha_at(&self, x: u32, y: u32) -> u8 {
        self.a
            .as_ref()
            .map_or(255, |a| a[(y * self.width + x) as usize])
    }

    /// Converts a straight-alpha RGBA picture (titles, stills). Chroma is
    /// the alpha-weighted mean of each 2×2 block, so that the colour of
    /// transparent pixels does not bleed into the edges of what is drawn.
    pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Frame {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (chroma(width) as usize, chroma(height) as usize);
        let mut y = vec![0u8; w * h];
        let mut a = vec![0u8; w * h];
        let mut opaque = true;
        for (i, px) in rgba.chunks_exact(4).take(w * h).enumerate() {
            y[i] = rgb_to_yuv(px[0], px[1], px[2]).0;
            a[i] = px[3];
            opaque &= px[3] == 255;
        }
        let mut u = vec![128u8; cw * ch];
        let mut v = vec![128u8; cw * ch];
        for cy in 0..ch {
            for cx in 0..cw {
                let (mut sr, mut sg, mut sb, mut sa) = (0u32, 0u32, 0u32, 0u32);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (px, py) = (2 * cx + dx, 2 * cy + dy);
                    if px >= w || py >= h {
                        continue;
                    }
                    let p = &rgba[(py * w + px) * 4..(py * w + px) * 4 + 4];
                    let al = u32::from(p[3]) + 1;
                    sr += u32::from(p[0]) * al;
                    sg += u32::from(p[1]) * al;
                    sb += u32::from(p[2]) * al;
                    sa += al;
                }
                let (_, cu, cv) = rgb_to_yuv((sr / sa) as u8, (sg / sa) as u8, (sb / sa) as u8);
                u[cy * cw + cx] = cu;
                v[cy * cw + cx] = cv;
            }
        }
        Frame {
            width,
            height,
            y,
            u,
            v,
            a: if opaque { None } else { Some(a) },
        }
    }
}

/// BT.709 luma weights of R and B (G takes the rest).
const KR: f64 = 0.2126;
const KB: f64 = 0.0722;

/// One RGB colour in BT.709 limited-range YUV.
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let (r, g, b) = (
        f64::from(r) / 255.0,
        f64::from(g) / 255.0,
        f64::from(b) / 255.0,
    );
    let y = KR * r + (1.0 - KR - KB) * g + KB * b;
    let u = (b - y) / (2.0 * (1.0 - KB));
    let v = (r - y) / (2.0 * (1.0 - KR));
    let q = |x: f64| x.round().clamp(0.0, 255.0) as u8;
    (
        q(16.0 + 219.0 * y),
        q(128.0 + 224.0 * u),
        q(128.0 + 224.0 * v),
    )
}

/// The inverse of [`rgb_to_yuv`].
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let y = (f64::from(y) - 16.0) / 219.0;
    let u = (f64::from(u) - 128.0) / 224.0;
    let v = (f64::from(v) - 128.0) / 224.0;
    let r = y + 2.0 * (1.0 - KR) * v;
    let b = y + 2.0 * (1.0 - KB) * u;
    let g = (y - KR * r - KB * b) / (1.0 - KR - KB);
    let q = |x: f64| (x * 255.0).round().clamp(0.0, 255.0) as u8;
    [q(r), q(g), q(b)]
}

/// The colour matrix and range a decoded source frame was made with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceColor {
    /// Luma weights (kr, kb) of the source's matrix.
    pub matrix: (f64, f64),
    pub full_range: bool,
}

impl SourceColor {
    pub const BT709: SourceColor = SourceColor {
        matrix: (KR, KB),
        full_range: false,
    };
    pub const BT601: (f64, f64) = (0.299, 0.114);
}

/// A per-pixel map from a source's YUV to the output's (BT.709 limited):
/// `Y' = ky·(Y−y0) + 16 + yu·(U−128) + yv·(V−128)`,
/// `U' = uu·(U−128) + uv·(V−128) + 128`, `V'` likewise — each term a
/// 256-entry table in 16.16 fixed point, since it runs on every pixel of
/// every frame of such a source.
#[derive(Clone, PartialEq)]
pub struct ColorMap {
    luma: [i32; 256],
    yu: [i32; 256],
    yv: [i32; 256],
    uu: [i32; 256],
    uv: [i32; 256],
    vu: [i32; 256],
    vv: [i32; 256],
}

impl std::fmt::Debug for ColorMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColorMap").finish_non_exhaustive()
    }
}

impl ColorMap {
    /// `None` when the source is already BT.709 limited range.
    pub fn to_output(src: SourceColor) -> Option<ColorMap> {
        if src == SourceColor::BT709 {
            return None;
        }
        // Source YUV (normalised) → R'G'B' → BT.709 YUV. The luma row of
        // the product weighs Y by exactly 1 (both matrices map grey to
        // grey), so only the chroma terms of Y' and the chroma block differ.
        let (skr, skb) = src.matrix;
        let to_rgb = |cb: f64, cr: f64| {
            let r = 2.0 * (1.0 - skr) * cr;
            let b = 2.0 * (1.0 - skb) * cb;
            let g = -(skr * r + skb * b) / (1.0 - skr - skb);
            (r, g, b)
        };
        let to_yuv = |(r, g, b): (f64, f64, f64)| {
            let y = KR * r + (1.0 - KR - KB) * g + KB * b;
            (
                (b - y) / (2.0 * (1.0 - KB)),
                (r - y) / (2.0 * (1.0 - KR)),
                y,
            )
        };
        let (cb_u, cr_u, y_u) = to_yuv(to_rgb(1.0, 0.0));
        let (cb_v, cr_v, y_v) = to_yuv(to_rgb(0.0, 1.0));
        // Scales from the source's code values to normalised units, and
        // from normalised units to the output's limited-range codes.
        let (sy, sc, y0) = if src.full_range {
            (255.0, 255.0, 0.0)
        } else {
            (219.0, 224.0, 16.0)
        };
        let table = |f: &dyn Fn(f64) -> f64| {
            let mut t = [0i32; 256];
            for (i, v) in t.iter_mut().enumerate() {
                *v = (f(i as f64) * 65536.0).round() as i32;
            }
            t
        };
        let chroma = |k: f64| table(&move |c| k * (c - 128.0));
        Some(ColorMap {
            luma: table(&|y| (y - y0) * 219.0 / sy + 16.0 + 0.5),
            yu: chroma(y_u * 219.0 / sc),
            yv: chroma(y_v * 219.0 / sc),
            uu: chroma(cb_u * 224.0 / sc),
            uv: chroma(cb_v * 224.0 / sc),
            vu: chroma(cr_u * 224.0 / sc),
            vv: chroma(cr_v * 224.0 / sc),
        })
    }

    /// Rewrites a frame's planes in place; the chroma terms of luma are
    /// worked out once per 2×2 block.
    pub fn apply(&self, frame: &mut Frame) {
        let (w, cw) = (frame.width as usize, frame.chroma_width() as usize);
        if w == 0 {
            return;
        }
        let clamp = |x: i32| (x >> 16).clamp(0, 255) as u8;
        let mut shift = vec![0i32; cw];
        for (row, line) in frame.y.chunks_exact_mut(w).enumerate() {
            if row % 2 == 0 {
                let crow = &frame.u[(row / 2) * cw..(row / 2 + 1) * cw];
                let vrow = &frame.v[(row / 2) * cw..(row / 2 + 1) * cw];
                for ((d, u), v) in shift.iter_mut().zip(crow).zip(vrow) {
                    *d = self.yu[usize::from(*u)] + self.yv[usize::from(*v)];
                }
            }
            for (pair, d) in line.chunks_mut(2).zip(&shift) {
                for l in pair {
                    *l = clamp(self.luma[usize::from(*l)] + d);
                }
            }
        }
        let half = 128 << 16;
        for (pu, pv) in frame.u.iter_mut().zip(frame.v.iter_mut()) {
            let (u, v) = (usize::from(*pu), usize::from(*pv));
            *pu = clamp(self.uu[u] + self.uv[v] + half + 32768);
            *pv = clamp(self.vu[u] + self.vv[v] + half + 32768);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= tol)
    }

    #[test]
    fn rgb_round_trips_through_yuv() {
        for c in [
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [255, 255, 0],
            [12, 200, 90],
            [0, 0, 0],
            [255, 255, 255],
        ] {
            let (y, u, v) = rgb_to_yuv(c[0], c[1], c[2]);
            assert!(near(yuv_to_rgb(y, u, v), c, 2), "{c:?}");
        }
        assert_eq!(rgb_to_yuv(0, 0, 0), (16, 128, 128));
        assert_eq!(rgb_to_yuv(255, 255, 255), (235, 128, 128));
    }

    #[test]
    fn a_bt601_source_keeps_its_colours() {
        // Red as a BT.601 limited-range encoder writes it.
        let mut f = Frame {
            width: 2,
            height: 2,
            y: vec![81; 4],
            u: vec![90],
            v: vec![240],
            a: None,
        };
        let map = ColorMap::to_output(SourceColor {
            matrix: SourceColor::BT601,
            full_range: false,
        })
        .expect("a conversion");
        map.apply(&mut f);
        assert!(near(f.rgb_at(1, 1), [255, 0, 0], 3), "{:?}", f.rgb_at(1, 1));
        assert!(ColorMap::to_output(SourceColor::BT709).is_none());
    }

    #[test]
    fn full_range_grey_becomes_limited() {
        let mut f = Frame {
            width: 2,
            height: 1,
            y: vec![0, 255],
            u: vec![128],
            v: vec![128],
            a: None,
        };
        ColorMap::to_output(SourceColor {
            matrix: SourceColor::BT601,
            full_range: true,
        })
        .expect("a conversion")
        .apply(&mut f);
        assert_eq!(f.y, vec![16, 235]);
    }

    #[test]
    fn transparent_pixels_do_not_tint_edges() {
        // A red pixel beside three transparent green ones.
        let rgba = [
            255, 0, 0, 255, 0, 255, 0, 0, //
            0, 255, 0, 0, 0, 255, 0, 0,
        ];
        let f = Frame::from_rgba(2, 2, &rgba);
        assert!(
            near(f.rgb_at(0, 0), [255, 0, 0], 40),
            "{:?}",
            f.rgb_at(0, 0)
        );
        assert_eq!(f.alpha_at(0, 0), 255);
        assert_eq!(f.alpha_at(1, 1), 0);
    }
}
