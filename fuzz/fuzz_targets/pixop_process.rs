//! The Pixop `process-video` body (`server/src/pixop/plan.rs`): any bytes
//! as the body, against a progressive and an interlaced source. A refusal
//! names a field and says why; an accepted request plans a filter chain
//! that libavfilter parses and configures for the source, ending in the
//! pixel format planned, at a size whole in that format's chroma, with a
//! known encoder and a muxer that takes its codec.
#![no_main]

#[path = "../../server/src/pixop/plan.rs"]
#[allow(dead_code)]
mod plan;

use clipstream_actors::engine::media::pixop::Scanning;
use ffmpeg_next as ffmpeg;
use libfuzzer_sys::fuzz_target;
use plan::{parse_request, plan, Source};

fn source(interlaced: bool) -> Source {
    Source {
        width: 320,
        height: 240,
        fps: 25.0,
        duration_ms: 10_000,
        yuv: Some("4:2:0".into()),
        bits: Some(8),
        scanning: if interlaced {
            Scanning::TopFieldFirst
        } else {
            Scanning::Progressive
        },
        bit_rate: 1_000_000,
        display_aspect: (4, 3),
    }
}

/// Whether libavfilter takes `chain` after a 320×240 yuv420p source.
fn graph_configures(chain: &str) -> Result<(), String> {
    clipstream_actors::engine::media::init();
    let mut graph = ffmpeg::filter::Graph::new();
    let buffer = ffmpeg::filter::find("buffer").ok_or("no buffer")?;
    let sink = ffmpeg::filter::find("buffersink").ok_or("no sink")?;
    graph
        .add(
            &buffer,
            "in",
            "video_size=320x240:pix_fmt=0:time_base=1/25:pixel_aspect=1/1:frame_rate=25/1",
        )
        .map_err(|e| e.to_string())?;
    graph.add(&sink, "out", "").map_err(|e| e.to_string())?;
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(chain))
        .map_err(|e| e.to_string())?;
    graph.validate().map_err(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let request = match parse_request(body) {
        Ok(r) => r,
        Err(r) => {
            assert!(!r.message.is_empty());
            return;
        }
    };
    match plan(&request, &source(which % 2 == 1)) {
        Ok(p) => {
            assert!(
                p.job
                    .filters
                    .ends_with(&format!("format={}", p.pixel_format)),
                "{p:?}"
            );
            assert!(
                (16..=7680).contains(&p.width) && (16..=4320).contains(&p.height),
                "{p:?}"
            );
            let (cw, ch) = match p.yuv.as_str() {
                "4:2:0" => (2, 2),
                "4:2:2" => (2, 1),
                "4:1:1" => (4, 1),
                "4:1:0" => (4, 4),
                "4:4:0" => (1, 2),
                _ => (1, 1),
            };
            assert!(p.width % cw == 0 && p.height % ch == 0, "{p:?}");
            assert!([
                "libx264",
                "libx265",
                "prores_ks",
                "dnxhd",
                "ffv1",
                "mpeg2video"
            ]
            .contains(&p.job.encoder.as_str()));
            assert!(["mov", "mxf", "mp4", "mpegts"].contains(&p.job.muxer.as_str()));
            // Sizes past a few thousand pixels cost seconds to configure
            // (motion interpolation): the chain is checked for the rest.
            if p.width * p.height <= 1920 * 1080 {
                graph_configures(&p.job.filters)
                    .unwrap_or_else(|e| panic!("{} does not configure: {e}", p.job.filters));
            }
        }
        Err(r) => {
            assert!(!r.field.is_empty(), "a refusal names its field: {r:?}");
            assert!(!r.message.is_empty());
        }
    }
});
