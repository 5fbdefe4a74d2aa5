//! Affine maps and resampling: how a layer that is rotated, skewed,
//! flipped or zoomed is drawn. A layer whose map is a whole-pixel
//! translation skips all of this and is blended as it is.

use super::frame::Frame;

/// `(x, y) ↦ (a·x + b·y + c, d·x + e·y + f)`, in pixels, y down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
    pub e: f64,
    pub f: f64,
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        d: 0.0,
        e: 1.0,
        f: 0.0,
    };

    pub fn translate(x: f64, y: f64) -> Affine {
        Affine {
            c: x,
            f: y,
            ..Affine::IDENTITY
        }
    }

    pub fn scale(sx: f64, sy: f64) -> Affine {
        Affine {
            a: sx,
            e: sy,
            ..Affine::IDENTITY
        }
    }

    /// Clockwise on screen (y grows downwards) by `degrees`.
    pub fn rotate(degrees: f64) -> Affine {
        let (s, c) = degrees.to_radians().sin_cos();
        Affine {
            a: c,
            b: -s,
            d: s,
            e: c,
            ..Affine::IDENTITY
        }
    }

    /// Shears x by `kx`·y and y by `ky`·x.
    pub fn shear(kx: f64, ky: f64) -> Affine {
        Affine {
            b: kx,
            d: ky,
            ..Affine::IDENTITY
        }
    }

    /// `self ∘ other`: `other` first, then `self`.
    pub fn then_after(self, other: Affine) -> Affine {
        let (m, n) = (self, other);
        Affine {
            a: m.a * n.a + m.b * n.d,
            b: m.a * n.b + m.b * n.e,
            c: m.a * n.c + m.b * n.f + m.c,
            d: m.d * n.a + m.e * n.d,
            e: m.d * n.b + m.e * n.e,
            f: m.d * n.c + m.e * n.f + m.f,
        }
    }

    /// `m` applied about the point (`x`, `y`).
    pub fn about(m: Affine, x: f64, y: f64) -> Affine {
        Affine::translate(x, y)
            .then_after(m)
            .then_after(Affine::translate(-x, -y))
    }

    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.a * x + self.b * y + self.c,
            self.d * x + self.e * y + self.f,
        )
    }

    /// The inverse map, if the map does not flatten the plane.
    pub fn invert(&self) -> Option<Affine> {
        let det = self.a * self.e - self.b * self.d;
        if det.abs() < 1e-9 {
            return None;
        }
        let (a, b, d, e) = (self.e / det, -self.b / det, -self.d / det, self.a / det);
        Some(Affine {
            a,
            b,
            c: -(a * self.c + b * self.f),
            d,
            e,
            f: -(d * self.c + e * self.f),
        })
    }

    /// A whole-pixel translation: the offset, if so.
    pub fn as_shift(&self) -> Option<(i64, i64)> {
        let whole = |v: f64| (v - v.round()).abs() < 1e-6;
        let unit = (self.a - 1.0).abs() < 1e-9
            && self.b.abs() < 1e-9
            && self.d.abs() < 1e-9
            && (self.e - 1.0).abs() < 1e-9;
        (unit && whole(self.c) && whole(self.f))
            .then(|| (self.c.round() as i64, self.f.round() as i64))
    }
}

/// `src` drawn through `map` (source pixels → canvas pixels), clipped to
/// a `width`×`height` canvas: the resampled layer with its alpha, and the
/// canvas position of its top-left corner (on the chroma grid). `None`
/// when nothing of it lands on the canvas.
pub fn warp(src: &Frame, map: &Affine, width: u32, height: u32) -> Option<(Frame, i64, i64)> {
    let inv = map.invert()?;
    let (sw, sh) = (f64::from(src.width), f64::from(src.height));
    let corners = [(0.0, 0.0), (sw, 0.0), (0.0, sh), (sw, sh)].map(|(x, y)| map.apply(x, y));
    let min_x = corners.iter().map(|p| p.0).fold(f64::MAX, f64::min).floor() as i64;
    let max_x = corners.iter().map(|p| p.0).fold(f64::MIN, f64::max).ceil() as i64;
    let min_y = corners.iter().map(|p| p.1).fold(f64::MAX, f64::min).floor() as i64;
    let max_y = corners.iter().map(|p| p.1).fold(f64::MIN, f64::max).ceil() as i64;
    // Even corners keep the layer's chroma on the canvas's chroma grid.
    let x0 = (min_x.max(0) / 2) * 2;
    let y0 = (min_y.max(0) / 2) * 2;
    let x1 = max_x.min(i64::from(width));
    let y1 = max_y.min(i64::from(height));
    if x0 >= x1 || y0 >= y1 {
        return None;
    }
    let (w, h) = ((x1 - x0) as u32, (y1 - y0) as u32);
    let mut out = Frame {
        width: w,
        height: h,
        y: vec![0; w as usize * h as usize],
        u: vec![128; super::frame::chroma(w) as usize * super::frame::chroma(h) as usize],
        v: vec![128; super::frame::chroma(w) as usize * super::frame::chroma(h) as usize],
        a: Some(vec![0; w as usize * h as usize]),
    };
    let luma = Plane {
        data: &src.y,
        width: src.width as usize,
        height: src.height as usize,
    };
    let alpha = src.a.as_deref();
    for row in 0..h as usize {
        // Sample at pixel centres.
        let cy = (y0 as usize + row) as f64 + 0.5;
        let (mut sx, mut sy) = inv.apply(x0 as f64 + 0.5, cy);
        for col in 0..w as usize {
            let (fx, fy) = (sx - 0.5, sy - 0.5);
            let cover = coverage(alpha, src.width as usize, src.height as usize, fx, fy);
            let i = row * w as usize + col;
            if cover > 0 {
                out.y[i] = luma.sample(fx, fy);
                if let Some(a) = out.a.as_mut() {
                    a[i] = cover;
                }
            }
            sx += inv.a;
            sy += inv.d;
        }
    }
    let (ucw, uch) = (out.chroma_width() as usize, out.chroma_height() as usize);
    let chroma_plane = |data| Plane {
        data,
        width: src.chroma_width() as usize,
        height: src.chroma_height() as usize,
    };
    let (pu, pv) = (chroma_plane(&src.u), chroma_plane(&src.v));
    for crow in 0..uch {
        // The centre of the 2×2 block of this chroma sample, in canvas
        // pixels, mapped back to the source, in chroma pixels.
        let cy = (y0 as usize + 2 * crow) as f64 + 1.0;
        let (mut sx, mut sy) = inv.apply(x0 as f64 + 1.0, cy);
        for ccol in 0..ucw {
            let (fx, fy) = (sx / 2.0 - 0.5, sy / 2.0 - 0.5);
            let i = crow * ucw + ccol;
            out.u[i] = pu.sample(fx, fy);
            out.v[i] = pv.sample(fx, fy);
            sx += 2.0 * inv.a;
            sy += 2.0 * inv.d;
        }
    }
    Some((out, x0, y0))
}

