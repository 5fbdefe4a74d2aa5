//! The Pixop API's media work: ingestion (what a video is: container,
//! codec, picture format, scanning by metadata and by `idet`, frame rate,
//! duration, frames, sizes) and processing (decode, a libavfilter graph,
//! an encoder, a muxer), both with FFmpeg's libraries through ffmpeg-next.
//!
//! The server (`server/src/pixop/process.rs`) turns a request into a
//! [`Job`]: the filter chain, the encoder and its options, the muxer.
//! Processed media carry the source's sound, copied, where the container
//! takes its codec (AAC, MP3, AC-3, E-AC-3; PCM in mov), and no sound
//! otherwise (MXF, other codecs).

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::media::Type;
use ffmpeg::{Dictionary, Rational};
use ffmpeg_next as ffmpeg;

use super::{init, open_uploaded_input as open_input, MediaError};

/// Field order, as metadata states it or `idet` measures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanning {
    Progressive,
    TopFieldFirst,
    BottomFieldFirst,
    /// Interlaced with the first field not known.
    Interlaced,
    Unknown,
}

/// A picture format's chroma subsampling (`4:2:0`) and bits per sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chroma {
    pub yuv: String,
    pub bits: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The demuxer's names (`mov,mp4,m4a,3gp,3g2,mj2`) and description.
    pub container_name: String,
    pub long_container_name: String,
    pub codec_name: String,
    pub long_codec_name: String,
    pub pixel_format: Option<String>,
    pub chroma: Option<Chroma>,
    pub width: u32,
    pub height: u32,
    pub scanning: Scanning,
    /// `idet`'s verdict over the first frames, when asked for.
    pub heuristics: Option<Scanning>,
    pub average_fps: f64,
    pub duration_ms: u64,
    pub total_frames: u64,
    pub size: u64,
    pub video_stream_size: u64,
    pub bit_rate: i64,
    /// The storage and display aspect ratios, as num/den.
    pub storage_aspect: (u32, u32),
    pub display_aspect: (u32, u32),
}

/// How many frames `idet` looks at.
const IDET_FRAMES: usize = 120;

fn decode_error(src: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Decode {
        src: src.to_owned(),
        reason: e.to_string(),
    }
}

fn encode_error(e: impl std::fmt::Display) -> MediaError {
    MediaError::Encode(e.to_string())
}

/// The chroma subsampling and depth of a YUV pixel format; `None` for RGB,
/// palette, Bayer and hardware formats.
pub fn chroma_of(format: Pixel) -> Option<Chroma> {
    let descriptor = format.descriptor()?;
    // SAFETY: the descriptor is a static table entry of libavutil.
    let (flags, depth) = unsafe {
        let d = ffmpeg::ffi::av_pix_fmt_desc_get(format.into());
        if d.is_null() {
            return None;
        }
        ((*d).flags, (*d).comp[0].depth)
    };
    let excluded = ffmpeg::ffi::AV_PIX_FMT_FLAG_RGB
        | ffmpeg::ffi::AV_PIX_FMT_FLAG_PAL
        | ffmpeg::ffi::AV_PIX_FMT_FLAG_HWACCEL
        | ffmpeg::ffi::AV_PIX_FMT_FLAG_BAYER;
    if flags & excluded as u64 != 0 || descriptor.nb_components() < 3 {
        return None;
    }
    let yuv = match (descriptor.log2_chroma_w(), descriptor.log2_chroma_h()) {
        (0, 0) => "4:4:4",
        (1, 0) => "4:2:2",
        (1, 1) => "4:2:0",
        (2, 0) => "4:1:1",
        (2, 2) => "4:1:0",
        (0, 1) => "4:4:0",
        _ => return None,
    };
    Some(Chroma {
        yuv: yuv.to_owned(),
        bits: u32::try_from(depth).ok()?,
    })
}

fn scanning_of(order: ffmpeg::ffi::AVFieldOrder) -> Scanning {
    use ffmpeg::ffi::AVFieldOrder::*;
    match order {
        AV_FIELD_PROGRESSIVE => Scanning::Progressive,
        AV_FIELD_TT | AV_FIELD_TB => Scanning::TopFieldFirst,
        AV_FIELD_BB | AV_FIELD_BT => Scanning::BottomFieldFirst,
        _ => Scanning::Unknown,
    }
}

