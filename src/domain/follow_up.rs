//! Follow-ups: the action items an incident leaves behind. Pure rules for their title, owner, due
//! date and status, so the page, the API and the Jira sync all read input the same way.

use chrono::NaiveDate;

use super::FieldError;

/// The longest follow-up title, in characters, after trimming.
pub const FOLLOW_UP_TITLE_MAX: usize = 200;
/// The longest owner name, in characters.
pub const OWNER_MAX: usize = 100;
/// How far back a due date may lie (a follow-up recorded late), in days.
pub const DUE_PAST_DAYS: i64 = 365;
/// How far ahead a due date may lie, in days (about five years).
pub const DUE_FUTURE_DAYS: i64 = 5 * 366;

/// Where a follow-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatus {
    /// Still to do.
    Open,
    /// Done.
    Done,
    /// Decided against; kept so the decision is on record.
    WontDo,
}

impl FollowUpStatus {
    /// Every status.
    pub const ALL: [FollowUpStatus; 3] = [FollowUpStatus::Open, FollowUpStatus::Done, FollowUpStatus::WontDo];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpStatus::Open => "open",
            FollowUpStatus::Done => "done",
            FollowUpStatus::WontDo => "wont_do",
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            FollowUpStatus::Open => "Open",
            FollowUpStatus::Done => "Done",
            FollowUpStatus::WontDo => "Won't do",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether it is closed (done or won't do).
    pub fn is_closed(self) -> bool {
        self != FollowUpStatus::Open
    }
}

/// What a status form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusAction {
    /// Mark it done.
    Done,
    /// Close it without doing it.
    WontDo,
    /// Open it again.
    Reopen,
}

impl StatusAction {
    /// Reads the form's `action` value.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw.trim() {
            "done" => Ok(StatusAction::Done),
            "wont_do" => Ok(StatusAction::WontDo),
            "reopen" => Ok(StatusAction::Reopen),
            _ => Err(FieldError::new(
                "action",
                "Choose whether the follow-up is done, won't be done, or is open again.",
            )),
        }
    }

    /// The status it leads to.
    pub fn target(self) -> FollowUpStatus {
        match self {
            StatusAction::Done => FollowUpStatus::Done,
            StatusAction::WontDo => FollowUpStatus::WontDo,
            StatusAction::Reopen => FollowUpStatus::Open,
        }
    }
}

/// The status after `action` from `current`, or why it does not apply. Closing an open follow-up
/// and reopening a closed one are the moves; anything else is a stale form.
pub fn next_status(current: FollowUpStatus, action: StatusAction) -> Result<FollowUpStatus, String> {
    let target = action.target();
    match (current.is_closed(), target.is_closed()) {
        (false, true) | (true, false) => Ok(target),
        _ => Err(format!(
            "This follow-up is already {}. Nothing was changed.",
            current.label().to_lowercase()
        )),
    }
}

/// A follow-up title: the same rules as an incident title (1–200 characters, one line).
pub fn parse_title(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if super::is_blank(trimmed) {
        return Err(FieldError::new("title", "Say what needs doing: one line."));
    }
    if trimmed.chars().count() > FOLLOW_UP_TITLE_MAX {
        return Err(FieldError::new(
            "title",
            "A follow-up title can be at most 200 characters.",
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            "title",
            "A follow-up title must be a single line without control characters.",
        ));
    }
    Ok(trimmed.to_string())
}

/// Who owns a follow-up as typed: an email address (someone who may have signed in) or a name
/// (a person or a team, e.g. "Payments team").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerInput {
    /// An email address, lowercased.
    Email(String),
    /// A name.
    Name(String),
}

/// Reads the owner field: anything with an `@` must be a plausible email address; otherwise a name
/// of 1–100 characters on one line.
pub fn parse_owner(raw: &str) -> Result<OwnerInput, FieldError> {
    let trimmed = raw.trim();
    if super::is_blank(trimmed) {
        return Err(FieldError::new(
            "owner",
            "Name an owner: a person's email, a name, or a team.",
        ));
    }
    if trimmed.contains('@') {
        if !super::is_plausible_email(trimmed) {
            return Err(FieldError::new(
                "owner",
                "The owner looks like an email address but is not one like ada@example.com.",
            ));
        }
        return Ok(OwnerInput::Email(trimmed.to_ascii_lowercase()));
    }
    if trimmed.chars().count() > OWNER_MAX {
        return Err(FieldError::new("owner", "An owner name can be at most 100 characters."));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            "owner",
            "An owner name cannot contain control characters.",
        ));
    }
    Ok(OwnerInput::Name(trimmed.to_string()))
}

