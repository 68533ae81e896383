//! Status updates for stakeholders ("what we know, what we are doing, next update by") and the
//! nudges that say something is overdue. Pure: the clock is a parameter, so the rules are tested
//! at any moment without waiting for it.

use chrono::{Duration, NaiveDateTime};

use super::{FieldError, Status, is_blank};

/// The most characters either part of an update may have.
pub const UPDATE_PART_MAX_CHARS: usize = 4_000;

/// The "next update by" choices offered, in minutes.
pub const NEXT_UPDATE_CHOICES: [u32; 6] = [15, 30, 60, 120, 240, 480];

/// A status update, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateInput {
    /// What we know.
    pub known: String,
    /// What we are doing.
    pub doing: String,
    /// When the next update is due, in minutes from now; `None`: no further update planned.
    pub next_in_minutes: Option<u32>,
}

fn part(field: &'static str, what: &str, raw: &str, errors: &mut Vec<FieldError>) -> String {
    let text = raw.trim().replace("\r\n", "\n");
    if is_blank(&text) {
        errors.push(FieldError::new(field, format!("Say {what}.")));
    } else if text.chars().count() > UPDATE_PART_MAX_CHARS {
        errors.push(FieldError::new(
            field,
            format!("Keep {what} to {UPDATE_PART_MAX_CHARS} characters; link to details instead."),
        ));
    } else if text.contains('\0') {
        errors.push(FieldError::new(field, "An update cannot contain NUL characters."));
    }
    text
}

impl UpdateInput {
    /// Checks the three parts. `next` is a number of minutes from [`NEXT_UPDATE_CHOICES`], or
    /// `none`.
    pub fn parse(known: &str, doing: &str, next: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let known = part("known", "what we know", known, &mut errors);
        let doing = part("doing", "what we are doing", doing, &mut errors);
        let next_in_minutes = match next.trim() {
            "none" => None,
            raw => match raw.parse::<u32>() {
                Ok(m) if NEXT_UPDATE_CHOICES.contains(&m) => Some(m),
                _ => {
                    errors.push(FieldError::new(
                        "next_update",
                        "Choose when the next update is due from the list (or no further update).",
                    ));
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(Self {
                known,
                doing,
                next_in_minutes,
            })
        } else {
            Err(errors)
        }
    }
}

/// Whether an incident in this status is still being worked on (nudges apply).
fn open(status: Status) -> bool {
    matches!(status, Status::Investigating | Status::Identified | Status::Mitigated)
}

/// When the next update is due: the time the latest update promised, or, before the first one,
/// one update period after the declaration. `None` once resolved, when the latest update planned
/// no further one, or when this severity expects none.
pub fn next_update_due(
    status: Status,
    declared_at: NaiveDateTime,
    latest: Option<(NaiveDateTime, Option<NaiveDateTime>)>,
    update_minutes: Option<u32>,
) -> Option<NaiveDateTime> {
    if !open(status) {
        return None;
    }
    match latest {
        Some((_, next)) => next,
        None => update_minutes.map(|m| declared_at + Duration::minutes(i64::from(m))),
    }
}

/// What a nudge is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NudgeKind {
    /// Nobody leads the incident.
    NoLead,
    /// The promised status update has not come.
    NoUpdate,
    /// Mitigated, but not resolved.
    Unresolved,
}

impl NudgeKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            NudgeKind::NoLead => "no_lead",
            NudgeKind::NoUpdate => "no_update",
            NudgeKind::Unresolved => "unresolved",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        [NudgeKind::NoLead, NudgeKind::NoUpdate, NudgeKind::Unresolved]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }
}

/// What the nudge rules look at for one incident.
#[derive(Debug, Clone, Copy)]
pub struct NudgeFacts {
    pub status: Status,
    pub has_lead: bool,
    pub declared_at: NaiveDateTime,
    pub mitigated_at: Option<NaiveDateTime>,
    /// The latest update: when, and when it said the next one is due.
    pub latest_update: Option<(NaiveDateTime, Option<NaiveDateTime>)>,
    /// Periods for this incident's severity, in minutes (`None`: that nudge is off).
    pub no_lead_minutes: Option<u32>,
    pub update_minutes: Option<u32>,
    pub mitigated_minutes: Option<u32>,
}

/// A nudge that is due: its kind, the period it belongs to (sent at most once per period), and
/// since when the thing it is about has been overdue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNudge {
    pub kind: NudgeKind,
    /// Names the period: the moment the condition became overdue and how many whole periods
    /// have passed since. The same condition gives the same key until a period has passed.
    pub period: String,
    /// When it became overdue.
    pub overdue_since: NaiveDateTime,
    /// The period length, in minutes.
    pub every_minutes: u32,
}

fn due(kind: NudgeKind, since: NaiveDateTime, every: Option<u32>, now: NaiveDateTime) -> Option<DueNudge> {
    let every = every.filter(|m| *m > 0)?;
    if now < since {
        return None;
    }
    let index = (now - since).num_minutes() / i64::from(every);
    Some(DueNudge {
        kind,
        period: format!("{}#{index}", since.format("%Y-%m-%dT%H:%M:%S")),
        overdue_since: since,
        every_minutes: every,
    })
}

