//! HTML assets (`type: html`): a subset of HTML and CSS set into a
//! `width`×`height` box.
//!
//! Tags: `p`, `div` and `h1`–`h3` are blocks (stacked, each its own
//! paragraph, `h*` larger and bold; `h4`–`h6`, `section`, `article`,
//! `header`, `footer`, `blockquote`, `ul`, `ol` and `li` behave as `div`);
//! `span`, `b`/`strong`, `i`/`em`, `u`, `s` are inline; `br` breaks a line;
//! `font` takes `face`, `color` and `size`, and blocks take `align`.
//! Any other tag renders its text as `span` does (`style`, `script`,
//! `head`, `title` and `template` render nothing). The CSS subset is in
//! `css.rs`; selectors are tags, `.class`, `#id`, `[attr]`, `*`,
//! descendant and child combinators and `:first-child`.
//!
//! Layout: text wraps at the box's width (less padding). The content
//! shrinks to its widest line — a block whose `text-align` is not left or
//! start takes the full width instead, so its alignment shows — and that
//! content block is placed in the box by `position`; whatever falls
//! outside the box is cut. `background` fills the box. Shaping, bidi (a
//! right-to-left paragraph starts at the right) and font fallback for
//! scripts the chosen font lacks come from cosmic-text.

use cosmic_text::{
    Align, Attrs, Buffer, Color, Family, Metrics, Renderer, Shaping, Style as FontStyle,
    SwashCache, UnderlineStyle, Weight,
};
use simplecss::{AttributeOperator, DeclarationTokenizer, PseudoClass};

use super::css::{Style, TextAlign, Transform};
use super::fonts::{self, FontBook};
use super::raster::{blend, extent, fill, glyph_coverage};
use crate::engine::compose::canvas::Picture;
use crate::engine::compose::layout::place;
use crate::engine::edit::text::{
    check_html_size, fragment_nodes, style_sheet, HtmlBudget, HtmlError,
};
use crate::engine::plan::Html;

const BLOCKS: &[&str] = &[
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "section",
    "article",
    "header",
    "footer",
    "blockquote",
    "ul",
    "ol",
    "li",
];
const HIDDEN: &[&str] = &["style", "script", "head", "title", "template"];

#[derive(Debug)]
enum Kind {
    Element {
        tag: String,
        attrs: Vec<(String, String)>,
    },
    Text(String),
}

#[derive(Debug)]
struct Node {
    parent: Option<usize>,
    prev_element: Option<usize>,
    children: Vec<usize>,
    kind: Kind,
}

impl Node {
    fn tag(&self) -> Option<&str> {
        match &self.kind {
            Kind::Element { tag, .. } => Some(tag),
            Kind::Text(_) => None,
        }
    }

    fn attr(&self, name: &str) -> Option<&str> {
        match &self.kind {
            Kind::Element { attrs, .. } => attrs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
            Kind::Text(_) => None,
        }
    }

    fn is_block(&self) -> bool {
        self.tag().is_some_and(|t| BLOCKS.contains(&t))
    }
}

/// The parsed document: node 0 is the root element.
#[derive(Debug)]
struct Dom {
    nodes: Vec<Node>,
}

impl Dom {
    fn parse(html: &str) -> Result<Dom, HtmlError> {
        check_html_size(html)?;
        let parsed = scraper::Html::parse_fragment(html);
        let mut dom = Dom {
            nodes: vec![Node {
                parent: None,
                prev_element: None,
                children: Vec::new(),
                kind: Kind::Element {
                    tag: "html".into(),
                    attrs: Vec::new(),
                },
            }],
        };
        let mut budget = HtmlBudget::default();
        for node in fragment_nodes(&parsed) {
            dom.add(0, node, 1, &mut budget)?;
        }
        Ok(dom)
    }

