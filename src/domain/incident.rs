//! The incident itself: its human number, its title and the status lifecycle.

use std::fmt;

/// The human number of an incident, shown as `INC-42`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncidentNumber(pub i64);

impl fmt::Display for IncidentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INC-{}", self.0)
    }
}

impl IncidentNumber {
    /// Accepts `42`, `INC-42` or `inc-42`.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let digits = raw
            .strip_prefix("INC-")
            .or_else(|| raw.strip_prefix("inc-"))
            .unwrap_or(raw);
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().filter(|n| *n > 0).map(IncidentNumber)
    }
}

/// The longest title we keep, in characters, after trimming.
pub const TITLE_MAX_CHARS: usize = 200;

/// A validated incident title: 1 to 200 characters after trimming, something visible among them
/// (see [`super::is_blank`]), no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Trims and checks a raw title, explaining what is wrong in words a declarer understands.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        if super::is_blank(trimmed) {
            return Err("Give the incident a title: one line saying what is wrong.");
        }
        if trimmed.chars().count() > TITLE_MAX_CHARS {
            return Err("The title can be at most 200 characters; put the details in the summary.");
        }
        if trimmed.chars().any(char::is_control) {
            return Err("The title must be a single line without control characters.");
        }
        Ok(Self(trimmed.to_string()))
    }

    /// The title text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the title.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Declared; people are finding out what is wrong.
    Investigating,
    /// The cause is known.
    Identified,
    /// Impact has stopped; the fix may not be final.
    Mitigated,
    /// Over. Can be reopened.
    Resolved,
    /// Closed as not an incident (a false alarm), with a reason. Can be reopened.
    Declined,
    /// Closed as a duplicate of another incident, which carries on. Final.
    Merged,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 6] = [
        Status::Investigating,
        Status::Identified,
        Status::Mitigated,
        Status::Resolved,
        Status::Declined,
        Status::Merged,
    ];

    /// The statuses that close an incident.
    pub const CLOSED: [Status; 3] = [Status::Resolved, Status::Declined, Status::Merged];

    /// The statuses whose incidents never count in metrics: not an incident, or a duplicate
    /// (its survivor counts). Drills are left out too, by their own flag.
    pub const UNCOUNTED: [Status; 2] = [Status::Declined, Status::Merged];

    /// The stored and URL form.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Investigating => "investigating",
            Status::Identified => "identified",
            Status::Mitigated => "mitigated",
            Status::Resolved => "resolved",
            Status::Declined => "declined",
            Status::Merged => "merged",
        }
    }

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            Status::Investigating => "Investigating",
            Status::Identified => "Identified",
            Status::Mitigated => "Mitigated",
            Status::Resolved => "Resolved",
            Status::Declined => "Not an incident",
            Status::Merged => "Merged",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Live incidents are those not yet closed.
    pub fn is_live(self) -> bool {
        !self.is_closed()
    }

    /// Resolved, declined (not an incident) or merged into another: over, as far as pages,
    /// pagers, channels and tickets are concerned.
    pub fn is_closed(self) -> bool {
        Self::CLOSED.contains(&self)
    }

    /// Whether the stored form names a closed status. Notifiers read statuses as text from their
    /// payloads; an unknown text counts as open.
    pub fn is_closed_str(raw: &str) -> bool {
        Self::parse(raw).is_some_and(Self::is_closed)
    }

    /// Whether the plain status form may set this status. Declining needs a reason and merging a
    /// surviving incident, so each has its own action.
    pub fn is_plain_target(self) -> bool {
        !matches!(self, Status::Declined | Status::Merged)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The incident already has that status.
    #[error("The incident is already {0}.")]
    Unchanged(Status),
    /// A merged incident is closed for good: its duplicate's work goes on in the survivor.
    #[error("This incident was merged into another and is closed for good; work on that one instead.")]
    Final,
    /// The lifecycle does not allow this move.
    #[error("An incident cannot go from {from} to {to}; from {from} it can go to {allowed}.")]
    NotAllowed {
        /// Current status.
        from: Status,
        /// Requested status.
        to: Status,
        /// What would have been allowed, for the message.
        allowed: String,
    },
}