/// The nudges due now. Nobody leading: `no_lead_minutes` after the declaration, then once per
/// that period while it lasts. No update: from the moment the next one was due (see
/// [`next_update_due`]), once per update period, until the incident is mitigated. Mitigated but
/// not resolved: `mitigated_minutes` after mitigation, once per that period.
pub fn due_nudges(f: &NudgeFacts, now: NaiveDateTime) -> Vec<DueNudge> {
    if !open(f.status) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if !f.has_lead
        && let Some(m) = f.no_lead_minutes
    {
        out.extend(due(
            NudgeKind::NoLead,
            f.declared_at + Duration::minutes(i64::from(m)),
            Some(m),
            now,
        ));
    }
    if matches!(f.status, Status::Investigating | Status::Identified)
        && let Some(at) = next_update_due(f.status, f.declared_at, f.latest_update, f.update_minutes)
    {
        out.extend(due(NudgeKind::NoUpdate, at, f.update_minutes, now));
    }
    if f.status == Status::Mitigated
        && let (Some(m), Some(mitigated)) = (f.mitigated_minutes, f.mitigated_at)
    {
        out.extend(due(
            NudgeKind::Unresolved,
            mitigated + Duration::minutes(i64::from(m)),
            Some(m),
            now,
        ));
    }
    out
}

/// How long, in words: `45 min`, `3 h`, `2 h 10 min`.
pub fn span(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(hhmm: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(&format!("2026-11-21 {hhmm}:00"), "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn facts() -> NudgeFacts {
        NudgeFacts {
            status: Status::Investigating,
            has_lead: false,
            declared_at: t("10:00"),
            mitigated_at: None,
            latest_update: None,
            no_lead_minutes: Some(10),
            update_minutes: Some(30),
            mitigated_minutes: Some(120),
        }
    }

    fn kinds(v: &[DueNudge]) -> Vec<NudgeKind> {
        v.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn parse_requires_both_parts_and_a_listed_next_time() {
        let u = UpdateInput::parse(" Checkout fails for 20% ", "Rolling back 4.2", "30").unwrap();
        assert_eq!(u.known, "Checkout fails for 20%");
        assert_eq!(u.next_in_minutes, Some(30));
        assert_eq!(UpdateInput::parse("a", "b", "none").unwrap().next_in_minutes, None);
        let e = UpdateInput::parse("\u{200b} ", "", "7").unwrap_err();
        let fields: Vec<_> = e.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["known", "doing", "next_update"]);
        assert!(UpdateInput::parse(&"x".repeat(4_001), "b", "15").is_err());
        assert!(UpdateInput::parse("a\0", "b", "15").is_err());
    }

    #[test]
    fn next_update_is_promised_or_one_period_after_declaring() {
        assert_eq!(
            next_update_due(Status::Investigating, t("10:00"), None, Some(30)),
            Some(t("10:30"))
        );
        assert_eq!(
            next_update_due(
                Status::Identified,
                t("10:00"),
                Some((t("10:10"), Some(t("11:10")))),
                Some(30)
            ),
            Some(t("11:10"))
        );
        assert_eq!(
            next_update_due(Status::Mitigated, t("10:00"), Some((t("10:10"), None)), Some(30)),
            None,
            "no further update planned"
        );
        assert_eq!(next_update_due(Status::Resolved, t("10:00"), None, Some(30)), None);
        assert_eq!(next_update_due(Status::Investigating, t("10:00"), None, None), None);
    }

    #[test]
    fn nothing_is_due_before_its_time() {
        assert!(due_nudges(&facts(), t("10:09")).is_empty());
    }

    #[test]
    fn no_lead_is_due_after_its_minutes_and_keeps_one_key_per_period() {
        let at = |hhmm| due_nudges(&facts(), t(hhmm));
        assert_eq!(kinds(&at("10:10")), [NudgeKind::NoLead]);
        assert_eq!(at("10:10")[0].period, at("10:19")[0].period, "one period");
        assert_ne!(at("10:19")[0].period, at("10:20")[0].period, "the next period");
        let led = NudgeFacts {
            has_lead: true,
            ..facts()
        };
        assert!(due_nudges(&led, t("10:20")).is_empty());
    }

    #[test]
    fn no_update_follows_the_promise_and_stops_once_mitigated() {
        let mut f = NudgeFacts {
            has_lead: true,
            ..facts()
        };
        assert_eq!(kinds(&due_nudges(&f, t("10:30"))), [NudgeKind::NoUpdate]);
        f.latest_update = Some((t("10:20"), Some(t("11:20"))));
        assert!(due_nudges(&f, t("11:19")).is_empty(), "the update moved the deadline");
        let n = due_nudges(&f, t("11:20"));
        assert_eq!(n[0].overdue_since, t("11:20"));
        assert_eq!(n[0].period, "2026-11-21T11:20:00#0");
        assert_eq!(due_nudges(&f, t("11:50"))[0].period, "2026-11-21T11:20:00#1");
        f.latest_update = Some((t("10:20"), None));
        assert!(due_nudges(&f, t("13:00")).is_empty(), "no further update planned");
        f.latest_update = None;
        f.status = Status::Mitigated;
        f.mitigated_at = Some(t("10:40"));
        assert!(due_nudges(&f, t("11:00")).is_empty());
    }

    #[test]
    fn mitigated_but_unresolved_after_its_hours_and_never_once_resolved() {
        let mut f = NudgeFacts {
            has_lead: true,
            status: Status::Mitigated,
            mitigated_at: Some(t("11:00")),
            ..facts()
        };
        assert!(due_nudges(&f, t("12:59")).is_empty());
        assert_eq!(kinds(&due_nudges(&f, t("13:00"))), [NudgeKind::Unresolved]);
        f.status = Status::Resolved;
        assert!(due_nudges(&f, t("20:00")).is_empty());
    }

    #[test]
    fn a_period_of_zero_or_none_is_off() {
        let f = NudgeFacts {
            no_lead_minutes: None,
            update_minutes: None,
            ..facts()
        };
        assert!(due_nudges(&f, t("23:00")).is_empty());
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(45), "45 min");
        assert_eq!(span(180), "3 h");
        assert_eq!(span(130), "2 h 10 min");
    }
}