    fn add(
        &mut self,
        parent: usize,
        node: ego_tree::NodeRef<'_, scraper::Node>,
        depth: usize,
        budget: &mut HtmlBudget,
    ) -> Result<(), HtmlError> {
        let kind = match node.value() {
            scraper::Node::Text(text) => {
                budget.text_run()?;
                Kind::Text(text.to_string())
            }
            scraper::Node::Element(e) => {
                budget.element(depth)?;
                Kind::Element {
                    tag: e.name().to_ascii_lowercase(),
                    attrs: e
                        .attrs()
                        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
                        .collect(),
                }
            }
            _ => return Ok(()),
        };
        let is_element = matches!(kind, Kind::Element { .. });
        let prev_element = self.nodes[parent]
            .children
            .iter()
            .rev()
            .find(|&&c| matches!(self.nodes[c].kind, Kind::Element { .. }))
            .copied();
        let index = self.nodes.len();
        self.nodes.push(Node {
            parent: Some(parent),
            prev_element,
            children: Vec::new(),
            kind,
        });
        self.nodes[parent].children.push(index);
        if is_element {
            for child in node.children() {
                self.add(index, child, depth + 1, budget)?;
            }
        }
        Ok(())
    }
}

/// An element of the document as CSS selectors see it.
#[derive(Clone, Copy)]
struct El<'a> {
    dom: &'a Dom,
    index: usize,
}

impl El<'_> {
    fn node(&self) -> &Node {
        &self.dom.nodes[self.index]
    }
}

impl simplecss::Element for El<'_> {
    fn parent_element(&self) -> Option<Self> {
        self.node().parent.map(|index| El {
            dom: self.dom,
            index,
        })
    }

    fn prev_sibling_element(&self) -> Option<Self> {
        self.node().prev_element.map(|index| El {
            dom: self.dom,
            index,
        })
    }

    fn has_local_name(&self, name: &str) -> bool {
        self.node()
            .tag()
            .is_some_and(|t| t.eq_ignore_ascii_case(name))
    }

    fn attribute_matches(&self, local_name: &str, operator: AttributeOperator<'_>) -> bool {
        self.node()
            .attr(local_name)
            .is_some_and(|v| operator.matches(v))
    }

    fn pseudo_class_matches(&self, class: PseudoClass<'_>) -> bool {
        matches!(class, PseudoClass::FirstChild) && self.node().prev_element.is_none()
    }
}

/// Computed styles, one per node (a text node has its parent's).
fn cascade(dom: &Dom, css: &str) -> Result<Vec<Style>, HtmlError> {
    let sheet = style_sheet(css)?;
    let mut styles: Vec<Style> = Vec::with_capacity(dom.nodes.len());
    for (index, node) in dom.nodes.iter().enumerate() {
        // Parents come before their children in `nodes`.
        let parent = node.parent.map_or_else(Style::root, |p| styles[p].clone());
        let style = match &node.kind {
            Kind::Text(_) => parent,
            Kind::Element { tag, .. } => {
                let mut style = parent.inherit();
                style.tag_defaults(tag);
                let el = El { dom, index };
                let inline: Vec<simplecss::Declaration<'_>> = node
                    .attr("style")
                    .map(|s| DeclarationTokenizer::from(s).collect())
                    .unwrap_or_default();
                // Rules are in ascending specificity; inline style wins
                // over them, and `!important` over everything.
                let matched = sheet
                    .rules
                    .iter()
                    .filter(|r| r.selector.matches(&el))
                    .flat_map(|r| r.declarations.iter().copied())
                    .chain(inline.iter().copied());
                let (important, normal): (Vec<_>, Vec<_>) = matched.partition(|d| d.important);
                let hints = hints(node);
                let ordered: Vec<(&str, &str)> = hints
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .chain(
                        normal
                            .iter()
                            .chain(important.iter())
                            .map(|d| (d.name, d.value)),
                    )
                    .collect();
                style.apply(&parent, &ordered);
                style
            }
        };
        styles.push(style);
    }
    Ok(styles)
}

