//! Turning what someone typed into the declare form into a valid declaration.

use chrono::{NaiveDateTime, TimeZone, Utc};

use super::{Actor, Title, UNKNOWN_SEVERITY};

/// The longest summary we accept, in characters.
pub const SUMMARY_MAX_CHARS: usize = 20_000;
/// The most services one declaration may name.
pub const SERVICES_MAX: usize = 20;

/// A problem with one field of a form, phrased for the person who filled it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The form field at fault.
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The raw declare form, exactly as submitted.
#[derive(Debug, Clone, Default)]
pub struct DeclarationInput {
    /// Title, required.
    pub title: String,
    /// Severity id; empty means unknown.
    pub severity: String,
    /// Affected service ids.
    pub services: Vec<String>,
    /// Markdown summary.
    pub summary: String,
    /// "I'll lead".
    pub lead_self: bool,
    /// "This is a drill".
    pub drill: bool,
    /// When impact started, as `YYYY-MM-DDTHH:MM` in UTC (the HTML datetime-local format), optional.
    pub impact_started: String,
}

/// A valid declaration, ready to be saved.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    /// The title.
    pub title: Title,
    /// A configured severity id or `unknown`.
    pub severity: String,
    /// Affected services (configured ids, deduplicated, in the order given).
    pub services: Vec<String>,
    /// Markdown summary, trimmed; may be empty.
    pub summary: String,
    /// Who declares.
    pub declared_by: Actor,
    /// The lead, if the declarer takes it.
    pub lead: Option<Actor>,
    /// A drill, not a real incident.
    pub drill: bool,
    /// When impact started, if known.
    pub impact_started_at: Option<NaiveDateTime>,
}

/// Parses a severity id against the configured levels (`unknown` is always allowed).
pub fn parse_severity(raw: &str, known: &[&str]) -> Result<String, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() || raw == UNKNOWN_SEVERITY {
        return Ok(UNKNOWN_SEVERITY.to_string());
    }
    if known.contains(&raw) {
        Ok(raw.to_string())
    } else {
        Err(FieldError::new(
            "severity",
            format!(
                "Unknown severity \u{201c}{}\u{201d}; choose one of {} or unknown.",
                shorten(raw),
                known.join(", ")
            ),
        ))
    }
}

/// Parses an optional UTC time from an HTML `datetime-local` field.
pub fn parse_optional_time(field: &'static str, raw: &str) -> Result<Option<NaiveDateTime>, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            // Both databases store these; anything before 2000 is a typo, not an incident.
            if t.and_utc().timestamp() < 946_684_800 {
                return Err(FieldError::new(
                    field,
                    "That time is too far in the past; check the year.",
                ));
            }
            return Ok(Some(t));
        }
    }
    Err(FieldError::new(field, "Enter the time as YYYY-MM-DD HH:MM (UTC)."))
}

impl DeclarationInput {
    /// Validates every field, collecting all problems so the form can show them at once.
    pub fn parse(
        self,
        declared_by: Actor,
        known_severities: &[&str],
        known_services: &[&str],
        now: NaiveDateTime,
    ) -> Result<Declaration, Vec<FieldError>> {
        let mut errors = Vec::new();
        let title = Title::parse(&self.title)
            .map_err(|m| errors.push(FieldError::new("title", m)))
            .ok();
        let severity = parse_severity(&self.severity, known_severities)
            .map_err(|e| errors.push(e))
            .ok();

        let mut services: Vec<String> = Vec::new();
        for raw in &self.services {
            let s = raw.trim();
            if s.is_empty() || services.iter().any(|known| known == s) {
                continue;
            }
            if known_services.contains(&s) {
                services.push(s.to_string());
            } else if !errors.iter().any(|e| e.field == "services") {
                // One message is enough, however many unknown values were sent.
                errors.push(FieldError::new(
                    "services",
                    format!("Unknown service \u{201c}{}\u{201d}.", shorten(s)),
                ));
            }
        }
        if services.len() > SERVICES_MAX {
            errors.push(FieldError::new(
                "services",
                format!("Name at most {SERVICES_MAX} services."),
            ));
        }

        let summary = self.summary.trim().replace("\r\n", "\n");
        if summary.chars().count() > SUMMARY_MAX_CHARS {
            errors.push(FieldError::new(
                "summary",
                "The summary can be at most 20,000 characters.",
            ));
        }
        if summary.contains('\0') {
            errors.push(FieldError::new("summary", "The summary cannot contain NUL characters."));
        }

        let impact_started_at = match parse_optional_time("impact_started", &self.impact_started) {
            Ok(Some(t)) if t > now + chrono::Duration::minutes(5) => {
                errors.push(FieldError::new("impact_started", "Impact cannot start in the future."));
                None
            }
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                None
            }
        };

