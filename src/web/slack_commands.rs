//! The `/incident` Slack slash command at `POST /slack/commands`.
//!
//! Slack signs the request (`auth::slack_signature`); nothing is read from it before the
//! signature over the raw body is checked, and a signed request is acted on once (its signature
//! is recorded in `slack_requests_seen`). The command then runs the same use case as the page
//! (declare, change_status, change_lead, post_update), which writes the incident, its timeline
//! and its outbox rows in one transaction; every Slack post (the channel, the summary, the
//! announcement) goes through the outbox as usual. The answer is an ephemeral message, shown only
//! to the person who typed the command.

use std::sync::{Arc, RwLock};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::Role;
use crate::auth::slack_signature::{self, WINDOW_SECONDS};
use crate::db::DbError;
use crate::db::models::{external_ref, incident, slack_request, user};
use crate::domain::declaration::now_utc;
use crate::domain::update::{NEXT_UPDATE_CHOICES, UpdateInput};
use crate::domain::{Actor, DeclarationInput, Status};
use crate::notifiers::slack::{NAME as SLACK, escape};
use crate::notifiers::slack_users::SlackDirectory;
use crate::services::{ServiceError, declare, lifecycle};
use crate::state::AppState;
use crate::web::form::FormData;

/// What the clock says, in Unix seconds. Replaceable so tests can stand at any moment.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The slash command's configuration: the signing secret, the member lookup, the clock.
pub struct SlackCommands {
    secret: Vec<u8>,
    directory: SlackDirectory,
    default_severity: String,
    clock: RwLock<Clock>,
}

impl std::fmt::Debug for SlackCommands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("SlackCommands").finish_non_exhaustive()
    }
}

impl SlackCommands {
    /// Built when `[integrations.slack]` names a `signing_secret_env`; `None` otherwise.
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<Option<Self>> {
        let Some(slack) = &settings.integrations.slack else {
            return Ok(None);
        };
        let Some(var) = &slack.signing_secret_env else {
            return Ok(None);
        };
        let secret = crate::notifiers::common::secret(settings, var)?;
        Ok(Some(Self {
            secret: secret.into_bytes(),
            directory: SlackDirectory::new(slack, settings)?,
            default_severity: slack.command_severity.clone().unwrap_or_default(),
            clock: RwLock::new(Arc::new(|| chrono::Utc::now().timestamp())),
        }))
    }

    /// Replaces the clock (tests).
    pub fn set_clock(&self, clock: Clock) {
        if let Ok(mut c) = self.clock.write() {
            *c = clock;
        }
    }

    fn now(&self) -> i64 {
        self.clock
            .read()
            .map(|c| c())
            .unwrap_or_else(|_| chrono::Utc::now().timestamp())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the command text (pure).

/// What the text after `/incident` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Empty text or `help`.
    Help,
    /// `[declare] [severity] <title>`.
    Declare {
        /// A configured severity id, when the text starts with one.
        severity: Option<String>,
        /// The rest.
        title: String,
    },
    /// `status <status>`.
    Status(String),
    /// `lead @someone`: the member id.
    Lead(String),
    /// `update <what we know> [| <what we are doing>]`.
    Update(String),
}

/// The usage text.
pub fn usage(severities: &[&str]) -> String {
    format!(
        "*/incident* declares and works incidents from Slack:\n\
         \u{2022} `/incident <title>` declares an incident; start with a severity ({}) to set it, e.g. `/incident {} checkout errors` (`/incident declare <title>` when the title starts with a command word)\n\
         \u{2022} `/incident status <investigating|identified|mitigated|resolved>` moves the status (in the incident's channel)\n\
         \u{2022} `/incident lead @someone` hands the lead over (in the incident's channel)\n\
         \u{2022} `/incident update <what we know> | <what we are doing>` posts a status update (in the incident's channel)\n\
         \u{2022} `/incident help` shows this",
        severities.join(", "),
        severities
            .first()
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_else(|| "sev1".into()),
    )
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text, ""),
    }
}

/// A member mention as Slack sends it: `<@U123|name>` or `<@U123>`.
pub fn mention(raw: &str) -> Option<String> {
    let inner = raw.trim().strip_prefix("<@")?.strip_suffix('>')?;
    let id = inner.split('|').next()?;
    let ok = (2..=20).contains(&id.len())
        && (id.starts_with('U') || id.starts_with('W'))
        && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    ok.then(|| id.to_string())
}

