//! Slack: an incident channel per incident, an announcement in a central channel kept current,
//! and a post for every change.

use serde::Deserialize;

use crate::config::{ConfigError, Settings, bad, check_env_name};

/// `[integrations.slack]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// Web API base.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Environment variable with the bot token (`xoxb-…`).
    pub token_env: String,
    /// Central incidents channel id (e.g. `C0123ABCD`) where every incident is announced.
    #[serde(default)]
    pub announce_channel: Option<String>,
    /// Create incident channels as private channels.
    #[serde(default)]
    pub private_channels: bool,
    /// Channel names are `<prefix>-<number>-<slug of title>`.
    #[serde(default = "default_prefix")]
    pub channel_prefix: String,
    /// Drills get `<drill_channel_prefix>-<number>-<slug>` channels instead.
    #[serde(default = "default_drill_prefix")]
    pub drill_channel_prefix: String,
    /// Where drills are announced; drills are not announced when unset.
    #[serde(default)]
    pub drill_announce_channel: Option<String>,
    /// Archive the incident channel this many minutes after it resolves; never when unset.
    #[serde(default)]
    pub archive_after_minutes: Option<u64>,
    /// Environment variable with the app's signing secret; turns on the `/incident` slash
    /// command at `POST /slack/commands` (off when unset).
    #[serde(default)]
    pub signing_secret_env: Option<String>,
    /// Severity of incidents declared with `/incident <title>` when the text names none; unknown
    /// when unset.
    #[serde(default)]
    pub command_severity: Option<String>,
}

fn default_base_url() -> String {
    "https://slack.com/api".into()
}
fn default_prefix() -> String {
    "inc".into()
}
fn default_drill_prefix() -> String {
    "drill".into()
}

fn check_channel_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = id.len() >= 9 && id.len() <= 24 && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok && (id.starts_with('C') || id.starts_with('G')) {
        Ok(())
    } else {
        Err(bad(
            key,
            format!(
                "\u{201c}{id}\u{201d} is not a channel id like C0123ABCD (open the channel details in Slack to copy it)"
            ),
        ))
    }
}

fn check_prefix(key: &str, p: &str) -> Result<(), ConfigError> {
    let ok = !p.is_empty()
        && p.len() <= 20
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(bad(key, "use up to 20 lowercase letters, digits, - or _"))
    }
}

impl SlackSettings {
    /// Checks the section.
    pub fn validate(&self, key: &str, settings: &Settings) -> Result<(), ConfigError> {
        super::common::base_url(&format!("{key}.base_url"), &self.base_url)?;
        check_env_name(&format!("{key}.token_env"), &self.token_env)?;
        if let Some(c) = &self.announce_channel {
            check_channel_id(&format!("{key}.announce_channel"), c)?;
        }
        if let Some(c) = &self.drill_announce_channel {
            check_channel_id(&format!("{key}.drill_announce_channel"), c)?;
        }
        check_prefix(&format!("{key}.channel_prefix"), &self.channel_prefix)?;
        check_prefix(&format!("{key}.drill_channel_prefix"), &self.drill_channel_prefix)?;
        if self.channel_prefix == self.drill_channel_prefix {
            return Err(bad(
                format!("{key}.drill_channel_prefix"),
                "must differ from channel_prefix, so drills never look like incidents",
            ));
        }
        if let Some(var) = &self.signing_secret_env {
            check_env_name(&format!("{key}.signing_secret_env"), var)?;
        }
        if let Some(sev) = &self.command_severity {
            super::common::check_severity(&format!("{key}.command_severity"), sev, settings)?;
        }
        Ok(())
    }

    /// The secrets it names.
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        let mut v = vec![("integrations.slack.token_env".to_string(), self.token_env.clone())];
        if let Some(var) = &self.signing_secret_env {
            v.push(("integrations.slack.signing_secret_env".to_string(), var.clone()));
        }
        v
    }
}

// ---------------------------------------------------------------------------------------------
// The notifier
// ---------------------------------------------------------------------------------------------

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::http::{self, SendError};
use super::{
    Delivered, Delivery, EventPayload, ExtraStep, IncidentSnapshot, Notifier, NotifyError, RefStore, UpdateNote,
};
use crate::domain::{EventKind, Status};

/// The name used in routing and on the incident page.
pub const NAME: &str = "slack";

/// Longest channel name Slack accepts.
pub const CHANNEL_NAME_MAX: usize = 80;

/// Builds an incident channel name: `<prefix>-<number>-<slug of title>`, lowercase letters,
/// digits and hyphens only, at most 80 characters, with `-<n>` appended for the n-th try when
/// the name is taken.
pub fn channel_name(prefix: &str, number: i64, title: &str, attempt: u32) -> String {
    let head = format!("{prefix}-{number}");
    let tail = if attempt > 1 {
        format!("-{attempt}")
    } else {
        String::new()
    };
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let room = CHANNEL_NAME_MAX.saturating_sub(head.len() + tail.len() + 1);
    let slug: &str = slug.trim_matches('-');
    let slug = slug[..slug.len().min(room)].trim_end_matches('-');
    let mut name = head;
    if !slug.is_empty() {
        name.push('-');
        name.push_str(slug);
    }
    name.push_str(&tail);
    name.truncate(CHANNEL_NAME_MAX);
    name
}

/// Escapes text for Slack's mrkdwn, so a title can never mention `@channel` or fake a link.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Escapes, then shortens to at most `max` characters without splitting an entity like `&lt;`
/// (escaping can make text up to five times longer, so it must come first).
pub fn escape_cut(text: &str, max: usize) -> String {
    let escaped = escape(text);
    if escaped.chars().count() <= max {
        return escaped;
    }
    let mut s: String = escaped.chars().take(max.saturating_sub(1)).collect();
    if let Some(amp) = s.rfind('&')
        && !s[amp..].contains(';')
    {
        s.truncate(amp);
    }
    s.push('\u{2026}');
    s
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('\u{2026}');
    s
}