        match (title, severity) {
            (Some(title), Some(severity)) if errors.is_empty() => Ok(Declaration {
                title,
                severity,
                services,
                summary,
                lead: self.lead_self.then(|| declared_by.clone()),
                declared_by,
                drill: self.drill,
                impact_started_at,
            }),
            _ => Err(errors),
        }
    }
}

/// Cuts echoed user input to a readable length for messages.
pub fn shorten(raw: &str) -> String {
    let mut out: String = raw.chars().filter(|c| !c.is_control()).take(40).collect();
    if raw.chars().count() > 40 {
        out.push('\u{2026}');
    }
    out
}

/// The current time as stored: UTC without offset, to the microsecond (both databases keep that).
pub fn now_utc() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    let micros = now.and_utc().timestamp_micros();
    Utc.timestamp_micros(micros)
        .single()
        .map(|t| t.naive_utc())
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        }
    }

    fn input(title: &str) -> DeclarationInput {
        DeclarationInput {
            title: title.into(),
            ..Default::default()
        }
    }

    const SEVS: &[&str] = &["SEV0", "SEV1"];
    const SVCS: &[&str] = &["checkout", "search"];

    #[test]
    fn only_a_title_is_needed() {
        let d = input("Checkout errors").parse(actor(), SEVS, SVCS, now_utc()).unwrap();
        assert_eq!(d.severity, "unknown");
        assert!(d.services.is_empty());
        assert_eq!(d.lead, None);
        assert!(!d.drill);
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let mut i = input("");
        i.severity = "SEV9".into();
        i.services = vec!["nope".into()];
        i.impact_started = "yesterday".into();
        let errs = i.parse(actor(), SEVS, SVCS, now_utc()).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["title", "severity", "services", "impact_started"]);
    }

    #[test]
    fn services_are_deduplicated_and_lead_is_the_declarer() {
        let mut i = input("x");
        i.services = vec!["search".into(), "search".into(), "".into(), "checkout".into()];
        i.lead_self = true;
        i.severity = "SEV1".into();
        let d = i.parse(actor(), SEVS, SVCS, now_utc()).unwrap();
        assert_eq!(d.services, vec!["search", "checkout"]);
        assert_eq!(d.lead, Some(actor()));
        assert_eq!(d.severity, "SEV1");
    }

    #[test]
    fn impact_time_is_parsed_and_future_is_refused() {
        let now = NaiveDateTime::parse_from_str("2026-01-02T10:00", "%Y-%m-%dT%H:%M").unwrap();
        let mut i = input("x");
        i.impact_started = "2026-01-02T09:30".into();
        assert!(
            i.clone()
                .parse(actor(), SEVS, SVCS, now)
                .unwrap()
                .impact_started_at
                .is_some()
        );
        i.impact_started = "2026-01-02T11:30".into();
        assert!(i.clone().parse(actor(), SEVS, SVCS, now).is_err());
        i.impact_started = "-5000-01-01T00:00".into();
        assert!(
            i.parse(actor(), SEVS, SVCS, now).is_err(),
            "out of any database's range"
        );
    }
}