fn reduce(num: u64, den: u64) -> (u32, u32) {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let g = gcd(num, den).max(1);
    (
        u32::try_from(num / g).unwrap_or(0),
        u32::try_from(den / g).unwrap_or(0),
    )
}

/// Reads what the video at `path` is; `heuristics` adds `idet` over its
/// first frames. `progress` hears the share read, 0.0 to 1.0.
pub fn ingest(
    path: &Path,
    src: &str,
    heuristics: bool,
    progress: &mut dyn FnMut(f64),
) -> Result<Facts, MediaError> {
    let mut input = open_input(path, src)?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let stream = input
        .streams()
        .best(Type::Video)
        .ok_or_else(|| MediaError::NoStream {
            src: src.to_owned(),
            kind: "video",
        })?;
    let index = stream.index();
    let time_base = stream.time_base();
    let avg = stream.avg_frame_rate();
    let parameters = stream.parameters();
    // The bounded context: a stream declaring more pixels than a decoder
    // may allocate is refused, not decoded.
    let decoder = super::decoder_context(parameters.clone(), src)?
        .decoder()
        .video()
        .map_err(|e| decode_error(src, e))?;
    let id = parameters.id();
    // SAFETY: plain fields of the parameters the input owns.
    let (field_order, sar) = unsafe {
        let par = parameters.as_ptr();
        ((*par).field_order, (*par).sample_aspect_ratio)
    };
    let (width, height) = (decoder.width(), decoder.height());
    let format = decoder.format();
    let long_container_name = input.format().description().to_owned();
    let container_name = input.format().name().to_owned();
    let stream_duration = stream.duration();
    let declared_frames = stream.frames();
    let container_duration = input.duration();
    let bit_rate = input.bit_rate();

    // Every packet once, without decoding: the frame count and the video
    // stream's size are exact, and reading is the ingestion's progress.
    let (mut frames, mut stream_bytes, mut last_pts) = (0u64, 0u64, None::<i64>);
    let mut reported = 0u64;
    // Not `input.packets()`: it retries corrupt packets for ever, and a
    // 38-byte upload (fuzz/regressions/media/) spun ingestion at 100% CPU.
    while let Some(packet) = super::next_any_packet(&mut input, src)? {
        if packet.stream() == index {
            frames += 1;
            stream_bytes += packet.size() as u64;
            if let Some(pts) = packet.pts() {
                let end = pts + packet.duration();
                last_pts = Some(last_pts.map_or(end, |l| l.max(end)));
            }
        }
        let read = u64::try_from(packet.position()).unwrap_or(0);
        if let Some(at) = read.saturating_mul(100).checked_div(size) {
            if at > reported {
                reported = at;
                progress(at as f64 / 100.0);
            }
        }
    }
    if frames == 0 {
        frames = u64::try_from(declared_frames).unwrap_or(0);
    }
    let duration_s = if stream_duration > 0 {
        stream_duration as f64 * f64::from(time_base)
    } else if container_duration > 0 {
        container_duration as f64 / 1_000_000.0
    } else {
        last_pts.map_or(0.0, |p| p as f64 * f64::from(time_base))
    };
    let average_fps = if avg.numerator() > 0 && avg.denominator() > 0 {
        f64::from(avg)
    } else if duration_s > 0.0 {
        frames as f64 / duration_s
    } else {
        0.0
    };
    let heuristics = if heuristics {
        Some(measure_scanning(path, src)?)
    } else {
        None
    };
    let storage_aspect = reduce(u64::from(width), u64::from(height));
    let display_aspect = if sar.num > 0 && sar.den > 0 {
        reduce(
            u64::from(width) * sar.num as u64,
            u64::from(height) * sar.den as u64,
        )
    } else {
        storage_aspect
    };
    progress(1.0);
    Ok(Facts {
        container_name,
        long_container_name,
        codec_name: id.name().to_owned(),
        long_codec_name: ffmpeg::codec::decoder::find(id)
            .map(|c| c.description().to_owned())
            .unwrap_or_default(),
        pixel_format: format.descriptor().map(|d| d.name().to_owned()),
        chroma: chroma_of(format),
        width,
        height,
        scanning: scanning_of(field_order),
        heuristics,
        average_fps,
        duration_ms: (duration_s * 1000.0).round() as u64,
        total_frames: frames,
        size,
        video_stream_size: stream_bytes,
        bit_rate,
        storage_aspect,
        display_aspect,
    })
}