/// HTML's presentational attributes as the declarations they stand for,
/// weaker than any CSS: `<font face color size>` (the seed's custom fonts
/// guide names fonts in font tags) and `align` on blocks.
fn hints(node: &Node) -> Vec<(&'static str, String)> {
    let mut hints = Vec::new();
    if node.tag() == Some("font") {
        if let Some(face) = node.attr("face") {
            hints.push(("font-family", face.to_owned()));
        }
        if let Some(color) = node.attr("color") {
            hints.push(("color", color.to_owned()));
        }
        let size = node.attr("size").and_then(|s| match s.trim() {
            "1" => Some("x-small"),
            "2" => Some("small"),
            "3" => Some("medium"),
            "4" => Some("large"),
            "5" => Some("x-large"),
            "6" => Some("xx-large"),
            "7" => Some("48px"),
            _ => None,
        });
        if let Some(size) = size {
            hints.push(("font-size", size.to_owned()));
        }
    }
    if node.is_block() {
        if let Some(align) = node.attr("align") {
            hints.push(("text-align", align.to_ascii_lowercase()));
        }
    }
    hints
}

/// A font family as cosmic-text takes it.
enum Choice {
    Name(String),
    Generic(Family<'static>),
}

impl Choice {
    fn family(&self) -> Family<'_> {
        match self {
            Choice::Name(n) => Family::Name(n),
            Choice::Generic(g) => *g,
        }
    }
}

/// The first of `families` the book has, else sans-serif.
fn choose(book: &FontBook, families: &[String]) -> Choice {
    for family in families {
        if let Some(g) = fonts::generic(&family.to_ascii_lowercase()) {
            return Choice::Generic(g);
        }
        if let Some(name) = book.has_family(family) {
            return Choice::Name(name);
        }
    }
    Choice::Generic(Family::SansSerif)
}

/// The inline text of one paragraph, whitespace collapsed as CSS's
/// `white-space: normal` does, with the node whose style each span has.
#[derive(Default)]
struct Paragraph {
    text: String,
    spans: Vec<(std::ops::Range<usize>, usize)>,
}

impl Paragraph {
    fn push(&mut self, text: &str, node: usize, transform: Transform) {
        let start = self.text.len();
        let word_start = self.text.is_empty() || self.text.ends_with(char::is_whitespace);
        for c in transform.apply(text, word_start).chars() {
            if matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c') {
                if !(self.text.is_empty() || self.text.ends_with([' ', '\n'])) {
                    self.text.push(' ');
                }
            } else {
                self.text.push(c);
            }
        }
        self.span(start, node);
    }

    fn line_break(&mut self, node: usize) {
        self.trim_end();
        let start = self.text.len();
        self.text.push('\n');
        self.span(start, node);
    }

    fn span(&mut self, start: usize, node: usize) {
        if self.text.len() > start {
            self.spans.push((start..self.text.len(), node));
        }
    }

    fn trim_end(&mut self) {
        if self.text.ends_with(' ') {
            self.text.pop();
            let len = self.text.len();
            for (range, _) in &mut self.spans {
                range.end = range.end.min(len);
            }
            self.spans.retain(|(r, _)| !r.is_empty());
        }
    }
}

enum Op {
    Fill {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: crate::engine::plan::Rgba,
    },
    Text {
        buffer: Buffer,
        x: f32,
        y: f32,
    },
}

struct Layout<'a> {
    book: &'a mut FontBook,
    dom: &'a Dom,
    styles: &'a [Style],
    choices: Vec<Choice>,
    /// The weight each node's text asks of its family's faces.
    weights: Vec<u16>,
}

