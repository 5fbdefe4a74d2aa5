//! The clip filters of the Edit (`boost`, `contrast`, `darken`,
//! `greyscale`, `lighten`, `muted`, `negative`) as lookup tables on the
//! YUV planes: luma carries brightness and contrast, chroma distance from
//! grey carries saturation, so every filter is one table per plane.

use super::frame::Frame;
use crate::engine::edit::Filter;

/// Limited-range luma: black, white, and the middle grey contrast pivots on.
const BLACK: f64 = 16.0;
const WHITE: f64 = 235.0;
const MID: f64 = (BLACK + WHITE) / 2.0;

pub struct Lut {
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl Lut {
    pub fn new(filter: Filter) -> Lut {
        // (contrast around mid-grey, brightness shift as a fraction of the
        // range, saturation), then special cases.
        let (contrast, bright, saturation) = match filter {
            Filter::Boost => (1.25, 0.0, 1.6),
            Filter::Contrast => (1.5, 0.0, 1.1),
            Filter::Darken => (1.0, -0.25, 0.9),
            Filter::Lighten => (1.0, 0.25, 0.9),
            Filter::Muted => (0.8, 0.0, 0.45),
            Filter::Greyscale => (1.0, 0.0, 0.0),
            Filter::Negative => (-1.0, 0.0, -1.0),
        };
        let clamp = |v: f64, lo: f64, hi: f64| v.round().clamp(lo, hi) as u8;
        let mut luma = [0u8; 256];
        let mut chroma = [0u8; 256];
        for i in 0..256 {
            let y = i as f64;
            let mut out = MID + (y - MID) * contrast;
            // Brightness moves toward white or black in proportion, so
            // blacks stay black when lightening by a little, and so on.
            if bright > 0.0 {
                out += (WHITE - out) * bright;
            } else if bright < 0.0 {
                out += (out - BLACK) * bright;
            }
            luma[i] = clamp(out, BLACK, WHITE);
            chroma[i] = clamp(128.0 + (i as f64 - 128.0) * saturation, 16.0, 240.0);
        }
        Lut { luma, chroma }
    }

    pub fn apply(&self, frame: &mut Frame) {
        for y in frame.y.iter_mut() {
            *y = self.luma[usize::from(*y)];
        }
        for c in frame.u.iter_mut().chain(frame.v.iter_mut()) {
            *c = self.chroma[usize::from(*c)];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(filter: Filter, rgb: [u8; 3]) -> [u8; 3] {
        let mut f = Frame::filled(2, 2, [rgb[0], rgb[1], rgb[2], 255]);
        Lut::new(filter).apply(&mut f);
        f.rgb_at(0, 0)
    }

    fn spread(c: [u8; 3]) -> i32 {
        i32::from(*c.iter().max().unwrap()) - i32::from(*c.iter().min().unwrap())
    }

    #[test]
    fn each_filter_does_what_its_name_says() {
        let orange = [220, 120, 40];
        let grey = filtered(Filter::Greyscale, orange);
        assert!(spread(grey) <= 3, "{grey:?}");
        let neg = filtered(Filter::Negative, [255, 255, 255]);
        assert!(neg.iter().all(|&c| c <= 3), "{neg:?}");
        let neg = filtered(Filter::Negative, [255, 0, 0]);
        assert!(neg[0] < 40 && neg[1] > 200 && neg[2] > 200, "{neg:?}");
        let luma = |c: [u8; 3]| {
            0.2126 * f64::from(c[0]) + 0.7152 * f64::from(c[1]) + 0.0722 * f64::from(c[2])
        };
        assert!(luma(filtered(Filter::Darken, orange)) < luma(orange) - 20.0);
        assert!(luma(filtered(Filter::Lighten, orange)) > luma(orange) + 20.0);
        assert!(spread(filtered(Filter::Muted, orange)) < spread(orange) * 2 / 3);
        assert!(spread(filtered(Filter::Boost, orange)) > spread(orange));
        // Contrast pushes darks darker and lights lighter.
        let dark = [60, 60, 60];
        let light = [200, 200, 200];
        assert!(filtered(Filter::Contrast, dark)[0] < 50);
        assert!(filtered(Filter::Contrast, light)[0] > 215);
    }
}