/// Reads the text. Errors are the reply to show.
pub fn parse(text: &str, severities: &[&str]) -> Result<Command, String> {
    let (word, rest) = split_word(text);
    match word.to_ascii_lowercase().as_str() {
        "" | "help" => Ok(Command::Help),
        "status" => match split_word(rest) {
            ("", _) => Err("Say which status, e.g. `/incident status mitigated`.".into()),
            (s, "") => Ok(Command::Status(s.to_ascii_lowercase())),
            _ => Err("Give one status word, e.g. `/incident status mitigated`.".into()),
        },
        "lead" => mention(rest)
            .map(Command::Lead)
            .ok_or_else(|| "Mention the new lead, e.g. `/incident lead @ada`.".to_string()),
        "update" if rest.is_empty() => {
            Err("Say what we know, e.g. `/incident update Errors are back to normal | Watching for an hour`.".into())
        }
        "update" => Ok(Command::Update(rest.to_string())),
        "declare" if rest.is_empty() => {
            Err("Give the incident a title, e.g. `/incident declare checkout errors`.".into())
        }
        "declare" => Ok(declaration(rest, severities)),
        _ => Ok(declaration(text.trim(), severities)),
    }
}

fn declaration(text: &str, severities: &[&str]) -> Command {
    let (first, rest) = split_word(text);
    match severities.iter().find(|s| s.eq_ignore_ascii_case(first)) {
        Some(sev) if !rest.is_empty() => Command::Declare {
            severity: Some((*sev).to_string()),
            title: rest.to_string(),
        },
        _ => Command::Declare {
            severity: None,
            title: text.to_string(),
        },
    }
}

