//! The fixed limits of text assets: how long a title's text may be, and
//! how large an html asset's markup and CSS. A movie beyond them is
//! refused when its Edit is validated, with the field named, rather than
//! failing its render later. Composing holds the text to the same limits
//! with the same checks (`compose::text::html` counts with an
//! [`HtmlBudget`] as it builds the document), so what was accepted here
//! is drawn there.

use ego_tree::NodeRef;
use simplecss::StyleSheet;

/// The longest title text, in characters.
pub const MAX_TITLE_CHARS: usize = 2000;

pub const MAX_HTML_BYTES: usize = 64 * 1024;
pub const MAX_CSS_BYTES: usize = 64 * 1024;
pub const MAX_DEPTH: usize = 32;
pub const MAX_ELEMENTS: usize = 2000;
pub const MAX_TEXT_RUNS: usize = 2000;
pub const MAX_RULES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtmlError {
    #[error("{len} bytes is more than the limit of {limit}")]
    TooLong {
        field: &'static str,
        len: usize,
        limit: usize,
    },
    #[error("elements nest deeper than the limit of {limit}")]
    TooDeep { limit: usize },
    #[error("more than the limit of {limit} {what}")]
    TooMany {
        field: &'static str,
        what: &'static str,
        limit: usize,
    },
}

impl HtmlError {
    /// The asset's field at fault: `html` or `css`.
    pub fn field(&self) -> &'static str {
        match self {
            HtmlError::TooLong { field, .. } | HtmlError::TooMany { field, .. } => field,
            HtmlError::TooDeep { .. } => "html",
        }
    }
}

/// The markup's size, checked before it is parsed.
pub fn check_html_size(html: &str) -> Result<(), HtmlError> {
    if html.len() > MAX_HTML_BYTES {
        return Err(HtmlError::TooLong {
            field: "html",
            len: html.len(),
            limit: MAX_HTML_BYTES,
        });
    }
    Ok(())
}

/// What a document walk has met so far: each element and text run is
/// counted as it is met, and the first beyond a limit refused.
#[derive(Debug, Default)]
pub struct HtmlBudget {
    elements: usize,
    text_runs: usize,
}

impl HtmlBudget {
    pub fn text_run(&mut self) -> Result<(), HtmlError> {
        self.text_runs += 1;
        if self.text_runs > MAX_TEXT_RUNS {
            return Err(HtmlError::TooMany {
                field: "html",
                what: "text runs",
                limit: MAX_TEXT_RUNS,
            });
        }
        Ok(())
    }

    /// An element `depth` levels below the fragment's root (its children
    /// are at depth 1).
    pub fn element(&mut self, depth: usize) -> Result<(), HtmlError> {
        if depth > MAX_DEPTH {
            return Err(HtmlError::TooDeep { limit: MAX_DEPTH });
        }
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(HtmlError::TooMany {
                field: "html",
                what: "elements",
                limit: MAX_ELEMENTS,
            });
        }
        Ok(())
    }
}

/// The asset's CSS parsed, if it is within the limits.
pub fn style_sheet(css: &str) -> Result<StyleSheet<'_>, HtmlError> {
    if css.len() > MAX_CSS_BYTES {
        return Err(HtmlError::TooLong {
            field: "css",
            len: css.len(),
            limit: MAX_CSS_BYTES,
        });
    }
    let sheet = StyleSheet::parse(css);
    if sheet.rules.len() > MAX_RULES {
        return Err(HtmlError::TooMany {
            field: "css",
            what: "rules",
            limit: MAX_RULES,
        });
    }
    Ok(sheet)
}

/// Checks an html asset against the limits without drawing it: the markup
/// is parsed and walked as composing does, in the same order, so the
/// first problem found is the one a render would meet.
pub fn check_html(html: &str, css: &str) -> Result<(), HtmlError> {
    check_html_size(html)?;
    let parsed = scraper::Html::parse_fragment(html);
    let mut budget = HtmlBudget::default();
    for node in fragment_nodes(&parsed) {
        walk(node, 1, &mut budget)?;
    }
    style_sheet(css).map(|_| ())
}

/// The top nodes of a parsed html asset: the children of the fragment's
/// own `<html>` element, which holds the content.
pub fn fragment_nodes(
    parsed: &scraper::Html,
) -> impl Iterator<Item = ego_tree::NodeRef<'_, scraper::Node>> {
    parsed
        .tree
        .root()
        .children()
        .find(|c| c.value().is_element())
        .into_iter()
        .flat_map(|root| root.children())
}

fn walk(
    node: NodeRef<'_, scraper::Node>,
    depth: usize,
    budget: &mut HtmlBudget,
) -> Result<(), HtmlError> {
    match node.value() {
        scraper::Node::Text(_) => budget.text_run(),
        scraper::Node::Element(_) => {
            budget.element(depth)?;
            for child in node.children() {
                walk(child, depth + 1, budget)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