/// A decoder of the best video stream and a filter graph after it.
struct Pipeline {
    input: ffmpeg::format::context::Input,
    index: usize,
    time_base: Rational,
    decoder: ffmpeg::decoder::Video,
    graph: ffmpeg::filter::Graph,
}

impl Pipeline {
    fn open(path: &Path, src: &str, filters: &str) -> Result<Pipeline, MediaError> {
        let input = open_input(path, src)?;
        let stream = input
            .streams()
            .best(Type::Video)
            .ok_or_else(|| MediaError::NoStream {
                src: src.to_owned(),
                kind: "video",
            })?;
        let index = stream.index();
        let time_base = stream.time_base();
        let rate = stream.avg_frame_rate();
        let mut context = super::decoder_context(stream.parameters(), src)?;
        // Two threads at most: the machine is shared with renders.
        context.set_threading(ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::Frame,
            count: 2,
            ..Default::default()
        });
        let decoder = context
            .decoder()
            .video()
            .map_err(|e| decode_error(src, e))?;
        let mut graph = ffmpeg::filter::Graph::new();
        let sar = decoder.aspect_ratio();
        let mut args = format!(
            "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
            decoder.width(),
            decoder.height(),
            ffmpeg::ffi::AVPixelFormat::from(decoder.format()) as i32,
            time_base.numerator(),
            time_base.denominator().max(1),
            sar.numerator().max(1),
            sar.denominator().max(1),
        );
        if rate.numerator() > 0 && rate.denominator() > 0 {
            args.push_str(&format!(
                ":frame_rate={}/{}",
                rate.numerator(),
                rate.denominator()
            ));
        }
        let graph_error =
            |e: ffmpeg::Error| MediaError::Encode(format!("filter graph {filters:?}: {e}"));
        let buffer = ffmpeg::filter::find("buffer")
            .ok_or_else(|| MediaError::Encode("libavfilter has no buffer source".into()))?;
        let sink = ffmpeg::filter::find("buffersink")
            .ok_or_else(|| MediaError::Encode("libavfilter has no buffer sink".into()))?;
        graph.add(&buffer, "in", &args).map_err(graph_error)?;
        graph.add(&sink, "out", "").map_err(graph_error)?;
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(filters))
            .map_err(graph_error)?;
        graph.validate().map_err(graph_error)?;
        Ok(Pipeline {
            input,
            index,
            time_base,
            decoder,
            graph,
        })
    }

    /// Reads, decodes and filters until `each` returns false or the input
    /// ends (then the decoder and graph are drained). `each` gets every
    /// filtered frame; `keep` is asked before a decoded frame enters the
    /// graph (its time in seconds) and may say skip, keep or stop.
    fn run(
        &mut self,
        src: &str,
        keep: &mut dyn FnMut(f64) -> Keep,
        each: &mut dyn FnMut(&mut ffmpeg::frame::Video) -> Result<bool, MediaError>,
        other: &mut dyn FnMut(usize, ffmpeg::Packet) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        let mut others = Vec::new();
        let mut decoded = ffmpeg::frame::Video::empty();
        let mut filtered = ffmpeg::frame::Video::empty();
        let time_base = f64::from(self.time_base);
        let mut stopped = false;
        let index = self.index;
        let mut packets = Vec::new();
        // Packets are read a few at a time so that the input's borrow ends
        // before the decoder and graph are used.
        loop {
            packets.clear();
            // Bounded on corrupt packets, unlike `input.packets()`.
            while let Some(packet) = super::next_any_packet(&mut self.input, src)? {
                if packet.stream() == index {
                    packets.push(packet);
                    if packets.len() >= 8 {
                        break;
                    }
                } else {
                    others.push((packet.stream(), packet));
                }
            }
            // The other streams' packets (sound to copy) go first: they
            // came before the video packets read with them.
            for (stream, packet) in others.drain(..) {
                other(stream, packet)?;
            }
            let end = packets.is_empty();
            if end {
                self.decoder.send_eof().map_err(|e| decode_error(src, e))?;
            }
            for packet in &packets {
                self.decoder
                    .send_packet(packet)
                    .map_err(|e| decode_error(src, e))?;
                if self.drain_decoder(src, time_base, keep, each, &mut decoded, &mut filtered)? {
                    stopped = true;
                    break;
                }
            }
            if end && !stopped {
                stopped =
                    self.drain_decoder(src, time_base, keep, each, &mut decoded, &mut filtered)?;
            }
            if end || stopped {
                break;
            }
        }
        // The graph keeps frames (fps, framerate, interlace look ahead):
        // closing its source lets them out.
        if let Some(mut input) = self.graph.get("in") {
            input.source().flush().map_err(encode_error)?;
        }
        self.drain_graph(each, &mut filtered)?;
        Ok(())
    }

    /// Feeds decoded frames to the graph; true when `keep` or `each` said
    /// stop.
    fn drain_decoder(
        &mut self,
        src: &str,
        time_base: f64,
        keep: &mut dyn FnMut(f64) -> Keep,
        each: &mut dyn FnMut(&mut ffmpeg::frame::Video) -> Result<bool, MediaError>,
        decoded: &mut ffmpeg::frame::Video,
        filtered: &mut ffmpeg::frame::Video,
    ) -> Result<bool, MediaError> {
        while self.decoder.receive_frame(decoded).is_ok() {
            let at = decoded.timestamp().unwrap_or(0) as f64 * time_base;
            match keep(at) {
                Keep::Skip => continue,
                Keep::Stop => return Ok(true),
                Keep::Yes => {}
            }
            let timestamp = decoded.timestamp();
            decoded.set_pts(timestamp);
            self.graph
                .get("in")
                .ok_or_else(|| decode_error(src, "the graph lost its source"))?
                .source()
                .add(decoded)
                .map_err(encode_error)?;
            if !self.drain_graph(each, filtered)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Hands every frame the graph has ready to `each`; false when it said
    /// stop.
    fn drain_graph(
        &mut self,
        each: &mut dyn FnMut(&mut ffmpeg::frame::Video) -> Result<bool, MediaError>,
        filtered: &mut ffmpeg::frame::Video,
    ) -> Result<bool, MediaError> {
        let Some(mut out) = self.graph.get("out") else {
            return Err(MediaError::Encode("the graph lost its sink".into()));
        };
        while out.sink().frame(filtered).is_ok() {
            if !each(filtered)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The sink's time base, frame rate and size, once the graph is set.
    /// The buffersink's time base, frame rate, size, pixel format and
    /// sample aspect ratio: what the graph makes, not what was decoded.
    #[allow(clippy::type_complexity)]
    fn sink_format(
        &mut self,
    ) -> Result<(Rational, Rational, u32, u32, Pixel, Rational), MediaError> {
        let out = self
            .graph
            .get("out")
            .ok_or_else(|| MediaError::Encode("the graph lost its sink".into()))?;
        // SAFETY: getters of a configured buffersink the graph owns.
        unsafe {
            let ctx = out.as_ptr() as *mut ffmpeg::ffi::AVFilterContext;
            let tb = ffmpeg::ffi::av_buffersink_get_time_base(ctx);
            let fr = ffmpeg::ffi::av_buffersink_get_frame_rate(ctx);
            let w = ffmpeg::ffi::av_buffersink_get_w(ctx);
            let h = ffmpeg::ffi::av_buffersink_get_h(ctx);
            let f = ffmpeg::ffi::av_buffersink_get_format(ctx);
            let format = Pixel::from(std::mem::transmute::<i32, ffmpeg::ffi::AVPixelFormat>(f));
            let sar = ffmpeg::ffi::av_buffersink_get_sample_aspect_ratio(ctx);
            Ok((
                Rational::from(tb),
                Rational::from(fr),
                u32::try_from(w).unwrap_or(0),
                u32::try_from(h).unwrap_or(0),
                format,
                Rational::from(sar),
            ))
        }
    }
}

enum Keep {
    Yes,
    Skip,
    Stop,
}

/// `idet` over the first [`IDET_FRAMES`] frames: the field order most
/// frames showed, or progressive.
fn measure_scanning(path: &Path, src: &str) -> Result<Scanning, MediaError> {
    let mut pipeline = Pipeline::open(path, src, "idet")?;
    let mut seen = 0usize;
    let mut counts = (0.0f64, 0.0f64, 0.0f64);
    let mut count = |frame: &mut ffmpeg::frame::Video| {
        seen += 1;
        let metadata = frame.metadata();
        let read = |key: &str| {
            metadata
                .get(key)
                // Counts, written as `50.00`.
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        counts = (
            read("lavfi.idet.multiple.tff"),
            read("lavfi.idet.multiple.bff"),
            read("lavfi.idet.multiple.progressive"),
        );
        Ok(seen < IDET_FRAMES)
    };
    pipeline.run(src, &mut |_| Keep::Yes, &mut count, &mut |_, _| Ok(()))?;
    let (tff, bff, progressive) = counts;
    Ok(if tff > bff && tff > progressive {
        Scanning::TopFieldFirst
    } else if bff > tff && bff > progressive {
        Scanning::BottomFieldFirst
    } else if seen == 0 {
        Scanning::Unknown
    } else {
        Scanning::Progressive
    })
}

/// What a processing job does, decided by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The libavfilter chain from decoded frames to encoder input; it ends
    /// in `format=<pixel format>`.
    pub filters: String,
    /// An FFmpeg encoder name (`libx264`, `prores_ks`, ...).
    pub encoder: String,
    /// The encoder's private options.
    pub options: Vec<(String, String)>,
    pub bit_rate: Option<i64>,
    /// A constant-rate encoder's fixed rate (XDCAM): min = max = this.
    pub constant_rate: bool,
    /// An FFmpeg muxer name (`mov`, `mxf`, `mp4`, `mpegts`).
    pub muxer: String,
    /// Interlaced output, with this first field.
    pub interlaced: Option<Scanning>,
    /// The output frame rate when the filters set one.
    pub frame_rate: Option<Rational>,
    pub start_ms: Option<u64>,
    pub end_ms: Option<u64>,
}

/// Runs `job` on `input`, writing `output`. `progress` hears the share
/// done (0.0 to 1.0), from the position of the last packet the encoder
/// produced; it returns false to cancel.
pub fn process(
    input: &Path,
    output: &Path,
    job: &Job,
    progress: &mut dyn FnMut(f64) -> bool,
) -> Result<(), MediaError> {
    init();
    let src = "the source video";
    let mut pipeline = Pipeline::open(input, src, &job.filters)?;
    let (start, end) = (
        job.start_ms.map_or(0.0, |ms| ms as f64 / 1000.0),
        job.end_ms.map(|ms| ms as f64 / 1000.0),
    );
    let total = {
        let d = pipeline.input.duration();
        let whole = if d > 0 { d as f64 / 1_000_000.0 } else { 0.0 };
        end.unwrap_or(whole) - start
    };
    // The input's own start (MPEG-TS starts at about 1.4 s): the range
    // counts from it, and sound and pictures are shifted by the same
    // origin so that they stay together.
    // SAFETY: a plain field of the opened input's context.
    let origin = match unsafe { (*pipeline.input.as_ptr()).start_time } {
        t if t == ffmpeg::ffi::AV_NOPTS_VALUE => 0.0,
        t => t as f64 / 1_000_000.0,
    };
    // Demuxers without an index (MPEG-TS) seek by timestamps and may land
    // after the key frame the range needs: the seek goes a few seconds
    // earlier, and the frames before the range are decoded and skipped.
    const SEEK_MARGIN_S: f64 = 3.0;
    if start > SEEK_MARGIN_S {
        let at = ((start - SEEK_MARGIN_S + origin) * 1_000_000.0) as i64;
        pipeline
            .input
            .seek(at, ..at)
            .map_err(|e| decode_error(src, e))?;
        pipeline.decoder.flush();
    }
    let (sink_tb, sink_rate, width, height, format, sar) = pipeline.sink_format()?;
    let rate = job
        .frame_rate
        .or_else(|| (sink_rate.numerator() > 0).then_some(sink_rate))
        .unwrap_or_else(|| Rational::new(25, 1));
    // The encoder counts in frames (1/rate): muxers such as MXF take only
    // a frame rate's time base.
    let time_base = rate.invert();
    let sink_tb = if sink_tb.numerator() > 0 {
        sink_tb
    } else {
        time_base
    };
    // The output's 0, in the sink's time base: the range's start on the
    // input's clock.
    let zero = ((start + origin) / f64::from(sink_tb)).round() as i64;
    let mut last_pts: Option<i64> = None;

    let codec = ffmpeg::encoder::find_by_name(&job.encoder)
        .ok_or_else(|| MediaError::Encode(format!("no {} encoder here", job.encoder)))?;
    let mut octx = ffmpeg::format::output_as(output, &job.muxer).map_err(encode_error)?;
    let global_header = octx
        .format()
        .flags()
        .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
    let mut encoder = ffmpeg::codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(encode_error)?;
    encoder.set_width(width);
    encoder.set_height(height);
    encoder.set_format(format);
    encoder.set_time_base(time_base);
    encoder.set_frame_rate(Some(rate));
    // The graph's, not the decoder's: scaling an anamorphic source to a
    // square-pixel size changes the sample aspect ratio.
    encoder.set_aspect_ratio(sar);
    if let Some(bits) = job.bit_rate {
        encoder.set_bit_rate(usize::try_from(bits).unwrap_or(0));
        if job.constant_rate {
            encoder.set_max_bit_rate(usize::try_from(bits).unwrap_or(0));
            // SAFETY: plain fields of the context, before it is opened.
            unsafe {
                let ctx = encoder.as_mut_ptr();
                (*ctx).rc_min_rate = bits;
                (*ctx).rc_buffer_size = i32::try_from(bits / 2).unwrap_or(i32::MAX);
            }
        }
    }
    let mut flags = ffmpeg::codec::Flags::empty();
    if global_header {
        flags.insert(ffmpeg::codec::Flags::GLOBAL_HEADER);
    }
    if job.interlaced.is_some() {
        flags.insert(ffmpeg::codec::Flags::INTERLACED_DCT | ffmpeg::codec::Flags::INTERLACED_ME);
    }
    encoder.set_flags(flags);
    if let Some(order) = job.interlaced {
        // SAFETY: a plain field of the context, before it is opened.
        unsafe {
            (*encoder.as_mut_ptr()).field_order = match order {
                Scanning::BottomFieldFirst => ffmpeg::ffi::AVFieldOrder::AV_FIELD_BB,
                _ => ffmpeg::ffi::AVFieldOrder::AV_FIELD_TT,
            };
        }
    }
    encoder.set_threading(ffmpeg::threading::Config {
        kind: ffmpeg::threading::Type::Frame,
        count: 2,
        ..Default::default()
    });
    let mut options = Dictionary::new();
    for (k, v) in &job.options {
        options.set(k, v);
    }
    let mut encoder = encoder.open_as_with(codec, options).map_err(|e| {
        MediaError::Encode(format!(
            "{} will not open with these settings: {e}",
            job.encoder
        ))
    })?;
    // The sound is copied as it is where the container takes its codec.
    let audio = pipeline.input.streams().best(Type::Audio).and_then(|s| {
        use ffmpeg::codec::Id;
        let id = s.parameters().id();
        let takes = match job.muxer.as_str() {
            "mp4" | "mpegts" => matches!(id, Id::AAC | Id::MP3 | Id::AC3 | Id::EAC3),
            "mov" => matches!(
                id,
                Id::AAC | Id::MP3 | Id::AC3 | Id::EAC3 | Id::PCM_S16LE | Id::PCM_S24LE
            ),
            _ => false,
        };
        takes.then(|| (s.index(), s.time_base(), s.parameters()))
    });
    {
        let mut stream = octx.add_stream(codec).map_err(encode_error)?;
        stream.set_parameters(&encoder);
        stream.set_time_base(time_base);
        if let Some(order) = job.interlaced {
            // SAFETY: a plain field of the stream's parameters, which the
            // output owns; read by the muxer at write_header.
            unsafe {
                (*(*stream.as_mut_ptr()).codecpar).field_order = match order {
                    Scanning::BottomFieldFirst => ffmpeg::ffi::AVFieldOrder::AV_FIELD_BB,
                    _ => ffmpeg::ffi::AVFieldOrder::AV_FIELD_TT,
                };
            }
        }
    }
    if let Some((_, _, parameters)) = &audio {
        let mut stream = octx
            .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))
            .map_err(encode_error)?;
        stream.set_parameters(parameters.clone());
        // SAFETY: a plain field of the stream's parameters; the muxer
        // picks the tag of its own container.
        unsafe {
            (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0;
        }
    }
    octx.write_header().map_err(encode_error)?;
    let audio_tb = octx.stream(1).map(|s| s.time_base());
    let stream_tb = octx
        .stream(0)
        .map(|s| s.time_base())
        .ok_or_else(|| MediaError::Encode("the output lost its stream".into()))?;

    let octx = std::cell::RefCell::new(octx);
    let mut cancelled = false;
    let mut reached = 0.0f64;
    let mut write_packets = |encoder: &mut ffmpeg::encoder::Video,
                             octx: &std::cell::RefCell<ffmpeg::format::context::Output>,
                             cancelled: &mut bool|
     -> Result<(), MediaError> {
        let mut packet = ffmpeg::Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            let done = packet.pts().unwrap_or(0) as f64 * f64::from(time_base);
            packet.set_stream(0);
            packet.rescale_ts(time_base, stream_tb);
            packet
                .write_interleaved(&mut octx.borrow_mut())
                .map_err(encode_error)?;
            // Told at every packet, so that a cancel is heard at once.
            // Packets come in decoding order: the share never goes back.
            if total > 0.0 {
                reached = reached.max((done / total).clamp(0.0, 0.99));
            }
            if !progress(reached) {
                *cancelled = true;
            }
        }
        Ok(())
    };
    pipeline.run(
        src,
        &mut |at| {
            let at = at - origin;
            if at + 1e-6 < start {
                Keep::Skip
            } else if end.is_some_and(|e| at >= e - 1e-6) {
                Keep::Stop
            } else {
                Keep::Yes
            }
        },
        &mut |frame| {
            use ffmpeg::Rescale as _;
            let pts = frame.pts().unwrap_or(0);
            // In frames from the range's start, as the sound is; two
            // frames that round to one slot (a variable rate source) go
            // to consecutive ones.
            let mut at = (pts - zero).rescale(sink_tb, time_base).max(0);
            if let Some(last) = last_pts {
                at = at.max(last + 1);
            }
            last_pts = Some(at);
            frame.set_pts(Some(at));
            // SAFETY: the frame's picture type is a hint the encoder would
            // otherwise take from the decoder (a source's I frames).
            unsafe {
                (*frame.as_mut_ptr()).pict_type = ffmpeg::ffi::AVPictureType::AV_PICTURE_TYPE_NONE;
            }
            encoder.send_frame(frame).map_err(encode_error)?;
            write_packets(&mut encoder, &octx, &mut cancelled)?;
            Ok(!cancelled)
        },
        &mut |index, mut packet| {
            let (Some((audio_index, in_tb, _)), Some(out_tb)) = (&audio, audio_tb) else {
                return Ok(());
            };
            if index != *audio_index {
                return Ok(());
            }
            let at = packet.pts().unwrap_or(0) as f64 * f64::from(*in_tb) - origin;
            if at + 1e-6 < start || end.is_some_and(|e| at >= e) {
                return Ok(());
            }
            // The range's start is the output's 0, as for the pictures.
            let offset = ((start + origin) / f64::from(*in_tb)).round() as i64;
            packet.set_pts(packet.pts().map(|p| p - offset));
            packet.set_dts(packet.dts().map(|d| d - offset));
            packet.rescale_ts(*in_tb, out_tb);
            packet.set_stream(1);
            packet.set_position(-1);
            packet
                .write_interleaved(&mut octx.borrow_mut())
                .map_err(encode_error)
        },
    )?;
    if cancelled {
        return Err(MediaError::Encode("cancelled".into()));
    }
    encoder.send_eof().map_err(encode_error)?;
    write_packets(&mut encoder, &octx, &mut cancelled)?;
    octx.borrow_mut().write_trailer().map_err(encode_error)?;
    progress(1.0);
    Ok(())
}
