//! Media opening and probing, as a render reads its sources: any bytes as a
//! still picture (with the configured size limit), as video frames and as
//! audio. Failures are errors, never panics, hangs or huge allocations
//! (libFuzzer's -rss_limit_mb and -timeout enforce the last two).
#![no_main]

use std::io::Write;

use clipstream_actors::engine::media::audio::AudioReader;
use clipstream_actors::engine::media::picture::Still;
use clipstream_actors::engine::media::video::{Spec, VideoReader};
use clipstream_actors::engine::plan::Crop;
use libfuzzer_sys::fuzz_target;

const MAX: (u32, u32) = (4096, 4096);

fuzz_target!(|data: &[u8]| {
    clipstream_actors::engine::media::init();
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(data).expect("write input");
    let path = file.path();
    if let Ok(still) = Still::open(path, "fuzz", MAX) {
        let (w, h) = still.size();
        assert!(w <= MAX.0 && h <= MAX.1, "{w}×{h} passed the limit");
        let _ = still.picture(Crop::default(), 64, 36);
    }
    if let Ok(mut video) = VideoReader::open(path, "fuzz") {
        let (w, h) = video.size();
        if w <= MAX.0 && h <= MAX.1 {
            // A crop as clips ask for, so the cropping path is fed too.
            let spec = Spec {
                width: 64,
                height: 36,
                crop: Crop {
                    left: 0.25,
                    ..Crop::default()
                },
                filter: None,
            };
            for i in 0..10 {
                if video.frame_at(f64::from(i) * 0.1, &spec).is_err() {
                    break;
                }
            }
        }
    }
    // At a speed other than 1, so the tempo filter is fed too.
    if let Ok(Some(mut audio)) = AudioReader::open(path, "fuzz", 1.5) {
        let mut buf = vec![0f32; 4800];
        for _ in 0..10 {
            match audio.read(&mut buf) {
                Ok(n) if n == buf.len() => {}
                _ => break,
            }
        }
    }
});
