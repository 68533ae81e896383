//! Email over SMTP with lettre: text and HTML bodies rendered from askama templates in
//! `templates/email/`, recipients chosen by routing and carried in the payload.
//!
//! Each message's `Message-ID` is derived from the delivery's idempotency key, so a message that
//! is sent again after a crash (the SMTP server accepted it but we died before recording that)
//! carries the same id and mail systems can recognise the repeat.

use std::time::Duration;

use askama::Template;
use futures_util::future::BoxFuture;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Delivered, Delivery, EventPayload, Notifier, NotifyError, UpdateNote};
use crate::config::{EmailSettings, SmtpTls};
use crate::domain::EventKind;

/// Sends incident email through one SMTP server.
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
}

impl EmailNotifier {
    /// Builds the transport; the password is read from the environment variable the config names.
    /// `password` is the value of `password_env`, read by the caller.
    pub fn new(settings: &EmailSettings, password: Option<String>, timeout_ms: u64) -> anyhow::Result<Self> {
        let host = settings.host.as_str();
        let builder = match settings.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
        };
        // Leave headroom inside the worker's own limit so SMTP reports its own timeout.
        let mut builder = builder.port(settings.port()).timeout(Some(Duration::from_millis(
            (timeout_ms.saturating_mul(9) / 10).max(100),
        )));
        if let Some(user) = &settings.username {
            let password = password.unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            from: settings
                .from
                .parse()
                .map_err(|e| anyhow::anyhow!("integrations.email.from: {e}"))?,
            host: format!("{}:{}", settings.host, settings.port()),
        })
    }
}

/// Plain-text body.
#[derive(Template)]
#[template(path = "email/incident.txt")]
struct TextBody<'a> {
    p: &'a EventPayload,
    headline: String,
    update: Option<&'a UpdateNote>,
}

/// HTML body.
#[derive(Template)]
#[template(path = "email/incident.html")]
struct HtmlBody<'a> {
    p: &'a EventPayload,
    headline: String,
    summary_html: String,
    update: Option<&'a UpdateNote>,
}

/// The status update an email is about, with its next-update time in words.
fn update_of(p: &EventPayload) -> Option<&UpdateNote> {
    p.incident
        .latest_update
        .as_ref()
        .filter(|_| p.event == EventKind::StatusUpdate)
}

/// The subject line, e.g. `[SEV1] INC-42 declared: Checkout errors`.
pub fn subject(p: &EventPayload) -> String {
    let drill = if p.incident.drill { "[DRILL] " } else { "" };
    format!(
        "{drill}[{}] {} {}: {}",
        p.incident.severity,
        p.incident.reference(),
        verb(p),
        p.incident.title
    )
}

fn verb(p: &EventPayload) -> String {
    match p.event {
        EventKind::Declared => "declared".into(),
        EventKind::StatusChanged => match p.incident.status.as_str() {
            "resolved" => "resolved".into(),
            "declined" => "declined (not an incident)".into(),
            "merged" => match &p.incident.merged_into {
                Some(m) => format!("merged into {}", m.reference()),
                None => "merged".into(),
            },
            s => format!("is now {s}"),
        },
        EventKind::SeverityChanged => "severity changed".into(),
        EventKind::LeadChanged => "has a new lead".into(),
        EventKind::NoteAdded => "note".into(),
        EventKind::StatusUpdate => "status update".into(),
        EventKind::Nudge => "reminder".into(),
        EventKind::FollowUpAdded => "follow-up added".into(),
        EventKind::RoleChanged => match &p.role {
            Some(r) if r.holder.is_some() => format!("has a new {}", crate::config::roles::in_sentence(&r.name)),
            Some(r) => format!("has no {}", crate::config::roles::in_sentence(&r.name)),
            None => "role changed".into(),
        },
    }
}

fn headline(p: &EventPayload) -> String {
    let who = &p.actor.name;
    match (&p.event, &p.change) {
        (EventKind::Declared, _) => format!("{who} declared {}.", p.incident.reference()),
        (EventKind::NoteAdded, _) => format!("{who} added a note."),
        (EventKind::StatusUpdate, _) => format!("{who} posted a status update on {}.", p.incident.reference()),
        (EventKind::Nudge, _) => p
            .note
            .clone()
            .unwrap_or_else(|| format!("{} needs attention.", p.incident.reference())),
        (EventKind::RoleChanged, change) if let Some(r) = &p.role => {
            format!("{} {}", r.sentence(change.as_ref(), &p.actor), r.description)
        }
        (_, Some(c)) => format!(
            "{who} changed the {} from {} to {}.",
            c.field,
            c.old.as_deref().unwrap_or("none"),
            c.new.as_deref().unwrap_or("none")
        ),
        _ => format!("{who} updated {}.", p.incident.reference()),
    }
}

fn message_id(key: &str) -> String {
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("<{safe}@redbutton>")
}

/// Builds the full message for a delivery (public for tests and previews).
pub fn build_message(from: &Mailbox, delivery: &Delivery) -> Result<Message, NotifyError> {
    let p = &delivery.payload;
    if p.email_to.is_empty() {
        return Err(NotifyError::Permanent("no recipients".into()));
    }
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject(p))
        .message_id(Some(message_id(&delivery.idempotency_key)))
        .date(p.at.and_utc().into());
    for to in &p.email_to {
        let mailbox: Mailbox = to
            .parse()
            .map_err(|e| NotifyError::Permanent(format!("bad recipient {to}: {e}")))?;
        builder = builder.to(mailbox);
    }
    let headline = headline(p);
    let text = TextBody {
        p,
        headline: headline.clone(),
        update: update_of(p),
    }
    .render()
    .map_err(|e| NotifyError::Permanent(format!("text template: {e}")))?;
    let html = HtmlBody {
        p,
        headline,
        summary_html: crate::web::markdown::render(&p.incident.summary),
        update: update_of(p),
    }
    .render()
    .map_err(|e| NotifyError::Permanent(format!("html template: {e}")))?;
    builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| NotifyError::Permanent(format!("building the message: {e}")))
}

impl Notifier for EmailNotifier {
    fn name(&self) -> &str {
        "email"
    }

    fn probe(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            match self.transport.test_connection().await {
                Ok(true) => Ok(format!("SMTP server {} accepted the connection", self.host)),
                Ok(false) => Err(format!("SMTP server {} did not answer the handshake", self.host)),
                Err(e) => Err(format!("SMTP server {}: {e}", self.host)),
            }
        })
    }

    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(async move {
            let message = build_message(&self.from, delivery)?;
            let id = message.headers().get_raw("Message-ID").map(|v| v.trim().to_string());
            match self.transport.send(message).await {
                Ok(_) => Ok(Delivered {
                    external_id: id,
                    external_url: None,
                }),
                Err(e) if e.is_permanent() => Err(NotifyError::Permanent(format!(
                    "SMTP {} refused the message: {e}",
                    self.host
                ))),
                Err(e) => Err(NotifyError::Retryable(format!("SMTP {}: {e}", self.host))),
            }
        })
    }
}
