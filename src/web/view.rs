//! Formatting shared by pages: times (in the viewer's time zone, UTC on hover), ages, labels.

use chrono::{LocalResult, NaiveDateTime, TimeZone};
pub use chrono_tz::Tz;

/// A time as a page shows it: local text, with the UTC time kept for `datetime` and `title`.
pub struct Shown {
    /// In the viewer's time zone: `2026-11-21 15:05 CET`.
    pub local: String,
    /// `2026-11-21T14:05:00Z`, for `<time datetime>`.
    pub iso: String,
    /// `2026-11-21 14:05 UTC`, for the `title` (shown on hover).
    pub utc: String,
}

/// A stored (UTC) time for a viewer in `tz`.
pub fn shown(t: &NaiveDateTime, tz: Tz) -> Shown {
    Shown {
        local: time_in(t, tz),
        iso: iso(t),
        utc: time(t),
    }
}

/// A stored time zone name read back; none, or one this build does not know, is UTC.
pub fn zone(name: Option<&str>) -> Tz {
    name.and_then(|n| n.parse::<Tz>().ok()).unwrap_or(Tz::UTC)
}

/// `2026-11-21 15:05 CET`: a stored (UTC) time in `tz`, with the zone's abbreviation.
pub fn time_in(t: &NaiveDateTime, tz: Tz) -> String {
    tz.from_utc_datetime(t).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// The value of a `datetime-local` input showing a stored time in `tz`: `2026-11-21T15:05`.
pub fn local_input(t: &NaiveDateTime, tz: Tz) -> String {
    tz.from_utc_datetime(t).format("%Y-%m-%dT%H:%M").to_string()
}

/// Reads a `datetime-local` value (`2026-11-21T15:05`, seconds optional) as a time in `tz` and
/// returns it in UTC. A time that a clock change skips is refused; one it repeats is taken as
/// the first of the two.
pub fn parse_local_input(raw: &str, tz: Tz) -> Result<NaiveDateTime, String> {
    let raw = raw.trim();
    let local = [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
    .ok_or_else(|| "Enter a date and time like 2026-11-21T14:05.".to_string())?;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok(t.naive_utc()),
        LocalResult::Ambiguous(first, _) => Ok(first.naive_utc()),
        LocalResult::None => Err(format!(
            "{} does not exist in {} (the clocks moved forward then); enter a time before or after the change.",
            local.format("%Y-%m-%d %H:%M"),
            tz.name()
        )),
    }
}

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
    fn times_in_a_zone_keep_utc_for_hover() {
        let t = NaiveDateTime::parse_from_str("2026-11-21 14:05:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let paris = zone(Some("Europe/Paris"));
        let s = shown(&t, paris);
        assert_eq!(s.local, "2026-11-21 15:05 CET");
        assert_eq!(s.iso, "2026-11-21T14:05:00Z");
        assert_eq!(s.utc, "2026-11-21 14:05 UTC");
        assert_eq!(time_in(&t, zone(None)), "2026-11-21 14:05 UTC");
        assert_eq!(zone(Some("Mars/Olympus")), Tz::UTC);
        assert_eq!(local_input(&t, paris), "2026-11-21T15:05");
        assert_eq!(parse_local_input("2026-11-21T15:05", paris), Ok(t));
        assert_eq!(parse_local_input("2026-11-21T14:05", Tz::UTC), Ok(t));
        // Summer time: Paris is UTC+2.
        let summer = parse_local_input("2026-07-01T12:00", paris).unwrap();
        assert_eq!(summer.format("%H:%M").to_string(), "10:00");
        // 02:30 on the last Sunday of March 2026 never happened in Paris.
        assert!(
            parse_local_input("2026-03-29T02:30", paris)
                .unwrap_err()
                .contains("does not exist")
        );
        // 02:30 on the last Sunday of October happened twice: the first (summer time) is taken.
        let twice = parse_local_input("2026-10-25T02:30", paris).unwrap();
        assert_eq!(twice.format("%H:%M").to_string(), "00:30");
        assert!(parse_local_input("yesterday", paris).is_err());
    }

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
