//! Prometheus Alertmanager notifications (webhook body version 4), read into checked values, and
//! the pure rules that turn an alert group into an incident's title, summary, severity and
//! service, and an alert into a timeline line. The configuration is passed in as plain values.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use super::incident::TITLE_MAX_CHARS;

/// The only webhook body version this receiver reads.
pub const WEBHOOK_VERSION: &str = "4";
/// The longest fingerprint accepted (Alertmanager's are 16 hex digits).
pub const FINGERPRINT_MAX_CHARS: usize = 128;

/// Whether an alert (or a whole notification) is firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    /// Still happening.
    Firing,
    /// Over.
    Resolved,
}

impl AlertStatus {
    /// Reads `firing` or `resolved`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "firing" => Some(Self::Firing),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }

    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// One alert of a notification, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Its labels (the identity of the alert).
    pub labels: BTreeMap<String, String>,
    /// Its annotations (summary, description, runbook…).
    pub annotations: BTreeMap<String, String>,
    /// When it started, in UTC to the microsecond (what both databases keep).
    pub starts_at: NaiveDateTime,
    /// When it ended; `None` for Go's zero time, which Alertmanager sends while it fires.
    pub ends_at: Option<NaiveDateTime>,
    /// The link back to the rule's expression in Prometheus (may be empty).
    pub generator_url: String,
    /// Alertmanager's hash of the labels.
    pub fingerprint: String,
}

/// A whole notification of one alert group, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The receiver's name in alertmanager.yml.
    pub receiver: String,
    /// `firing` when any alert fires.
    pub status: AlertStatus,
    /// The group's alerts (at least one), duplicates removed.
    pub alerts: Vec<Alert>,
    /// The labels the group is grouped by.
    pub group_labels: BTreeMap<String, String>,
    /// Labels all alerts share.
    pub common_labels: BTreeMap<String, String>,
    /// Annotations all alerts share.
    pub common_annotations: BTreeMap<String, String>,
    /// The sending Alertmanager's own address.
    pub external_url: String,
    /// The group's identity within Alertmanager.
    pub group_key: String,
    /// How many alerts Alertmanager left out (its `max_alerts`).
    pub truncated_alerts: u64,
}

/// Reads an RFC 3339 time to the microsecond; Go's zero time (year 1) is `None`.
pub fn parse_time(raw: &str) -> Result<Option<NaiveDateTime>, String> {
    let t = DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| {
        format!(
            "\u{201c}{}\u{201d} is not an RFC 3339 time such as 2026-11-21T03:41:48Z",
            super::declaration::shorten(raw)
        )
    })?;
    let utc = t.with_timezone(&Utc);
    if utc.timestamp() < -62_000_000_000 {
        // 0001-01-01T00:00:00Z and thereabouts: Go's "not set".
        return Ok(None);
    }
    let micros = utc.timestamp_micros();
    Ok(Utc.timestamp_micros(micros).single().map(|t| t.naive_utc()))
}

/// Checks a fingerprint: 1 to 128 visible ASCII characters.
pub fn check_fingerprint(raw: &str) -> Result<(), String> {
    if raw.is_empty() || raw.len() > FINGERPRINT_MAX_CHARS || !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(format!(
            "must be 1 to {FINGERPRINT_MAX_CHARS} visible ASCII characters, as Alertmanager sends"
        ));
    }
    Ok(())
}

impl Notification {
    /// Whether any alert fires.
    pub fn any_firing(&self) -> bool {
        self.alerts.iter().any(|a| a.status == AlertStatus::Firing)
    }

