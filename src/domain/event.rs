//! What happened to an incident, as routing and notifiers see it.

/// A change that may fan out to integrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The incident was declared.
    Declared,
    /// The status moved (including resolve and reopen).
    StatusChanged,
    /// The severity went up or down.
    SeverityChanged,
    /// Someone took or handed over the lead.
    LeadChanged,
    /// A free-text note was added to the timeline.
    NoteAdded,
    /// A status update for stakeholders: what we know, what we are doing, next update by.
    StatusUpdate,
    /// The tool reminded the responders of something overdue (no lead, no update, not resolved).
    Nudge,
    /// A follow-up was recorded. Not routable: only Jira receives it, when
    /// `integrations.jira.follow_ups` is on, to open an issue for it.
    FollowUpAdded,
    /// Someone took, handed over or left a role other than the lead (comms lead, scribe, …).
    RoleChanged,
}

impl EventKind {
    /// Every kind that routing rules and webhook filters can name (not
    /// [`EventKind::FollowUpAdded`]; nudges are listed but refused by both, see `config`).
    pub const ALL: [EventKind; 8] = [
        EventKind::Declared,
        EventKind::StatusChanged,
        EventKind::SeverityChanged,
        EventKind::LeadChanged,
        EventKind::NoteAdded,
        EventKind::RoleChanged,
        EventKind::StatusUpdate,
        EventKind::Nudge,
    ];

    /// The stored and configured form.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Declared => "declared",
            EventKind::StatusChanged => "status_changed",
            EventKind::SeverityChanged => "severity_changed",
            EventKind::LeadChanged => "lead_changed",
            EventKind::NoteAdded => "note_added",
            EventKind::StatusUpdate => "status_update",
            EventKind::Nudge => "nudge",
            EventKind::FollowUpAdded => "follow_up_added",
            EventKind::RoleChanged => "role_changed",
        }
    }

    /// Parses the configured form of a routable kind.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