fn status_label(raw: &str) -> String {
    Status::parse(raw)
        .map(|s| s.label().to_string())
        .unwrap_or_else(|| raw.to_string())
}

/// A Slack answer with `ok: false`, or a transport failure.
#[derive(Debug)]
enum CallError {
    Api {
        method: String,
        code: String,
        needed: Option<String>,
    },
    Transport(NotifyError, bool),
}

impl CallError {
    fn code(&self) -> Option<&str> {
        match self {
            CallError::Api { code, .. } => Some(code),
            CallError::Transport(..) => None,
        }
    }

    /// Whether the request may have reached Slack (so a create may have happened).
    fn maybe_sent(&self) -> bool {
        match self {
            CallError::Api { .. } => true,
            CallError::Transport(_, sent) => *sent,
        }
    }
}

impl From<CallError> for NotifyError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Transport(n, _) => n,
            CallError::Api { method, code, needed } => classify(&method, &code, needed.as_deref()),
        }
    }
}

/// Reads Slack's `error` codes: transient ones retry, the rest will fail the same way again.
pub fn classify(method: &str, code: &str, needed: Option<&str>) -> NotifyError {
    match code {
        "ratelimited" | "rate_limited" => {
            NotifyError::RetryAfter(format!("Slack {method}: rate limited"), Duration::from_secs(30))
        }
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" | "team_added_to_org" => {
            NotifyError::Retryable(format!("Slack {method}: {code} (a problem on Slack's side)"))
        }
        "missing_scope" => NotifyError::Permanent(format!(
            "Slack {method}: missing_scope: the bot token needs the {} scope; add it to the Slack app and reinstall",
            needed.unwrap_or("(unnamed)")
        )),
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            NotifyError::Permanent(format!("Slack {method}: {code}: the bot token is not valid"))
        }
        "channel_not_found" => NotifyError::Permanent(format!(
            "Slack {method}: channel_not_found: the channel does not exist or the bot cannot see it"
        )),
        "not_in_channel" => NotifyError::Permanent(format!(
            "Slack {method}: not_in_channel: invite the bot to the channel (/invite @yourbot)"
        )),
        other => NotifyError::Permanent(format!("Slack {method}: {other}")),
    }
}

/// The bot's identity, from `auth.test`.
#[derive(Debug, Clone)]
struct BotIdentity {
    user_id: String,
}

/// Posts to Slack.
pub struct SlackNotifier {
    settings: SlackSettings,
    base: String,
    token: String,
    client: reqwest::Client,
    services: Vec<crate::config::Service>,
    users: Mutex<HashMap<String, (Option<String>, Instant)>>,
    bot: tokio::sync::OnceCell<BotIdentity>,
}

const USER_CACHE_HIT: Duration = Duration::from_secs(3600);
const USER_CACHE_MISS: Duration = Duration::from_secs(600);