    /// A label's value for the whole group: the common labels, then the group labels, then the
    /// first firing alert's (the first alert's when none fires).
    pub fn label(&self, name: &str) -> Option<&str> {
        self.common_labels
            .get(name)
            .or_else(|| self.group_labels.get(name))
            .or_else(|| self.lead_alert().and_then(|a| a.labels.get(name)))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// An annotation's value for the whole group, in the same order as [`Self::label`].
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.common_annotations
            .get(name)
            .or_else(|| self.lead_alert().and_then(|a| a.annotations.get(name)))
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn lead_alert(&self) -> Option<&Alert> {
        self.alerts
            .iter()
            .find(|a| a.status == AlertStatus::Firing)
            .or_else(|| self.alerts.first())
    }

    /// The incident title: the title annotation, else the alert name with the other group
    /// labels (`DiskFull: service=db`), made one line of at most 200 characters.
    pub fn title(&self, title_annotation: &str) -> String {
        let from_annotation = self
            .annotation(title_annotation)
            .map(one_line)
            .filter(|t| !t.is_empty());
        let title = from_annotation.unwrap_or_else(|| self.fallback_title());
        cut(&title, TITLE_MAX_CHARS)
    }

    fn fallback_title(&self) -> String {
        let others = self
            .group_labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={}", one_line(v)))
            .collect::<Vec<_>>()
            .join(", ");
        let name = self.label("alertname").map(one_line).filter(|n| !n.is_empty());
        match (name, others.is_empty()) {
            (Some(n), true) => n,
            (Some(n), false) => format!("{n}: {others}"),
            (None, false) => format!("Alert group {others}"),
            (None, true) => "Alert from Alertmanager".into(),
        }
    }

    /// The incident summary in Markdown: the summary annotation, then where it came from (the
    /// group, the Alertmanager, each alert's source link). Text from the alerts is escaped.
    pub fn summary(&self, summary_annotation: &str) -> String {
        let mut out = String::new();
        if let Some(s) = self.annotation(summary_annotation) {
            for line in s.lines() {
                out.push_str(&escape_markdown(line));
                out.push('\n');
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "Opened by Alertmanager (receiver {}) for the alert group {}.",
            code(&self.receiver),
            code(&self.group_key)
        ));
        if let Some(url) = http_url(&self.external_url) {
            out.push_str(&format!(" [Open in Alertmanager]({url})"));
        }
        out.push_str("\n\n");
        for a in &self.alerts {
            out.push_str(&format!("- {}", escape_markdown(&labels_text(&a.labels))));
            if let Some(url) = http_url(&a.generator_url) {
                out.push_str(&format!(" ([source]({url}))"));
            }
            out.push('\n');
        }
        if self.truncated_alerts > 0 {
            out.push_str(&format!(
                "- and {} more alerts Alertmanager left out\n",
                self.truncated_alerts
            ));
        }
        let mut s: String = out
            .trim_end()
            .chars()
            .take(super::declaration::SUMMARY_MAX_CHARS)
            .collect();
        s.push('\n');
        s.trim_end().to_string()
    }

    /// The severity id: the label's value looked up in `mapping`, else the value itself when it
    /// is a configured id, else `default`.
    pub fn severity(&self, label: &str, mapping: &BTreeMap<String, String>, known: &[&str], default: &str) -> String {
        match self.label(label) {
            Some(v) => match mapping.get(v) {
                Some(id) => id.clone(),
                None if known.contains(&v) => v.to_string(),
                None => default.to_string(),
            },
            None => default.to_string(),
        }
    }
}

/// An alert as one line of `name=value` labels, `alertname` first.
pub fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(n) = labels.get("alertname") {
        parts.push(format!("alertname={}", one_line(n)));
    }
    parts.extend(
        labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={}", one_line(v))),
    );
    parts.join(", ")
}

/// The text of an alert's timeline entry: its labels, its annotations one per line, and its
/// source link.
pub fn entry_text(a: &Alert) -> String {
    let mut out = labels_text(&a.labels);
    for (k, v) in &a.annotations {
        out.push_str(&format!("\n{k}: {}", one_line(v)));
    }
    if !a.generator_url.trim().is_empty() {
        out.push_str(&format!("\nsource: {}", one_line(&a.generator_url)));
    }
    cut(&out, super::declaration::SUMMARY_MAX_CHARS)
}

/// The URL if it is an absolute http(s) one, for links.
pub fn http_url(raw: &str) -> Option<&str> {
    let raw = raw.trim();
    let lower = raw.to_ascii_lowercase();
    let ok = (lower.starts_with("http://") || lower.starts_with("https://"))
        && raw.len() > 8
        && !raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '(' | ')'));
    ok.then_some(raw)
}