/// The statuses an incident may move to from `from`.
///
/// Forward moves may skip steps (a quick fix goes straight from investigating to resolved), a
/// mitigation that did not hold may go back to identified or investigating, and a resolved
/// incident may only be reopened (back to investigating). Any open incident may be declined (not
/// an incident) or merged into another; a declined one may be reopened like a resolved one, a
/// merged one is final.
pub fn allowed_next(from: Status) -> &'static [Status] {
    use Status::*;
    match from {
        Investigating => &[Identified, Mitigated, Resolved, Declined, Merged],
        Identified => &[Investigating, Mitigated, Resolved, Declined, Merged],
        Mitigated => &[Investigating, Identified, Resolved, Declined, Merged],
        Resolved | Declined => &[Investigating],
        Merged => &[],
    }
}

/// The one rule for status moves.
pub fn check_transition(from: Status, to: Status) -> Result<(), TransitionError> {
    if from == to {
        return Err(TransitionError::Unchanged(from));
    }
    if allowed_next(from).contains(&to) {
        Ok(())
    } else if allowed_next(from).is_empty() {
        Err(TransitionError::Final)
    } else {
        let allowed = allowed_next(from)
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        Err(TransitionError::NotAllowed { from, to, allowed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn forward_moves_are_allowed_including_skips() {
        for (from, to) in [
            (Investigating, Identified),
            (Investigating, Mitigated),
            (Investigating, Resolved),
            (Identified, Mitigated),
            (Identified, Resolved),
            (Mitigated, Resolved),
        ] {
            assert_eq!(check_transition(from, to), Ok(()), "{from} -> {to}");
        }
    }

    #[test]
    fn a_failed_mitigation_can_step_back() {
        assert!(check_transition(Mitigated, Investigating).is_ok());
        assert!(check_transition(Mitigated, Identified).is_ok());
        assert!(check_transition(Identified, Investigating).is_ok());
    }

    #[test]
    fn resolved_only_reopens() {
        assert!(check_transition(Resolved, Investigating).is_ok());
        for to in [Identified, Mitigated] {
            let err = check_transition(Resolved, to).unwrap_err();
            assert!(matches!(err, TransitionError::NotAllowed { .. }));
            assert!(err.to_string().contains("investigating"), "{err}");
        }
    }

    #[test]
    fn declining_and_merging_close_any_open_incident() {
        for from in [Investigating, Identified, Mitigated] {
            assert!(check_transition(from, Declined).is_ok(), "{from}");
            assert!(check_transition(from, Merged).is_ok(), "{from}");
        }
        for from in [Resolved, Declined] {
            assert!(check_transition(from, Merged).is_err(), "{from}: reopen first");
        }
        assert!(check_transition(Resolved, Declined).is_err());
        assert!(
            check_transition(Declined, Investigating).is_ok(),
            "a declined incident reopens"
        );
        for to in Status::ALL.into_iter().filter(|s| *s != Merged) {
            assert_eq!(check_transition(Merged, to), Err(TransitionError::Final), "{to}");
        }
        assert!(Status::CLOSED.iter().all(|s| s.is_closed() && !s.is_live()));
        assert!(Status::is_closed_str("declined") && !Status::is_closed_str("mitigated"));
        assert!(!Declined.is_plain_target() && !Merged.is_plain_target() && Resolved.is_plain_target());
    }

    #[test]
    fn same_status_is_refused() {
        for s in Status::ALL {
            assert_eq!(check_transition(s, s), Err(TransitionError::Unchanged(s)));
        }
    }

    #[test]
    fn every_allowed_move_passes_the_check_and_nothing_else_does() {
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(check_transition(from, to).is_ok(), allowed_next(from).contains(&to));
            }
        }
    }

    #[test]
    fn titles() {
        assert_eq!(Title::parse("  db down ").unwrap().as_str(), "db down");
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse("\u{200b}\u{feff}").is_err(), "nothing visible");
        assert!(Title::parse(&"x".repeat(200)).is_ok());
        assert!(Title::parse(&"x".repeat(201)).is_err());
        assert!(Title::parse(&"é".repeat(200)).is_ok(), "counts characters, not bytes");
        assert!(Title::parse("two\nlines").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(IncidentNumber::parse("INC-42"), Some(IncidentNumber(42)));
        assert_eq!(IncidentNumber::parse("42"), Some(IncidentNumber(42)));
        assert_eq!(IncidentNumber::parse("INC-0"), None);
        assert_eq!(IncidentNumber::parse("INC-x"), None);
        assert_eq!(IncidentNumber::parse("-1"), None);
        assert_eq!(IncidentNumber(7).to_string(), "INC-7");
    }
}
