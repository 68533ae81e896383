//! The postmortem draft: a Markdown document made from an incident's record (summary, impact,
//! key times and durations, roles, timeline, notes, integrations) with sections left for people
//! to fill in. It is made again from the current record on every request, so it follows every
//! change; nothing of it is stored.
//!
//! The wording is blameless: it says what happened and what was done, and its prompts ask about
//! systems and signals, never about who is at fault. Text people typed (titles, notes, names) is
//! escaped so it reads as text: a note starting with `#` or holding `|` or backticks cannot add a
//! heading, a table or code to the document.

use std::fmt::Write as _;

use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::config::Settings;
use crate::db::models::TimelineEntryRow;
use crate::domain::follow_up::{FollowUpStatus, is_overdue};
use crate::domain::key_times::format_duration;
use crate::domain::{KeyTime, Status};
use crate::services::lifecycle::key_times_of;
use crate::services::queries::IncidentDetail;

/// `2026-11-21 15:05 CET`: a stored (UTC) time in `tz`.
fn at(t: &NaiveDateTime, tz: Tz) -> String {
    tz.from_utc_datetime(t).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// A time stored in a timeline entry (`2026-11-21T14:05:00Z`) in `tz`.
fn entry_time(value: Option<&str>, tz: Tz) -> String {
    match value {
        None => "not recorded".into(),
        Some(v) => NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%SZ")
            .map(|t| at(&t, tz))
            .unwrap_or_else(|_| inline(v)),
    }
}

/// Whether `c` is escaped wherever it appears in people's text. Backslash escapes work for any
/// ASCII punctuation in CommonMark; these are the ones that can shape structure anywhere in a line
/// (emphasis, code, links, HTML, tables, headings, entities). `-`, `+` and `=` matter only first
/// on a line (lists, thematic breaks, setext underlines), as do digits followed by `.` or `)`.
fn always_escaped(c: char) -> bool {
    matches!(
        c,
        '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '&'
    )
}

/// One line of people's text, escaped to read as plain text in Markdown.
fn escape_line(line: &str) -> String {
    let line = line.trim();
    let mut out = String::with_capacity(line.len() + 8);
    // `1.` or `1)` at the start would begin an ordered list.
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    for (i, c) in line.chars().enumerate() {
        let starts_block = i == 0 && matches!(c, '-' | '+' | '=');
        let list_number = digits > 0 && i == digits && matches!(c, '.' | ')');
        if always_escaped(c) || starts_block || list_number {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// People's text on one line (a title, a name): line breaks become spaces.
fn inline(text: &str) -> String {
    let one: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    escape_line(&one)
}

/// The lines of people's text, each escaped; blank lines kept (as paragraph breaks).
fn lines(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(|l| {
            let clean: String = l.chars().filter(|c| !c.is_control() || *c == '\t').collect();
            escape_line(&clean)
        })
        .collect()
}

/// People's text as a blockquote, indented by `indent` (to sit under a list item).
fn quote(text: &str, indent: &str) -> String {
    let mut out = String::new();
    for l in lines(text) {
        if l.is_empty() {
            let _ = writeln!(out, "{indent}>");
        } else {
            let _ = writeln!(out, "{indent}> {l}");
        }
    }
    out
}

/// One timeline entry, in neutral words.
fn describe(e: &TimelineEntryRow, tz: Tz) -> String {
    let old = e.old_value.as_deref().map(inline).unwrap_or_else(|| "none".into());
    let new = e.new_value.as_deref().map(inline).unwrap_or_else(|| "none".into());
    let who = inline(&e.actor_name);
    match e.kind.as_str() {
        "declared" => format!("{who} declared the incident ({new})."),
        "mustered" => format!("Responders mustered ({who} was the first to join)."),
        "status_changed" => format!("{who} changed the status from {old} to {new}."),
        "status_update" => format!("{who} posted a status update (under Status updates below)."),
        "nudge" => "The responders were reminded:".to_string(),
        "severity_changed" => format!("{who} changed the severity from {old} to {new}."),
        "lead_changed" => match (&e.old_value, &e.new_value) {
            (None, Some(_)) if e.new_value.as_deref() == Some(e.actor_name.as_str()) => {
                format!("{who} took the lead.")
            }
            (None, Some(_)) => format!("{who} asked {new} to lead."),
            (Some(_), None) => format!("{who} cleared the lead ({old} stepped back)."),
            _ => format!("{who} handed the lead from {old} to {new}."),
        },
        "key_time_changed" => {
            let what = KeyTime::phrase_of_field(e.field.as_deref());
            format!(
                "{who} set {what} to {} (was {}).",
                entry_time(e.new_value.as_deref(), tz),
                entry_time(e.old_value.as_deref(), tz)
            )
        }
        "note" => format!("{who} added a note:"),
        "delivery_retried" => format!("{who} asked for a failed delivery to be tried again."),
        "follow_up_added" => format!("{who} recorded a follow-up for {new}:"),
        "follow_up_changed" => match e.field.as_deref() {
            Some("status") if e.new_value.as_deref() == Some("open") => format!("{who} reopened a follow-up:"),
            Some("status") => format!("{who} marked a follow-up {}:", new.replace('_', " ")),
            Some("owner") => format!("{who} handed a follow-up from {old} to {new}:"),
            Some("due_on") => format!("{who} moved a follow-up's due date from {old} to {new}:"),
            _ => format!("{who} changed a follow-up:"),
        },
        "declined" => format!(
            "{who} closed it as not an incident: {}.",
            e.body
                .as_deref()
                .map(inline)
                .unwrap_or_else(|| "no reason given".into())
        ),
        "merged" => format!("{who} merged it into INC-{new} as a duplicate."),
        "merged_in" => format!("{who} merged INC-{new} into this incident as a duplicate."),
        "alert_firing" => format!("Alertmanager reported an alert firing (through {who}):"),
        "alert_resolved" => format!("Alertmanager reported an alert resolved (through {who}):"),
        "alert_unknown_service" => format!(
            "The alert's {} label named {new}, which is not a configured service, so no service was set.",
            e.field.as_deref().map(inline).unwrap_or_else(|| "service".into())
        ),
        "alert_group_follows" => {
            format!("The alert group fired again after INC-{old} was closed; this incident continues it.")
        }
        "alert_group_moved" => format!("The alert group fired again and continues in INC-{new}."),
        other => format!("{who}: {}.", inline(&other.replace('_', " "))),
    }
}

/// A stretch of time someone held a role.
struct Lead {
    name: String,
    from: NaiveDateTime,
    to: Option<NaiveDateTime>,
}

/// Who held a role when, from its changes on the timeline: the lead from the `lead_changed`
/// entries (the lead taken at declaration included), any other role from the `role_changed`
/// entries whose field is its id.
fn stretches(d: &IncidentDetail, role: &str) -> Vec<Lead> {
    let lead = role == crate::config::roles::LEAD;
    let mut out: Vec<Lead> = Vec::new();
    let changes = d.timeline.iter().filter(|e| {
        if lead {
            e.kind == "lead_changed"
        } else {
            e.kind == "role_changed" && e.field.as_deref() == Some(role)
        }
    });
    for e in changes {
        if let Some(current) = out.last_mut()
            && current.to.is_none()
        {
            current.to = Some(e.at);
        }
        if let Some(name) = &e.new_value {
            out.push(Lead {
                name: name.clone(),
                from: e.at,
                to: None,
            });
        }
    }
    // A lead recorded on the incident with no timeline entry (older data): from the declaration.
    if lead
        && out.is_empty()
        && let Some(name) = &d.row.lead_name
    {
        out.push(Lead {
            name: name.clone(),
            from: d.row.declared_at,
            to: None,
        });
    }
    out
}

/// A `role_changed` entry in neutral words.
fn describe_role(e: &TimelineEntryRow, settings: &Settings) -> String {
    let who = inline(&e.actor_name);
    let id = e.field.as_deref().unwrap_or("");
    let role = inline(
        &settings
            .role(id)
            .map(|r| r.in_sentence())
            .unwrap_or_else(|| id.replace(['_', '-'], " ")),
    );
    let name = |v: &Option<String>| v.as_deref().map(inline).unwrap_or_default();
    match (&e.old_value, &e.new_value) {
        (None, Some(n)) if *n == e.actor_name => format!("{who} took the {role} role."),
        (None, Some(_)) => format!("{who} asked {} to be {role}.", name(&e.new_value)),
        (Some(o), None) if *o == e.actor_name => format!("{who} left the {role} role."),
        (Some(_), None) => format!("{who} cleared the {role} role ({} stepped back).", name(&e.old_value)),
        (Some(_), Some(_)) => format!(
            "{who} handed the {role} role from {} to {}.",
            name(&e.old_value),
            name(&e.new_value)
        ),
        (None, None) => format!("{who} changed the {role} role."),
    }
}

fn link_ok(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// A link whose text and address cannot break out of the link syntax.
fn link(text: &str, url: &str) -> String {
    let url: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && !matches!(c, '<' | '>'))
        .collect();
    format!("[{}](<{url}>)", inline(text))
}

/// The draft, in Markdown. `generated_at` is when it is made (UTC), shown in its first lines.
pub fn render(d: &IncidentDetail, tz: Tz, settings: &Settings, generated_at: NaiveDateTime) -> String {
    let row = &d.row;
    let times = key_times_of(row);
    let status = Status::parse(&row.status).unwrap_or(Status::Investigating);
    let mut md = String::new();
    let w = &mut md;

    let _ = writeln!(w, "# INC-{} postmortem: {}\n", row.number, inline(&row.title));
    let _ = writeln!(
        w,
        "_Draft generated from the record at {} ({}); edit freely. Times are in {}._\n",
        at(&generated_at, tz),
        tz.name(),
        tz.name()
    );

    // Summary.
    let _ = writeln!(w, "## Summary\n");
    if row.summary.trim().is_empty() {
        let _ = writeln!(
            w,
            "_No summary was recorded. In a few sentences: what happened, who or what was affected, and how it \
             ended._\n"
        );
    } else {
        let _ = writeln!(w, "{}", quote(&row.summary, ""));
    }

    // Impact.
    let _ = writeln!(w, "## Impact\n");
    match settings.severities.iter().find(|s| s.id == row.severity) {
        Some(s) => {
            let _ = writeln!(
                w,
                "- **Severity:** {} ({}): {}",
                inline(&s.id),
                inline(&s.label),
                inline(&s.criterion)
            );
        }
        None => {
            let _ = writeln!(w, "- **Severity:** {} (not assessed)", inline(&row.severity));
        }
    }
    let services: Vec<String> = d
        .services
        .iter()
        .map(|id| {
            settings
                .services
                .iter()
                .find(|s| &s.id == id)
                .map(|s| format!("{} ({})", inline(&s.name), inline(id)))
                .unwrap_or_else(|| inline(id))
        })
        .collect();
    let _ = writeln!(
        w,
        "- **Services affected:** {}",
        if services.is_empty() {
            "none recorded".to_string()
        } else {
            services.join(", ")
        }
    );
    let _ = writeln!(w, "- **Status:** {}", status.label());
    let _ = writeln!(w, "- **Drill:** {}", if row.drill { "yes" } else { "no" });
    let end = times.mitigated.or(times.resolved);
    let window = match (times.impact_started, end) {
        (Some(a), Some(b)) => format!("{} to {} ({})", at(&a, tz), at(&b, tz), format_duration(b - a)),
        (Some(a), None) => format!("from {}; not over yet, or its end was not recorded", at(&a, tz)),
        (None, Some(b)) => format!("start not recorded; ended {}", at(&b, tz)),
        (None, None) => "not recorded".into(),
    };
    let _ = writeln!(w, "- **Impact window:** {window}\n");

    // Key times and durations.
    let _ = writeln!(w, "## Key times\n");
    let _ = writeln!(w, "| Moment | Time ({}) |\n|---|---|", tz.name());
    for k in KeyTime::ALL {
        let shown = times
            .get(k)
            .map(|t| at(&t, tz))
            .unwrap_or_else(|| "not recorded".into());
        let _ = writeln!(w, "| {} | {shown} |", k.label());
    }
    let _ = writeln!(w, "\n## Durations\n");
    let _ = writeln!(w, "| Measure | Duration |\n|---|---|");
    for (label, value) in times.durations().labelled() {
        let _ = writeln!(
            w,
            "| {label} | {} |",
            value.map(format_duration).unwrap_or_else(|| "\u{2014}".into())
        );
    }
    let _ = writeln!(w);

    // Roles.
    let _ = writeln!(w, "## Roles\n");
    let _ = writeln!(
        w,
        "- {} declared the incident at {}.",
        inline(&row.declared_by_name),
        at(&row.declared_at, tz)
    );
    // Every configured role, the lead first, then any role held here that is no longer
    // configured, each with who held it when.
    let mut roles: Vec<(String, String)> = settings
        .roles()
        .into_iter()
        .map(|r| (r.id.clone(), r.in_sentence()))
        .collect();
    for e in d.timeline.iter().filter(|e| e.kind == "role_changed") {
        if let Some(id) = &e.field
            && !roles.iter().any(|(r, _)| r == id)
        {
            roles.push((id.clone(), id.replace(['_', '-'], " ")));
        }
    }
    let mut holders: Vec<String> = Vec::new();
    for (id, role) in &roles {
        let lead = id == crate::config::roles::LEAD;
        let stretches = stretches(d, id);
        if stretches.is_empty() {
            if lead {
                let _ = writeln!(w, "- No lead was recorded.");
            } else {
                let _ = writeln!(w, "- No {} was recorded.", inline(role));
            }
        }
        for l in &stretches {
            holders.push(l.name.clone());
            let now = if lead { "leading now" } else { "holding it now" };
            let until = match l.to {
                Some(t) => format!("to {}", at(&t, tz)),
                None if status == Status::Resolved => match row.resolved_at {
                    Some(r) => format!("to {} (resolution)", at(&r, tz)),
                    None => "to the end".into(),
                },
                None => format!("onwards ({now})"),
            };
            if lead {
                let _ = writeln!(
                    w,
                    "- {} led the response from {} {until}.",
                    inline(&l.name),
                    at(&l.from, tz)
                );
            } else {
                let _ = writeln!(
                    w,
                    "- {} was {} from {} {until}.",
                    inline(&l.name),
                    inline(role),
                    at(&l.from, tz)
                );
            }
        }
    }
    let mut others: Vec<&str> = Vec::new();
    for e in &d.timeline {
        let name = e.actor_name.as_str();
        if name != row.declared_by_name && !holders.iter().any(|h| h == name) && !others.contains(&name) {
            others.push(name);
        }
    }
    if !others.is_empty() {
        let names: Vec<String> = others.iter().map(|n| inline(n)).collect();
        let _ = writeln!(w, "- Also on the timeline: {}.", names.join(", "));
    }
    let _ = writeln!(w);

    // Timeline.
    let _ = writeln!(w, "## Timeline\n");
    for e in &d.timeline {
        let text = if e.kind == "role_changed" {
            describe_role(e, settings)
        } else {
            describe(e, tz)
        };
        let _ = writeln!(w, "- **{}**: {}", at(&e.at, tz), text);
        if let Some(body) = &e.body
            && !body.trim().is_empty()
            && e.kind != "status_update"
        {
            let _ = writeln!(w);
            let _ = write!(w, "{}", quote(body, "  "));
        }
    }
    let _ = writeln!(w);

    // Status updates.
    let _ = writeln!(w, "## Status updates\n");
    if d.updates.is_empty() {
        let _ = writeln!(
            w,
            "No status updates were posted during the incident. Notes are in the timeline above.\n"
        );
    } else {
        let _ = writeln!(
            w,
            "What stakeholders were told ({} update{}), as posted.\n",
            d.updates.len(),
            if d.updates.len() == 1 { "" } else { "s" }
        );
        for u in &d.updates {
            let _ = writeln!(w, "### {}, {}\n", at(&u.at, tz), inline(&u.author_name));
            let _ = writeln!(w, "**What we know**\n");
            let _ = write!(w, "{}", quote(&u.known, ""));
            let _ = writeln!(w, "\n**What we are doing**\n");
            let _ = write!(w, "{}", quote(&u.doing, ""));
            let _ = match u.next_update_at {
                Some(next) => writeln!(w, "\nNext update promised by {}.\n", at(&next, tz)),
                None => writeln!(w, "\nNo further update was planned.\n"),
            };
        }
    }

    // Sections to write.
    let _ = writeln!(w, "## Contributing factors\n");
    let _ = writeln!(
        w,
        "_To fill in together. Describe conditions and systems, not people; several factors usually \
         combine._\n\n\
         - What made this possible? Which conditions, changes or dependencies lined up?\n\
         - What would have helped us notice sooner?\n\
         - What made the response easier or harder (tools, access, information, alerts)?\n\
         - Which safeguards worked, and which did not fire?\n"
    );
    let _ = writeln!(w, "## Follow-ups\n");
    if !d.follow_ups.is_empty() {
        let today = generated_at.date();
        for f in &d.follow_ups {
            let status = FollowUpStatus::parse(&f.status).unwrap_or(FollowUpStatus::Open);
            let late = if is_overdue(status, &f.due_on, today) {
                ", overdue"
            } else {
                ""
            };
            let jira = match (&f.jira_key, f.jira_url.as_deref().filter(|u| link_ok(u))) {
                (Some(k), Some(u)) => format!(" Jira: {}.", link(k, u)),
                (Some(k), None) => format!(" Jira: {}.", inline(k)),
                _ => String::new(),
            };
            let _ = writeln!(
                w,
                "- [{}] {} Owner: {}. Due {} ({}{late}).{jira}",
                if status == FollowUpStatus::Done { "x" } else { " " },
                inline(&f.title),
                inline(&f.owner_name),
                inline(&f.due_on),
                status.label().to_lowercase(),
            );
        }
        let _ = writeln!(
            w,
            "\n_Add any others the review turns up, each with an owner and a ticket._\n"
        );
    } else {
        let _ = writeln!(
            w,
            "_To fill in together: actions that make the system safer, each with an owner and a ticket._\n\n\
         - [ ] What change would stop this from happening again, or limit its impact?\n\
         - [ ] What would help us detect it sooner next time?\n\
         - [ ] What would make mitigation faster (runbooks, tooling, access)?\n\
         - [ ] What should we share with other teams?\n"
        );
    }

    // Integrations.
    let _ = writeln!(w, "## Integrations\n");
    let mut any = false;
    let find = |integration: &str, name: &str| {
        d.external
            .iter()
            .find(|r| r.integration == integration && r.name == name)
    };
    if let Some(channel) = find("slack", "channel") {
        let name = find("slack", "channel_name")
            .map(|r| format!("#{}", r.value))
            .unwrap_or_else(|| channel.value.clone());
        let _ = match channel.url.as_deref().filter(|u| link_ok(u)) {
            Some(u) => writeln!(w, "- Slack channel: {}", link(&name, u)),
            None => writeln!(w, "- Slack channel: {}", inline(&name)),
        };
        any = true;
    }
    if let Some(issue) = find("jira", "issue") {
        let _ = match issue.url.as_deref().filter(|u| link_ok(u)) {
            Some(u) => writeln!(w, "- Jira ticket: {}", link(&issue.value, u)),
            None => writeln!(w, "- Jira ticket: {}", inline(&issue.value)),
        };
        any = true;
    }
    let mut notifiers: Vec<&str> = Vec::new();
    for o in &d.deliveries {
        if !notifiers.contains(&o.notifier.as_str()) {
            notifiers.push(&o.notifier);
        }
    }
    for n in notifiers {
        let rows: Vec<_> = d.deliveries.iter().filter(|o| o.notifier == n).collect();
        let done = rows.iter().filter(|o| o.state == "done").count();
        let failed = rows.iter().filter(|o| o.state == "dead").count();
        let waiting = rows.len() - done - failed;
        let kind = match n {
            "pagerduty" | "opsgenie" => " (pages)",
            _ => "",
        };
        let mut line = format!("- {}{kind}: {done} of {} sent", inline(n), rows.len());
        if failed > 0 {
            let _ = write!(line, ", {failed} failed");
        }
        if waiting > 0 {
            let _ = write!(line, ", {waiting} waiting");
        }
        let targets: Vec<String> = {
            let mut t: Vec<&str> = rows.iter().filter_map(|o| o.target.as_deref()).collect();
            t.dedup();
            t.into_iter().map(inline).collect()
        };
        if !targets.is_empty() {
            let _ = write!(line, "; to {}", targets.join(", "));
        }
        let events: Vec<String> = rows.iter().map(|o| o.event.replace('_', " ")).collect();
        let _ = write!(line, " ({})", inline(&events.join(", ")));
        let links: Vec<String> = rows
            .iter()
            .filter_map(|o| {
                let u = o.external_url.as_deref().filter(|u| link_ok(u))?;
                Some(link(o.external_id.as_deref().unwrap_or("link"), u))
            })
            .collect();
        if !links.is_empty() {
            let _ = write!(line, "; {}", links.join(", "));
        }
        let _ = writeln!(w, "{line}");
        any = true;
    }
    if !any {
        let _ = writeln!(w, "Nothing was sent to other systems for this incident.");
    }
    md
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::db::models::{ExternalRefRow, IncidentRow};

    fn t(hm: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(&format!("2026-11-21 {hm}:00"), "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn entry(id: i64, hm: &str, who: &str, kind: &str) -> TimelineEntryRow {
        TimelineEntryRow {
            id,
            incident_id: 1,
            at: t(hm),
            actor_name: who.into(),
            actor_email: format!("{}@example.com", who.to_lowercase().replace(' ', ".")),
            kind: kind.into(),
            field: None,
            old_value: None,
            new_value: None,
            body: None,
        }
    }

    fn detail() -> IncidentDetail {
        let row = IncidentRow {
            id: 1,
            number: 42,
            title: "Checkout errors".into(),
            severity: "SEV2".into(),
            status: "resolved".into(),
            summary: "Card payments failed for some customers.".into(),
            declared_by_name: "Grace Hopper".into(),
            declared_by_email: "grace@example.com".into(),
            lead_name: Some("Ada Lovelace".into()),
            lead_email: Some("ada@example.com".into()),
            drill: false,
            impact_started_at: Some(t("14:00")),
            declared_at: t("14:20"),
            mitigated_at: Some(t("15:05")),
            resolved_at: Some(t("17:30")),
            updated_at: t("17:30"),
            detected_at: Some(t("14:12")),
            mustered_at: Some(t("14:23")),
            closed_reason: None,
            merged_into_number: None,
        };
        let mut declared = entry(1, "14:20", "Grace Hopper", "declared");
        declared.new_value = Some("SEV2 · investigating".into());
        let mut took = entry(2, "14:20", "Grace Hopper", "lead_changed");
        took.new_value = Some("Grace Hopper".into());
        let mut handed = entry(3, "14:23", "Ada Lovelace", "lead_changed");
        handed.old_value = Some("Grace Hopper".into());
        handed.new_value = Some("Ada Lovelace".into());
        let mut note = entry(4, "14:40", "Ada Lovelace", "note");
        note.body = Some("# Rolled back\n| a | b |\n|---|---|\n```\ncode\n```\n1. first\n---".into());
        let mut comms = entry(7, "14:30", "Grace Hopper", "role_changed");
        comms.field = Some("comms".into());
        comms.new_value = Some("Grace Hopper".into());
        let mut comms_handed = entry(8, "15:00", "Grace Hopper", "role_changed");
        comms_handed.field = Some("comms".into());
        comms_handed.old_value = Some("Grace Hopper".into());
        comms_handed.new_value = Some("Lin Wu".into());
        let mut mitigated = entry(5, "15:05", "Ada Lovelace", "status_changed");
        mitigated.old_value = Some("investigating".into());
        mitigated.new_value = Some("mitigated".into());
        let mut resolved = entry(6, "17:30", "Ada Lovelace", "status_changed");
        resolved.old_value = Some("mitigated".into());
        resolved.new_value = Some("resolved".into());
        IncidentDetail {
            alerts: vec![],
            follow_ups: vec![],
            row,
            services: vec!["checkout".into()],
            timeline: vec![declared, took, handed, note, comms, comms_handed, mitigated, resolved],
            deliveries: vec![],
            merged_from: vec![],
            external: vec![ExternalRefRow {
                incident_id: 1,
                integration: "jira".into(),
                name: "issue".into(),
                value: "OPS-7".into(),
                url: Some("https://jira.example.com/browse/OPS-7".into()),
                updated_at: t("14:21"),
            }],
            people: vec![],
            viewer_time_zone: None,
            updates: vec![crate::db::models::StatusUpdateRow {
                id: 1,
                incident_id: 1,
                timeline_entry_id: 7,
                at: t("14:45"),
                author_name: "Ada Lovelace".into(),
                author_email: "ada@example.com".into(),
                known: "Card payments fail for about 20% of customers.".into(),
                doing: "Rolling back the 14:00 deploy.".into(),
                next_update_at: Some(t("15:15")),
            }],
            roles: vec![],
        }
    }

    fn draft() -> String {
        render(
            &detail(),
            "Europe/Paris".parse().unwrap(),
            &Settings::default(),
            t("18:00"),
        )
    }

    #[test]
    fn sections_come_in_order() {
        let md = draft();
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(
            headings,
            [
                "# INC-42 postmortem: Checkout errors",
                "## Summary",
                "## Impact",
                "## Key times",
                "## Durations",
                "## Roles",
                "## Timeline",
                "## Status updates",
                "### 2026-11-21 15:45 CET, Ada Lovelace",
                "## Contributing factors",
                "## Follow-ups",
                "## Integrations",
            ]
        );
        assert!(md.contains("| Impact started | 2026-11-21 15:00 CET |"), "{md}");
        assert!(md.contains("| Time to resolve | 3h 30m |"), "{md}");
        assert!(md.contains("- **Impact window:** 2026-11-21 15:00 CET to 2026-11-21 16:05 CET (1h 5m)"));
        assert!(md.contains("- Grace Hopper led the response from 2026-11-21 15:20 CET to 2026-11-21 15:23 CET."));
        assert!(md.contains(
            "- Ada Lovelace led the response from 2026-11-21 15:23 CET to 2026-11-21 18:30 CET (resolution)."
        ));
        assert!(md.contains("- Jira ticket: [OPS-7](<https://jira.example.com/browse/OPS-7>)"));
        assert!(
            md.contains(
                "### 2026-11-21 15:45 CET, Ada Lovelace\n\n**What we know**\n\n> Card payments fail for about 20% of customers.\n\n**What we are doing**\n\n> Rolling back the 14:00 deploy.\n\nNext update promised by 2026-11-21 16:15 CET.\n"
            ),
            "{md}"
        );
        // Every configured role, with who held it when, from its role_changed entries.
        assert!(
            md.contains("- Grace Hopper was comms lead from 2026-11-21 15:30 CET to 2026-11-21 16:00 CET.\n"),
            "{md}"
        );
        assert!(
            md.contains("- Lin Wu was comms lead from 2026-11-21 16:00 CET to 2026-11-21 18:30 CET (resolution).\n")
        );
        assert!(md.contains("- No scribe was recorded.\n"));
        assert!(!md.contains("Also on the timeline"), "every actor held a role: {md}");
        assert!(md.contains("- **2026-11-21 15:30 CET**: Grace Hopper took the comms lead role.\n"));
        assert!(md.contains(
            "- **2026-11-21 16:00 CET**: Grace Hopper handed the comms lead role from Grace Hopper to Lin Wu.\n"
        ));
    }

    #[test]
    fn people_text_cannot_add_structure() {
        let md = draft();
        assert!(md.contains("  > \\# Rolled back\n"), "{md}");
        assert!(md.contains("  > \\| a \\| b \\|\n"));
        assert!(md.contains("  > \\`\\`\\`\n"));
        assert!(md.contains("  > 1\\. first\n"));
        assert!(md.contains("  > \\---\n"));
        // Rendered, the note is one blockquote paragraph: no heading, table, code or list in it.
        let html = crate::web::markdown::render(&md);
        assert!(!html.contains("<h1>Rolled"), "{html}");
        assert_eq!(html.matches("<table>").count(), 2, "only key times and durations");
        assert!(!html.contains("<pre>") && !html.contains("<ol>") && !html.contains("<hr"));
    }

    #[test]
    fn recorded_follow_ups_replace_the_prompts() {
        let mut d = detail();
        let fu = |id: i64, title: &str, status: &str, due: &str| crate::db::models::FollowUpRow {
            id,
            incident_id: 1,
            title: title.into(),
            owner_name: "Ada Lovelace".into(),
            owner_email: Some("ada@example.com".into()),
            due_on: due.into(),
            status: status.into(),
            jira_key: None,
            jira_url: None,
            jira_status: None,
            created_by_name: "Ada Lovelace".into(),
            created_by_email: "ada@example.com".into(),
            created_at: t("17:00"),
            updated_at: t("17:00"),
            closed_at: None,
        };
        let mut canary = fu(1, "Add a canary | step", "open", "2026-11-20");
        canary.jira_key = Some("OPS-8".into());
        canary.jira_url = Some("https://jira.example.com/browse/OPS-8".into());
        d.follow_ups = vec![
            canary,
            fu(2, "# Alert on declines", "done", "2026-12-01"),
            fu(3, "Rewrite checkout", "wont_do", "2026-12-24"),
        ];
        let md = render(&d, Tz::UTC, &Settings::default(), t("18:00"));
        let section = md
            .split("## Follow-ups\n")
            .nth(1)
            .unwrap()
            .split("## Integrations")
            .next()
            .unwrap();
        assert!(section.contains(
            "- [ ] Add a canary \\| step Owner: Ada Lovelace. Due 2026-11-20 (open, overdue). Jira: [OPS-8](<https://jira.example.com/browse/OPS-8>).\n"
        ), "{section}");
        assert!(
            section.contains("- [x] \\# Alert on declines Owner: Ada Lovelace. Due 2026-12-01 (done).\n"),
            "{section}"
        );
        assert!(
            section.contains("- [ ] Rewrite checkout Owner: Ada Lovelace. Due 2026-12-24 (won't do).\n"),
            "{section}"
        );
        assert!(
            !section.contains("What change would stop this"),
            "the prompts give way to the record"
        );
        // Without any, the prompts stay.
        assert!(draft().contains("- [ ] What change would stop this from happening again"));
    }

    #[test]
    fn the_wording_is_blameless() {
        let mut d = detail();
        let md = render(&d, Tz::UTC, &Settings::default(), t("18:00")).to_lowercase();
        // An incident with little recorded: the prompts and placeholders show.
        d.row.summary.clear();
        d.timeline.clear();
        d.external.clear();
        d.updates.clear();
        let sparse = render(&d, Tz::UTC, &Settings::default(), t("18:00")).to_lowercase();
        assert!(sparse.contains("no status updates were posted"));
        assert!(sparse.contains("nothing was sent to other systems"));
        for text in [&md, &sparse] {
            assert!(text.contains("what made this possible?"));
            assert!(text.contains("what would have helped us notice sooner?"));
            for word in [
                "fault",
                "blame",
                "caused by",
                "mistake",
                "human error",
                "who caused",
                "negligen",
                "careless",
                "should have",
                "failed to",
            ] {
                assert!(!text.contains(word), "{word:?} in:\n{text}");
            }
        }
    }
}