struct Plane<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
}

impl Plane<'_> {
    /// Bilinear at (`x`, `y`) (sample centres at whole numbers), clamped
    /// to the edges.
    fn sample(&self, x: f64, y: f64) -> u8 {
        let x = x.clamp(0.0, (self.width - 1) as f64);
        let y = y.clamp(0.0, (self.height - 1) as f64);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.width - 1), (y0 + 1).min(self.height - 1));
        let (tx, ty) = (x - x0 as f64, y - y0 as f64);
        let p = |xx: usize, yy: usize| f64::from(self.data[yy * self.width + xx]);
        let top = p(x0, y0) * (1.0 - tx) + p(x1, y0) * tx;
        let bottom = p(x0, y1) * (1.0 - tx) + p(x1, y1) * tx;
        (top * (1.0 - ty) + bottom * ty).round() as u8
    }
}

/// How much of the source covers (`x`, `y`): its alpha there, bilinear,
/// with transparency outside it, so that edges are smooth.
fn coverage(alpha: Option<&[u8]>, w: usize, h: usize, x: f64, y: f64) -> u8 {
    if x <= -1.0 || y <= -1.0 || x >= w as f64 || y >= h as f64 {
        return 0;
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (tx, ty) = (x - x0, y - y0);
    let at = |xx: f64, yy: f64| -> f64 {
        if xx < 0.0 || yy < 0.0 || xx >= w as f64 || yy >= h as f64 {
            0.0
        } else {
            alpha.map_or(255.0, |a| f64::from(a[yy as usize * w + xx as usize]))
        }
    };
    let top = at(x0, y0) * (1.0 - tx) + at(x0 + 1.0, y0) * tx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - tx) + at(x0 + 1.0, y0 + 1.0) * tx;
    (top * (1.0 - ty) + bottom * ty).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_compose_and_invert() {
        let m = Affine::translate(10.0, 5.0).then_after(Affine::rotate(90.0));
        let (x, y) = m.apply(1.0, 0.0);
        assert!((x - 10.0).abs() < 1e-9 && (y - 6.0).abs() < 1e-9, "{x} {y}");
        let back = m.invert().unwrap().apply(x, y);
        assert!((back.0 - 1.0).abs() < 1e-9 && back.1.abs() < 1e-9);
        assert_eq!(Affine::translate(3.0, -4.0).as_shift(), Some((3, -4)));
        assert_eq!(Affine::scale(2.0, 2.0).as_shift(), None);
        assert!(Affine::shear(1.0, 1.0).invert().is_none(), "flat");
    }

    #[test]
    fn a_rotated_square_covers_its_diamond() {
        let src = Frame::filled(20, 20, [255, 255, 255, 255]);
        let map = Affine::translate(50.0, 50.0)
            .then_after(Affine::rotate(45.0))
            .then_after(Affine::translate(-10.0, -10.0));
        let (out, x0, y0) = warp(&src, &map, 100, 100).unwrap();
        let alpha_at = |x: i64, y: i64| out.alpha_at((x - x0) as u32, (y - y0) as u32);
        assert_eq!(alpha_at(50, 50), 255, "centre");
        assert_eq!(alpha_at(50, 37), 255, "a point on the diagonal, inside");
        assert_eq!(
            alpha_at(x0 + 1, y0 + 1),
            0,
            "the bounding box's corner is outside"
        );
    }

    #[test]
    fn flipping_mirrors() {
        let mut src = Frame::filled(4, 2, [0, 0, 0, 255]);
        src.y[0] = 235;
        src.y[4] = 235;
        let map = Affine::about(Affine::scale(-1.0, 1.0), 2.0, 1.0);
        let (out, x0, _) = warp(&src, &map, 4, 2).unwrap();
        assert_eq!(x0, 0);
        assert_eq!(out.y[3], 235);
        assert_eq!(out.y[0], 16);
    }
}
