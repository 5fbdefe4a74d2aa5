//! The fonts text is set in: the faces shipped in `actors/fonts/` (compiled
//! in, so a fresh clone needs nothing installed, and a render never depends
//! on what the machine has) plus the render's own `timeline.fonts`.
//!
//! Shipped faces, all under the SIL Open Font License or the Bitstream Vera
//! licence (the `LICENSE-*` files beside them): DejaVu Sans (regular, bold),
//! Bebas Neue Bold, EB Garamond, Cabin Sketch, Kaushan Script, League
//! Spartan (light, regular, black), Lato Thin, and Noto Sans Arabic,
//! Devanagari and Hebrew (regular, bold) for scripts the others lack.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use cosmic_text::fontdb::{self, Database, Source};
use cosmic_text::FontSystem;

use super::TextError;

macro_rules! shipped {
    ($($file:literal),* $(,)?) => {
        &[$(include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/fonts/", $file)) as &[u8]),*]
    };
}

static SHIPPED: &[&[u8]] = shipped![
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "BebasNeue-Bold.otf",
    "EBGaramond12-Regular.ttf",
    "CabinSketch-Regular.ttf",
    "KaushanScript-Regular.otf",
    "LeagueSpartan-Light.otf",
    "LeagueSpartan-Regular.otf",
    "LeagueSpartan-Black.otf",
    "Lato-Thin.ttf",
    "NotoSansArabic-Regular.ttf",
    "NotoSansArabic-Bold.ttf",
    "NotoSansDevanagari-Regular.ttf",
    "NotoSansDevanagari-Bold.ttf",
    "NotoSansHebrew-Regular.ttf",
    "NotoSansHebrew-Bold.ttf",
];

/// Family names of the shipped faces, as their name tables spell them.
pub const SANS: &str = "DejaVu Sans";
pub const SERIF: &str = "EB Garamond";
pub const CONDENSED: &str = "Bebas Neue";
pub const SKETCH: &str = "Cabin Sketch";
pub const BRUSH: &str = "Kaushan Script";
pub const GEOMETRIC: &str = "League Spartan";
/// Lato Thin: the only Lato face shipped.
pub const THIN: &str = "Lato";

/// The largest font file accepted from `timeline.fonts`.
pub const MAX_FONT_BYTES: u64 = 16 << 20;

/// The shipped faces, parsed once per process; each render clones the
/// index (the font data itself is shared).
static SHIPPED_DB: LazyLock<Database> = LazyLock::new(|| {
    let mut db = Database::new();
    for data in SHIPPED {
        db.load_font_source(Source::Binary(Arc::new(*data)));
    }
    db.set_sans_serif_family(SANS);
    db.set_serif_family(SERIF);
    db.set_cursive_family(BRUSH);
    db.set_fantasy_family(SKETCH);
    // Nothing monospaced is shipped: the sans face stands in.
    db.set_monospace_family(SANS);
    db
});

/// The fonts of one render: the shipped ones and its custom ones.
pub struct FontBook {
    system: FontSystem,
}

impl FontBook {
    pub fn new() -> FontBook {
        // A fixed locale: the same Edit renders the same on every machine.
        FontBook {
            system: FontSystem::new_with_locale_and_db("en-US".into(), SHIPPED_DB.clone()),
        }
    }

    /// Adds the font file at `path`, fetched for `src`, and returns the
    /// family names it makes available.
    pub fn load(&mut self, src: &str, path: &Path) -> Result<Vec<String>, TextError> {
        let unreadable = |reason: String| TextError::Font {
            src: src.to_owned(),
            reason,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| unreadable(e.to_string()))?
            .len();
        if len > MAX_FONT_BYTES {
            return Err(unreadable(format!(
                "{len} bytes is more than the limit of {MAX_FONT_BYTES}"
            )));
        }
        let data = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
        self.load_bytes(src, data)
    }

    pub fn load_bytes(&mut self, src: &str, data: Vec<u8>) -> Result<Vec<String>, TextError> {
        let db = self.system.db_mut();
        let ids = db.load_font_source(Source::Binary(Arc::new(data)));
        let mut families = Vec::new();
        for id in ids {
            if let Some(face) = db.face(id) {
                for (name, _) in &face.families {
                    if !families.contains(name) {
                        families.push(name.clone());
                    }
                }
            }
        }
        if families.is_empty() {
            return Err(TextError::Font {
                src: src.to_owned(),
                reason: "not a TrueType or OpenType font with a family name".into(),
            });
        }
        Ok(families)
    }

    /// Whether some face is of `family` (case as CSS: insensitive).
    pub fn has_family(&self, family: &str) -> Option<String> {
        self.system.db().faces().find_map(|face| {
            face.families
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(family))
                .map(|(name, _)| name.clone())
        })
    }

    /// The weight of the face `family` at `weight` comes to. cosmic-text
    /// keeps a family only at one of its exact weights (else it falls back
    /// to another family), so text asks for the weight this returns.
    pub fn nearest_weight(&self, family: fontdb::Family<'_>, weight: u16, italic: bool) -> u16 {
        let query = fontdb::Query {
            families: &[family],
            weight: fontdb::Weight(weight),
            stretch: fontdb::Stretch::Normal,
            style: if italic {
                fontdb::Style::Italic
            } else {
                fontdb::Style::Normal
            },
        };
        let db = self.system.db();
        db.query(&query)
            .and_then(|id| db.face(id))
            .map_or(weight, |face| face.weight.0)
    }

    pub fn db(&self) -> &fontdb::Database {
        self.system.db()
    }

    pub fn system(&mut self) -> &mut FontSystem {
        &mut self.system
    }
}

impl Default for FontBook {
    fn default() -> Self {
        FontBook::new()
    }
}

/// The generic CSS families, mapped onto the database's choices.
pub fn generic(name: &str) -> Option<fontdb::Family<'static>> {
    Some(match name {
        "sans-serif" | "system-ui" | "ui-sans-serif" => fontdb::Family::SansSerif,
        "serif" | "ui-serif" => fontdb::Family::Serif,
        "cursive" => fontdb::Family::Cursive,
        "fantasy" => fontdb::Family::Fantasy,
        "monospace" | "ui-monospace" => fontdb::Family::Monospace,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_face_is_found_by_its_family() {
        let book = FontBook::new();
        for family in [
            SANS,
            SERIF,
            CONDENSED,
            SKETCH,
            BRUSH,
            GEOMETRIC,
            THIN,
            "Noto Sans Arabic",
            "Noto Sans Devanagari",
            "Noto Sans Hebrew",
        ] {
            assert_eq!(book.has_family(family).as_deref(), Some(family), "{family}");
        }
    }

    #[test]
    fn a_weight_a_family_lacks_comes_to_its_nearest_face() {
        let book = FontBook::new();
        let name = fontdb::Family::Name;
        assert_eq!(book.nearest_weight(name(GEOMETRIC), 300, false), 277);
        assert_eq!(book.nearest_weight(name(GEOMETRIC), 400, false), 350);
        assert_eq!(book.nearest_weight(name(THIN), 100, false), 200);
        assert_eq!(book.nearest_weight(fontdb::Family::Serif, 700, false), 400);
        assert_eq!(book.nearest_weight(name(SANS), 700, true), 700);
        assert_eq!(book.nearest_weight(name("No Such Family"), 500, false), 500);
    }

    #[test]
    fn a_custom_font_adds_its_family_and_garbage_is_refused() {
        let mut book = FontBook::new();
        assert_eq!(book.has_family("Leckerli One"), None);
        let families = book
            .load_bytes("leckerli.ttf", super::super::tests::custom_font())
            .unwrap();
        assert_eq!(families, ["Leckerli One"]);
        assert!(book.has_family("leckerli one").is_some());
        let e = book
            .load_bytes("junk.ttf", b"not a font at all".to_vec())
            .unwrap_err();
        assert!(e.to_string().starts_with("junk.ttf: "), "{e}");
    }
}
