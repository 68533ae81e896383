//! Formatting shared by pages: times, ages, labels.

use chrono::NaiveDateTime;

/// `2026-11-21 14:05 UTC`.
pub fn time(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `2026-11-21T14:05:00Z`, for `<time datetime>`.
pub fn iso(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A short duration like `3d 4h`, `2h 5m`, `12m` or `40s`.
pub fn age(from: &NaiveDateTime, now: &NaiveDateTime) -> String {
    let secs = (*now - *from).num_seconds().max(0);
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{secs}s")
    }
}

/// A CSS-safe class for a severity id.
pub fn severity_class(id: &str) -> String {
    let c: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    format!("sev sev-{c}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        let t0 = NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        assert_eq!(age(&t0, &at(40)), "40s");
        assert_eq!(age(&t0, &at(12 * 60 + 5)), "12m");
        assert_eq!(age(&t0, &at(2 * 3600 + 5 * 60)), "2h 5m");
        assert_eq!(age(&t0, &at(3 * 86400 + 4 * 3600)), "3d 4h");
        assert_eq!(severity_class("SEV1"), "sev sev-sev1");
        assert_eq!(severity_class("x\"><script>"), "sev sev-xscript");
    }
}
