//! Property tests for the parts that read what people and browsers send: form bodies, Markdown,
//! the Slack channel-name builder and the Teams text escaping. Each runs a bounded number of
//! generated cases (256 by default; `PROPTEST_CASES` raises it) so CI time stays fixed.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use redbutton::notifiers::slack::{CHANNEL_NAME_MAX, channel_name, escape_cut};
use redbutton::web::form::FormData;
use redbutton::web::markdown::render;

/// Text that leans towards what breaks parsers and sanitisers.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "<a href=\"javascript:alert(1)\">y</a>",
        "<iframe src=//evil>",
        "<svg onload=alert(1)>",
        "<style>*{}</style>",
        "\u{0}",
        "%00",
        "&#x6A;avascript:",
        "**b**",
        "`code`",
        "\n\n",
        "<!-- c -->",
        "\"'><",
        "é漢字🚨",
    ]);
    prop::collection::vec(prop_oneof![pieces.prop_map(str::to_string), any::<String>()], 0..12).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn form_parsing_never_panics_and_keys_round_trip(body in prop::collection::vec(any::<u8>(), 0..512)) {
        // Any bytes at all: a clean error or a parsed form, never a panic.
        let _ = FormData::parse_body(&body);
    }

    #[test]
    fn encoded_pairs_come_back_as_sent(pairs in prop::collection::vec(("[a-z_]{1,12}", any::<String>()), 0..8)) {
        let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(_, v)| !v.contains('\0')).collect();
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", k, percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)))
            .collect::<Vec<_>>()
            .join("&");
        let form = FormData::parse_body(body.as_bytes()).unwrap();
        for (k, _) in &pairs {
            let sent: Vec<String> = pairs.iter().filter(|(k2, _)| k2 == k).map(|(_, v)| v.clone()).collect();
            prop_assert_eq!(form.all(k), sent);
        }
    }

    #[test]
    fn markdown_never_lets_script_or_dangerous_links_through(text in hostile_text()) {
        // Read the output as a browser would: element by element, attribute by attribute.
        let html = render(&text);
        let doc = scraper::Html::parse_fragment(&html);
        for node in doc.root_element().descendants() {
            let Some(el) = node.value().as_element() else { continue };
            prop_assert!(
                !["script", "iframe", "svg", "style", "object", "embed", "form"].contains(&el.name()),
                "{} in {}", el.name(), html
            );
            for (name, value) in el.attrs() {
                prop_assert!(!name.to_ascii_lowercase().starts_with("on"), "{}= in {}", name, html);
                if ["href", "src", "action", "formaction"].contains(&name) {
                    let v = value.trim().to_ascii_lowercase();
                    let scheme_ok = v.starts_with("http:") || v.starts_with("https:") || v.starts_with("mailto:")
                        || !v.split(['/', '?', '#']).next().unwrap_or("").contains(':');
                    prop_assert!(scheme_ok, "{}={} in {}", name, value, html);
                }
            }
        }
    }

    #[test]
    fn channel_names_are_always_valid_for_slack(
        prefix in "[a-z0-9_-]{1,20}",
        number in 1i64..10_000_000_000,
        title in any::<String>(),
        attempt in 1u32..25,
    ) {
        let name = channel_name(&prefix, number, &title, attempt);
        prop_assert!(name.len() <= CHANNEL_NAME_MAX, "{}", name);
        prop_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'), "{}", name);
        let head = format!("{prefix}-{number}");
        prop_assert!(name.starts_with(&head), "{}", name);
        let rest = &name[head.len()..];
        prop_assert!(!rest.contains("--") && !rest.ends_with('-'), "{}", name);
        if attempt > 1 {
            let tail = format!("-{attempt}");
            prop_assert!(name.ends_with(&tail), "{}", name);
        }
    }

    #[test]
    fn slack_text_is_escaped_and_within_its_limit(text in hostile_text(), max in 10usize..400) {
        let out = escape_cut(&text, max);
        prop_assert!(out.chars().count() <= max, "{}", out);
        prop_assert!(!out.contains('<') && !out.contains('>'), "{}", out);
    }

    #[test]
    fn teams_text_carries_no_live_markdown_and_reads_back_as_typed(text in hostile_text()) {
        let out = redbutton::notifiers::teams::escape(&text);
        prop_assert!(!out.chars().any(char::is_control), "{}", out);
        // Every character that shapes Markdown is escaped; unescaping gives back what was typed
        // (on one line, without control characters).
        let mut read = String::new();
        let mut chars = out.chars().peekable();
        let mut first = true;
        while let Some(c) = chars.next() {
            if c == '\\' {
                let next = chars.next();
                prop_assert!(next.is_some(), "a trailing lone backslash: {}", out);
                read.extend(next);
            } else {
                prop_assert!(!"`*_[]<>~".contains(c), "unescaped {:?} in {}", c, out);
                prop_assert!(!(first && "#-+=".contains(c)), "a leading block marker in {}", out);
                read.push(c);
            }
            if !c.is_whitespace() {
                first = false;
            }
        }
        let typed: String = text
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect();
        prop_assert_eq!(read, typed);
    }
}