impl Layout<'_> {
    /// Lays out block `node` at (`x`, `y`) in `avail` pixels of width;
    /// returns the width its content uses and its height.
    fn block(&mut self, node: usize, x: f32, y: f32, avail: f32, ops: &mut Vec<Op>) -> (f32, f32) {
        let style = &self.styles[node];
        let [m_t, m_r, m_b, m_l] = style.margin;
        let (x, y, avail) = (x + m_l, y + m_t, (avail - m_l - m_r).max(1.0));
        let [pad_t, pad_r, pad_b, pad_l] = style.padding;
        let background = style.background;
        let full = !matches!(style.align, TextAlign::Start | TextAlign::Left);
        let inner = (avail - pad_l - pad_r).max(1.0);
        let fill_at = ops.len();
        let mut cy = y + pad_t;
        let mut used: f32 = 0.0;
        let mut paragraph = Paragraph::default();
        for &child in &self.dom.nodes[node].children {
            if self.dom.nodes[child].is_block() {
                let (w, h) = self.paragraph(node, &mut paragraph, x + pad_l, cy, inner, ops);
                used = used.max(w);
                cy += h;
                let (w, h) = self.block(child, x + pad_l, cy, inner, ops);
                used = used.max(w);
                cy += h;
            } else {
                self.inline(child, &mut paragraph);
            }
        }
        let (w, h) = self.paragraph(node, &mut paragraph, x + pad_l, cy, inner, ops);
        used = used.max(w);
        cy += h;
        if full {
            used = inner;
        }
        let height = cy + pad_b - y;
        if let Some(color) = background {
            ops.insert(
                fill_at,
                Op::Fill {
                    x,
                    y,
                    w: avail,
                    h: height,
                    color,
                },
            );
        }
        (
            (used + pad_l + pad_r).min(avail) + m_l + m_r,
            height + m_t + m_b,
        )
    }

    fn inline(&mut self, node: usize, paragraph: &mut Paragraph) {
        let n = &self.dom.nodes[node];
        match &n.kind {
            Kind::Text(text) => {
                let parent = n.parent.unwrap_or(0);
                paragraph.push(text, parent, self.styles[parent].transform);
            }
            Kind::Element { tag, .. } if tag == "br" => paragraph.line_break(node),
            Kind::Element { tag, .. } if HIDDEN.contains(&tag.as_str()) => {}
            Kind::Element { .. } => {
                for &child in &n.children {
                    self.inline(child, paragraph);
                }
            }
        }
    }

    fn attrs(&self, node: usize) -> Attrs<'_> {
        let s = &self.styles[node];
        let [r, g, b, a] = s.color;
        let mut attrs = Attrs::new()
            .family(self.choices[node].family())
            .weight(Weight(self.weights[node]))
            .style(if s.italic {
                FontStyle::Italic
            } else {
                FontStyle::Normal
            })
            .color(Color::rgba(r, g, b, a))
            .metrics(Metrics::new(s.size, s.line_height_px()))
            .letter_spacing(s.letter_spacing / s.size)
            .metadata(node);
        if s.underline {
            attrs = attrs.underline(UnderlineStyle::Single);
        }
        if s.strike {
            attrs = attrs.strikethrough();
        }
        attrs
    }

    /// Sets the pending inline text of `block` as one paragraph at
    /// (`x`, `y`), `width` wide; returns its used width and height.
    fn paragraph(
        &mut self,
        block: usize,
        paragraph: &mut Paragraph,
        x: f32,
        y: f32,
        width: f32,
        ops: &mut Vec<Op>,
    ) -> (f32, f32) {
        let mut taken = std::mem::take(paragraph);
        taken.trim_end();
        if taken.text.trim().is_empty() {
            return (0.0, 0.0);
        }
        let style = &self.styles[block];
        let metrics = Metrics::new(style.size, style.line_height_px());
        let align = match style.align {
            TextAlign::Start => None,
            TextAlign::Left => Some(Align::Left),
            TextAlign::Right => Some(Align::Right),
            TextAlign::Center => Some(Align::Center),
            TextAlign::Justify => Some(Align::Justified),
        };
        let mut buffer = Buffer::new(self.book.system(), metrics);
        buffer.set_size(Some(width), None);
        {
            let spans = taken
                .spans
                .iter()
                .map(|(range, node)| (&taken.text[range.clone()], self.attrs(*node)));
            let defaults = self.attrs(block);
            buffer.set_rich_text(spans, &defaults, Shaping::Advanced, align);
        }
        let (w, h) = extent(self.book, &mut buffer);
        ops.push(Op::Text { buffer, x, y });
        (w, h)
    }
}

/// Draws rectangles (underlines, strike-throughs) offset into a picture.
struct Rects<'p> {
    picture: &'p mut Picture,
    x: f32,
    y: f32,
}

