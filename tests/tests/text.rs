//! CONTRACT section 6, the text of the composition language: titles in
//! their styles, html assets, and `timeline.fonts` fetched from the project
//! and used by family name. The checks decode frames of the rendered MP4
//! with the ffmpeg CLI and look for ink of the right colour in the right
//! place, and none elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use clipstream_tests::{assert_error, json, Api, Env};
use reqwest::Method;
use serde_json::{json, Value};

const W: u32 = 640;
const H: u32 = 360;

/// A font file no shipped face is: Leckerli One (OFL).
fn custom_font() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../actors/testdata/LeckerliOne-Regular.ttf")
}

fn upload(api: &Api, uid: &str, name: &str, bytes: Vec<u8>) {
    assert_eq!(
        api.put(&format!("/v1/data/{uid}/{name}"), bytes).status(),
        201
    );
}

fn store(api: &Api, uid: &str, name: &str, movie: &Value) {
    let r = api.put(&format!("/v1/sdl/{uid}/{name}"), movie.to_string());
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
}

fn token(api: &Api, uid: &str, movie: &str, params: Value) -> String {
    let r = api
        .request(Method::POST, &format!("/v2/render/{uid}"))
        .json(&json!({ "movie": movie, "params": params }))
        .send()
        .unwrap();
    let (status, body) = json(r);
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// An html clip: "Brand" in white, 48 px, on a maroon 300×100 box.
fn brand(family: &str, position: &str) -> Value {
    json!({
        "asset": { "type": "html", "html": "<p class='brand'>Brand</p>",
                   "css": format!(".brand {{ font-family: '{family}'; color: #ffffff; font-size: 48px; }}"),
                   "width": 300, "height": 100, "background": "#800000", "position": "center" },
        "start": 0, "length": 2, "position": position
    })
}

/// Navy background; a chunk title (yellow on its red box) at the top
/// left; a vogue title in green at the bottom; two html boxes with the
/// same text, the left one in the custom font, the right in the default.
fn movie() -> Value {
    json!({
        "timeline": {
            "background": "#000080",
            "fonts": [ { "src": "leckerli.ttf" } ],
            "tracks": [
                { "clips": [ { "asset": { "type": "title", "text": "Sale", "style": "chunk", "color": "#ffff00",
                                          "background": "#ff0000", "size": "large", "position": "topLeft" },
                               "start": 0, "length": 2 } ] },
                { "clips": [ { "asset": { "type": "title", "text": "Hi {{NAME}}", "style": "vogue", "color": "#00ff00",
                                          "size": "x-large", "position": "bottom" },
                               "start": 0, "length": 2 } ] },
                { "clips": [ brand("Leckerli One", "left"), brand("DejaVu Sans", "right") ] }
            ]
        },
        "output": { "format": "mp4", "resolution": "mobile", "fps": 25 }
    })
}

/// The frame shown at `t` seconds, as packed RGB.
fn frame(path: &Path, t: f64) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &t.to_string(), "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert_eq!(out.stdout.len(), (W * H * 3) as usize);
    out.stdout
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= 48)
}

/// A rectangle of the frame: x0..x1, y0..y1.
type Region = (u32, u32, u32, u32);

/// How many pixels of `color` lie inside `region`, and how many outside.
fn count(frame: &[u8], color: [u8; 3], region: Region) -> (usize, usize) {
    let (mut inside, mut outside) = (0, 0);
    for y in 0..H {
        for x in 0..W {
            let i = ((y * W + x) * 3) as usize;
            if close([frame[i], frame[i + 1], frame[i + 2]], color) {
                let (x0, y0, x1, y1) = region;
                if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                    inside += 1;
                } else {
                    outside += 1;
                }
            }
        }
    }
    (inside, outside)
}

#[test]
fn titles_and_html_with_a_custom_font_render_where_and_how_asked() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("text");
    upload(
        &api,
        &uid,
        "leckerli.ttf",
        std::fs::read(custom_font()).unwrap(),
    );
    store(&api, &uid, "m", &movie());
    let token = token(&api, &uid, "m", json!({ "NAME": "Jane" }));
    let r = api.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("text.mp4");
    std::fs::write(&file, r.bytes().unwrap()).unwrap();
    let f = frame(&file, 1.0);
    let (white, maroon, red, yellow, green) = (
        [255, 255, 255],
        [128, 0, 0],
        [255, 0, 0],
        [255, 255, 0],
        [0, 255, 0],
    );

    // The html boxes: 300×100, centred vertically, at the left and the
    // right edges; their background fills them, the white text is inside
    // them and nowhere else.
    let (left, right) = ((0, 130, 300, 230), (340, 130, 640, 230));
    for (name, region) in [("left", left), ("right", right)] {
        let (bg, _) = count(&f, maroon, region);
        assert!(bg > 300 * 100 / 2, "{name} box background: {bg}");
    }
    let (in_left, outside_left) = count(&f, white, left);
    let (in_right, _) = count(&f, white, right);
    assert!(in_left > 300 && in_right > 300, "{in_left} {in_right}");
    assert_eq!(outside_left, in_right, "no white ink outside the boxes");
    // The custom font was fetched and used: the same text in the default
    // face inks differently.
    let diff = in_left.abs_diff(in_right);
    assert!(
        diff > in_right / 10,
        "Leckerli {in_left} vs DejaVu {in_right}"
    );

    // chunk: its box is the background asked for, at the top left, with
    // the yellow text on it; no yellow anywhere else.
    let title_box = (0, 0, 200, 80);
    let (box_red, _) = count(&f, red, (0, 0, 20, 20));
    assert!(box_red > 300, "chunk's red box: {box_red}");
    let (y_in, y_out) = count(&f, yellow, title_box);
    assert!(
        y_in > 150 && y_out < 10,
        "yellow {y_in} inside, {y_out} outside"
    );

    // vogue: green capitals centred at the bottom, between two rules (2 px
    // lines, whose colour 4:2:0 chroma blurs towards the background).
    let bottom = (40, 220, 600, 360);
    let (g_in, g_out) = count(&f, green, bottom);
    assert!(
        g_in > 300 && g_out < 10,
        "green {g_in} inside, {g_out} outside"
    );
    let full_rows = (220..360)
        .filter(|&y| {
            (280..360).all(|x| {
                let i = ((y * W + x) * 3) as usize;
                f[i + 1] > 180 && f[i] < 100 && f[i + 2] < 100
            })
        })
        .count();
    assert!(full_rows >= 2, "vogue's rules: {full_rows} rows");
}

#[test]
fn a_font_that_is_not_a_font_fails_the_render_naming_it() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("text");
    upload(&api, &uid, "leckerli.ttf", b"GIF89a not a font".to_vec());
    store(&api, &uid, "m", &movie());
    let token = token(&api, &uid, "m", json!({ "NAME": "Jane" }));
    let body = assert_error(
        api.anonymous().get(&format!("/render/{token}.mp4")),
        422,
        "bad_source",
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("leckerli.ttf"), "{message}");
}

#[test]
fn html_beyond_the_limits_is_refused_naming_the_field() {
    let env = Env::new();
    let api = env.client();
    let uid = api.create_project("text");
    let mut m = movie();
    m["timeline"]["tracks"][2]["clips"][0]["asset"]["html"] = json!("<b>".repeat(200));
    let body = assert_error(
        api.put(&format!("/v1/sdl/{uid}/deep"), m.to_string()),
        400,
        "invalid_edit",
    );
    assert_eq!(body["path"], "timeline.tracks[2].clips[0].asset.html");
}
