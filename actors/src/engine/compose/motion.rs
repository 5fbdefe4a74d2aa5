//! Where a clip is at time t: its box from fit, scale, position and
//! offset, then moved by its motion effect, its transitions and its
//! transform. The result is one affine map from the clip's box to the
//! canvas, an opacity, and for wipes and reveals a moving edge.
//!
//! The looks, documented here because the seed names them only:
//! - effects run over the whole clip: `zoomIn`/`zoomOut` scale about the
//!   centre by +25 % (Slow +12 %, Fast +50 %); `slideLeft/Right/Up/Down`
//!   pan by 20 % of the clip (Slow 10 %, Fast 40 %), scaled up by the same
//!   amount so that no edge shows;
//! - transitions last 1 s (Slow 2 s, Fast 0.5 s; at most half the clip
//!   each when a clip has both); motion is eased (smoothstep), fades are
//!   linear:
//!   `fade` opacity; `reveal` a hard edge uncovering left→right (out: it
//!   covers right→left); `wipeLeft`/`wipeRight` a soft edge (a quarter of
//!   the clip wide) crossing to the left/right; `slide*` 10 % of the
//!   viewport with a fade; `carousel*` a whole viewport, no fade;
//!   `shuffle*` from (or, out, to) a corner side with a 30° turn and a
//!   fade — `shuffleTopRight` comes down from above the right half,
//!   `shuffleRightTop` from the right of the top half, and so on; `zoom`
//!   grows from a tenth of its size with a fade (out: shrinks);
//! - transform: `rotate` clockwise about the point named by the clip's
//!   position (its centre for `center`, its top-left corner for
//!   `topLeft`, …), `skew` shears x by `x`·height and y by `y`·width (the
//!   values are shear factors, 1 = 45°), `flip` mirrors about the centre.

use super::layout::Rect;
use super::warp::Affine;
use crate::engine::edit::{MotionEffect, Position, Speed, TransitionKind};
use crate::engine::plan::{Layer, Transition};

/// A clip's pose in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// From the clip's box (0..width × 0..height) to canvas pixels.
    pub map: Affine,
    /// 0–1: opacity × fades.
    pub alpha: f64,
    pub wipe: Option<Wipe>,
}

/// A vertical edge limiting what shows of a clip, in canvas pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wipe {
    pub edge: f64,
    /// Width of the soft part; 0 for a hard edge.
    pub feather: f64,
    /// What shows: the part right of the edge, or left of it.
    pub keep_right: bool,
}

impl Wipe {
    /// The multiplier (0–255) of each of `width` columns.
    pub fn columns(&self, width: u32, out: &mut Vec<u8>) {
        out.clear();
        out.extend((0..width).map(|x| {
            let x = f64::from(x) + 0.5;
            let d = if self.keep_right {
                x - self.edge
            } else {
                self.edge - x
            };
            let k = if self.feather > 0.0 {
                (d / self.feather).clamp(0.0, 1.0)
            } else if d > 0.0 {
                1.0
            } else {
                0.0
            };
            (k * 255.0).round() as u8
        }));
    }
}

