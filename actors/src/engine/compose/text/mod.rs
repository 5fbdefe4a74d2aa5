//! Text layers: titles in their ten styles and html assets, shaped with
//! cosmic-text (HarfBuzz-compatible shaping, bidi, line breaking, font
//! fallback) and drawn as straight-alpha RGBA pictures. Both are static:
//! drawn once per clip.

pub mod css;
pub mod fonts;
pub mod html;
mod raster;
pub mod styles;
mod title;

use std::path::Path;

use cosmic_text::SwashCache;

use crate::engine::compose::canvas::Picture;
use crate::engine::plan::{Html, Title};

pub use crate::engine::edit::text::HtmlError;
pub use fonts::FontBook;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{src}: not a usable font: {reason}")]
    Font { src: String, reason: String },
    #[error("html asset: {0}")]
    Html(#[from] HtmlError),
}

/// Sets the text layers of one render: its fonts and a glyph cache.
pub struct Typesetter {
    book: FontBook,
    cache: SwashCache,
}

impl Typesetter {
    pub fn new() -> Typesetter {
        Typesetter {
            book: FontBook::new(),
            cache: SwashCache::new(),
        }
    }

    /// Makes the font fetched for `src` available by its family names.
    pub fn load_font(&mut self, src: &str, path: &Path) -> Result<Vec<String>, TextError> {
        self.book.load(src, path)
    }

    pub fn title(&mut self, title: &Title, output_w: u32, output_h: u32) -> Picture {
        title::render(&mut self.book, &mut self.cache, title, output_w, output_h)
    }

    pub fn html(&mut self, asset: &Html) -> Result<Picture, TextError> {
        Ok(html::render(&mut self.book, &mut self.cache, asset)?)
    }
}

impl Default for Typesetter {
    fn default() -> Self {
        Typesetter::new()
    }
}

#[cfg(test)]
mod tests;
