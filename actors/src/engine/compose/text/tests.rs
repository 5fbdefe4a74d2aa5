//! What text layers look like, measured on the pictures they produce.

use cosmic_text::{Attrs, Buffer, Family, Metrics, Shaping};

use super::{FontBook, Typesetter};
use crate::engine::compose::canvas::Picture;
use crate::engine::edit::text::{check_html, MAX_DEPTH};
use crate::engine::edit::{Position, TitleStyle};
use crate::engine::plan::{Html, Rgba, Title};

/// A font none of the shipped ones is: Leckerli One (OFL).
pub fn custom_font() -> Vec<u8> {
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/LeckerliOne-Regular.ttf"
    ))
    .to_vec()
}

const RED: Rgba = [255, 0, 0, 255];

const ALL_STYLES: [TitleStyle; 10] = [
    TitleStyle::Minimal,
    TitleStyle::Blockbuster,
    TitleStyle::Vogue,
    TitleStyle::Sketchy,
    TitleStyle::Skinny,
    TitleStyle::Chunk,
    TitleStyle::ChunkLight,
    TitleStyle::Marker,
    TitleStyle::Future,
    TitleStyle::Subtitle,
];

fn title(text: &str, style: TitleStyle) -> Title {
    Title {
        text: text.into(),
        color: RED,
        size: 0.1,
        background: None,
        position: Position::Center,
        offset: (0.0, 0.0),
        style,
    }
}

fn render_title(t: &Title) -> Picture {
    Typesetter::new().title(t, 1280, 720)
}

fn html_box(html: &str, css: &str, width: u32, height: u32) -> Html {
    Html {
        html: html.into(),
        css: css.into(),
        width,
        height,
        background: None,
        position: Position::TopLeft,
    }
}

fn render_html(asset: &Html) -> Picture {
    Typesetter::new().html(asset).expect("renders")
}

fn near(a: Rgba, b: Rgba, tolerance: u8) -> bool {
    a.iter()
        .zip(b.iter())
        .take(3)
        .all(|(x, y)| x.abs_diff(*y) <= tolerance)
}