fn smooth(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// How far an effect goes over the clip.
fn effect_amount(kind: MotionEffect, speed: Speed) -> f64 {
    let base = match kind {
        MotionEffect::ZoomIn | MotionEffect::ZoomOut => 0.25,
        _ => 0.2,
    };
    match speed {
        Speed::Slow => base / 2.0,
        Speed::Normal => base,
        Speed::Fast => base * 2.0,
    }
}

/// For `shuffle*`: where the clip comes from (fractions of the viewport)
/// and how far it is turned there (degrees, clockwise).
fn shuffle_origin(kind: TransitionKind) -> Option<(f64, f64, f64)> {
    use TransitionKind as K;
    Some(match kind {
        K::ShuffleTopRight => (0.3, -1.0, 30.0),
        K::ShuffleRightTop => (1.0, -0.3, -30.0),
        K::ShuffleRightBottom => (1.0, 0.3, 30.0),
        K::ShuffleBottomRight => (0.3, 1.0, -30.0),
        K::ShuffleBottomLeft => (-0.3, 1.0, 30.0),
        K::ShuffleLeftBottom => (-1.0, 0.3, -30.0),
        K::ShuffleLeftTop => (-1.0, -0.3, 30.0),
        K::ShuffleTopLeft => (-0.3, -1.0, -30.0),
        _ => return None,
    })
}

/// The pose accumulated from effect and transitions, applied about the
/// box's centre, before the clip's own transform.
struct Pose {
    scale: f64,
    turn: f64,
    dx: f64,
    dy: f64,
    alpha: f64,
    wipe: Option<Wipe>,
}

/// The clip's transition durations: each at most half the clip when it
/// has both, else at most the clip.
fn durations(layer: &Layer) -> (f64, f64) {
    let secs = |t: &Option<Transition>| t.map_or(0.0, |t| t.secs);
    let (din, dout) = (secs(&layer.transition_in), secs(&layer.transition_out));
    let cap = if din > 0.0 && dout > 0.0 {
        layer.length / 2.0
    } else {
        layer.length
    };
    (din.min(cap), dout.min(cap))
}

/// Applies one transition; `p` is how far it has gone (0 = the clip is
/// fully out of view, 1 = in place), `entering` whether it is the `in`.
fn transition(
    pose: &mut Pose,
    kind: TransitionKind,
    p: f64,
    entering: bool,
    rect: Rect,
    view: (f64, f64),
) {
    use TransitionKind as K;
    let (vw, vh) = view;
    let (bx, bw) = (rect.x as f64, f64::from(rect.width));
    let eased = smooth(p);
    // How far from its place the clip is, with the sign of the direction
    // it moves in: entering it arrives, leaving it departs.
    let away = 1.0 - eased;
    let dir = if entering { 1.0 } else { -1.0 };
    match kind {
        K::Fade => pose.alpha *= p,
        K::Reveal => {
            // Entering the shown part grows rightwards; leaving it shrinks
            // leftwards: both keep the part left of an edge at `p`.
            pose.wipe = Some(Wipe {
                edge: bx + p * bw,
                feather: 0.0,
                keep_right: false,
            });
        }
        K::WipeLeft | K::WipeRight => {
            let feather = bw / 4.0;
            let travel = bw + feather;
            // Entering, the shown part grows from the side the edge
            // leaves; leaving, it shrinks toward the side the edge goes.
            let to_left = kind == K::WipeLeft;
            let keep_right = to_left == entering;
            let edge = match (to_left, entering) {
                (true, true) => bx + bw - p * travel,
                (false, true) => bx + p * travel,
                (true, false) => bx + p * travel,
                (false, false) => bx + bw - p * travel,
            };
            pose.wipe = Some(Wipe {
                edge,
                feather,
                keep_right,
            });
        }
        K::SlideLeft
        | K::SlideRight
        | K::SlideUp
        | K::SlideDown
        | K::CarouselLeft
        | K::CarouselRight
        | K::CarouselUp
        | K::CarouselDown => {
            let carousel = matches!(
                kind,
                K::CarouselLeft | K::CarouselRight | K::CarouselUp | K::CarouselDown
            );
            let reach = if carousel { 1.0 } else { 0.1 };
            // Movement direction on screen.
            let (mx, my) = match kind {
                K::SlideLeft | K::CarouselLeft => (-1.0, 0.0),
                K::SlideRight | K::CarouselRight => (1.0, 0.0),
                K::SlideUp | K::CarouselUp => (0.0, -1.0),
                _ => (0.0, 1.0),
            };
            // Entering from the opposite side of the motion; leaving
            // along it.
            pose.dx -= dir * mx * reach * vw * away;
            pose.dy -= dir * my * reach * vh * away;
            if !carousel {
                pose.alpha *= p;
            }
        }
        K::Zoom => {
            pose.scale *= 0.1 + 0.9 * eased;
            pose.alpha *= p;
        }
        _ => {
            if let Some((ox, oy, turn)) = shuffle_origin(kind) {
                pose.dx += ox * vw * away;
                pose.dy += oy * vh * away;
                pose.turn += turn * away;
                pose.alpha *= p;
            }
        }
    }
}

/// The clip's pose `t` seconds into the timeline, its box at `rect` in a
/// `view` sized viewport.
pub fn place(layer: &Layer, t: f64, rect: Rect, view: (u32, u32)) -> Placement {
    let view = (f64::from(view.0), f64::from(view.1));
    let u = (t - layer.start).clamp(0.0, layer.length);
    let (bw, bh) = (f64::from(rect.width), f64::from(rect.height));
    let mut pose = Pose {
        scale: 1.0,
        turn: 0.0,
        dx: 0.0,
        dy: 0.0,
        alpha: layer.opacity.clamp(0.0, 1.0),
        wipe: None,
    };
    if let Some(effect) = layer.effect {
        let p = u / layer.length;
        let amount = effect_amount(effect.kind, effect.speed);
        match effect.kind {
            MotionEffect::ZoomIn => pose.scale *= 1.0 + amount * p,
            MotionEffect::ZoomOut => pose.scale *= 1.0 + amount * (1.0 - p),
            pan => {
                pose.scale *= 1.0 + amount;
                let half = amount / 2.0;
                match pan {
                    MotionEffect::SlideLeft => pose.dx += bw * half * (1.0 - 2.0 * p),
                    MotionEffect::SlideRight => pose.dx -= bw * half * (1.0 - 2.0 * p),
                    MotionEffect::SlideUp => pose.dy += bh * half * (1.0 - 2.0 * p),
                    _ => pose.dy -= bh * half * (1.0 - 2.0 * p),
                }
            }
        }
    }
    let (din, dout) = durations(layer);
    if let Some(tr) = layer.transition_in {
        if din > 0.0 && u < din {
            transition(&mut pose, tr.kind, u / din, true, rect, view);
        }
    }
    if let Some(tr) = layer.transition_out {
        if dout > 0.0 && u > layer.length - dout {
            transition(
                &mut pose,
                tr.kind,
                (layer.length - u) / dout,
                false,
                rect,
                view,
            );
        }
    }

    let (cx, cy) = (bw / 2.0, bh / 2.0);
    let tf = &layer.transform;
    let flip = Affine::scale(
        if tf.flip_horizontal { -1.0 } else { 1.0 },
        if tf.flip_vertical { -1.0 } else { 1.0 },
    );
    let own = Affine::rotate(pose.turn)
        .then_after(Affine::scale(pose.scale, pose.scale))
        .then_after(flip);
    let (ax, ay) = anchor(layer.position, bw, bh);
    let user = Affine::rotate(tf.rotate).then_after(Affine::shear(tf.skew.0, tf.skew.1));
    let map = Affine::translate(rect.x as f64 + pose.dx, rect.y as f64 + pose.dy)
        .then_after(Affine::about(user, ax, ay))
        .then_after(Affine::about(own, cx, cy));
    Placement {
        map,
        alpha: pose.alpha.clamp(0.0, 1.0),
        wipe: pose.wipe,
    }
}

/// The point of a `w`×`h` box that its position names: the origin of
/// rotation and skew.
fn anchor(position: Position, w: f64, h: f64) -> (f64, f64) {
    let x = match position {
        Position::TopLeft | Position::Left | Position::BottomLeft => 0.0,
        Position::Top | Position::Center | Position::Bottom => w / 2.0,
        Position::TopRight | Position::Right | Position::BottomRight => w,
    };
    let y = match position {
        Position::TopLeft | Position::Top | Position::TopRight => 0.0,
        Position::Left | Position::Center | Position::Right => h / 2.0,
        Position::BottomLeft | Position::Bottom | Position::BottomRight => h,
    };
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::edit::{Fit, Speeded};
    use crate::engine::plan::{Crop, Transform, Visual};

    fn layer() -> Layer {
        Layer {
            track: 0,
            start: 0.0,
            length: 4.0,
            visual: Visual::Image {
                src: "a.png".into(),
            },
            fit: Fit::None,
            scale: 1.0,
            position: Position::Center,
            offset: (0.0, 0.0),
            opacity: 1.0,
            crop: Crop::default(),
            filter: None,
            effect: None,
            transition_in: None,
            transition_out: None,
            transform: Transform::default(),
        }
    }

    const RECT: Rect = Rect {
        x: 40,
        y: 20,
        width: 20,
        height: 10,
    };

    fn centre(p: &Placement) -> (f64, f64) {
        p.map.apply(10.0, 5.0)
    }

    #[test]
    fn a_still_clip_is_a_plain_shift() {
        let p = place(&layer(), 1.0, RECT, (100, 50));
        assert_eq!(p.map.as_shift(), Some((40, 20)));
        assert_eq!(p.alpha, 1.0);
    }

    #[test]
    fn carousel_left_enters_from_the_right_and_leaves_to_the_left() {
        let mut l = layer();
        let tr = Transition {
            kind: TransitionKind::CarouselLeft,
            secs: 1.0,
        };
        l.transition_in = Some(tr);
        l.transition_out = Some(tr);
        let x = |t: f64| centre(&place(&l, t, RECT, (100, 50))).0;
        assert!(
            (x(0.0) - 150.0).abs() < 1e-6,
            "a viewport to the right: {}",
            x(0.0)
        );
        assert!(
            (x(0.5) - 100.0).abs() < 1e-6,
            "halfway (eased, symmetric): {}",
            x(0.5)
        );
        assert!((x(1.0) - 50.0).abs() < 1e-6);
        assert!(
            (x(3.5) - 0.0).abs() < 1e-6,
            "leaving, halfway to the left: {}",
            x(3.5)
        );
        assert!((x(4.0) + 50.0).abs() < 1e-6);
    }

    #[test]
    fn wipes_move_their_edge_the_way_they_say() {
        let mut l = layer();
        l.transition_in = Some(Transition {
            kind: TransitionKind::WipeLeft,
            secs: 1.0,
        });
        let w = |t: f64| place(&l, t, RECT, (100, 50)).wipe.unwrap();
        assert!(
            w(0.0).keep_right && w(0.0).edge >= 60.0,
            "nothing shows yet"
        );
        assert!(w(0.5).edge < w(0.1).edge, "the edge goes left");
        assert!(
            w(0.999).edge + w(0.999).feather <= 40.1,
            "all shows at the end"
        );
        l.transition_in = Some(Transition {
            kind: TransitionKind::Reveal,
            secs: 1.0,
        });
        let r = place(&l, 0.5, RECT, (100, 50)).wipe.unwrap();
        assert_eq!((r.edge, r.feather, r.keep_right), (50.0, 0.0, false));
    }

    #[test]
    fn zoom_in_grows_and_rotation_turns_about_the_anchor() {
        let mut l = layer();
        l.effect = Some(Speeded {
            kind: MotionEffect::ZoomIn,
            speed: Speed::Normal,
        });
        let size = |t: f64| {
            let p = place(&l, t, RECT, (100, 50));
            p.map.apply(20.0, 0.0).0 - p.map.apply(0.0, 0.0).0
        };
        assert!((size(0.0) - 20.0).abs() < 1e-6);
        assert!((size(4.0) - 25.0).abs() < 1e-6);
        let mut r = layer();
        r.position = Position::TopLeft;
        r.transform.rotate = 90.0;
        let p = place(&r, 1.0, RECT, (100, 50));
        let (x, y) = p.map.apply(0.0, 0.0);
        assert!(
            (x - 40.0).abs() < 1e-6 && (y - 20.0).abs() < 1e-6,
            "the corner stays"
        );
        let (x, y) = p.map.apply(20.0, 0.0);
        assert!(
            (x - 40.0).abs() < 1e-6 && (y - 40.0).abs() < 1e-6,
            "the top edge now points down: {x} {y}"
        );
    }
}
