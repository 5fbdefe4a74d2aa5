//! Where a clip goes: its size from `fit` and `scale`, its place from
//! `position` and `offset` (Shotstack's rules).

use crate::engine::edit::{Fit, Position};

/// A rectangle in output pixels; it may extend past the viewport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i64,
    pub y: i64,
    pub width: u32,
    pub height: u32,
}

/// The size of a `src_w`×`src_h` source in a `vw`×`vh` viewport.
pub fn fitted_size(src_w: u32, src_h: u32, vw: u32, vh: u32, fit: Fit, scale: f64) -> (u32, u32) {
    let (sw, sh, w, h) = (
        f64::from(src_w.max(1)),
        f64::from(src_h.max(1)),
        f64::from(vw),
        f64::from(vh),
    );
    let (fw, fh) = match fit {
        // Fill the viewport, keep the aspect ratio, crop what overflows.
        Fit::Crop => {
            let k = (w / sw).max(h / sh);
            (sw * k, sh * k)
        }
        // Stretch to the viewport.
        Fit::Cover => (w, h),
        // All of it inside the viewport, aspect ratio kept.
        Fit::Contain => {
            let k = (w / sw).min(h / sh);
            (sw * k, sh * k)
        }
        Fit::None => (sw, sh),
    };
    let scale = if scale > 0.0 { scale } else { 1.0 };
    (
        ((fw * scale).round() as u32).max(1),
        ((fh * scale).round() as u32).max(1),
    )
}

/// Places a `w`×`h` box in the viewport. Offsets are fractions of the
/// viewport; a positive y moves up.
pub fn place(w: u32, h: u32, vw: u32, vh: u32, position: Position, offset: (f64, f64)) -> Rect {
    let (free_x, free_y) = (i64::from(vw) - i64::from(w), i64::from(vh) - i64::from(h));
    let (left, center_x, right) = (0, free_x / 2, free_x);
    let (top, center_y, bottom) = (0, free_y / 2, free_y);
    let (x, y) = match position {
        Position::TopLeft => (left, top),
        Position::Top => (center_x, top),
        Position::TopRight => (right, top),
        Position::Left => (left, center_y),
        Position::Center => (center_x, center_y),
        Position::Right => (right, center_y),
        Position::BottomLeft => (left, bottom),
        Position::Bottom => (center_x, bottom),
        Position::BottomRight => (right, bottom),
    };
    Rect {
        x: x + (offset.0 * f64::from(vw)).round() as i64,
        y: y - (offset.1 * f64::from(vh)).round() as i64,
        width: w,
        height: h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits() {
        assert_eq!(fitted_size(100, 50, 200, 200, Fit::Crop, 1.0), (400, 200));
        assert_eq!(
            fitted_size(100, 50, 200, 200, Fit::Contain, 1.0),
            (200, 100)
        );
        assert_eq!(fitted_size(100, 50, 200, 200, Fit::Cover, 1.0), (200, 200));
        assert_eq!(fitted_size(100, 50, 200, 200, Fit::None, 0.5), (50, 25));
    }

    #[test]
    fn places() {
        assert_eq!(
            place(10, 10, 100, 50, Position::TopRight, (0.0, 0.0)),
            Rect {
                x: 90,
                y: 0,
                width: 10,
                height: 10
            }
        );
        assert_eq!(
            place(10, 10, 100, 50, Position::Center, (0.1, 0.2)),
            Rect {
                x: 55,
                y: 10,
                width: 10,
                height: 10
            }
        );
        assert_eq!(
            place(10, 10, 100, 50, Position::BottomLeft, (0.0, 0.0)).y,
            40
        );
    }
}