/// Pixels that are (nearly) opaque `color`, and their bounding box
/// `(x0, y0, x1, y1)`, inclusive.
fn ink(p: &Picture, color: Rgba) -> (usize, Option<(u32, u32, u32, u32)>) {
    let mut n = 0;
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    for y in 0..p.height {
        for x in 0..p.width {
            let px = p.pixel(x, y);
            if px[3] >= 200 && near(px, color, 40) {
                n += 1;
                bbox = Some(match bbox {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
    }
    (n, bbox)
}

/// Pixels with any opacity, of any colour.
fn any_ink(p: &Picture) -> (usize, Option<(u32, u32, u32, u32)>) {
    let mut q = p.clone();
    for px in q.data.chunks_exact_mut(4) {
        if px[3] > 100 {
            px.copy_from_slice(&[1, 2, 3, 255]);
        }
    }
    ink(&q, [1, 2, 3, 255])
}

/// Rows that have ink, grouped into bands: one band per line of text.
fn line_bands(p: &Picture) -> usize {
    let mut bands = 0;
    let mut inside = false;
    for y in 0..p.height {
        let inked = (0..p.width).any(|x| p.pixel(x, y)[3] > 100);
        if inked && !inside {
            bands += 1;
        }
        inside = inked;
    }
    bands
}

#[test]
fn every_title_style_draws_its_text_in_the_colour_asked() {
    for style in ALL_STYLES {
        let p = render_title(&title("Hello", style));
        let (red, bbox) = ink(&p, RED);
        assert!(red > 300, "{style:?}: {red} red pixels");
        let (x0, y0, x1, y1) = bbox.unwrap();
        // The ink is the text: wide rather than tall, inside the picture.
        assert!(x1 - x0 > y1 - y0, "{style:?}: {bbox:?}");
        assert!(
            p.width < 1280 && p.height < 400,
            "{style:?}: {}×{}",
            p.width,
            p.height
        );
    }
}

#[test]
fn title_styles_look_different_from_each_other() {
    let looks: Vec<_> = ALL_STYLES
        .iter()
        .map(|&s| {
            let p = render_title(&title("Hello World", s));
            let (red, bbox) = ink(&p, RED);
            let corner = p.pixel(0, 0);
            (s, p.width, p.height, red, bbox, corner)
        })
        .collect();
    for (i, a) in looks.iter().enumerate() {
        for b in &looks[i + 1..] {
            assert_ne!(
                (a.1, a.2, a.3),
                (b.1, b.2, b.3),
                "{:?} and {:?} render alike",
                a.0,
                b.0
            );
        }
    }
    let get = |s: TitleStyle| looks.iter().find(|l| l.0 == s).unwrap();
    // Boxes: chunk and chunkLight solid black, subtitle translucent dark;
    // the others have none.
    assert_eq!(get(TitleStyle::Chunk).5, [0, 0, 0, 255]);
    assert_eq!(get(TitleStyle::ChunkLight).5, [0, 0, 0, 255]);
    let sub = get(TitleStyle::Subtitle).5;
    assert!(sub[3] > 100 && sub[3] < 255 && sub[0] == 0, "{sub:?}");
    for s in [
        TitleStyle::Minimal,
        TitleStyle::Blockbuster,
        TitleStyle::Vogue,
    ] {
        assert_eq!(get(s).5[3], 0, "{s:?} has no box");
    }
    // Stroke weight: the heavy face inks far more than the thin one.
    let (chunk, thin) = (get(TitleStyle::Chunk).3, get(TitleStyle::Skinny).3);
    assert!(chunk > 3 * thin, "chunk {chunk} vs skinny {thin}");
    // Blockbuster is condensed capitals: taller ink per width than minimal.
    let aspect = |s: TitleStyle| {
        let (x0, y0, x1, y1) = get(s).4.unwrap();
        f64::from(y1 - y0) / f64::from(x1 - x0)
    };
    assert!(aspect(TitleStyle::Blockbuster) > 1.15 * aspect(TitleStyle::Minimal));
    // Future is tracked wide: wider than minimal for the same text.
    let width = |s: TitleStyle| get(s).4.map(|(x0, _, x1, _)| x1 - x0).unwrap();
    assert!(width(TitleStyle::Future) > width(TitleStyle::Minimal) * 13 / 10);
}

#[test]
fn effects_outline_shadow_and_rules_are_drawn() {
    let dark = |p: &Picture| {
        p.data
            .chunks_exact(4)
            .filter(|px| px[3] > 120 && px[0] < 60 && px[1] < 60 && px[2] < 60)
            .count()
    };
    // Marker: a black outline around the red letters; blockbuster: a black
    // shadow; minimal: neither.
    assert!(dark(&render_title(&title("Hello", TitleStyle::Marker))) > 200);
    assert!(dark(&render_title(&title("Hello", TitleStyle::Blockbuster))) > 200);
    assert_eq!(dark(&render_title(&title("Hello", TitleStyle::Minimal))), 0);
    // Vogue's rules and future's bar: a row of red as wide as the text.
    for style in [TitleStyle::Vogue, TitleStyle::Future] {
        let p = render_title(&title("Hello", style));
        let (_, bbox) = ink(&p, RED);
        let (x0, _, x1, _) = bbox.unwrap();
        let full_row = (0..p.height).any(|y| (x0..=x1).all(|x| near(p.pixel(x, y), RED, 40)));
        assert!(full_row, "{style:?} has a rule");
    }
    // A dark text gets a light outline, so that it still stands out.
    let mut t = title("Hello", TitleStyle::Marker);
    t.color = [0, 0, 0, 255];
    let p = render_title(&t);
    assert!(ink(&p, [255, 255, 255, 255]).0 > 200);
}

#[test]
fn sizes_scale_with_the_output_and_wrap_long_text() {
    let mut small = title("Hello", TitleStyle::Minimal);
    small.size = 0.025;
    let mut large = title("Hello", TitleStyle::Minimal);
    large.size = 0.13;
    let (ps, pl) = (render_title(&small), render_title(&large));
    let ratio = f64::from(pl.height) / f64::from(ps.height);
    assert!((4.0..6.5).contains(&ratio), "{ratio}");
    // Twice the output height, twice the text.
    let tall = Typesetter::new().title(&large, 2560, 1440);
    assert!((tall.height as i64 - 2 * pl.height as i64).abs() <= 4);
    // A title longer than the output is wide wraps onto more lines; one
    // taller than the output is cut at the output's height.
    let long = title(&"word ".repeat(40), TitleStyle::Minimal);
    let p = render_title(&long);
    assert!(p.width <= 1280 && line_bands(&p) >= 3, "{}", line_bands(&p));
    let very_long = title(&"word ".repeat(400), TitleStyle::Minimal);
    let p = render_title(&very_long);
    assert!(
        p.width <= 1280 && p.height == 720,
        "{}×{}",
        p.width,
        p.height
    );
    assert!(any_ink(&p).1.unwrap().3 > 700);
}

#[test]
fn a_background_fills_the_box_and_colours_keep_their_alpha() {
    let mut t = title("Hi", TitleStyle::Minimal);
    t.background = Some([0, 0, 255, 255]);
    let p = render_title(&t);
    assert_eq!(p.pixel(0, 0), [0, 0, 255, 255]);
    assert_eq!(p.pixel(p.width - 1, p.height - 1), [0, 0, 255, 255]);
    // chunk's own box takes the background's colour instead of black.
    let mut c = title("Hi", TitleStyle::Chunk);
    c.background = Some([0, 255, 0, 255]);
    assert_eq!(render_title(&c).pixel(0, 0), [0, 255, 0, 255]);
    // #80ff0000: half-transparent red.
    let mut half = title("Hello", TitleStyle::Minimal);
    half.color = [255, 0, 0, 0x80];
    let p = render_title(&half);
    let max_alpha = p.data.chunks_exact(4).map(|px| px[3]).max().unwrap();
    assert!((120..=136).contains(&max_alpha), "{max_alpha}");
}

#[test]
fn html_wraps_in_a_narrower_box_and_cuts_what_overflows_the_height() {
    let text = "<p>The quick brown fox jumps over the lazy dog again and again</p>";
    let css = "p { color: #ffffff; font-size: 24px; }";
    let wide = render_html(&html_box(text, css, 1000, 400));
    let narrow = render_html(&html_box(text, css, 200, 400));
    assert_eq!((wide.width, wide.height), (1000, 400));
    assert_eq!(line_bands(&wide), 1);
    assert!(line_bands(&narrow) >= 4, "{}", line_bands(&narrow));
    let (_, bbox) = any_ink(&narrow);
    assert!(bbox.unwrap().2 < 200);
    // In a box 60 px tall the same text is cut, not shrunk: the picture
    // is the top 60 rows of the tall one.
    let cut = render_html(&html_box(text, css, 200, 60));
    assert_eq!((cut.width, cut.height), (200, 60));
    assert_eq!(cut.data[..], narrow.data[..200 * 60 * 4]);
    assert!(line_bands(&cut) < line_bands(&narrow));
}

#[test]
fn html_alignment_padding_and_letter_spacing_move_the_ink() {
    let at = |css: &str| {
        let p = render_html(&html_box("<p>Hello</p>", css, 800, 100));
        any_ink(&p).1.unwrap()
    };
    let plain = at("p { font-size: 30px; }");
    assert!(plain.0 < 10, "{plain:?}");
    let right = at("p { font-size: 30px; text-align: right; }");
    assert!(right.2 > 785 && right.0 > 600, "{right:?}");
    let center = at("p { font-size: 30px; text-align: center; }");
    let mid = (center.0 + center.2) / 2;
    assert!((390..=410).contains(&mid), "{center:?}");
    let padded = at("p { font-size: 30px; padding: 20px 0 0 50px; }");
    assert!(
        padded.0 >= plain.0 + 48 && padded.0 <= plain.0 + 52,
        "{padded:?}"
    );
    assert!(padded.1 >= plain.1 + 18, "{padded:?}");
    let margined = at("p { font-size: 30px; margin: 10px 0 0 30px; padding-left: 20px }");
    assert!(
        margined.0 >= plain.0 + 48 && margined.0 <= plain.0 + 52,
        "{margined:?}"
    );
    assert!(margined.1 >= plain.1 + 8, "{margined:?}");
    let spaced = at("p { font-size: 30px; letter-spacing: 10px; }");
    assert!(
        spaced.2 - spaced.0 >= plain.2 - plain.0 + 35,
        "{spaced:?} {plain:?}"
    );
}

#[test]
fn html_position_places_the_content_in_the_box() {
    let mut asset = html_box("<p>Hi</p>", "p { font-size: 30px; }", 600, 300);
    asset.position = Position::BottomRight;
    let (_, bbox) = any_ink(&render_html(&asset));
    let (x0, y0, x1, y1) = bbox.unwrap();
    assert!(x1 > 580 && y1 > 270 && x0 > 500 && y0 > 240, "{bbox:?}");
    asset.position = Position::Center;
    let (_, bbox) = any_ink(&render_html(&asset));
    let (x0, y0, x1, y1) = bbox.unwrap();
    assert!(((x0 + x1) / 2).abs_diff(300) < 10 && ((y0 + y1) / 2).abs_diff(150) < 15);
    // The box's background covers all of it.
    asset.background = Some([0, 0, 255, 255]);
    let p = render_html(&asset);
    assert_eq!(p.pixel(0, 0), [0, 0, 255, 255]);
    assert_eq!(p.pixel(599, 299), [0, 0, 255, 255]);
}

#[test]
fn css_selectors_inline_styles_and_tags_cascade() {
    let p = render_html(&html_box(
        "<p class='a'>Green</p><p id='b'>Blue</p><p>Plain <b>bold</b> <span style='color: #ff00ff'>pink</span></p><blink>odd tag</blink>",
        "p { color: #ffffff; font-size: 30px; } .a { color: #00ff00; } #b { color: rgb(0,0,255); } b { color: yellow; }",
        800,
        400,
    ));
    for color in [
        [0, 255, 0, 255],
        [0, 0, 255, 255],
        [255, 255, 255, 255],
        [255, 255, 0, 255],
        [255, 0, 255, 255],
    ] {
        assert!(ink(&p, color).0 > 50, "{color:?}");
    }
    // Four lines: three paragraphs and the unknown tag's text.
    assert_eq!(line_bands(&p), 4);
    // h1 is larger than p; underline adds a row of ink under the text.
    let h1 = render_html(&html_box("<h1>Big</h1>", "", 400, 200));
    let p1 = render_html(&html_box("<p>Big</p>", "", 400, 200));
    let height = |p: &Picture| {
        let (_, y0, _, y1) = any_ink(p).1.unwrap();
        y1 - y0
    };
    assert!(height(&h1) > height(&p1) * 3 / 2);
    // A bold heading in a family without a bold face keeps the family.
    let serif = render_html(&html_box(
        "<h1>Big</h1>",
        "h1 { font-family: serif }",
        400,
        200,
    ));
    assert!(serif != h1, "serif headings are not set in the sans face");
    let u = render_html(&html_box("<u>under</u>", "", 400, 200));
    let n = render_html(&html_box("under", "", 400, 200));
    assert!(any_ink(&u).0 > any_ink(&n).0 + 20);
    // text-transform changes the letters: capitals ink more than
    // lower case.
    let lower = render_html(&html_box("<p>shout</p>", "p { font-size: 30px }", 400, 100));
    let upper = render_html(&html_box(
        "<p>shout</p>",
        "p { font-size: 30px; text-transform: uppercase }",
        400,
        100,
    ));
    let as_typed = render_html(&html_box("<p>SHOUT</p>", "p { font-size: 30px }", 400, 100));
    assert!(upper == as_typed && upper != lower);
    // A span's background is painted behind its text only.
    let bg = render_html(&html_box(
        "<p>x <span style='background-color:#00ff00'>mark</span> y</p>",
        "",
        400,
        100,
    ));
    let (green, bbox) = ink(&bg, [0, 255, 0, 255]);
    assert!(green > 100 && bbox.unwrap().2 < 200, "{bbox:?}");
}

#[test]
fn a_custom_font_changes_the_rendering() {
    let asset = html_box(
        "<p>Custom font</p>",
        "p { font-family: 'Leckerli One', sans-serif; font-size: 40px; }",
        600,
        100,
    );
    let before = Typesetter::new().html(&asset).unwrap();
    let mut text = Typesetter::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leckerli.ttf");
    std::fs::write(&path, custom_font()).unwrap();
    assert_eq!(
        text.load_font("leckerli.ttf", &path).unwrap(),
        ["Leckerli One"]
    );
    let after = text.html(&asset).unwrap();
    let (a, b) = (any_ink(&before), any_ink(&after));
    assert!(a.0.abs_diff(b.0) > a.0 / 10, "{a:?} {b:?}");
    assert_ne!(a.1, b.1);
    // A font tag names it too, as the seed's guide to custom fonts says.
    let tagged = text
        .html(&html_box(
            "<font face='Leckerli One' size='7' color='#00ff00'>Custom font</font>",
            "",
            600,
            100,
        ))
        .unwrap();
    let styled = text
        .html(&html_box(
            "<span style=\"font-family: 'Leckerli One'; font-size: 48px; color: #00ff00\">Custom font</span>",
            "",
            600,
            100,
        ))
        .unwrap();
    assert!(ink(&tagged, [0, 255, 0, 255]).0 > 500);
    assert!(tagged == styled, "the font tag means what its CSS would");
    // The custom font has no bold face: <b> in it is emboldened.
    let mut weight =
        |html: &str| any_ink(&text.html(&html_box(html, &asset.css, 600, 100)).unwrap()).0;
    let (regular, bold) = (weight("<p>Custom</p>"), weight("<p><b>Custom</b></p>"));
    assert!(bold > regular * 11 / 10, "{regular} {bold}");
    // A file that is not a font is refused, naming its source.
    std::fs::write(&path, b"GIF89a").unwrap();
    let e = text.load_font("logo.gif", &path).unwrap_err();
    assert!(
        e.to_string().starts_with("logo.gif: not a usable font"),
        "{e}"
    );
}

/// Glyphs of `text` shaped alone: (glyph id, x, the byte where its cluster
/// starts).
fn shape(book: &mut FontBook, text: &str) -> Vec<(u16, f32, usize)> {
    let mut buffer = Buffer::new(book.system(), Metrics::new(40.0, 48.0));
    buffer.set_size(Some(2000.0), None);
    buffer.set_text(
        text,
        &Attrs::new().family(Family::SansSerif),
        Shaping::Advanced,
        None,
    );
    buffer.shape_until_scroll(book.system(), false);
    buffer
        .layout_runs()
        .flat_map(|run| run.glyphs.iter().map(|g| (g.glyph_id, g.x, g.start)))
        .collect()
}

#[test]
fn arabic_joins_and_runs_right_to_left() {
    let mut book = FontBook::new();
    let word = "سلام";
    let joined = shape(&mut book, word);
    let alone: Vec<u16> = word
        .chars()
        .flat_map(|c| shape(&mut book, &c.to_string()))
        .map(|g| g.0)
        .collect();
    let mut joined_ids: Vec<(usize, u16)> = joined.iter().map(|g| (g.2, g.0)).collect();
    joined_ids.sort();
    let joined_ids: Vec<u16> = joined_ids.into_iter().map(|g| g.1).collect();
    assert_ne!(
        joined_ids, alone,
        "contextual forms differ from isolated ones"
    );
    assert!(
        alone.iter().all(|&g| g != 0),
        "the Arabic font has the letters"
    );
    // The first letter (byte 0) is drawn rightmost.
    let first = joined.iter().find(|g| g.2 == 0).unwrap();
    assert!(joined.iter().all(|g| g.1 <= first.1));
    // Hebrew too.
    let hebrew = shape(&mut book, "שלום");
    let first = hebrew.iter().find(|g| g.2 == 0).unwrap();
    assert!(hebrew.iter().all(|g| g.1 <= first.1) && first.0 != 0);
}

#[test]
fn devanagari_forms_a_conjunct() {
    let mut book = FontBook::new();
    // क + ् + ष: three code points, one conjunct glyph (क्ष).
    let glyphs = shape(&mut book, "क्ष");
    assert_eq!(glyphs.len(), 1, "{glyphs:?}");
    assert_ne!(glyphs[0].0, 0);
    // An html paragraph of mixed scripts draws all of them.
    let p = render_html(&html_box(
        "<p>Hello سلام नमस्ते שלום</p>",
        "p { font-size: 30px; color: white; }",
        800,
        100,
    ));
    assert!(ink(&p, [255, 255, 255, 255]).0 > 500);
}

#[test]
fn the_largest_title_renders_in_bounded_time() {
    // The heaviest effect (marker's outline) at the largest size on a
    // 1080p output.
    let mut t = title("Hello World, big", TitleStyle::Marker);
    t.size = 0.13;
    let started = std::time::Instant::now();
    let p = Typesetter::new().title(&t, 1920, 1080);
    let took = started.elapsed();
    assert!(ink(&p, RED).0 > 10_000);
    assert!(took.as_secs_f64() < 5.0, "{took:?}");
    eprintln!("xx-large marker title at 1080p: {took:?}");
}

#[test]
fn odd_markup_and_css_render_within_the_box() {
    let deep = "<span>".repeat(MAX_DEPTH - 1) + "deep";
    let long_word = "W".repeat(500);
    let cases: Vec<(String, &str)> = vec![
        ("<p>unclosed <b>bold <i>both".into(), ""),
        ("<span><p>block in inline</p></span>".into(), ""),
        ("</p></div>stray ends<br><br/><br>".into(), ""),
        (
            "<table><tr><td>cell</td></tr></table>".into(),
            "td { color: red }",
        ),
        (deep, "span { font-size: 1.05em }"),
        (long_word, "p { font-size: 1000px; letter-spacing: -50px }"),
        (
            "<p>x</p>".into(),
            "p { font-size: 0; line-height: 0; padding: 99999px }",
        ),
        (
            "<p>x</p>".into(),
            "p { color: #zzz; font-size: NaNpx; line-height: NaN }",
        ),
        (
            "<p>&lt;tag&gt; &amp; &#x1F600; &nbsp;</p>".into(),
            "@media screen { p { color: red } } }}}",
        ),
        (
            "<style>p{color:red}</style><script>alert(1)</script><p>shown</p>".into(),
            "",
        ),
        ("".into(), ""),
        ("   \n\t ".into(), ""),
    ];
    for (markup, css) in cases {
        check_html(&markup, css).expect("within the limits");
        let p = render_html(&html_box(&markup, css, 300, 120));
        assert_eq!((p.width, p.height), (300, 120), "{markup:?} {css:?}");
    }
    // The hidden elements render nothing: only "shown" is drawn.
    let shown = render_html(&html_box("<p>shown</p>", "", 300, 120));
    let with_hidden = render_html(&html_box(
        "<style>p{color:red}</style><script>alert(1)</script><p>shown</p>",
        "",
        300,
        120,
    ));
    assert!(shown == with_hidden);
}

#[test]
fn the_text_example_plans_and_renders() {
    use crate::engine::edit::{fill, Limits};
    use crate::engine::plan::{plan, Visual};
    let example = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conf/examples/text.json"
    ));
    let edit = fill(example, &serde_json::Map::new(), &Limits::default()).expect("valid");
    let p = plan(&edit).expect("plans");
    let mut text = Typesetter::new();
    let mut styles = Vec::new();
    for layer in &p.layers {
        match &layer.visual {
            Visual::Title(t) => {
                styles.push(t.style);
                assert!(any_ink(&text.title(t, p.width, p.height)).0 > 500);
            }
            Visual::Html(h) => {
                assert!(h.html.contains("Hello there"));
                let pic = text.html(h).unwrap();
                assert_eq!((pic.width, pic.height), (1000, 300));
                assert!(ink(&pic, [0xff, 0xd0, 0, 255]).0 > 500);
                assert!(
                    ink(&pic, [0x7f, 0xd0, 0xff, 255]).0 > 200,
                    "the Arabic span"
                );
            }
            other => panic!("unexpected layer {other:?}"),
        }
    }
    assert_eq!(styles, ALL_STYLES);
}
