//! Still pictures (PNG, JPEG, …): the first frame, decoded once.

use std::path::Path;

use super::video::VideoReader;
use super::MediaError;
use crate::engine::compose::Picture;
use crate::engine::plan::Crop;

/// A still picture's size, and a way to get it at any size.
pub struct Still {
    reader: VideoReader,
}

impl Still {
    pub fn open(path: &Path, src: &str, max: (u32, u32)) -> Result<Still, MediaError> {
        let too_large = |width: u32, height: u32| MediaError::TooLarge {
            src: src.to_owned(),
            width,
            height,
            max_width: max.0,
            max_height: max.1,
        };
        // The size a picture's header declares, before FFmpeg probes it
        // (probing decodes the picture); formats the header reader does not
        // know are bounded by the decoders' pixel limit instead.
        if let Ok(declared) = imagesize::size(path) {
            let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            let (width, height) = (clamp(declared.width), clamp(declared.height));
            if width > max.0 || height > max.1 {
                return Err(too_large(width, height));
            }
        }
        let reader = VideoReader::open(path, src)?;
        let (width, height) = reader.size();
        if width > max.0 || height > max.1 {
            return Err(too_large(width, height));
        }
        Ok(Still { reader })
    }

    pub fn size(&self) -> (u32, u32) {
        self.reader.size()
    }

    /// The picture after `crop`, scaled to `width`×`height`; static layers
    /// are drawn from this one copy for the whole clip.
    pub fn picture(mut self, crop: Crop, width: u32, height: u32) -> Result<Picture, MediaError> {
        self.reader.first_rgba(crop, width, height)
    }
}