impl Renderer for Rects<'_> {
    fn rectangle(&mut self, x: i32, y: i32, w: u32, h: u32, color: Color) {
        let rgba = [color.r(), color.g(), color.b(), color.a()];
        fill(
            self.picture,
            self.x + x as f32,
            self.y + y as f32,
            w as f32,
            h as f32,
            rgba,
        );
    }

    // Glyphs are drawn by `glyph_coverage`; this renderer only ever gets
    // the decorations' rectangles.
    fn glyph(&mut self, _: cosmic_text::PhysicalGlyph, _: Color) {}
}

/// Renders `asset` as a picture the size of its box.
pub fn render(
    book: &mut FontBook,
    cache: &mut SwashCache,
    asset: &Html,
) -> Result<Picture, HtmlError> {
    let dom = Dom::parse(&asset.html)?;
    let styles = cascade(&dom, &asset.css)?;
    let choices: Vec<Choice> = styles.iter().map(|s| choose(book, &s.families)).collect();
    let weights = styles
        .iter()
        .zip(&choices)
        .map(|(s, c)| book.nearest_weight(c.family(), s.weight, s.italic))
        .collect();
    let (bw, bh) = (asset.width.max(1), asset.height.max(1));
    let mut layout = Layout {
        book,
        dom: &dom,
        styles: &styles,
        choices,
        weights,
    };
    // Measure first, then lay out again at the width the content uses, so
    // that lines align inside the block that `position` places.
    let (used, _) = layout.block(0, 0.0, 0.0, bw as f32, &mut Vec::new());
    let mut ops = Vec::new();
    let width = used.ceil().clamp(1.0, bw as f32);
    let (_, height) = layout.block(0, 0.0, 0.0, width, &mut ops);
    let book = layout.book;
    let at = place(
        width as u32,
        height.ceil().max(1.0) as u32,
        bw,
        bh,
        asset.position,
        (0.0, 0.0),
    );
    let (dx, dy) = (at.x as f32, at.y as f32);
    // Weights of the faces: bold asked of a family that has no bold face
    // is drawn emboldened, so that `<b>` shows in every font.
    let face_weights: std::collections::HashMap<_, _> =
        book.db().faces().map(|f| (f.id, f.weight.0)).collect();
    let mut picture = match asset.background {
        Some(bg) => Picture::filled(bw, bh, bg),
        None => Picture::new(bw, bh),
    };
    for op in &mut ops {
        match op {
            Op::Fill { x, y, w, h, color } => fill(&mut picture, dx + *x, dy + *y, *w, *h, *color),
            Op::Text { buffer, x, y } => {
                let (ox, oy) = (dx + *x, dy + *y);
                // Inline backgrounds first, under their glyphs.
                for run in buffer.layout_runs() {
                    for g in run.glyphs {
                        let node = g.metadata.min(styles.len() - 1);
                        if dom.nodes[node].is_block() {
                            continue;
                        }
                        if let Some(bg) = styles[node].background {
                            fill(
                                &mut picture,
                                ox + g.x,
                                oy + run.line_top,
                                g.w,
                                run.line_height,
                                bg,
                            );
                        }
                    }
                }
                let bottom = bh as f32;
                glyph_coverage(book, cache, buffer, (ox, oy), bottom, |px, py, a, glyph| {
                    let color = glyph
                        .color_opt
                        .map_or([0, 0, 0, 255], |c| [c.r(), c.g(), c.b(), c.a()]);
                    let face = face_weights.get(&glyph.font_id).copied().unwrap_or(400);
                    let asked = styles[glyph.metadata.min(styles.len() - 1)].weight;
                    let smear = if asked >= 600 && face + 200 <= asked {
                        (glyph.font_size / 28.0).round().max(1.0) as i64
                    } else {
                        0
                    };
                    for k in 0..=smear {
                        blend(&mut picture, px + k, py, color, a);
                    }
                });
                let mut rects = Rects {
                    picture: &mut picture,
                    x: ox,
                    y: oy,
                };
                for run in buffer.layout_runs() {
                    cosmic_text::render_decoration(&mut rects, &run, Color::rgb(0, 0, 0));
                }
            }
        }
    }
    Ok(picture)
}