/// One line: control characters and runs of whitespace become one space.
pub fn one_line(raw: &str) -> String {
    raw.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn cut(raw: &str, max: usize) -> String {
    if raw.chars().count() <= max {
        return raw.to_string();
    }
    let mut s: String = raw.chars().take(max - 1).collect();
    s.push('\u{2026}');
    s
}

/// Backslashes before everything that shapes Markdown, so alert text stays text.
fn escape_markdown(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_control() {
            out.push(' ');
            continue;
        }
        if "\\`*_[]()<>#+-.!|~&".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text as an escaped Markdown phrase in quotation marks (code spans cannot hold every text).
fn code(raw: &str) -> String {
    format!("\u{201c}{}\u{201d}", escape_markdown(&one_line(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn alert(status: AlertStatus, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Alert {
        Alert {
            status,
            labels: map(labels),
            annotations: map(annotations),
            starts_at: parse_time("2026-11-21T03:41:48.123456789Z").unwrap().unwrap(),
            ends_at: None,
            generator_url: "http://prometheus.example/graph?g0.expr=up".into(),
            fingerprint: "abc".into(),
        }
    }

    fn notification(alerts: Vec<Alert>) -> Notification {
        Notification {
            receiver: "brb".into(),
            status: AlertStatus::Firing,
            alerts,
            group_labels: map(&[("alertname", "DiskFull"), ("service", "db")]),
            common_labels: map(&[("alertname", "DiskFull"), ("service", "db"), ("severity", "warning")]),
            common_annotations: BTreeMap::new(),
            external_url: "http://am.example:9093".into(),
            group_key: "{}:{alertname=\"DiskFull\", service=\"db\"}".into(),
            truncated_alerts: 0,
        }
    }

    #[test]
    fn times_are_kept_to_the_microsecond_and_go_zero_time_is_none() {
        let t = parse_time("2026-11-21T03:41:48.123456789+01:00").unwrap().unwrap();
        assert_eq!(t.to_string(), "2026-11-21 02:41:48.123456");
        assert_eq!(parse_time("0001-01-01T00:00:00Z").unwrap(), None);
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn the_title_comes_from_the_annotation_or_the_alert_name_and_group_labels() {
        let mut n = notification(vec![alert(AlertStatus::Firing, &[("alertname", "DiskFull")], &[])]);
        assert_eq!(n.title("summary"), "DiskFull: service=db");
        n.alerts[0].annotations = map(&[("summary", "Disk\nfull  on db-1")]);
        assert_eq!(n.title("summary"), "Disk full on db-1");
        n.common_annotations = map(&[("summary", &"x".repeat(300))]);
        assert_eq!(n.title("summary").chars().count(), TITLE_MAX_CHARS);
        n.common_annotations.clear();
        n.alerts[0].annotations.clear();
        n.group_labels.clear();
        n.common_labels.clear();
        n.alerts[0].labels.clear();
        assert_eq!(n.title("summary"), "Alert from Alertmanager");
    }

    #[test]
    fn severity_uses_the_mapping_then_a_known_id_then_the_default() {
        let n = notification(vec![alert(AlertStatus::Firing, &[], &[])]);
        let mapping = map(&[("warning", "SEV3")]);
        assert_eq!(n.severity("severity", &mapping, &["SEV1"], "unknown"), "SEV3");
        assert_eq!(
            n.severity("severity", &BTreeMap::new(), &["warning"], "unknown"),
            "warning"
        );
        assert_eq!(n.severity("severity", &BTreeMap::new(), &["SEV1"], "SEV2"), "SEV2");
        assert_eq!(n.severity("priority", &mapping, &["SEV1"], "unknown"), "unknown");
    }

    #[test]
    fn the_summary_escapes_alert_text_and_links_only_http_urls() {
        let mut a = alert(AlertStatus::Firing, &[("alertname", "X"), ("job", "<script>")], &[]);
        a.generator_url = "javascript:alert(1)".into();
        let mut n = notification(vec![a]);
        n.common_annotations = map(&[("description", "**bold** [x](javascript:y)")]);
        let s = n.summary("description");
        assert!(s.starts_with("\\*\\*bold\\*\\* \\[x\\]\\(javascript:y\\)"), "{s}");
        assert!(!s.contains("(javascript:alert(1))") && !s.contains("[source]"), "{s}");
        assert!(s.contains("[Open in Alertmanager](http://am.example:9093)"), "{s}");
        assert!(s.contains("job=\\<script\\>"), "{s}");
    }

    #[test]
    fn an_entry_shows_labels_annotations_and_the_source() {
        let a = alert(
            AlertStatus::Firing,
            &[("severity", "warning"), ("alertname", "DiskFull")],
            &[("summary", "disk 95%")],
        );
        assert_eq!(
            entry_text(&a),
            "alertname=DiskFull, severity=warning\nsummary: disk 95%\nsource: http://prometheus.example/graph?g0.expr=up"
        );
    }

    #[test]
    fn fingerprints_are_visible_ascii() {
        assert!(check_fingerprint("eaf09244f2c30009").is_ok());
        assert!(check_fingerprint("").is_err());
        assert!(check_fingerprint("a b").is_err());
        assert!(check_fingerprint(&"f".repeat(129)).is_err());
    }
}
