//! CONTRACT section 6, the clip looks of the composition language: every
//! transition (at its start, middle and end), every motion effect and its
//! speeds, every filter, the transforms, crop, luma mattes, speed of video
//! and sound, opacity. Each renders through the real server; frames are
//! decoded with the ffmpeg CLI and measured: where the clip's pixels are,
//! how bright, what colour.
//!
//! The scene is 320×180 at 25 fps on black, unless a test says otherwise;
//! times are chosen on frame boundaries (frame n shows at n/25 s).

use std::path::{Path, PathBuf};

use clipstream_tests::media::{ffmpeg, frame, rms, upload};
use clipstream_tests::{assert_error, json, Env};
use reqwest::Method;
use serde_json::{json, Value};

const W: u32 = 320;
const H: u32 = 180;
/// The centre of a 64×36 box in the middle (x 128..191, y 72..107).
const CX: f64 = 159.5;
const CY: f64 = 89.5;

struct Scene {
    env: Env,
    uid: String,
    dir: tempfile::TempDir,
}

fn scene() -> Scene {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("looks");
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, args: &[&str]| {
        let path = dir.path().join(name);
        ffmpeg(args, &path);
        upload(&api, &uid, name, &path);
    };
    let lavfi = |graph: &str| ["-f", "lavfi", "-i", graph, "-frames:v", "1"].map(str::to_owned);
    let still = |name: &str, graph: &str| {
        let args = lavfi(graph);
        make(name, &args.iter().map(String::as_str).collect::<Vec<_>>());
    };
    still("white.png", "color=c=white:s=64x36");
    still(
        "halves.png",
        "color=c=red:s=32x36[a];color=c=blue:s=32x36[b];[a][b]hstack",
    );
    still(
        "updown.png",
        "color=c=red:s=64x18[a];color=c=blue:s=64x18[b];[a][b]vstack",
    );
    still("orange.png", "color=c=0xDC7828:s=320x180");
    still(
        "greys.png",
        "color=c=0x3C3C3C:s=160x180[a];color=c=0xC8C8C8:s=160x180[b];[a][b]hstack",
    );
    still(
        "matte.png",
        "color=c=white:s=160x180[a];color=c=black:s=160x180[b];[a][b]hstack",
    );
    still("red.png", "color=c=red:s=320x180");
    // A luma animation: white fading to black over 2 s.
    make(
        "fade.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=white:s=320x180:d=2:r=25,fade=out:st=0:d=2",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    // A clock: grey level 50 per second of the source's own time.
    make(
        "ramp.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:s=160x90:d=4:r=25,format=yuv420p,geq=lum='16+50*T':cb=128:cr=128",
            "-crf",
            "8",
        ],
    );
    make(
        "beep.wav",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1:sample_rate=48000",
        ],
    );
    Scene { env, uid, dir }
}

impl Scene {
    /// Stores `movie` under `name` and renders it with `params`: the MP4.
    fn render(&self, name: &str, movie: &Value, params: Value) -> PathBuf {
        let api = self.env.client();
        let r = api.put(&format!("/v1/sdl/{}/{name}", self.uid), movie.to_string());
        assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
        let r = api
            .request(Method::POST, &format!("/v2/render/{}", self.uid))
            .json(&json!({ "movie": name, "params": params }))
            .send()
            .unwrap();
        let (status, body) = json(r);
        assert_eq!(status, 200, "{body}");
        let token = body["token"].as_str().unwrap();
        let r = api.anonymous().get(&format!("/render/{token}.mp4"));
        assert_eq!(r.status(), 200, "{name} {params}");
        let bytes = r.bytes().unwrap();
        let path = self.dir.path().join(format!("{name}-{}.mp4", &token[..8]));
        std::fs::write(&path, &bytes).unwrap();
        path
    }
}

