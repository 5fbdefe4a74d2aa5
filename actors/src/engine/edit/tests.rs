//! Each mistake a template can make is refused with the JSON path of the
//! first problem; placeholders stand wherever a value goes.

use super::text::{check_html, HtmlError, MAX_DEPTH, MAX_ELEMENTS, MAX_HTML_BYTES, MAX_RULES};
use super::*;
use serde_json::{json, Value};

fn valid() -> Value {
    json!({
        "timeline": {
            "background": "#000000",
            "soundtrack": { "src": "https://example.com/music.mp3", "effect": "fadeOut" },
            "tracks": [
                { "clips": [
                    { "asset": { "type": "title", "text": "Hello {{NAME}}", "style": "minimal" },
                      "start": 0, "length": 2, "transition": { "in": "fade", "out": "fadeSlow" } }
                ]},
                { "clips": [
                    { "asset": { "type": "video", "src": "intro.mp4", "trim": 1.5, "volume": 0.5 },
                      "start": 0, "length": 5, "fit": "cover", "position": "center" }
                ]}
            ]
        },
        "output": { "format": "mp4", "resolution": "sd", "fps": 25 },
        "merge": [ { "find": "NAME", "replace": "Jane" } ]
    })
}

fn check(edit: &Value) -> Result<Edit, EditError> {
    parse_template(&edit.to_string(), &Limits::default())
}

/// Applies `change` to a valid edit and returns the error it causes.
fn mistake(change: impl FnOnce(&mut Value)) -> EditError {
    let mut edit = valid();
    change(&mut edit);
    match check(&edit) {
        Ok(_) => panic!("accepted: {edit}"),
        Err(e) => e,
    }
}

fn assert_at(e: &EditError, path: &str, words: &str) {
    assert_eq!(e.path, path, "{e}");
    assert!(
        e.message.contains(words),
        "message of {e:?} should mention {words:?}"
    );
}

#[test]
fn a_valid_edit_is_accepted() {
    let edit = check(&valid()).expect("valid edit");
    assert_eq!(
        edit.timeline
            .value()
            .map(|t| t.tracks.value().map(Vec::len)),
        Some(Some(2))
    );
}

#[test]
fn unknown_asset_type() {
    let e =
        mistake(|v| v["timeline"]["tracks"][1]["clips"][0]["asset"]["type"] = json!("hologram"));
    assert_at(&e, "timeline.tracks[1].clips[0].asset.type", "hologram");
    assert_eq!(e.kind, EditErrorKind::Invalid);
}

#[test]
fn bad_enumerated_value() {
    let e = mistake(|v| v["output"]["resolution"] = json!("4k"));
    assert_at(&e, "output.resolution", "4k");
}

#[test]
fn missing_required_field() {
    let e = mistake(|v| {
        v["timeline"]["tracks"][1]["clips"][0]["asset"]
            .as_object_mut()
            .unwrap()
            .remove("src");
    });
    assert_at(&e, "timeline.tracks[1].clips[0].asset", "src");
}

#[test]
fn misspelt_key() {
    let e = mistake(|v| v["timeline"]["tracks"][0]["clips"][0]["lenght"] = json!(3));
    assert_at(&e, "timeline.tracks[0].clips[0].lenght", "lenght");
}

#[test]
fn misspelt_key_inside_an_asset() {
    let e = mistake(|v| v["timeline"]["tracks"][1]["clips"][0]["asset"]["volumn"] = json!(1));
    assert_at(&e, "timeline.tracks[1].clips[0].asset.volumn", "volumn");
}

#[test]
fn wrong_json_type() {
    let e = mistake(|v| v["timeline"]["tracks"][0]["clips"][0]["start"] = json!("soon"));
    assert_at(&e, "timeline.tracks[0].clips[0].start", "soon");
}

#[test]
fn unknown_transition() {
    let e = mistake(|v| v["timeline"]["tracks"][0]["clips"][0]["transition"]["in"] = json!("spin"));
    assert_at(&e, "timeline.tracks[0].clips[0].transition.in", "spin");
}

#[test]
fn bad_colour() {
    let e = mistake(|v| v["timeline"]["background"] = json!("black"));
    assert_at(&e, "timeline.background", "colour");
}

#[test]
fn skew_out_of_range() {
    let e = mistake(|v| {
        v["timeline"]["tracks"][1]["clips"][0]["transform"] = json!({ "skew": { "x": 7 } });
    });
    assert_at(&e, "timeline.tracks[1].clips[0].transform.skew.x", "3");
}

#[test]
fn odd_custom_width() {
    let e = mistake(|v| {
        v["output"].as_object_mut().unwrap().remove("resolution");
        v["output"]["size"] = json!({ "width": 641, "height": 360 });
    });
    assert_at(&e, "output.size.width", "even");
}