/// Reads a due date (`YYYY-MM-DD`, what a date input sends) and checks it is within a year back
/// and about five years ahead of `today`.
pub fn parse_due(raw: &str, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new("due_on", "Give the follow-up a due date."));
    }
    let date = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d")
        .ok()
        .filter(|_| trimmed.len() == 10)
        .ok_or_else(|| FieldError::new("due_on", "Write the due date as YYYY-MM-DD, like 2026-12-01."))?;
    if date < today - chrono::Duration::days(DUE_PAST_DAYS) {
        return Err(FieldError::new("due_on", "The due date is more than a year ago."));
    }
    if date > today + chrono::Duration::days(DUE_FUTURE_DAYS) {
        return Err(FieldError::new("due_on", "The due date is more than five years away."));
    }
    Ok(date)
}

/// The stored form of a due date.
pub fn due_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Whether a follow-up is overdue on `today`: still open and due before today.
pub fn is_overdue(status: FollowUpStatus, due_on: &str, today: NaiveDate) -> bool {
    status == FollowUpStatus::Open && due_on < due_text(today).as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn statuses_round_trip() {
        for s in FollowUpStatus::ALL {
            assert_eq!(FollowUpStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(FollowUpStatus::parse("closed"), None);
    }

    #[test]
    fn only_closing_an_open_one_and_reopening_a_closed_one_are_moves() {
        use FollowUpStatus::*;
        assert_eq!(next_status(Open, StatusAction::Done), Ok(Done));
        assert_eq!(next_status(Open, StatusAction::WontDo), Ok(WontDo));
        assert_eq!(next_status(Done, StatusAction::Reopen), Ok(Open));
        assert_eq!(next_status(WontDo, StatusAction::Reopen), Ok(Open));
        assert!(
            next_status(Open, StatusAction::Reopen)
                .unwrap_err()
                .contains("already open")
        );
        assert!(
            next_status(Done, StatusAction::Done)
                .unwrap_err()
                .contains("already done")
        );
        assert!(next_status(Done, StatusAction::WontDo).is_err());
        assert!(StatusAction::parse("close").is_err());
    }

    #[test]
    fn titles_are_one_visible_line_of_at_most_200_characters() {
        assert_eq!(parse_title("  Add a canary  ").unwrap(), "Add a canary");
        assert!(parse_title("\u{200b} ").is_err());
        assert!(parse_title(&"x".repeat(201)).is_err());
        assert!(parse_title(&"é".repeat(200)).is_ok());
        assert!(parse_title("two\nlines").is_err());
    }

    #[test]
    fn owners_are_emails_or_names() {
        assert_eq!(
            parse_owner(" Ada@Example.com ").unwrap(),
            OwnerInput::Email("ada@example.com".into())
        );
        assert_eq!(
            parse_owner("Payments team").unwrap(),
            OwnerInput::Name("Payments team".into())
        );
        assert_eq!(parse_owner("ada@").unwrap_err().field, "owner");
        assert!(parse_owner("").is_err());
        assert!(parse_owner(&"n".repeat(101)).is_err());
        assert!(parse_owner("a\u{7}b").is_err());
    }

    #[test]
    fn due_dates_are_iso_days_within_reason() {
        let today = day("2026-11-21");
        assert_eq!(parse_due("2026-12-01", today).unwrap(), day("2026-12-01"));
        assert_eq!(parse_due("2026-11-01", today).unwrap(), day("2026-11-01"));
        for bad in ["", "tomorrow", "2026-13-01", "2026-02-30", "01/12/2026", "2026-1-5"] {
            assert_eq!(parse_due(bad, today).unwrap_err().field, "due_on", "{bad}");
        }
        assert!(parse_due("2025-11-01", today).is_err(), "over a year ago");
        assert!(parse_due("2032-01-01", today).is_err(), "over five years away");
    }

    #[test]
    fn overdue_means_open_and_due_before_today() {
        let today = day("2026-11-21");
        assert!(is_overdue(FollowUpStatus::Open, "2026-11-20", today));
        assert!(
            !is_overdue(FollowUpStatus::Open, "2026-11-21", today),
            "due today is not late"
        );
        assert!(!is_overdue(FollowUpStatus::Done, "2026-11-01", today));
        assert!(!is_overdue(FollowUpStatus::WontDo, "2026-11-01", today));
    }
}