/// The next-update choice closest above a cadence (`none` when there is no cadence).
fn next_update_choice(cadence: Option<u32>) -> String {
    match cadence {
        None => "none".into(),
        Some(m) => NEXT_UPDATE_CHOICES
            .iter()
            .copied()
            .find(|c| *c >= m)
            .unwrap_or(NEXT_UPDATE_CHOICES[NEXT_UPDATE_CHOICES.len() - 1])
            .to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The endpoint.

fn ephemeral(text: impl Into<String>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .json(json!({"response_type": "ephemeral", "text": text.into()}))
}

fn refuse(status: StatusCode, why: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(why.to_string())
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `POST /slack/commands`.
pub async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let Some(commands) = state.slack_commands.clone() else {
        return crate::web::error_page(
            StatusCode::NOT_FOUND,
            "The Slack command is not set up here: name the signing secret's environment variable in \
             [integrations.slack] signing_secret_env.",
        );
    };
    let now = commands.now();
    let signature = header(&req, "x-slack-signature");
    let ts = match slack_signature::verify(
        &commands.secret,
        header(&req, "x-slack-request-timestamp"),
        signature,
        &body,
        now,
    ) {
        Ok(ts) => ts,
        Err(why) => {
            tracing::warn!(reason = %why, "Slack command refused");
            return refuse(StatusCode::UNAUTHORIZED, &why.to_string());
        }
    };
    let signature = signature.unwrap_or_default().to_ascii_lowercase();
    let form = match FormData::parse(&req, &body) {
        Ok(f) => f,
        Err(e) => return refuse(e.status, e.message),
    };
    let sig = signature.clone();
    let fresh = state
        .db
        .write(move |conn| {
            slack_request::record_once(conn, &sig, ts, now - WINDOW_SECONDS, now_utc()).map_err(DbError::from)
        })
        .await;
    match fresh {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("Slack command refused: a replay of a request already handled");
            return refuse(StatusCode::UNAUTHORIZED, "this signed request was already handled");
        }
        Err(e) => {
            tracing::error!(error.message = %e, "recording a Slack request failed");
            return ephemeral("The database is not answering; nothing was done. Try again in a moment.");
        }
    }
    let text = run(&state, &commands, &form, &signature).await;
    ephemeral(text)
}

/// Who typed the command, as a person the use cases know, and what they may do.
async fn person(
    state: &AppState,
    commands: &SlackCommands,
    slack_id: &str,
    handle: &str,
) -> Result<(Actor, Role), String> {
    let id = slack_id.to_string();
    let known = state
        .db
        .run(move |conn| {
            use crate::db::schema::users;
            use diesel::prelude::*;
            users::table
                .filter(users::slack_user_id.eq(&id))
                .select(user::UserRow::as_select())
                .first(conn)
                .optional()
        })
        .await
        .map_err(|e| {
            tracing::error!(error.message = %e, "reading users failed");
            "The database is not answering; nothing was done. Try again in a moment.".to_string()
        })?;
    if let Some(row) = known {
        let role = Role::parse(&row.role).unwrap_or(Role::Viewer);
        return Ok((
            Actor {
                name: row.name,
                email: row.email,
            },
            role,
        ));
    }
    let found = commands.directory.user(slack_id).await.map_err(|why| {
        tracing::warn!(reason = %why, "Slack users.info failed");
        format!(
            "Big Red Button could not look up <@{slack_id}> in Slack ({}). Nothing was done; use {} instead.",
            escape(&why),
            state.base_url
        )
    })?;
    let Some(email) = found.email else {
        return Err(format!(
            "Slack did not share <@{slack_id}>'s email address (the app needs the users:read.email scope), so Big Red Button cannot tell who this is. Nothing was done; use {} instead.",
            state.base_url
        ));
    };
    let e = email.clone();
    let row = state
        .db
        .run(move |conn| user::find_by_email(conn, &e))
        .await
        .map_err(|_| "The database is not answering; nothing was done. Try again in a moment.".to_string())?;
    let name = found
        .name
        .or_else(|| row.as_ref().map(|r| r.name.clone()))
        .unwrap_or_else(|| handle.to_string());
    let role = match &row {
        Some(r) => Role::parse(&r.role).unwrap_or(Role::Viewer),
        None => crate::auth::role_for(&state.settings.auth, &email, &[]),
    };
    Ok((Actor { name, email }, role))
}

fn explain(e: ServiceError) -> String {
    match e {
        ServiceError::Invalid(fields) => fields.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join(" "),
        ServiceError::Conflict(m) => m,
        ServiceError::NotFound => "That incident no longer exists.".into(),
        ServiceError::Db(DbError::Busy) => "The database is busy; nothing was saved. Try again in a moment.".into(),
        other => {
            tracing::error!(error.message = %other, "Slack command failed");
            "Something went wrong and nothing was saved. Try again, or use the incident page.".into()
        }
    }
}

/// The incident whose channel this is: (number, status, lead email).
async fn channel_incident(state: &AppState, channel: &str) -> Result<(i64, String, Option<String>), String> {
    let c = channel.to_string();
    let found = state
        .db
        .run(move |conn| {
            let Some(id) = external_ref::incident_with(conn, SLACK, "channel", &c)? else {
                return Ok(None);
            };
            use crate::db::schema::incidents;
            use diesel::prelude::*;
            incidents::table
                .find(id)
                .select((incidents::number, incidents::status, incidents::lead_email))
                .first::<(i64, String, Option<String>)>(conn)
                .optional()
        })
        .await
        .map_err(|_| "The database is not answering; nothing was done. Try again in a moment.".to_string())?;
    found.ok_or_else(|| {
        "This channel is not an incident channel, so nothing was changed. Run the command in the incident's own channel (declare with `/incident <title>` anywhere).".to_string()
    })
}

async fn run(state: &AppState, commands: &SlackCommands, form: &FormData, signature: &str) -> String {
    let severities = state.settings.severity_ids();
    let command = match parse(form.get("text"), &severities) {
        Ok(c) => c,
        Err(why) => return why,
    };
    if command == Command::Help {
        return usage(&severities);
    }
    let (actor, role) = match person(state, commands, form.get("user_id"), form.get("user_name")).await {
        Ok(p) => p,
        Err(why) => return why,
    };
    if role == Role::Viewer {
        return format!(
            "You can read incidents but not change them ({} is a viewer in Big Red Button). Nothing was done.",
            escape(&actor.email)
        );
    }
    match command {
        Command::Help => usage(&severities),
        Command::Declare { severity, title } => {
            let severity = severity.unwrap_or_else(|| commands.default_severity.clone());
            let input = DeclarationInput {
                title: title.clone(),
                severity,
                ..Default::default()
            };
            // The signature is unique per request; as the declaration's idempotency key it makes
            // a repeat of this request return the same incident.
            let key = format!("slack-{}", &hex::encode(Sha256::digest(signature.as_bytes()))[..40]);
            match declare::declare(state, actor, input, Some(key)).await {
                Ok(d) => {
                    let row = state
                        .db
                        .run(move |conn| incident::find_by_number(conn, d.number))
                        .await
                        .ok()
                        .flatten();
                    let (title, severity) = row.map(|r| (r.title, r.severity)).unwrap_or((title, String::new()));
                    format!(
                        "Declared <{}|INC-{}: {}> ({}). Its Slack channel is on its way.",
                        state.incident_url(d.number),
                        d.number,
                        escape(&title),
                        escape(&severity)
                    )
                }
                Err(e) => format!("Not declared: {}", explain(e)),
            }
        }
        Command::Status(word) => {
            let Some(to) = Status::parse(&word) else {
                let plain: Vec<&str> = Status::ALL
                    .iter()
                    .filter(|s| s.is_plain_target())
                    .map(|s| s.as_str())
                    .collect();
                return format!(
                    "\u{201c}{}\u{201d} is not a status; use one of {}. Nothing was changed.",
                    escape(&word),
                    plain.join(", ")
                );
            };
            let (number, status, _) = match channel_incident(state, form.get("channel_id")).await {
                Ok(i) => i,
                Err(why) => return why,
            };
            match lifecycle::change_status(state, number, actor, to.as_str(), &status).await {
                Ok(()) => format!("INC-{number} is now {}.", to.label()),
                Err(e) => format!("INC-{number} was not changed: {}", explain(e)),
            }
        }
        Command::Lead(slack_id) => {
            let (number, _, lead_email) = match channel_incident(state, form.get("channel_id")).await {
                Ok(i) => i,
                Err(why) => return why,
            };
            let (lead, lead_role) = match person(state, commands, &slack_id, "").await {
                Ok(p) => p,
                Err(why) => return why,
            };
            if lead_role == Role::Viewer {
                return format!(
                    "{} is a viewer in Big Red Button and cannot lead an incident. Nothing was changed.",
                    escape(&lead.name)
                );
            }
            let name = lead.name.clone();
            match lifecycle::change_lead(state, number, actor, Some(lead), lead_email.as_deref().unwrap_or("")).await {
                Ok(()) => format!("{} now leads INC-{number}.", escape(&name)),
                Err(e) => format!("INC-{number} was not changed: {}", explain(e)),
            }
        }
        Command::Update(text) => {
            let (number, _, _) = match channel_incident(state, form.get("channel_id")).await {
                Ok(i) => i,
                Err(why) => return why,
            };
            let (known, doing) = match text.split_once('|') {
                Some((k, d)) => (k.trim().to_string(), d.trim().to_string()),
                None => (text.clone(), "Working on it; follow the incident channel.".to_string()),
            };
            let severity = state
                .db
                .run(move |conn| incident::find_by_number(conn, number))
                .await
                .ok()
                .flatten()
                .map(|r| r.severity)
                .unwrap_or_default();
            let next = next_update_choice(state.settings.cadence(&severity).update_minutes);
            let input = match UpdateInput::parse(&known, &doing, &next) {
                Ok(i) => i,
                Err(fields) => return format!("No update posted: {}", explain(ServiceError::Invalid(fields))),
            };
            match lifecycle::post_update(state, number, actor, input).await {
                Ok(()) => format!("Status update posted on INC-{number}."),
                Err(e) => format!("No update posted on INC-{number}: {}", explain(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEVS: &[&str] = &["SEV0", "SEV1", "SEV2"];

    #[test]
    fn the_text_is_read_into_a_command() {
        assert_eq!(parse("", SEVS), Ok(Command::Help));
        assert_eq!(parse("  HELP ", SEVS), Ok(Command::Help));
        assert_eq!(
            parse("sev1 checkout errors", SEVS),
            Ok(Command::Declare {
                severity: Some("SEV1".into()),
                title: "checkout errors".into()
            })
        );
        assert_eq!(
            parse("checkout errors", SEVS),
            Ok(Command::Declare {
                severity: None,
                title: "checkout errors".into()
            })
        );
        assert_eq!(
            parse("sev1", SEVS),
            Ok(Command::Declare {
                severity: None,
                title: "sev1".into()
            }),
            "a severity alone is a title"
        );
        assert_eq!(
            parse("declare status page down", SEVS),
            Ok(Command::Declare {
                severity: None,
                title: "status page down".into()
            })
        );
        assert_eq!(parse("status Mitigated", SEVS), Ok(Command::Status("mitigated".into())));
        assert!(parse("status", SEVS).is_err());
        assert!(parse("status page down", SEVS).is_err());
        assert_eq!(parse("lead <@U123ABC|ada>", SEVS), Ok(Command::Lead("U123ABC".into())));
        assert_eq!(parse("lead <@W0XYZ>", SEVS), Ok(Command::Lead("W0XYZ".into())));
        assert!(parse("lead ada", SEVS).is_err());
        assert!(parse("lead <@u12>", SEVS).is_err());
        assert!(parse("lead <!channel>", SEVS).is_err());
        assert_eq!(
            parse("update Back to normal | Watching", SEVS),
            Ok(Command::Update("Back to normal | Watching".into()))
        );
        assert!(parse("update", SEVS).is_err());
    }

    #[test]
    fn the_next_update_is_the_first_choice_at_or_after_the_cadence() {
        assert_eq!(next_update_choice(None), "none");
        assert_eq!(next_update_choice(Some(30)), "30");
        assert_eq!(next_update_choice(Some(45)), "60");
        assert_eq!(next_update_choice(Some(10_000)), "480");
    }
}