#[test]
fn volume_out_of_range() {
    let e = mistake(|v| v["timeline"]["tracks"][1]["clips"][0]["asset"]["volume"] = json!(1.5));
    assert_at(&e, "timeline.tracks[1].clips[0].asset.volume", "1");
}

#[test]
fn negative_clip_length() {
    let e = mistake(|v| v["timeline"]["tracks"][0]["clips"][0]["length"] = json!(-1));
    assert_at(&e, "timeline.tracks[0].clips[0].length", "more than 0");
}

#[test]
fn unknown_destination_provider() {
    let e = mistake(|v| v["output"]["destinations"] = json!([{ "provider": "dropbox" }]));
    assert_at(&e, "output.destinations[0].provider", "dropbox");
}

#[test]
fn not_json_at_all() {
    let e = parse_template("{\"timeline\": ", &Limits::default()).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Syntax);
}

#[test]
fn trailing_garbage() {
    let e = parse_template(&format!("{} x", valid()), &Limits::default()).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Syntax);
}

#[test]
fn too_many_tracks_is_a_limit() {
    let mut edit = valid();
    let track = edit["timeline"]["tracks"][0].clone();
    edit["timeline"]["tracks"] = Value::Array(vec![track; 101]);
    let e = check(&edit).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Limit);
    assert_eq!(e.path, "timeline.tracks");
}

#[test]
fn too_many_distinct_sources_is_a_limit() {
    let mut edit = valid();
    let clip = edit["timeline"]["tracks"][1]["clips"][0].clone();
    // The soundtrack is one source; 49 more clips reach the limit of 50.
    let clips: Vec<Value> = (0..50)
        .map(|i| {
            let mut c = clip.clone();
            c["asset"]["src"] = json!(format!("clip{i}.mp4"));
            c
        })
        .collect();
    edit["timeline"]["tracks"][1]["clips"] = Value::Array(clips[..49].to_vec());
    assert!(check(&edit).is_ok(), "50 sources are within the limit");
    edit["timeline"]["tracks"][1]["clips"] = Value::Array(clips);
    let e = check(&edit).unwrap_err();
    assert_eq!(e.kind, EditErrorKind::Limit);
    assert_at(&e, "timeline.tracks[1].clips[49].asset.src", "max_sources");
    // The same source many times is one source.
    edit["timeline"]["tracks"][1]["clips"] = Value::Array(vec![clip; 200]);
    assert!(check(&edit).is_ok());
}

#[test]
fn too_long_is_a_limit() {
    let e = mistake(|v| v["timeline"]["tracks"][1]["clips"][0]["start"] = json!(700));
    assert_eq!(e.kind, EditErrorKind::Limit);
}

#[test]
fn placeholders_stand_wherever_a_value_goes() {
    let mut edit = valid();
    edit["timeline"]["background"] = json!("{{BG}}");
    edit["timeline"]["tracks"][1]["clips"][0]["start"] = json!("{{START}}");
    edit["timeline"]["tracks"][1]["clips"][0]["fit"] = json!("{{FIT}}");
    edit["timeline"]["tracks"][1]["clips"][0]["asset"] = json!("{{HERO}}");
    edit["output"]["fps"] = json!("{{FPS}}");
    let parsed = check(&edit).expect("placeholders accepted");
    let names: Vec<String> = parsed.placeholder_names().into_iter().collect();
    assert_eq!(names, ["BG", "FIT", "FPS", "HERO", "NAME", "START"]);
}

#[test]
fn every_asset_type_of_the_seed_parses() {
    let assets = [
        json!({ "type": "video", "src": "a.mp4", "trim": 1, "volume": 1, "volumeEffect": "fadeIn", "speed": 2, "crop": { "top": 0.1 } }),
        json!({ "type": "image", "src": "a.png", "crop": { "left": 0.1, "right": 0.2 } }),
        json!({ "type": "title", "text": "Hi", "style": "chunkLight", "color": "#80ffffff", "size": "xx-large", "background": "#000000", "position": "bottomLeft", "offset": { "x": 0.1, "y": -0.2 } }),
        json!({ "type": "html", "html": "<p>Hi</p>", "css": "p { color: red; }", "width": 400, "height": 200, "background": "#ffffff", "position": "top" }),
        json!({ "type": "audio", "src": "a.mp3", "trim": 0, "volume": 0.3, "speed": 1.5, "effect": "fadeInFadeOut" }),
        json!({ "type": "luma", "src": "mask.mp4", "trim": 0 }),
    ];
    for asset in assets {
        let mut edit = valid();
        edit["timeline"]["tracks"][1]["clips"][0]["asset"] = asset.clone();
        check(&edit).unwrap_or_else(|e| panic!("{asset}: {e}"));
    }
}

