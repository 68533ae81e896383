//! Markdown from people, rendered safely: pulldown-cmark to HTML, then ammonia keeps only a safe
//! subset of tags and only http, https and mailto links (so `javascript:` links and raw HTML are
//! dropped). Links get `rel="noopener noreferrer nofollow"`.

use std::collections::HashSet;

/// Renders untrusted Markdown to HTML that is safe to embed.
pub fn render(markdown: &str) -> String {
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    options.insert(pulldown_cmark::Options::ENABLE_STRIKETHROUGH);
    options.insert(pulldown_cmark::Options::ENABLE_TASKLISTS);
    let parser = pulldown_cmark::Parser::new_ext(markdown, options);
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    ammonia::Builder::default()
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown() {
        let html = render("**bold** and [docs](https://example.com)");
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains("href=\"https://example.com\""));
    }

    #[test]
    fn strips_scripts_and_javascript_links() {
        for evil in [
            "<script>alert(1)</script>",
            "[x](javascript:alert(1))",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "[x](JaVaScRiPt:alert(1))",
        ] {
            let html = render(evil).to_lowercase();
            assert!(!html.contains("<script"), "{evil} -> {html}");
            assert!(!html.contains("javascript:"), "{evil} -> {html}");
            assert!(!html.contains("onerror"), "{evil} -> {html}");
        }
    }
}