impl SlackNotifier {
    /// Builds it from the settings; the token is read here.
    pub fn new(slack: &SlackSettings, settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            settings: slack.clone(),
            base: slack.base_url.trim_end_matches('/').to_string(),
            token: super::common::secret(settings, &slack.token_env)?,
            client: http::client(Duration::from_millis(
                (settings.outbox.delivery_timeout_ms / 3).clamp(1_000, 10_000),
            ))?,
            services: settings.services.clone(),
            users: Mutex::new(HashMap::new()),
            bot: tokio::sync::OnceCell::new(),
        })
    }

    async fn finish(&self, method: &str, answer: Result<http::Answer, SendError>) -> Result<Value, CallError> {
        let answer = answer.map_err(|e| {
            let sent = matches!(e, SendError::Unknown(_));
            CallError::Transport(e.into_notify(), sent)
        })?;
        if !answer.status.is_success() {
            let vendor = format!("Slack {method}");
            return Err(CallError::Transport(http::status_error(&vendor, &answer), true));
        }
        let wait = http::retry_after(&answer.headers);
        let body: Value = answer
            .json(&format!("Slack {method}"))
            .map_err(|e| CallError::Transport(e, true))?;
        if body.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(body);
        }
        let code = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .to_string();
        let needed = body.get("needed").and_then(Value::as_str).map(str::to_string);
        if matches!(code.as_str(), "ratelimited" | "rate_limited") {
            let wait = wait.unwrap_or(Duration::from_secs(30));
            return Err(CallError::Transport(
                NotifyError::RetryAfter(
                    format!("Slack {method}: rate limited; retrying after {} s", wait.as_secs()),
                    wait,
                ),
                true,
            ));
        }
        Err(CallError::Api {
            method: method.to_string(),
            code,
            needed,
        })
    }

    /// A JSON POST to a Web API method.
    async fn call(&self, method: &str, body: Value) -> Result<Value, CallError> {
        let request = self
            .client
            .post(format!("{}/{method}", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string());
        let answer = http::send(request, &format!("Slack {method}")).await;
        self.finish(method, answer).await
    }

    /// A GET with query parameters (for the read methods that take no JSON).
    async fn read(&self, method: &str, query: &[(&str, &str)]) -> Result<Value, CallError> {
        let url = reqwest::Url::parse_with_params(&format!("{}/{method}", self.base), query).map_err(|e| {
            CallError::Transport(
                NotifyError::Permanent(format!("Slack base_url is not usable: {e}")),
                false,
            )
        })?;
        let request = self.client.get(url).bearer_auth(&self.token);
        let answer = http::send(request, &format!("Slack {method}")).await;
        self.finish(method, answer).await
    }

    async fn bot(&self) -> Result<&BotIdentity, NotifyError> {
        self.bot
            .get_or_try_init(|| async {
                let me = self.call("auth.test", json!({})).await?;
                Ok::<_, NotifyError>(BotIdentity {
                    user_id: me
                        .get("user_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                })
            })
            .await
    }

    /// Slack user id for an email, cached (misses for a shorter time).
    async fn user_id(&self, email: &str) -> Result<Option<String>, NotifyError> {
        let email = email.to_ascii_lowercase();
        if let Ok(cache) = self.users.lock()
            && let Some((id, at)) = cache.get(&email)
        {
            let ttl = if id.is_some() { USER_CACHE_HIT } else { USER_CACHE_MISS };
            if at.elapsed() < ttl {
                return Ok(id.clone());
            }
        }
        let found = match self.read("users.lookupByEmail", &[("email", &email)]).await {
            Ok(v) => v.pointer("/user/id").and_then(Value::as_str).map(str::to_string),
            Err(e) if e.code() == Some("users_not_found") => None,
            Err(e) => return Err(e.into()),
        };
        if let Ok(mut cache) = self.users.lock() {
            cache.insert(email, (found.clone(), Instant::now()));
        }
        Ok(found)
    }

    fn channel_prefix(&self, snap: &IncidentSnapshot) -> &str {
        if snap.drill {
            &self.settings.drill_channel_prefix
        } else {
            &self.settings.channel_prefix
        }
    }

    fn announce_channel(&self, snap: &IncidentSnapshot) -> Option<&str> {
        if snap.drill {
            self.settings.drill_announce_channel.as_deref()
        } else {
            self.settings.announce_channel.as_deref()
        }
    }

    fn channel_link(id: &str) -> String {
        format!("https://slack.com/app_redirect?channel={id}")
    }

    // -- the steps of a declaration --------------------------------------------------------

    /// Creates the incident channel, or finds the one an interrupted attempt created. Before each
    /// create a marker names the channel about to be made; a later attempt whose create of that
    /// same name is refused as taken looks for it (by name and creator) before moving on.
    async fn ensure_channel(&self, d: &Delivery) -> Result<String, NotifyError> {
        let store = &d.store;
        if let Some(c) = store.get(NAME, "channel").await? {
            return Ok(c.value);
        }
        let snap = &d.payload.incident;
        let mut tried = Vec::new();
        for attempt in 1..=20u32 {
            let name = channel_name(self.channel_prefix(snap), snap.number, &snap.title, attempt);
            let marker = format!("channel_pending:{name}");
            let earlier = store.get(NAME, &marker).await?.is_some();
            store.put(NAME, &marker, &name, None).await?;
            tried.push(marker.clone());
            let created = self
                .call(
                    "conversations.create",
                    json!({ "name": name, "is_private": self.settings.private_channels }),
                )
                .await;
            let id = match created {
                Ok(v) => v.pointer("/channel/id").and_then(Value::as_str).map(str::to_string),
                Err(e) if e.code() == Some("name_taken") => match earlier {
                    true => match self.find_own_channel(&name).await? {
                        Some(id) => Some(id),
                        None => continue,
                    },
                    false => continue,
                },
                Err(e) => {
                    if !e.maybe_sent() {
                        store.delete(NAME, &marker).await?;
                    }
                    return Err(e.into());
                }
            };
            let Some(id) = id else {
                return Err(NotifyError::Retryable(
                    "Slack conversations.create answered ok without a channel id".into(),
                ));
            };
            store.put(NAME, "channel", &id, Some(&Self::channel_link(&id))).await?;
            store.put(NAME, "channel_name", &name, None).await?;
            for m in &tried {
                store.delete(NAME, m).await?;
            }
            return Ok(id);
        }
        Err(NotifyError::Permanent(
            "Slack: twenty channel names for this incident are all taken".into(),
        ))
    }

    /// Finds a channel by name that this bot created (crash recovery only).
    async fn find_own_channel(&self, name: &str) -> Result<Option<String>, NotifyError> {
        let bot = self.bot().await?.user_id.clone();
        let mut cursor = String::new();
        for _ in 0..10 {
            // One type at a time: asking for both has been known to leave private ones out.
            let kind = if self.settings.private_channels {
                "private_channel"
            } else {
                "public_channel"
            };
            let mut q = vec![("types", kind), ("exclude_archived", "true"), ("limit", "1000")];
            if !cursor.is_empty() {
                q.push(("cursor", cursor.as_str()));
            }
            let page = self.read("conversations.list", &q).await?;
            for c in page.get("channels").and_then(Value::as_array).into_iter().flatten() {
                if c.get("name").and_then(Value::as_str) == Some(name)
                    && c.get("creator").and_then(Value::as_str) == Some(bot.as_str())
                {
                    return Ok(c.get("id").and_then(Value::as_str).map(str::to_string));
                }
            }
            cursor = page
                .pointer("/response_metadata/next_cursor")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if cursor.is_empty() {
                break;
            }
        }
        Ok(None)
    }

    /// Posts a message once: a marker goes down before the call, and an attempt that finds the
    /// marker looks in the channel's recent history for the message (by its metadata key) first.
    async fn post_once(
        &self,
        store: &RefStore,
        ref_name: &str,
        channel: &str,
        key: &str,
        text: String,
        blocks: Value,
    ) -> Result<String, NotifyError> {
        if let Some(done) = store.get(NAME, ref_name).await? {
            return Ok(done.value);
        }
        let pending = format!("{ref_name}_pending");
        if store.get(NAME, &pending).await?.is_some()
            && let Some(ts) = self.find_posted(channel, key).await?
        {
            store.put(NAME, ref_name, &ts, None).await?;
            store.delete(NAME, &pending).await?;
            return Ok(ts);
        }
        store.put(NAME, &pending, key, None).await?;
        let posted = self
            .call(
                "chat.postMessage",
                json!({
                    "channel": channel,
                    "text": text,
                    "blocks": blocks,
                    "unfurl_links": false,
                    "metadata": { "event_type": "redbutton_post", "event_payload": { "key": key } },
                }),
            )
            .await;
        let v = match posted {
            Ok(v) => v,
            Err(e) => {
                if !e.maybe_sent() {
                    store.delete(NAME, &pending).await?;
                }
                return Err(e.into());
            }
        };
        let ts = v
            .get("ts")
            .and_then(Value::as_str)
            .ok_or_else(|| NotifyError::Retryable("Slack chat.postMessage answered ok without a ts".into()))?
            .to_string();
        store.put(NAME, ref_name, &ts, None).await?;
        store.delete(NAME, &pending).await?;
        Ok(ts)
    }

    /// Looks for a message we posted with this metadata key among the channel's recent ones.
    async fn find_posted(&self, channel: &str, key: &str) -> Result<Option<String>, NotifyError> {
        let history = self
            .read(
                "conversations.history",
                &[("channel", channel), ("limit", "100"), ("include_all_metadata", "true")],
            )
            .await?;
        Ok(history
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|m| m.pointer("/metadata/event_payload/key").and_then(Value::as_str) == Some(key))
            .and_then(|m| m.get("ts").and_then(Value::as_str))
            .map(str::to_string))
    }

    /// Adds a link bookmark once (same marker-then-look pattern, looking in `bookmarks.list`).
    async fn bookmark_once(
        &self,
        store: &RefStore,
        ref_name: &str,
        channel: &str,
        title: &str,
        link: &str,
        emoji: &str,
    ) -> Result<(), NotifyError> {
        if store.get(NAME, ref_name).await?.is_some() {
            return Ok(());
        }
        let pending = format!("{ref_name}_pending");
        if store.get(NAME, &pending).await?.is_some() {
            let list = self.read("bookmarks.list", &[("channel_id", channel)]).await?;
            let found = list
                .get("bookmarks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|b| b.get("link").and_then(Value::as_str) == Some(link))
                .and_then(|b| b.get("id").and_then(Value::as_str))
                .map(str::to_string);
            if let Some(id) = found {
                store.put(NAME, ref_name, &id, Some(link)).await?;
                store.delete(NAME, &pending).await?;
                return Ok(());
            }
        }
        store.put(NAME, &pending, link, None).await?;
        let added = self
            .call(
                "bookmarks.add",
                json!({ "channel_id": channel, "title": title, "type": "link", "link": link, "emoji": emoji }),
            )
            .await;
        match added {
            Ok(v) => {
                let id = v
                    .pointer("/bookmark/id")
                    .and_then(Value::as_str)
                    .unwrap_or("added")
                    .to_string();
                store.put(NAME, ref_name, &id, Some(link)).await?;
                store.delete(NAME, &pending).await?;
                Ok(())
            }
            Err(e) => {
                if !e.maybe_sent() {
                    store.delete(NAME, &pending).await?;
                }
                Err(e.into())
            }
        }
    }

    async fn invite(&self, channel: &str, emails: &[String]) -> Result<(), NotifyError> {
        let found = futures_util::future::join_all(emails.iter().map(|e| self.user_id(e))).await;
        let mut ids = Vec::new();
        for id in found {
            if let Some(id) = id?
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let users = ids.join(",");
        match self
            .call(
                "conversations.invite",
                json!({ "channel": channel, "users": users, "force": true }),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already there, or the bot itself: the goal (they are in the channel) is met.
            Err(e) if matches!(e.code(), Some("already_in_channel" | "cant_invite_self")) => Ok(()),
            // Someone Slack will not let into the channel (a guest, a deactivated account):
            // everyone else is in, and the incident must not wait on them.
            Err(e)
                if matches!(
                    e.code(),
                    Some(
                        "cant_invite"
                            | "user_is_restricted"
                            | "user_is_ultra_restricted"
                            | "ura_max_channels"
                            | "user_not_found"
                            | "user_disabled"
                            | "not_allowed_token_type"
                    )
                ) =>
            {
                tracing::warn!(
                    slack.error = e.code().unwrap_or_default(),
                    "some people could not be invited to the incident channel"
                );
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn people_for(&self, snap: &IncidentSnapshot) -> Vec<String> {
        let mut people = vec![snap.declared_by.email.clone()];
        if let Some(lead) = &snap.lead {
            people.push(lead.email.clone());
        }
        for s in self.services.iter().filter(|s| snap.services.contains(&s.id)) {
            people.extend(s.responders.iter().cloned());
        }
        people.retain(|e| e.contains('@'));
        people.sort();
        people.dedup();
        people
    }

    async fn set_topic(&self, channel: &str, snap: &IncidentSnapshot) -> Result<(), NotifyError> {
        let topic = cut(&topic_text(snap), 250);
        self.call("conversations.setTopic", json!({ "channel": channel, "topic": topic }))
            .await?;
        Ok(())
    }

    async fn post_summary(&self, d: &Delivery, channel: &str) -> Result<(), NotifyError> {
        let snap = &d.payload.incident;
        let (text, blocks) = summary_message(snap);
        let key = format!("{}-summary", d.idempotency_key);
        let ts = self.post_once(&d.store, "summary", channel, &key, text, blocks).await?;
        if d.store.get(NAME, "summary_pinned").await?.is_none() {
            match self
                .call("pins.add", json!({ "channel": channel, "timestamp": ts }))
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == Some("already_pinned") => {}
                Err(e) => return Err(e.into()),
            }
            d.store.put(NAME, "summary_pinned", &ts, None).await?;
        }
        Ok(())
    }

    async fn bookmarks(&self, d: &Delivery, channel: &str) -> Result<(), NotifyError> {
        let snap = &d.payload.incident;
        self.bookmark_once(
            &d.store,
            "bookmark_incident",
            channel,
            &format!("{} in Big Red Button", snap.reference()),
            &snap.url,
            ":rotating_light:",
        )
        .await?;
        if let Some(bridge) = &snap.bridge_url {
            self.bookmark_once(
                &d.store,
                "bookmark_bridge",
                channel,
                "Incident call",
                bridge,
                ":telephone_receiver:",
            )
            .await?;
        }
        Ok(())
    }

    async fn announce(&self, d: &Delivery, channel: &str) -> Result<(), NotifyError> {
        let snap = &d.payload.incident;
        let Some(central) = self.announce_channel(snap) else {
            return Ok(());
        };
        let (text, blocks) = announcement(snap, Some(channel));
        let key = format!("{}-announcement", d.idempotency_key);
        self.post_once(&d.store, "announcement", central, &key, text, blocks)
            .await?;
        d.store.put(NAME, "announcement_channel", central, None).await?;
        Ok(())
    }

    async fn on_declared(&self, d: &Delivery) -> Result<Delivered, NotifyError> {
        let channel = self.ensure_channel(d).await?;
        let snap = &d.payload.incident;
        // The channel exists; the rest do not depend on one another, so they run together.
        let people = self.people_for(snap);
        let (invited, topic, summary, marks, announced) = futures_util::join!(
            self.invite(&channel, &people),
            self.set_topic(&channel, snap),
            self.post_summary(d, &channel),
            self.bookmarks(d, &channel),
            self.announce(d, &channel),
        );
        first_error([invited, topic, summary, marks, announced])?;
        Ok(Delivered {
            external_id: Some(channel.clone()),
            external_url: Some(Self::channel_link(&channel)),
        })
    }

    /// The channel created by the declaration, or why there is none.
    async fn existing_channel(&self, store: &RefStore) -> Result<String, NotifyError> {
        let status = match store.made_by_declaration(NAME, "channel").await? {
            Ok(c) => return Ok(c.value),
            Err(status) => status,
        };
        Err(status.blocking("incident channel").unwrap_or_else(|| {
            NotifyError::Permanent(
                "this incident has no Slack channel (it was declared before Slack was set up)".into(),
            )
        }))
    }

    async fn on_change(&self, d: &Delivery) -> Result<Delivered, NotifyError> {
        let channel = self.existing_channel(&d.store).await?;
        let p = &d.payload;
        let snap = &p.incident;
        let (text, blocks) = change_message(p);
        let ref_name = format!("post:{}", d.idempotency_key);
        let ts = self
            .post_once(&d.store, &ref_name, &channel, &d.idempotency_key, text, blocks)
            .await?;
        let mut jobs: Vec<BoxFuture<'_, Result<(), NotifyError>>> = Vec::new();
        if matches!(
            p.event,
            EventKind::StatusChanged | EventKind::SeverityChanged | EventKind::LeadChanged
        ) {
            jobs.push(Box::pin(self.set_topic(&channel, snap)));
        }
        if matches!(
            p.event,
            EventKind::StatusChanged | EventKind::SeverityChanged | EventKind::LeadChanged | EventKind::StatusUpdate
        ) {
            jobs.push(Box::pin(self.update_announcement(d, &channel)));
        }
        if p.event == EventKind::LeadChanged
            && let Some(lead) = &snap.lead
        {
            let lead = vec![lead.email.clone()];
            let channel = &channel;
            jobs.push(Box::pin(async move { self.invite(channel, &lead).await }));
        }
        if p.event == EventKind::RoleChanged
            && let Some(holder) = p.role.as_ref().and_then(|r| r.holder.as_ref())
        {
            let holder = vec![holder.email.clone()];
            let channel = &channel;
            jobs.push(Box::pin(async move { self.invite(channel, &holder).await }));
        }
        first_error(futures_util::future::join_all(jobs).await)?;
        Ok(Delivered {
            external_id: Some(ts),
            external_url: Some(Self::channel_link(&channel)),
        })
    }

    async fn update_announcement(&self, d: &Delivery, channel: &str) -> Result<(), NotifyError> {
        let (Some(ts), Some(central)) = (
            d.store.get(NAME, "announcement").await?,
            d.store.get(NAME, "announcement_channel").await?,
        ) else {
            return Ok(());
        };
        let (text, blocks) = announcement(&d.payload.incident, Some(channel));
        self.call(
            "chat.update",
            json!({ "channel": central.value, "ts": ts.value, "text": text, "blocks": blocks }),
        )
        .await?;
        Ok(())
    }

    /// Bookmarks the Jira ticket once the Jira integration has created it.
    async fn bookmark_ticket(&self, d: &Delivery) -> Result<Delivered, NotifyError> {
        let channel = self.existing_channel(&d.store).await?;
        let ticket = match d.store.made_by_declaration("jira", "issue").await? {
            Ok(ticket) => ticket,
            Err(status) => {
                return Err(status.blocking("Jira ticket").unwrap_or_else(|| {
                    NotifyError::Permanent("no Jira ticket is being created for this incident".into())
                }));
            }
        };
        let link = ticket.url.clone().unwrap_or_default();
        if link.is_empty() {
            return Err(NotifyError::Permanent("the Jira ticket has no link to bookmark".into()));
        }
        self.bookmark_once(
            &d.store,
            "bookmark_ticket",
            &channel,
            &format!("Jira {}", ticket.value),
            &link,
            ":ticket:",
        )
        .await?;
        Ok(Delivered {
            external_id: Some(ticket.value),
            external_url: Some(link),
        })
    }

    /// Archives the channel, unless the incident was reopened meanwhile.
    async fn archive(&self, d: &Delivery) -> Result<Delivered, NotifyError> {
        let channel = self.existing_channel(&d.store).await?;
        if d.store.unfinished(NAME).await? > 0 {
            return Err(NotifyError::Waiting(
                "waiting for the channel's other posts before archiving it".into(),
            ));
        }
        if !d
            .store
            .incident_status()
            .await?
            .as_deref()
            .is_some_and(Status::is_closed_str)
        {
            return Ok(Delivered::default());
        }
        match self.call("conversations.archive", json!({ "channel": channel })).await {
            Ok(_) => {}
            Err(e) if e.code() == Some("already_archived") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Delivered {
            external_id: Some(channel.clone()),
            external_url: Some(Self::channel_link(&channel)),
        })
    }
}

/// The most telling error of several: one that will not heal first, then a wait the vendor asked
/// for, then any other.
fn first_error(results: impl IntoIterator<Item = Result<(), NotifyError>>) -> Result<(), NotifyError> {
    let errors: Vec<NotifyError> = results.into_iter().filter_map(Result::err).collect();
    let pick = errors
        .iter()
        .find(|e| matches!(e, NotifyError::Permanent(_)))
        .or_else(|| errors.iter().find(|e| matches!(e, NotifyError::RetryAfter(..))))
        .or_else(|| errors.first());
    match pick {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    }
}

fn facts(snap: &IncidentSnapshot) -> String {
    let lead = snap.lead.as_ref().map(|l| l.name.as_str()).unwrap_or("nobody yet");
    format!(
        "{} \u{b7} {} \u{b7} Lead: {}",
        snap.severity,
        status_label(&snap.status),
        lead
    )
}

/// The facts under a channel post; a drill says so there too.
fn context_facts(snap: &IncidentSnapshot) -> String {
    let drill = if snap.drill { "DRILL \u{b7} " } else { "" };
    format!("{drill}{}", facts(snap))
}

fn topic_text(snap: &IncidentSnapshot) -> String {
    let drill = if snap.drill { "DRILL \u{b7} " } else { "" };
    format!("{drill}{} \u{b7} {}", facts(snap), snap.url)
}

fn incident_button(snap: &IncidentSnapshot) -> Value {
    json!({ "type": "button", "text": { "type": "plain_text", "text": "Open the incident" }, "url": snap.url })
}

fn link_buttons(snap: &IncidentSnapshot) -> Value {
    let mut buttons = vec![incident_button(snap)];
    if let Some(bridge) = &snap.bridge_url {
        buttons.push(
            json!({ "type": "button", "text": { "type": "plain_text", "text": "Join the call" }, "url": bridge }),
        );
    }
    json!({ "type": "actions", "elements": buttons })
}

/// The summary posted (and pinned) in the incident channel: Block Kit and a plain fallback.
pub fn summary_message(snap: &IncidentSnapshot) -> (String, Value) {
    let drill = if snap.drill { "[DRILL] " } else { "" };
    let services = if snap.services.is_empty() {
        "none named".to_string()
    } else {
        snap.services.join(", ")
    };
    let lead = snap
        .lead
        .as_ref()
        .map(|l| l.name.clone())
        .unwrap_or_else(|| "nobody yet".into());
    let summary = if snap.summary.trim().is_empty() {
        "_No summary yet._".to_string()
    } else {
        escape_cut(&snap.summary, 2900)
    };
    let mut text = format!(
        "{drill}{}: {} ({}, {}). Declared by {}. Lead: {}. {}",
        snap.reference(),
        snap.title,
        snap.severity,
        status_label(&snap.status),
        snap.declared_by.name,
        lead,
        snap.url
    );
    if let Some(bridge) = &snap.bridge_url {
        text.push_str(&format!(" Call: {bridge}"));
    }
    let blocks = json!([
        { "type": "header", "text": { "type": "plain_text", "text": cut(&format!("{drill}{}: {}", snap.reference(), snap.title), 150) } },
        { "type": "section", "fields": [
            { "type": "mrkdwn", "text": format!("*Severity*\n{}", escape(&snap.severity)) },
            { "type": "mrkdwn", "text": format!("*Status*\n{}", status_label(&snap.status)) },
            { "type": "mrkdwn", "text": format!("*Lead*\n{}", escape(&lead)) },
            { "type": "mrkdwn", "text": format!("*Services*\n{}", escape(&services)) },
        ] },
        { "type": "section", "text": { "type": "mrkdwn", "text": summary } },
        { "type": "context", "elements": [ { "type": "mrkdwn", "text": format!("Declared by {}", escape(&snap.declared_by.name)) } ] },
        link_buttons(snap),
    ]);
    (escape_cut(&text, 3000), blocks)
}

/// The announcement in the central channel, kept current with `chat.update`.
pub fn announcement(snap: &IncidentSnapshot, channel: Option<&str>) -> (String, Value) {
    let drill = if snap.drill { "[DRILL] " } else { "" };
    let mark = if snap.is_closed() {
        ":large_green_circle:"
    } else {
        ":red_circle:"
    };
    let channel_text = channel.map(|c| format!(" \u{b7} <#{c}>")).unwrap_or_default();
    let text = escape(&format!(
        "{drill}{}: {} \u{2014} {}",
        snap.reference(),
        snap.title,
        facts(snap)
    ));
    let mut blocks = vec![json!(
        { "type": "section", "text": { "type": "mrkdwn", "text": format!(
            "{mark} *{drill}<{}|{}: {}>*\n{}{channel_text}",
            snap.url, snap.reference(), escape(&snap.title), escape(&facts(snap))
        ) } }
    )];
    if let Some(u) = &snap.latest_update {
        blocks.push(
            json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": format!(
            "*Latest update* ({}): {} \u{2014} {} {}",
            u.at.format("%H:%M UTC"),
            escape_cut(&u.known, 1200),
            escape_cut(&u.doing, 1200),
            escape(&next_update_text(u))
        ) } ] }),
        );
    }
    (text, Value::Array(blocks))
}

/// When the next update is due, in words.
fn next_update_text(u: &UpdateNote) -> String {
    match u.next_update_at {
        Some(next) => format!("Next update by {}.", next.format("%H:%M UTC")),
        None => "No further update is planned.".into(),
    }
}

/// A status update, posted in the incident channel: what we know, what we are doing, next update.
pub fn update_message(snap: &IncidentSnapshot, u: &UpdateNote) -> (String, Value) {
    let head = format!("{} status update from {}", snap.reference(), u.author.name);
    let text = escape_cut(&format!("{head}: {} {}", u.known, u.doing), 3000);
    let blocks = json!([
        { "type": "section", "text": { "type": "mrkdwn", "text": format!(":mega: *{}*", escape_cut(&head, 2900)) } },
        { "type": "section", "text": { "type": "mrkdwn", "text": format!("*What we know*\n{}", escape_cut(&u.known, 2800)) } },
        { "type": "section", "text": { "type": "mrkdwn", "text": format!("*What we are doing*\n{}", escape_cut(&u.doing, 2800)) } },
        { "type": "context", "elements": [ { "type": "mrkdwn", "text": escape(&format!("{} \u{b7} {}", next_update_text(u), facts(snap))) } ] },
    ]);
    (text, blocks)
}

/// The post for a change in the incident channel.
pub fn change_message(p: &EventPayload) -> (String, Value) {
    let who = &p.actor.name;
    let snap = &p.incident;
    let change = p.change.as_ref();
    let old = change.and_then(|c| c.old.clone()).unwrap_or_else(|| "none".into());
    let new = change.and_then(|c| c.new.clone()).unwrap_or_else(|| "none".into());
    let line = match p.event {
        EventKind::StatusChanged if new == Status::Declined.as_str() => format!(
            "{who} declined {}: not an incident. Reason: {}",
            snap.reference(),
            snap.closed_reason.as_deref().unwrap_or("none given")
        ),
        EventKind::StatusChanged if new == Status::Merged.as_str() => {
            if let Some(m) = &snap.merged_into {
                // The survivor's link is Slack markup, so this line is escaped piece by piece.
                let (dup, survivor) = (snap.reference(), m.reference());
                let line = format!(
                    "{} merged {dup} into {survivor} <{}|{survivor}>. Please carry on there; this channel will be archived.",
                    escape(who),
                    m.url,
                );
                let drill = if snap.drill { "[DRILL] " } else { "" };
                let text = escape_cut(&format!("{drill}{dup} merged into {survivor} {}", m.url), 3000);
                let blocks = json!([
                    { "type": "section", "text": { "type": "mrkdwn", "text": line } },
                    { "type": "context", "elements": [ { "type": "mrkdwn", "text": escape(&context_facts(snap)) } ] },
                ]);
                return (text, blocks);
            }
            format!("{who} merged {} into another incident.", snap.reference())
        }
        EventKind::StatusChanged if new == Status::Resolved.as_str() => {
            let took = p.at - snap.declared_at;
            format!(
                "{who} resolved {} after {}. Thank you, everyone. Please add what you learned to the incident record.",
                snap.reference(),
                human_duration(took)
            )
        }
        EventKind::StatusChanged => {
            format!(
                "{who} changed the status from {} to {}.",
                status_label(&old),
                status_label(&new)
            )
        }
        EventKind::SeverityChanged => format!("{who} changed the severity from {old} to {new}."),
        EventKind::LeadChanged => match &snap.lead {
            Some(l) => format!("{} is now leading the incident (set by {who}).", l.name),
            None => format!("{who} left the lead; the incident needs a lead."),
        },
        EventKind::NoteAdded => format!("{who} added a note: {}", p.note.clone().unwrap_or_default()),
        EventKind::Declared => format!("{who} declared {}.", snap.reference()),
        EventKind::Nudge => format!(":alarm_clock: {}", p.note.clone().unwrap_or_default()),
        EventKind::StatusUpdate => match &snap.latest_update {
            Some(u) => return update_message(snap, u),
            None => format!("{who} posted a status update."),
        },
        EventKind::FollowUpAdded => format!(
            "{who} added a follow-up: {}",
            p.follow_up.as_ref().map(|f| f.title.as_str()).unwrap_or_default()
        ),
        EventKind::RoleChanged => role_line(p),
    };
    let drill = if snap.drill { "[DRILL] " } else { "" };
    let text = escape_cut(&format!("{drill}{} {}", snap.reference(), line), 3000);
    let blocks = json!([
        { "type": "section", "text": { "type": "mrkdwn", "text": escape_cut(&line, 2900) } },
        { "type": "context", "elements": [ { "type": "mrkdwn", "text": escape(&context_facts(snap)) } ] },
    ]);
    (text, blocks)
}

/// A role change in the channel: the sentence, then what the role does while someone holds it.
fn role_line(p: &EventPayload) -> String {
    let Some(r) = &p.role else {
        return format!("{} changed a role.", p.actor.name);
    };
    let sentence = r.sentence(p.change.as_ref(), &p.actor);
    match &r.holder {
        Some(_) => format!("{} \u{2014} {}", sentence.trim_end_matches('.'), r.description),
        None => sentence,
    }
}

fn human_duration(d: chrono::Duration) -> String {
    let mins = d.num_minutes().max(0);
    match (mins / 60, mins % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        NAME
    }

    fn deliver<'a>(&'a self, d: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(async move {
            match (d.payload.step.as_deref(), d.payload.event) {
                (None, EventKind::Declared) => self.on_declared(d).await,
                (None, _) => self.on_change(d).await,
                (Some("ticket"), _) => self.bookmark_ticket(d).await,
                (Some("archive"), _) => self.archive(d).await,
                (Some(other), _) => Err(NotifyError::Permanent(format!("unknown Slack step {other}"))),
            }
        })
    }

    fn target(&self, p: &EventPayload) -> Option<String> {
        let snap = &p.incident;
        let channel = channel_name(self.channel_prefix(snap), snap.number, &snap.title, 1);
        Some(match (p.event, self.announce_channel(snap)) {
            (EventKind::Declared, Some(c)) => format!("#{channel}, announced in {c}"),
            _ => format!("#{channel}"),
        })
    }

    fn extra_steps(&self, p: &EventPayload, routed: &[String]) -> Vec<ExtraStep> {
        let mut steps = Vec::new();
        if p.event == EventKind::Declared && routed.iter().any(|n| n == "jira") {
            steps.push(ExtraStep {
                name: "ticket".into(),
                delay: Duration::ZERO,
                target: "bookmark the Jira ticket in the channel".into(),
            });
        }
        // Declining and merging close the channel as resolving does; a merged incident's channel
        // is archived at once (its work goes on in the survivor's channel).
        let closed_as = p
            .change
            .as_ref()
            .filter(|_| p.event == EventKind::StatusChanged)
            .and_then(|c| c.new.as_deref())
            .and_then(Status::parse)
            .filter(|s| s.is_closed());
        match (closed_as, self.settings.archive_after_minutes) {
            (Some(Status::Merged), _) => steps.push(ExtraStep {
                name: "archive".into(),
                delay: Duration::ZERO,
                target: "archive the channel (merged into another incident)".into(),
            }),
            (Some(s), Some(minutes)) => steps.push(ExtraStep {
                name: "archive".into(),
                delay: Duration::from_secs(minutes * 60),
                target: format!(
                    "archive the channel {minutes} min after {}",
                    if s == Status::Declined {
                        "declining"
                    } else {
                        "resolving"
                    }
                ),
            }),
            _ => {}
        }
        steps
    }

    fn probe(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let request = self
                .client
                .post(format!("{}/auth.test", self.base))
                .bearer_auth(&self.token)
                .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body("{}");
            let answer = http::send(request, "Slack auth.test")
                .await
                .map_err(|e| e.into_notify().to_string())?;
            let scopes: Vec<String> = answer
                .headers
                .get("x-oauth-scopes")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
                .unwrap_or_default();
            let body = self
                .finish("auth.test", Ok(answer))
                .await
                .map_err(|e| NotifyError::from(e).to_string())?;
            let who = format!(
                "signed in to {} as {}",
                body.get("team").and_then(Value::as_str).unwrap_or("?"),
                body.get("user").and_then(Value::as_str).unwrap_or("?")
            );
            let needed = required_scopes(self.settings.private_channels);
            let missing: Vec<&str> = needed
                .iter()
                .copied()
                .filter(|s| !scopes.iter().any(|x| x == s))
                .collect();
            if scopes.is_empty() {
                Ok(format!("{who} (Slack did not list the token's scopes)"))
            } else if missing.is_empty() {
                Ok(who)
            } else {
                Err(format!("{who}, but the token lacks the scopes: {}", missing.join(", ")))
            }
        })
    }
}