/// One clip (plus `extra` clip keys) on one track, on black.
fn one_clip(asset: Value, length: f64, extra: Value) -> Value {
    let mut clip = json!({ "asset": asset, "start": 0, "length": length, "fit": "none" });
    if let (Some(c), Some(e)) = (clip.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    movie(vec![vec![clip]])
}

fn movie(tracks: Vec<Vec<Value>>) -> Value {
    json!({
        "timeline": { "background": "#000000",
                      "tracks": tracks.into_iter().map(|clips| json!({ "clips": clips })).collect::<Vec<_>>() },
        "output": { "format": "mp4", "size": { "width": W, "height": H }, "fps": 25 }
    })
}

fn image(src: &str) -> Value {
    json!({ "type": "image", "src": src })
}

/// The frame that shows from frame `n` on.
fn shot(path: &Path, n: u32) -> Shot {
    let t = (f64::from(n) / 25.0 - 0.001).max(0.0);
    let rgb = frame(path, t);
    assert_eq!(rgb.len(), (W * H * 3) as usize, "a whole frame at {t}s");
    Shot { rgb }
}

struct Shot {
    rgb: Vec<u8>,
}

impl Shot {
    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * W + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    fn grey(&self, x: u32, y: u32) -> u8 {
        let [r, g, b] = self.at(x, y);
        ((u32::from(r) + u32::from(g) + u32::from(b)) / 3) as u8
    }

    /// The pixels brighter than `level`: how many, their bounding box
    /// (x0, y0, x1, y1 inclusive) and their centre.
    fn lit(&self, level: u8) -> Lit {
        let mut lit = Lit {
            count: 0,
            bbox: (u32::MAX, u32::MAX, 0, 0),
            sum: (0.0, 0.0),
        };
        for y in 0..H {
            for x in 0..W {
                if self.grey(x, y) > level {
                    lit.count += 1;
                    lit.bbox = (
                        lit.bbox.0.min(x),
                        lit.bbox.1.min(y),
                        lit.bbox.2.max(x),
                        lit.bbox.3.max(y),
                    );
                    lit.sum.0 += f64::from(x);
                    lit.sum.1 += f64::from(y);
                }
            }
        }
        lit
    }
}

#[derive(Debug)]
struct Lit {
    count: u32,
    bbox: (u32, u32, u32, u32),
    sum: (f64, f64),
}

impl Lit {
    fn centre(&self) -> (f64, f64) {
        let n = f64::from(self.count.max(1));
        (self.sum.0 / n, self.sum.1 / n)
    }

    fn width(&self) -> u32 {
        if self.count == 0 {
            0
        } else {
            self.bbox.2 - self.bbox.0 + 1
        }
    }

    fn height(&self) -> u32 {
        if self.count == 0 {
            0
        } else {
            self.bbox.3 - self.bbox.1 + 1
        }
    }
}

fn ok(c: bool, what: &str) -> Result<(), String> {
    if c {
        Ok(())
    } else {
        Err(what.to_owned())
    }
}

fn near(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// A white 64×36 box in the middle for 3 s, with `in` and `out`
/// transitions of 1 s: frames at the start (0), the middle of the in
/// (12: 0.48 s), in place (30), and the middle of the out (63: 2.52 s).
#[test]
fn every_transition_moves_as_its_name_says() {
    let s = scene();
    let m = one_clip(
        image("white.png"),
        3.0,
        json!({ "transition": { "in": "{{IN}}", "out": "{{OUT}}" } }),
    );
    // The box: x 128..191, y 72..107, centre (159.5, 89.5).
    type Check = fn(&Shot, &Shot, &Shot, &Shot) -> Result<(), String>;
    let in_place = |s: &Shot| {
        let l = s.lit(128);
        (l.count > 2200 && l.width() == 64 && l.height() == 36)
            .then_some(())
            .ok_or(format!("in place: {l:?}"))
    };
    let cases: Vec<(&str, Check)> = vec![
        ("fade", |s0, mid, _, out| {
            ok(s0.lit(20).count == 0, "invisible at the start")?;
            ok(
                (90..=160).contains(&mid.grey(160, 90)),
                "half bright halfway in",
            )?;
            ok(
                (90..=160).contains(&out.grey(160, 90)),
                "half bright halfway out",
            )
        }),
        ("reveal", |s0, mid, _, out| {
            ok(s0.lit(128).count == 0, "nothing revealed at the start")?;
            // Halfway: the left 48 % of the box shows, the rest does not.
            for s in [mid, out] {
                ok(
                    s.grey(140, 90) > 200 && s.grey(175, 90) < 40,
                    "left half shown, right hidden",
                )?;
            }
            Ok(())
        }),
        ("wipeLeft", |s0, mid, _, out| {
            ok(s0.lit(128).count == 0, "nothing at the start")?;
            ok(
                mid.grey(185, 90) > 200 && mid.grey(135, 90) < 40,
                "in: the right shows first",
            )?;
            ok(
                out.grey(135, 90) > 200 && out.grey(185, 90) < 40,
                "out: the left stays last",
            )
        }),
        ("wipeRight", |s0, mid, _, out| {
            ok(s0.lit(128).count == 0, "nothing at the start")?;
            ok(
                mid.grey(135, 90) > 200 && mid.grey(185, 90) < 40,
                "in: the left shows first",
            )?;
            ok(
                out.grey(185, 90) > 200 && out.grey(135, 90) < 40,
                "out: the right stays last",
            )
        }),
        ("slideLeft", |s0, mid, _, out| {
            ok(s0.lit(20).count == 0, "invisible at the start")?;
            let (m, o) = (mid.lit(40).centre().0, out.lit(40).centre().0);
            ok(m > 170.0 && m < 185.0, "comes from a little to the right")?;
            ok(o > 134.0 && o < 149.0, "leaves a little to the left")
        }),
        ("slideRight", |_, mid, _, out| {
            let (m, o) = (mid.lit(40).centre().0, out.lit(40).centre().0);
            ok(
                m > 134.0 && m < 149.0 && o > 170.0 && o < 185.0,
                "from the left, to the right",
            )
        }),
        ("slideUp", |_, mid, _, out| {
            let (m, o) = (mid.lit(40).centre().1, out.lit(40).centre().1);
            ok(
                m > 95.0 && m < 104.0 && o > 75.0 && o < 84.0,
                "from below, upwards",
            )
        }),
        ("slideDown", |_, mid, _, out| {
            let (m, o) = (mid.lit(40).centre().1, out.lit(40).centre().1);
            ok(
                m > 75.0 && m < 84.0 && o > 95.0 && o < 104.0,
                "from above, downwards",
            )
        }),
        ("carouselLeft", |s0, mid, _, out| {
            ok(
                s0.lit(128).count == 0,
                "a viewport to the right at the start",
            )?;
            // 53 % of a viewport away halfway: only the box's left edge
            // is on screen, at the right.
            ok(mid.lit(128).bbox.0 > 290, "entering from the right")?;
            ok(out.lit(128).bbox.2 < 30, "leaving to the left")?;
            ok(mid.grey(300, 90) > 200, "no fade: full brightness")
        }),
        ("carouselRight", |_, mid, _, out| {
            ok(
                mid.lit(128).bbox.2 < 30 && out.lit(128).bbox.0 > 290,
                "from the left, to the right",
            )
        }),
        ("carouselUp", |_, mid, _, out| {
            ok(
                mid.lit(128).bbox.1 > 160 && out.lit(128).bbox.3 < 20,
                "from below, upwards",
            )
        }),
        ("carouselDown", |_, mid, _, out| {
            ok(
                mid.lit(128).bbox.3 < 20 && out.lit(128).bbox.1 > 160,
                "from above, downwards",
            )
        }),
        ("zoom", |s0, mid, _, out| {
            ok(s0.lit(20).count == 0, "invisible at the start")?;
            let (m, o) = (mid.lit(30), out.lit(30));
            ok(
                (24..=44).contains(&m.width()),
                "about half its width halfway in",
            )?;
            ok(
                near(m.centre().0, CX, 2.0) && near(m.centre().1, CY, 2.0),
                "about its centre",
            )?;
            ok((24..=44).contains(&o.width()), "and halfway out")
        }),
    ];
    let mut shuffles: Vec<(&str, (f64, f64))> = vec![
        ("shuffleTopRight", (1.0, -1.0)),
        ("shuffleRightTop", (1.0, -1.0)),
        ("shuffleRightBottom", (1.0, 1.0)),
        ("shuffleBottomRight", (1.0, 1.0)),
        ("shuffleBottomLeft", (-1.0, 1.0)),
        ("shuffleLeftBottom", (-1.0, 1.0)),
        ("shuffleLeftTop", (-1.0, -1.0)),
        ("shuffleTopLeft", (-1.0, -1.0)),
    ];
    let mut failures = Vec::new();
    for (kind, check) in &cases {
        let path = s.render("tr", &m, json!({ "IN": kind, "OUT": kind }));
        let shots = [0, 12, 30, 63].map(|n| shot(&path, n));
        if let Err(e) =
            in_place(&shots[2]).and_then(|()| check(&shots[0], &shots[1], &shots[2], &shots[3]))
        {
            failures.push(format!("{kind}: {e}"));
        }
    }
    // Shuffles: 80 % of the way in (frame 20) the box is still off toward
    // its corner and turned; 20 % of the way out (frame 55) likewise.
    for (kind, (sx, sy)) in shuffles.drain(..) {
        let path = s.render("tr", &m, json!({ "IN": kind, "OUT": kind }));
        for n in [20, 55] {
            let l = shot(&path, n).lit(40);
            let (x, y) = l.centre();
            let toward = (x - CX) * sx > 4.0 && (y - CY) * sy > 4.0;
            // A turned box's bounding box is larger than the box.
            let turned = l.width() > 66 || l.height() > 38;
            if !(toward && turned) {
                failures.push(format!(
                    "{kind} at frame {n}: centre ({x:.0}, {y:.0}), {l:?}"
                ));
            }
        }
        if let Err(e) = in_place(&shot(&path, 30)) {
            failures.push(format!("{kind}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn transition_speeds_change_their_length() {
    let s = scene();
    let m = one_clip(
        image("white.png"),
        5.0,
        json!({ "transition": { "in": "{{IN}}" } }),
    );
    // fadeFast lasts 0.5 s, fade 1 s, fadeSlow 2 s: at 0.48 s they are
    // at 96 %, 48 % and 24 %.
    let grey = |kind: &str| {
        let path = s.render("sp", &m, json!({ "IN": kind }));
        f64::from(shot(&path, 12).grey(160, 90))
    };
    let (fast, normal, slow) = (grey("fadeFast"), grey("fade"), grey("fadeSlow"));
    assert!(fast > 220.0, "{fast}");
    assert!(near(normal, 122.0, 25.0), "{normal}");
    assert!(near(slow, 61.0, 20.0), "{slow}");
}

/// Every effect, each as its own 2 s clip in one timeline: at its start,
/// middle and end.
#[test]
fn motion_effects_zoom_and_pan_over_the_clip() {
    let s = scene();
    let effects = [
        "zoomIn",
        "zoomInSlow",
        "zoomInFast",
        "zoomOut",
        "slideLeft",
        "slideRight",
        "slideUp",
        "slideDown",
        "slideLeftFast",
    ];
    let clips: Vec<Value> = effects
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({ "asset": image("white.png"), "start": 2 * i, "length": 2, "fit": "none", "effect": e })
        })
        .collect();
    let path = s.render("fx", &movie(vec![clips]), json!({}));
    // First and last frame of clip i: frames 50i and 50i + 49.
    let ends = |i: u32| {
        (
            shot(&path, 50 * i).lit(128),
            shot(&path, 50 * i + 49).lit(128),
        )
    };
    let width = |l: &Lit| f64::from(l.width());
    // The middle of clip i: frame 50i + 25, halfway through its effect.
    let middle = |i: u32| shot(&path, 50 * i + 25).lit(128);
    let m = middle(0);
    assert!(
        near(width(&m), 72.0, 3.0),
        "zoomIn is at 112 % halfway: {m:?}"
    );
    let m = middle(3);
    assert!(near(width(&m), 72.0, 3.0), "zoomOut too: {m:?}");
    let m = middle(4);
    assert!(
        near(m.centre().0, CX, 2.0),
        "slideLeft passes the middle halfway: {m:?}"
    );
    let m = middle(6);
    assert!(near(m.centre().1, CY, 2.0), "slideUp too: {m:?}");
    let (a, b) = ends(0);
    assert!(
        near(width(&a), 64.0, 2.0) && near(width(&b), 80.0, 3.0),
        "zoomIn to 125 %: {a:?} {b:?}"
    );
    let (_, b) = ends(1);
    assert!(near(width(&b), 72.0, 3.0), "zoomInSlow to 112 %: {b:?}");
    let (_, b) = ends(2);
    assert!(near(width(&b), 96.0, 3.0), "zoomInFast to 150 %: {b:?}");
    let (a, b) = ends(3);
    assert!(
        near(width(&a), 80.0, 3.0) && near(width(&b), 64.0, 2.0),
        "zoomOut: {a:?} {b:?}"
    );
    // Pans: scaled up by 20 %, moving 20 % of the clip's size.
    let (a, b) = ends(4);
    assert!(
        near(width(&a), 77.0, 3.0),
        "panned clips are enlarged: {a:?}"
    );
    assert!(
        a.centre().0 - b.centre().0 > 10.0,
        "slideLeft pans left: {a:?} {b:?}"
    );
    let (a, b) = ends(5);
    assert!(b.centre().0 - a.centre().0 > 10.0, "slideRight pans right");
    let (a, b) = ends(6);
    assert!(a.centre().1 - b.centre().1 > 5.0, "slideUp pans up");
    let (a, b) = ends(7);
    assert!(b.centre().1 - a.centre().1 > 5.0, "slideDown pans down");
    let (a, b) = ends(8);
    assert!(
        a.centre().0 - b.centre().0 > 20.0,
        "slideLeftFast pans twice as far"
    );
}

#[test]
fn filters_change_colour_as_named() {
    let s = scene();
    let filters = [
        "greyscale",
        "negative",
        "darken",
        "lighten",
        "muted",
        "boost",
        "contrast",
    ];
    let mut clips: Vec<Value> = filters
        .iter()
        .enumerate()
        .map(|(i, f)| json!({ "asset": image("orange.png"), "start": i + 1, "length": 1, "filter": f }))
        .collect();
    clips.push(json!({ "asset": image("orange.png"), "start": 0, "length": 1 }));
    clips.push(json!({ "asset": image("greys.png"), "start": 8, "length": 1 }));
    clips.push(
        json!({ "asset": image("greys.png"), "start": 9, "length": 1, "filter": "contrast" }),
    );
    let path = s.render("filters", &movie(vec![clips]), json!({}));
    let colour = |second: u32| shot(&path, second * 25 + 12).at(160, 90);
    let spread =
        |c: [u8; 3]| i32::from(*c.iter().max().unwrap()) - i32::from(*c.iter().min().unwrap());
    let luma =
        |c: [u8; 3]| 0.2126 * f64::from(c[0]) + 0.7152 * f64::from(c[1]) + 0.0722 * f64::from(c[2]);
    let orange = colour(0);
    assert!(spread(orange) > 150, "the unfiltered orange: {orange:?}");
    let grey = colour(1);
    assert!(spread(grey) < 10, "greyscale: {grey:?}");
    let neg = colour(2);
    assert!(
        neg[2] > neg[0] && i32::from(neg[0]) < 100,
        "negative turns orange blue: {neg:?}"
    );
    assert!(luma(colour(3)) < luma(orange) - 20.0, "darken");
    assert!(luma(colour(4)) > luma(orange) + 20.0, "lighten");
    assert!(spread(colour(5)) < spread(orange) * 2 / 3, "muted");
    assert!(spread(colour(6)) >= spread(orange), "boost");
    let (dark, light) = (shot(&path, 8 * 25 + 12), shot(&path, 9 * 25 + 12));
    assert!(
        dark.grey(80, 90) > light.grey(80, 90) + 15,
        "contrast darkens darks"
    );
    assert!(
        light.grey(240, 90) > dark.grey(240, 90) + 15,
        "and lightens lights"
    );
}

#[test]
fn transforms_rotate_skew_and_flip() {
    let s = scene();
    let clip = |start: u32, src: &str, transform: Value| json!({ "asset": image(src), "start": start, "length": 1, "fit": "none", "transform": transform });
    let clips = vec![
        clip(0, "halves.png", json!({})),
        clip(1, "halves.png", json!({ "flip": { "horizontal": true } })),
        clip(2, "updown.png", json!({ "flip": { "vertical": true } })),
        clip(3, "halves.png", json!({ "rotate": { "angle": 90 } })),
        clip(4, "halves.png", json!({ "rotate": { "angle": 180 } })),
        clip(5, "white.png", json!({ "skew": { "x": 0.5 } })),
        clip(
            6,
            "white.png",
            json!({ "rotate": { "angle": 45 }, "flip": { "horizontal": true } }),
        ),
    ];
    let path = s.render("tf", &movie(vec![clips]), json!({}));
    let at = |second: u32| shot(&path, second * 25 + 12);
    let red = |c: [u8; 3]| c[0] > 180 && c[2] < 80;
    let blue = |c: [u8; 3]| c[2] > 180 && c[0] < 80;
    let plain = at(0);
    assert!(
        red(plain.at(140, 90)) && blue(plain.at(180, 90)),
        "red left, blue right"
    );
    let flipped = at(1);
    assert!(
        blue(flipped.at(140, 90)) && red(flipped.at(180, 90)),
        "mirrored left to right"
    );
    let vflip = at(2);
    assert!(
        blue(vflip.at(160, 78)) && red(vflip.at(160, 102)),
        "mirrored top to bottom"
    );
    // A quarter turn clockwise about the centre: 36 wide, 64 tall, the
    // red half (left) now on top.
    let quarter = at(3);
    let l = quarter.lit(40);
    assert!(
        near(f64::from(l.width()), 36.0, 3.0) && near(f64::from(l.height()), 64.0, 3.0),
        "{l:?}"
    );
    assert!(
        red(quarter.at(160, 70)) && blue(quarter.at(160, 110)),
        "turned clockwise"
    );
    let half = at(4);
    assert!(
        blue(half.at(140, 90)) && red(half.at(180, 90)),
        "a half turn swaps the sides"
    );
    let skewed = at(5).lit(128);
    assert!(
        near(f64::from(skewed.width()), 64.0 + 18.0, 3.0),
        "x sheared by half the height: {skewed:?}"
    );
    assert!(near(f64::from(skewed.height()), 36.0, 2.0));
    let turned = at(6).lit(128);
    // 64×36 turned 45°: (64+36)/√2 ≈ 71 each way.
    assert!(
        near(f64::from(turned.width()), 71.0, 4.0) && near(f64::from(turned.height()), 71.0, 4.0),
        "{turned:?}"
    );
}

#[test]
fn crop_cuts_the_asset_before_it_is_fitted() {
    let s = scene();
    let m = one_clip(
        json!({ "type": "image", "src": "halves.png", "crop": { "left": 0.5 } }),
        1.0,
        json!({}),
    );
    let path = s.render("crop", &m, json!({}));
    let f = shot(&path, 12);
    let l = f.lit(40);
    assert_eq!(
        (l.width(), l.height()),
        (32, 36),
        "half the width is left: {l:?}"
    );
    let c = f.at(160, 90);
    assert!(c[2] > 180 && c[0] < 80, "only the blue half: {c:?}");
}

#[test]
fn a_luma_matte_masks_the_clips_of_its_track() {
    let s = scene();
    let background =
        vec![json!({ "asset": image("orange.png"), "start": 0, "length": 4, "fit": "crop" })];
    let masked = vec![
        json!({ "asset": { "type": "luma", "src": "matte.png" }, "start": 0, "length": 2 }),
        json!({ "asset": { "type": "luma", "src": "fade.mp4" }, "start": 2, "length": 2 }),
        json!({ "asset": image("red.png"), "start": 0, "length": 4, "fit": "crop" }),
    ];
    let path = s.render("luma", &movie(vec![masked, background]), json!({}));
    let red = |c: [u8; 3]| c[0] > 200 && c[1] < 60 && c[2] < 60;
    let orange = |c: [u8; 3]| c[0] > 180 && (90..160).contains(&c[1]) && c[2] < 90;
    let still = shot(&path, 25);
    assert!(
        red(still.at(60, 90)),
        "white shows the clip: {:?}",
        still.at(60, 90)
    );
    assert!(
        orange(still.at(260, 90)),
        "black shows the track below: {:?}",
        still.at(260, 90)
    );
    // The animated matte goes from white to black: the red clip gives way.
    let early = shot(&path, 51).at(160, 90);
    let late = shot(&path, 98).at(160, 90);
    assert!(red(early), "early in the animation: {early:?}");
    assert!(orange(late), "at its end: {late:?}");
}

#[test]
fn speed_changes_how_fast_video_and_sound_play() {
    let s = scene();
    let clock = |speed: f64| {
        movie(vec![vec![json!({
            "asset": { "type": "video", "src": "ramp.mp4", "speed": speed }, "start": 0, "length": 2, "fit": "none"
        })]])
    };
    // The clock's grey is 16 + 50·(its own time); at 1 s of output.
    let level = |speed: f64| {
        let path = s.render(
            &format!("clock{}", (speed * 10.0) as u32),
            &clock(speed),
            json!({}),
        );
        f64::from(shot(&path, 25).grey(160, 90))
    };
    let (normal, double, paused) = (level(1.0), level(2.0), level(0.0));
    // Full-range grey of limited-range luma 16 + 50·t.
    let grey = |t: f64| (50.0 * t) * 255.0 / 219.0;
    assert!(
        near(normal, grey(1.0), 12.0),
        "speed 1 shows the 1 s frame: {normal}"
    );
    assert!(
        near(double, grey(2.0), 12.0),
        "speed 2 shows the 2 s frame: {double}"
    );
    assert!(
        near(paused, grey(0.0), 8.0),
        "speed 0 holds the first frame: {paused}"
    );

    // A 1 s beep (lavfi's sine: amplitude 1/8, RMS 0.088): at speed 2 it
    // lasts half a second, at 0.5 two seconds.
    let beep = |speed: f64| {
        json!({
            "timeline": { "tracks": [ { "clips": [
                { "asset": { "type": "audio", "src": "beep.wav", "speed": speed }, "start": 0, "length": 3 },
                { "asset": image("white.png"), "start": 0, "length": 3 } ] } ] },
            "output": { "format": "mp4", "size": { "width": W, "height": H }, "fps": 25 }
        })
    };
    let fast = s.render("beep2", &beep(2.0), json!({}));
    assert!(rms(&fast, 0.1, 0.4) > 0.04, "audible at first");
    assert!(rms(&fast, 0.6, 0.9) < 0.01, "over after half a second");
    let slow = s.render("beep05", &beep(0.5), json!({}));
    assert!(rms(&slow, 1.5, 1.9) > 0.04, "still audible after 1.5 s");
    assert!(rms(&slow, 2.2, 2.8) < 0.01, "over after two seconds");
}

#[test]
fn opacity_blends_the_clip_over_what_is_below() {
    let s = scene();
    let m = one_clip(image("white.png"), 1.0, json!({ "opacity": 0.5 }));
    let path = s.render("op", &m, json!({}));
    let g = shot(&path, 12).grey(160, 90);
    assert!((110..=145).contains(&g), "{g}");
}

#[test]
fn invalid_looks_are_refused_with_their_path() {
    let s = scene();
    let api = s.env.client();
    let put = |body: Value| api.put(&format!("/v1/sdl/{}/bad", s.uid), body.to_string());
    let bad = one_clip(
        image("white.png"),
        1.0,
        json!({ "transform": { "skew": { "x": 7 } } }),
    );
    let e = assert_error(put(bad), 400, "invalid_edit");
    assert_eq!(e["path"], "timeline.tracks[0].clips[0].transform.skew.x");
    let bad = one_clip(
        image("white.png"),
        1.0,
        json!({ "transition": { "in": "spin" } }),
    );
    let e = assert_error(put(bad), 400, "invalid_edit");
    assert_eq!(e["path"], "timeline.tracks[0].clips[0].transition.in");
    let bad = one_clip(image("white.png"), 1.0, json!({ "effect": "wobble" }));
    let e = assert_error(put(bad), 400, "invalid_edit");
    assert_eq!(e["path"], "timeline.tracks[0].clips[0].effect");
    let bad = one_clip(image("white.png"), 1.0, json!({ "filter": "sepia" }));
    let e = assert_error(put(bad), 400, "invalid_edit");
    assert_eq!(e["path"], "timeline.tracks[0].clips[0].filter");
    let bad = one_clip(
        json!({ "type": "image", "src": "white.png", "crop": { "left": 0.6, "right": 0.5 } }),
        1.0,
        json!({}),
    );
    let e = assert_error(put(bad), 400, "invalid_edit");
    assert_eq!(e["path"], "timeline.tracks[0].clips[0].asset.crop");
    // A placeholder that will hold a transition must get one.
    let m = one_clip(
        image("white.png"),
        1.0,
        json!({ "transition": { "in": "{{IN}}" } }),
    );
    assert_eq!(put(m).status(), 201);
    let r = api
        .request(Method::POST, &format!("/v2/render/{}", s.uid))
        .json(&json!({ "movie": "bad", "params": { "IN": "spin" } }))
        .send()
        .unwrap();
    let e = assert_error(r, 400, "invalid_param");
    assert!(e.to_string().contains("IN"), "{e}");
}