#[test]
fn every_output_of_the_seed_parses() {
    for format in ["mp4", "webm", "gif", "jpg", "png", "bmp", "mp3"] {
        for resolution in ["preview", "mobile", "sd", "hd", "1080"] {
            let mut edit = valid();
            edit["output"] =
                json!({ "format": format, "resolution": resolution, "quality": "high" });
            check(&edit).unwrap_or_else(|e| panic!("{format}/{resolution}: {e}"));
        }
    }
    for ratio in ["16:9", "9:16", "1:1", "4:5", "4:3"] {
        let mut edit = valid();
        edit["output"]["aspectRatio"] = json!(ratio);
        check(&edit).unwrap_or_else(|e| panic!("{ratio}: {e}"));
    }
    let mut edit = valid();
    edit["output"]["destinations"] = json!([
        { "provider": "shotstack", "exclude": true },
        { "provider": "s3", "options": { "region": "us-east-1", "bucket": "b", "prefix": "p", "filename": "f", "acl": "public-read" } },
        { "provider": "mux", "options": { "playbackPolicy": ["public"] } }
    ]);
    edit["output"]["range"] = json!({ "start": 1, "length": 2 });
    edit["output"]["poster"] = json!({ "capture": 1 });
    edit["output"]["thumbnail"] = json!({ "capture": 1, "scale": 0.3 });
    check(&edit).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn every_transition_and_effect_of_the_seed_parses() {
    let transitions = [
        "fade",
        "reveal",
        "wipeLeft",
        "wipeRight",
        "slideLeft",
        "slideRight",
        "slideUp",
        "slideDown",
        "carouselLeft",
        "carouselRight",
        "carouselUp",
        "carouselDown",
        "shuffleTopRight",
        "shuffleRightTop",
        "shuffleRightBottom",
        "shuffleBottomRight",
        "shuffleBottomLeft",
        "shuffleLeftBottom",
        "shuffleLeftTop",
        "shuffleTopLeft",
    ];
    for t in transitions {
        for speed in ["", "Slow", "Fast"] {
            let mut edit = valid();
            edit["timeline"]["tracks"][0]["clips"][0]["transition"] =
                json!({ "in": format!("{t}{speed}") });
            check(&edit).unwrap_or_else(|e| panic!("{t}{speed}: {e}"));
        }
    }
    let mut edit = valid();
    edit["timeline"]["tracks"][0]["clips"][0]["transition"] =
        json!({ "in": "zoom", "out": "zoom" });
    check(&edit).expect("zoom");
    for effect in [
        "zoomIn",
        "zoomOut",
        "slideLeft",
        "slideRight",
        "slideUp",
        "slideDown",
    ] {
        for speed in ["", "Slow", "Fast"] {
            let mut edit = valid();
            edit["timeline"]["tracks"][0]["clips"][0]["effect"] = json!(format!("{effect}{speed}"));
            check(&edit).unwrap_or_else(|e| panic!("{effect}{speed}: {e}"));
        }
    }
    for filter in [
        "boost",
        "contrast",
        "darken",
        "greyscale",
        "lighten",
        "muted",
        "negative",
    ] {
        let mut edit = valid();
        edit["timeline"]["tracks"][0]["clips"][0]["filter"] = json!(filter);
        check(&edit).unwrap_or_else(|e| panic!("{filter}: {e}"));
    }
}

#[test]
fn html_beyond_the_limits_is_refused() {
    let deep = "<span>".repeat(MAX_DEPTH + 5) + "x";
    assert_eq!(
        check_html(&deep, ""),
        Err(HtmlError::TooDeep { limit: MAX_DEPTH })
    );
    let long = "a".repeat(MAX_HTML_BYTES + 1);
    assert!(matches!(
        check_html(&long, ""),
        Err(HtmlError::TooLong { field: "html", .. })
    ));
    let many = "<b>x</b>".repeat(MAX_ELEMENTS + 1);
    assert!(matches!(
        check_html(&many, ""),
        Err(HtmlError::TooMany { field: "html", .. })
    ));
    let rules = "p { color: red; }\n".repeat(MAX_RULES + 1);
    assert!(matches!(
        check_html("<p>x</p>", &rules),
        Err(HtmlError::TooMany { field: "css", .. })
    ));
    assert_eq!(
        check_html("<p>fine &amp; well</p>", "p { color: red }"),
        Ok(())
    );
}

#[test]
fn transparent_is_a_colour() {
    for word in ["transparent", "Transparent"] {
        let colour: Color = word.parse().unwrap();
        assert_eq!(colour.rgba(), [0, 0, 0, 0]);
    }
    assert!("clear".parse::<Color>().is_err());
}