/// The bot token scopes this integration uses.
pub fn required_scopes(private_channels: bool) -> Vec<&'static str> {
    let mut v = vec![
        "chat:write",
        "pins:write",
        "bookmarks:read",
        "bookmarks:write",
        "users:read",
        "users:read.email",
        // The central announcement channel is public; its history finds a lost announcement.
        "channels:history",
    ];
    if private_channels {
        v.extend(["groups:write", "groups:read", "groups:history"]);
    } else {
        v.extend(["channels:manage", "channels:read"]);
    }
    v
}

/// Shared handle used by the registry.
pub fn build(slack: &SlackSettings, settings: &Settings) -> anyhow::Result<Arc<dyn Notifier>> {
    Ok(Arc::new(SlackNotifier::new(slack, settings)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_lowercase_short_and_slugged() {
        assert_eq!(
            channel_name("inc", 12, "Card payments FAILING!", 1),
            "inc-12-card-payments-failing"
        );
        assert_eq!(
            channel_name("inc", 12, "Card payments failing", 2),
            "inc-12-card-payments-failing-2"
        );
        assert_eq!(channel_name("inc", 7, "   ", 1), "inc-7");
        assert_eq!(channel_name("inc", 7, "Ünïcödé — only", 1), "inc-7-n-c-d-only");
        assert_eq!(channel_name("drill", 3, "DB", 1), "drill-3-db");
        let long = "x".repeat(300);
        for attempt in [1, 2, 19] {
            let n = channel_name("inc", 123456, &long, attempt);
            assert!(n.len() <= CHANNEL_NAME_MAX, "{n}");
            assert!(n.ends_with(&if attempt > 1 { format!("-{attempt}") } else { "x".into() }));
        }
        let n = channel_name("inc", 1, &"a-".repeat(100), 1);
        assert!(!n.ends_with('-') && !n.contains("--"), "{n}");
    }

    #[test]
    fn slack_errors_are_classified() {
        assert!(matches!(
            classify("m", "ratelimited", None),
            NotifyError::RetryAfter(..)
        ));
        assert!(matches!(
            classify("m", "internal_error", None),
            NotifyError::Retryable(_)
        ));
        for code in ["invalid_auth", "channel_not_found", "not_in_channel", "no_such_thing"] {
            assert!(matches!(classify("m", code, None), NotifyError::Permanent(_)), "{code}");
        }
        let NotifyError::Permanent(m) = classify("chat.postMessage", "missing_scope", Some("chat:write")) else {
            panic!("permanent")
        };
        assert!(m.contains("chat:write"), "{m}");
    }

    #[test]
    fn text_is_escaped_so_titles_cannot_ping_or_link() {
        assert_eq!(
            escape("<!channel> & <http://x|y>"),
            "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
        );
    }

    #[test]
    fn escaping_comes_before_cutting_and_never_splits_an_entity() {
        let s = escape_cut(&"<".repeat(1000), 2900);
        assert!(s.chars().count() <= 2900, "{}", s.len());
        assert!(s.ends_with("&lt;\u{2026}"), "{}", &s[s.len() - 12..]);
        assert_eq!(escape_cut("a<b", 10), "a&lt;b");
    }

    #[test]
    fn the_fallback_text_is_escaped_too() {
        let snap = IncidentSnapshot {
            number: 3,
            title: "<!channel> pay <https://evil.example|here>".into(),
            severity: "SEV1".into(),
            status: "investigating".into(),
            services: vec![],
            summary: String::new(),
            declared_by: crate::domain::Actor {
                name: "Mallory <!here>".into(),
                email: "m@example.com".into(),
            },
            lead: None,
            drill: false,
            declared_at: chrono::NaiveDateTime::default(),
            url: "http://x/incidents/3".into(),
            bridge_url: None,
            latest_update: None,
            closed_reason: None,
            merged_into: None,
        };
        for (text, _) in [summary_message(&snap), announcement(&snap, Some("C123"))] {
            assert!(!text.contains("<!") && !text.contains("<https"), "{text}");
        }
    }
}
