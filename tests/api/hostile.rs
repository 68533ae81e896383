//! The hostile input corpus (issue 4, "Bad input"): one table of hostile requests covering every
//! field of every form, the dashboard's query string and every path parameter. Each row says what
//! the app must answer. A refusal is a clear 4xx page and changes nothing in any table; hostile
//! content that is a legitimate value (a title with `<script>` in it) is stored and then never
//! renders as markup on any page that shows it, in the live-refresh fragments or in the email.
//!
//! `cargo test --test api hostile -- --nocapture` prints the corpus size by outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use futures_util::future::BoxFuture;
use redbutton::db::models::{ExternalRefRow, IdempotencyRecord, IncidentRow, OutboxRow, TimelineEntryRow};
use redbutton::domain::EventKind;
use redbutton::notifiers::{Delivered, Delivery, EventPayload, Notifier, NotifyError};
use scraper::{ElementRef, Html, Selector};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Hostile values.

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(1)>";
const QUOTES: &str = "' onmouseover='alert(1)' x='";
/// Passes the loose email check (one `@`, a dot in the domain, no spaces) yet breaks out of an
/// attribute if unescaped.
const EVIL_EMAIL: &str = "\"><svg/onload=alert(1)>@evil.example";
const LEAD_EMAIL: &str = "'><b>lead</b>@evil.example";
const EVIL_NAME: &str = "\"><img src=x onerror=alert('name')>";
/// Zero-width space, joiners, word joiner, byte order mark, soft hyphen, a Hangul filler and a
/// variation selector: text that shows nothing at all.
const INVISIBLE: &str = "\u{200b}\u{200c}\u{200d}\u{2060}\u{feff}\u{ad}\u{3164}\u{fe0f}";
const FORGED_SESSION: &str = "rb_session=eyJhbGciOiJub25lIn0.eyJzdWIiOiJldmlsIn0.";
/// Over the 512 KiB body limit.
const HUGE: usize = 600 * 1024;
const URLENCODED: &str = "application/x-www-form-urlencoded";

/// Values that spoil any field at the byte level: the form parser refuses the whole body.
fn byte_attacks() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        ("NUL (%00)", b"a%00b".to_vec(), "NUL characters"),
        ("invalid UTF-8 (%FF%FE)", b"%FF%FE".to_vec(), "not valid UTF-8"),
        ("raw non-UTF-8 bytes", vec![b'a', 0xFF, 0xFE, b'b'], "not valid UTF-8"),
        ("overlong UTF-8 encoding of '<'", b"%C0%BC".to_vec(), "not valid UTF-8"),
        ("lone surrogate (CESU-8)", b"%ED%A0%80".to_vec(), "not valid UTF-8"),
    ]
}

// ---------------------------------------------------------------------------------------------
// A test integration that answers with hostile text: its target, its error, its ids and links,
// and the external references it stores all try to inject markup into the incident page.

struct HostileVendor;

const VENDOR_TARGET: &str = "<b>#inc</b><script>alert('target')</script>";
const VENDOR_ERROR: &str = "vendor said: <img src=x onerror=alert('err')> \"><script>alert(2)</script>";
const VENDOR_ID: &str = "<script>alert('id')</script>";
const VENDOR_KEY: &str = "<img src=x onerror=alert('key')>";

impl Notifier for HostileVendor {
    fn name(&self) -> &str {
        "hostile"
    }

    fn target(&self, _payload: &EventPayload) -> Option<String> {
        Some(VENDOR_TARGET.into())
    }

    fn deliver<'a>(&'a self, d: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(async move {
            match d.payload.event {
                EventKind::Declared => {
                    let s = &d.store;
                    s.put("slack", "channel", "C1", Some(" JaVaScRiPt:alert('slack')"))
                        .await?;
                    s.put("slack", "channel_name", SCRIPT, None).await?;
                    s.put(
                        "jira",
                        "issue",
                        VENDOR_KEY,
                        Some("https://jira.example.com/browse/\"><script>alert(3)</script>"),
                    )
                    .await?;
                    Err(NotifyError::Permanent(VENDOR_ERROR.into()))
                }
                EventKind::NoteAdded => Ok(Delivered {
                    external_id: Some(VENDOR_ID.into()),
                    external_url: Some("javascript:alert('url')".into()),
                }),
                _ => Err(NotifyError::Permanent(VENDOR_ERROR.into())),
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The corpus table.

/// Whose cookies a request carries.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// The test's own session (whatever identity it has now).
    Me,
    /// Another person's valid session.
    Other,
    /// No cookies at all.
    Nobody,
    /// An unsigned (`alg: none`) session cookie.
    Forged,
    /// Exactly this `Cookie` header.
    Cookie(&'static str),
}

/// What the app must answer.
#[derive(Clone, Debug)]
enum Expect {
    /// This 4xx status, a page saying this, nothing stored.
    Refused(u16, &'static str),
    /// A normal 200 page (a bad filter ignored, a value echoed back) saying this; nothing stored.
    Page(&'static str),
    /// 303 to exactly this location, nothing stored (a repeat, a trip to sign in).
    Redirect(String),
    /// 303, and something was stored.
    Stored,
}

/// Something a case must show, as text (so escaped in the HTML), after it ran.
#[derive(Clone, Debug)]
struct Shown {
    /// The page to open (`{n}` is the incident the case created), or `None` for the response.
    path: Option<String>,
    selector: &'static str,
    /// Read this attribute instead of the text.
    attr: Option<&'static str>,
    /// The exact text (whitespace folded) some matching element must have.
    text: String,
}

#[derive(Clone, Debug)]
struct Case {
    name: String,
    method: &'static str,
    path: String,
    content_type: Option<Vec<u8>>,
    /// `{csrf}`, `{other_csrf}` and `{pre_csrf}` are filled in when the case is sent.
    body: Vec<u8>,
    who: Who,
    origin: Option<&'static str>,
    /// Sent with `Transfer-Encoding: chunked` and no length, over a plain socket.
    chunked: bool,
    expect: Expect,
    shows: Vec<Shown>,
}

impl Case {
    fn post(name: impl Into<String>, path: &str, body: Vec<u8>) -> Self {
        Case {
            name: name.into(),
            method: "POST",
            path: path.into(),
            content_type: Some(URLENCODED.as_bytes().to_vec()),
            body,
            who: Who::Me,
            origin: None,
            chunked: false,
            expect: Expect::Stored,
            shows: vec![],
        }
    }

    fn get(name: impl Into<String>, path: &str) -> Self {
        Case::other_method(name, "GET", path)
    }

    fn other_method(name: impl Into<String>, method: &'static str, path: &str) -> Self {
        Case {
            method,
            content_type: None,
            ..Case::post(name, path, vec![])
        }
    }

    fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    fn content_type(mut self, ct: Option<&[u8]>) -> Self {
        self.content_type = ct.map(<[u8]>::to_vec);
        self
    }

    fn who(mut self, who: Who) -> Self {
        self.who = who;
        self
    }

    fn origin(mut self, origin: &'static str) -> Self {
        self.origin = Some(origin);
        self
    }

    fn refused(mut self, status: u16, says: &'static str) -> Self {
        self.expect = Expect::Refused(status, says);
        self
    }

    fn page(mut self, says: &'static str) -> Self {
        self.expect = Expect::Page(says);
        self
    }

    fn redirect(mut self, to: &str) -> Self {
        self.expect = Expect::Redirect(to.into());
        self
    }

    fn stored(mut self) -> Self {
        self.expect = Expect::Stored;
        self
    }

    fn shows(mut self, path: Option<&str>, selector: &'static str, text: &str) -> Self {
        self.shows.push(Shown {
            path: path.map(str::to_string),
            selector,
            attr: None,
            text: fold(text),
        });
        self
    }

    fn shows_attr(mut self, path: Option<&str>, selector: &'static str, attr: &'static str, text: &str) -> Self {
        self.shows.push(Shown {
            path: path.map(str::to_string),
            selector,
            attr: Some(attr),
            text: text.into(),
        });
        self
    }

    fn outcome(&self) -> String {
        match &self.expect {
            Expect::Refused(s, _) => format!("refused {s}"),
            Expect::Page(_) => "answered 200, nothing stored".into(),
            Expect::Redirect(_) => "redirected, nothing stored".into(),
            Expect::Stored => "stored, rendered escaped".into(),
        }
    }
}

const PLACEHOLDERS: [&str; 3] = ["{csrf}", "{other_csrf}", "{pre_csrf}"];

/// `key=value`, encoded, except that a token placeholder stays as it is until the case is sent.
fn pair(k: &str, v: &str) -> String {
    if PLACEHOLDERS.contains(&v) {
        format!("{}={v}", enc(k))
    } else {
        format!("{}={}", enc(k), enc(v))
    }
}

/// A urlencoded body of exactly these pairs.
fn form_exact(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| pair(k, v))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// A urlencoded body: the pairs, and `csrf={csrf}` unless they name a token.
fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut all = pairs.to_vec();
    if !pairs.iter().any(|(k, _)| *k == "csrf") {
        all.insert(0, ("csrf", "{csrf}"));
    }
    form_exact(&all)
}

/// The form with one field's value replaced by raw (already encoded, maybe not UTF-8) bytes.
fn form_with_raw(pairs: &[(&str, &str)], field: &str, raw: &[u8]) -> Vec<u8> {
    let kept: Vec<(&str, &str)> = pairs.iter().filter(|(k, _)| *k != field).copied().collect();
    let mut body = if field == "csrf" {
        form_exact(&kept)
    } else {
        form(&kept)
    };
    if !body.is_empty() {
        body.push(b'&');
    }
    body.extend_from_slice(field.as_bytes());
    body.push(b'=');
    body.extend_from_slice(raw);
    body
}

/// `pairs` with `field` set to `value` (added if absent).
fn with(pairs: &[(&'static str, String)], field: &'static str, value: &str) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = pairs.iter().filter(|(k, _)| *k != field).cloned().collect();
    out.push((field, value.to_string()));
    out
}

fn borrow<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A form of the app: where it posts, its fields with valid values, and which field holds the
/// CSRF token.
struct Form {
    label: &'static str,
    path: String,
    fields: Vec<(&'static str, String)>,
}

impl Form {
    fn body(&self) -> Vec<u8> {
        form(&borrow(&self.fields))
    }

    fn body_with(&self, field: &'static str, value: &str) -> Vec<u8> {
        form(&borrow(&with(&self.fields, field, value)))
    }

    fn body_without(&self, field: &str) -> Vec<u8> {
        let kept: Vec<(&'static str, String)> = self.fields.iter().filter(|(k, _)| *k != field).cloned().collect();
        form_exact(&borrow(&kept))
    }

    fn post(&self, what: &str, body: Vec<u8>) -> Case {
        Case::post(format!("{}: {what}", self.label), &self.path, body)
    }
}

fn fresh_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Everything the corpus needs to know about the app it runs against.
struct Setup {
    /// A live incident no accepted case touches until the end: refusals aim at it.
    target: i64,
    /// A resolved incident declared with `replay_key`.
    other: i64,
    replay_key: String,
    replay_title: String,
    /// A failed (dead) delivery of `target`, and a delivered one.
    dead_delivery: i64,
    done_delivery: i64,
    /// An API token (named with markup) the revoke form aims at.
    token: i64,
}

fn declare_form(extra: &[(&'static str, &str)]) -> Form {
    let mut fields: Vec<(&'static str, String)> = vec![
        ("idempotency_key", fresh_key()),
        ("title", "A valid title".into()),
        ("severity", "SEV2".into()),
        ("services", "checkout".into()),
        ("summary", "Valid *summary*.".into()),
        ("impact_started", "2024-05-01T10:00".into()),
        ("lead_self", "on".into()),
        ("drill", "on".into()),
    ];
    for (k, v) in extra {
        fields = with(&fields, k, v);
    }
    Form {
        label: "POST /declare",
        path: "/declare".into(),
        fields,
    }
}

fn forms(s: &Setup) -> Vec<Form> {
    let t = s.target;
    let f = |label: &'static str, path: String, fields: &[(&'static str, &str)]| Form {
        label,
        path,
        fields: fields.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    };
    let mut all = vec![
        f(
            "POST /identify",
            "/identify".into(),
            &[
                ("csrf", "{pre_csrf}"),
                ("next", "/"),
                ("name", "Ada"),
                ("email", "ada@example.com"),
            ],
        ),
        f("POST /signout", "/signout".into(), &[]),
        declare_form(&[]),
        f(
            "POST status",
            format!("/incidents/{t}/status"),
            &[("expected", "investigating"), ("status", "identified")],
        ),
        f(
            "POST severity",
            format!("/incidents/{t}/severity"),
            &[("expected", "unknown"), ("severity", "SEV1")],
        ),
        f(
            "POST lead",
            format!("/incidents/{t}/lead"),
            &[
                ("expected", ""),
                ("action", "assign"),
                ("name", "Grace Hopper"),
                ("email", "grace@example.com"),
            ],
        ),
        f(
            "POST role",
            format!("/incidents/{t}/roles/comms"),
            &[
                ("expected", ""),
                ("action", "assign"),
                ("name", "Grace Hopper"),
                ("email", "grace@example.com"),
            ],
        ),
        f(
            "POST notes",
            format!("/incidents/{t}/notes"),
            &[("note", "A valid note")],
        ),
        f(
            "POST updates",
            format!("/incidents/{t}/updates"),
            &[
                ("known", "Checkout fails for some"),
                ("doing", "Rolling back"),
                ("next_update", "30"),
            ],
        ),
        f(
            "POST decline",
            format!("/incidents/{t}/decline"),
            &[("expected", "investigating"), ("reason", "A valid reason")],
        ),
        f(
            "POST merge",
            format!("/incidents/{t}/merge"),
            &[("expected", "investigating"), ("into", &s.other.to_string())],
        ),
        f(
            "POST retry",
            format!("/incidents/{t}/deliveries/{}/retry", s.dead_delivery),
            &[],
        ),
        f(
            "POST /admin/tokens",
            "/admin/tokens".into(),
            &[
                ("name", "a valid token"),
                ("scopes", "incidents:read"),
                ("expires_in_days", "30"),
            ],
        ),
        f("POST revoke", format!("/admin/tokens/{}/revoke", s.token), &[]),
        f(
            "POST /drills",
            "/drills".into(),
            &[("idempotency_key", &fresh_key()), ("scenario", "game-day")],
        ),
    ];
    // The CSRF token is a field of every form.
    for form in &mut all {
        if !form.fields.iter().any(|(k, _)| *k == "csrf") {
            form.fields.insert(0, ("csrf", "{csrf}".into()));
        }
    }
    all
}

/// The admin token forms: each bad field refused with its reason; revoking what is not there.
fn token_cases(all: &[Form]) -> Vec<Case> {
    let make = all
        .iter()
        .find(|f| f.label == "POST /admin/tokens")
        .expect("the token form");
    let mut cases = Vec::new();
    for (what, field, value, says) in [
        ("blank name", "name", " ", "Give the token a name"),
        ("invisible name", "name", INVISIBLE, "Give the token a name"),
        ("81-character name", "name", &"n".repeat(81), "at most 80 characters"),
        ("name with a newline", "name", "two\nlines", "one line"),
        ("unknown scope", "scopes", "incidents:admin", "unknown scope"),
        ("scope of markup", "scopes", SCRIPT, "unknown scope"),
        ("expiry of zero days", "expires_in_days", "0", "from 1 to 3650"),
        ("negative expiry", "expires_in_days", "-5", "from 1 to 3650"),
        ("expiry of text", "expires_in_days", "soon", "from 1 to 3650"),
        ("expiry past ten years", "expires_in_days", "3651", "from 1 to 3650"),
    ] {
        cases.push(make.post(what, make.body_with(field, value)).refused(422, says));
    }
    cases.push(
        make.post("no scopes", make.body_without("scopes"))
            .refused(422, "at least one scope"),
    );
    for (what, id) in [
        ("id of text", "abc"),
        ("id zero", "0"),
        ("unknown id", "999999"),
        ("id of markup", "%3Cb%3E"),
    ] {
        cases.push(
            Case::post(
                format!("POST revoke: {what}"),
                &format!("/admin/tokens/{id}/revoke"),
                form(&[("csrf", "{csrf}")]),
            )
            .refused(404, "no such token"),
        );
    }
    cases
}

/// Refusals that every form shares: bytes, CSRF, content type, size.
fn every_form_cases(all: &[Form]) -> Vec<Case> {
    let mut cases = Vec::new();
    for form in all {
        let is_identify = form.path == "/identify";
        // Every field, spoiled at the byte level.
        for (field, _) in &form.fields {
            for (what, raw, says) in byte_attacks() {
                let pairs = borrow(&form.fields);
                cases.push(
                    form.post(&format!("{field} = {what}"), form_with_raw(&pairs, field, &raw))
                        .refused(400, says),
                );
            }
        }
        // A field *name* that is not text.
        let mut body = form.body();
        body.extend_from_slice(b"&%FF%FE=1");
        cases.push(
            form.post("a field name of invalid UTF-8", body)
                .refused(400, "not valid UTF-8"),
        );

        // Forged, missing, foreign CSRF tokens.
        let expired = "did not come from this site";
        cases.push(
            form.post("CSRF token missing", form.body_without("csrf"))
                .refused(403, expired),
        );
        cases.push(
            form.post("CSRF token empty", form.body_with("csrf", ""))
                .refused(403, expired),
        );
        cases.push(
            form.post(
                "CSRF token forged",
                form.body_with("csrf", "Zm9yZ2VkLXRva2VuLWZvcmdlZC10b2tlbg"),
            )
            .refused(403, expired),
        );
        cases.push(
            form.post("CSRF token 100 KB long", form.body_with("csrf", &"A".repeat(100_000)))
                .refused(403, expired),
        );
        cases.push(
            form.post("CSRF token with markup", form.body_with("csrf", IMG))
                .refused(403, expired),
        );
        if is_identify {
            cases.push(
                form.post(
                    "the session's CSRF token instead of the sign-in one",
                    form.body_with("csrf", "{csrf}"),
                )
                .refused(403, expired),
            );
        } else {
            cases.push(
                form.post("another person's CSRF token", form.body_with("csrf", "{other_csrf}"))
                    .refused(403, expired),
            );
            cases.push(
                form.post("the sign-in form's CSRF token", form.body_with("csrf", "{pre_csrf}"))
                    .refused(403, expired),
            );
            cases.push(
                form.post("another person's session with my CSRF token", form.body())
                    .who(Who::Other)
                    .refused(403, expired),
            );
            cases.push(
                form.post("no session at all", form.body())
                    .who(Who::Nobody)
                    .redirect("/identify?next=%2F"),
            );
            cases.push(
                form.post("a forged unsigned session", form.body())
                    .who(Who::Forged)
                    .redirect("/identify?next=%2F"),
            );
        }
        cases.push(
            form.post("valid token, cross-site Origin", form.body())
                .origin("https://evil.example")
                .refused(403, expired),
        );
        cases.push(
            form.post("valid token, Origin: null", form.body())
                .origin("null")
                .refused(403, expired),
        );

        // Wrong content types, with bodies that would be valid in them.
        let as_form = "application/x-www-form-urlencoded";
        let json = br#"{"csrf":"{csrf}","title":"x","note":"x","status":"identified"}"#.to_vec();
        cases.push(
            form.post("JSON body", json)
                .content_type(Some(b"application/json"))
                .refused(415, as_form),
        );
        let mut multipart = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n".to_vec();
        multipart.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n--XyZ--\r\n");
        cases.push(
            form.post("multipart body", multipart)
                .content_type(Some(b"multipart/form-data; boundary=XyZ"))
                .refused(415, as_form),
        );
        cases.push(
            form.post("text/plain body", form.body())
                .content_type(Some(b"text/plain"))
                .refused(415, as_form),
        );
        cases.push(
            form.post("no content type", form.body())
                .content_type(None)
                .refused(415, as_form),
        );
        cases.push(
            form.post("content type of non-ASCII bytes", form.body())
                .content_type(Some(b"application/\xFF\xFEx-www-form-urlencoded"))
                .refused(415, as_form),
        );
        cases.push(
            form.post(
                "Latin-1 declared, Latin-1 bytes sent",
                form_with_raw(&borrow(&form.fields), "zzz", b"caf\xE9"),
            )
            .content_type(Some(b"application/x-www-form-urlencoded; charset=iso-8859-1"))
            .refused(400, "not valid UTF-8"),
        );

        // A body over the size limit.
        let mut huge = form.body();
        huge.extend_from_slice(b"&pad=");
        huge.resize(huge.len() + HUGE, b'a');
        cases.push(
            form.post("body over the size limit", huge.clone())
                .refused(413, "size limit"),
        );
        cases.push(
            form.post("body over the size limit, chunked with no length", huge)
                .chunked()
                .refused(413, "size limit"),
        );
    }
    cases
}

/// `/identify`: the sign-in form's own fields.
#[rustfmt::skip]
fn identify_cases(identify: &Form) -> Vec<Case> {
    let mut cases = Vec::new();
    let long_email = format!("{}@example.com", "a".repeat(243));
    for (what, field, value, says) in [
        ("name empty", "name", "", "Enter your name"),
        ("name only spaces", "name", "   \t ", "Enter your name"),
        ("name only invisible characters", "name", INVISIBLE, "Enter your name"),
        ("name 101 characters", "name", &"n".repeat(101) as &str, "at most 100 characters"),
        ("name 101 two-byte characters", "name", &"é".repeat(101), "at most 100 characters"),
        ("name with a newline", "name", "Ada\nLovelace", "control characters"),
        ("name with a bell", "name", "Ada\u{7}", "control characters"),
        ("name with DEL", "name", "Ada\u{7f}", "control characters"),
        ("name with a C1 control", "name", "A\u{85}da", "control characters"),
        ("email empty", "email", "", "Enter an email address"),
        ("email markup without a domain", "email", SCRIPT, "Enter an email address"),
        ("email 255 characters", "email", &long_email, "Enter an email address"),
        ("email with a space", "email", "ada lovelace@example.com", "Enter an email address"),
        ("email with a newline (header injection)", "email", "ada@example.com\nBcc: x@evil.example", "Enter an email address"),
        ("email with two @", "email", "a@b@example.com", "Enter an email address"),
    ] {
        let mut c = identify.post(what, identify.body_with(field, value)).refused(422, says);
        // What was typed comes back in the form, as text.
        if field == "name" && value.chars().count() <= 100 && !value.trim().is_empty() {
            c = c.shows_attr(None, "input[name=name]", "value", value);
        }
        cases.push(c);
    }
    // Where to go after naming oneself: only a path on this site, and never a header break.
    let long_next = format!("/{}", "a".repeat(5000));
    for (what, next, to) in [
        ("next javascript:", "javascript:alert(1)", "/"),
        ("next to another site", "https://evil.example/", "/"),
        ("next with CR LF (header injection)", "/\r\nSet-Cookie: rb_session=x", "/"),
        ("next 5,000 characters", &long_next, &long_next),
        ("next of non-ASCII text", "/café?q=ü", "/café?q=ü"),
    ] {
        cases.push(identify.post(what, identify.body_with("next", next)).redirect(to));
    }
    let next = "/\"><script>alert('next')</script>";
    let body = form(&[("csrf", "{pre_csrf}"), ("next", next), ("name", IMG), ("email", QUOTES)]);
    cases.push(
        Case::post("POST /identify: markup in name, email and next, email invalid", "/identify", body)
            .refused(422, "Enter an email address")
            .shows_attr(None, "input[name=name]", "value", IMG)
            .shows_attr(None, "input[name=email]", "value", QUOTES)
            .shows_attr(None, "input[name=next]", "value", next),
    );
    cases
}

/// `/declare`: each field on an otherwise valid declaration, and replayed idempotency keys.
#[rustfmt::skip]
fn declare_cases(s: &Setup) -> Vec<Case> {
    let mut cases = Vec::new();
    let too_long_summary = format!("{}x", SCRIPT.repeat(800));
    for (what, field, value, says) in [
        ("title empty", "title", "", "Give the incident a title"),
        ("title only whitespace", "title", " \t \u{a0} ", "Give the incident a title"),
        ("title only invisible characters", "title", INVISIBLE, "Give the incident a title"),
        ("title 201 characters", "title", &"t".repeat(201) as &str, "at most 200 characters"),
        ("title 201 four-byte characters", "title", &"🔥".repeat(201), "at most 200 characters"),
        ("title 10,000 characters of markup", "title", &SCRIPT.repeat(400), "at most 200 characters"),
        ("title with a newline", "title", "Checkout\ndown", "single line"),
        ("title with CR LF (header injection)", "title", "Down\r\nBcc: x@evil.example", "single line"),
        ("title with a tab", "title", "Checkout\tdown", "single line"),
        ("title with an escape character", "title", "\u{1b}[31mred", "single line"),
        ("title with a C1 control", "title", "Do\u{85}wn", "single line"),
        ("severity unknown", "severity", "SEV9", "Unknown severity"),
        ("severity markup", "severity", SCRIPT, "Unknown severity"),
        ("severity 10,000 characters", "severity", &"S".repeat(10_000), "Unknown severity"),
        ("severity with a newline", "severity", "SEV1\nSEV0", "Unknown severity"),
        ("service unknown", "services", "billing", "Unknown service"),
        ("service markup", "services", IMG, "Unknown service"),
        ("service 10,000 characters", "services", &"s".repeat(10_000), "Unknown service"),
        ("service with a newline", "services", "check\nout", "Unknown service"),
        ("summary 20,001 characters", "summary", &"s".repeat(20_001), "at most 20,000 characters"),
        ("summary 20,001 characters of markup", "summary", &too_long_summary, "at most 20,000 characters"),
        ("impact time markup", "impact_started", SCRIPT, "YYYY-MM-DD HH:MM"),
        ("impact time 10,000 characters", "impact_started", &"2".repeat(10_000), "YYYY-MM-DD HH:MM"),
        ("impact time with a newline and markup after it", "impact_started", "2024-05-01T10:00\n<script>", "YYYY-MM-DD HH:MM"),
        ("impact time out of range", "impact_started", "2024-13-45T99:99", "YYYY-MM-DD HH:MM"),
        ("impact time in year -5000", "impact_started", "-5000-01-01T00:00", "too far in the past"),
        ("impact time in 1970", "impact_started", "1970-01-01T00:00", "too far in the past"),
        ("impact time in 9999", "impact_started", "9999-12-31T23:59", "in the future"),
        ("idempotency key markup", "idempotency_key", SCRIPT, "form is damaged"),
        ("idempotency key 101 characters", "idempotency_key", &"k".repeat(101), "form is damaged"),
        ("idempotency key with a newline", "idempotency_key", "abc\ndef", "form is damaged"),
        ("idempotency key with SQL", "idempotency_key", "x' OR '1'='1", "form is damaged"),
    ] {
        let f = declare_form(&[(field, value)]);
        cases.push(f.post(what, f.body()).refused(422, says).shows(None, ".error-message li", says));
    }

    // 5,000 unknown services get one message, not 5,000.
    let names: Vec<String> = (0..5000).map(|i| format!("svc-{i}")).collect();
    let mut pairs = vec![("idempotency_key", fresh_key()), ("title", "Many services".into())];
    pairs.extend(names.into_iter().map(|n| ("services", n)));
    cases.push(
        Case::post("POST /declare: 5,000 unknown services", "/declare", form(&borrow(&pairs)))
            .refused(422, "Unknown service")
            .shows(None, ".error-message li", "Unknown service \u{201c}svc-0\u{201d}."),
    );

    // Everything typed is shown back as text when the form returns.
    let summary = "</textarea><script>alert('summary')</script>";
    let f = declare_form(&[("title", ""), ("summary", summary), ("impact_started", IMG), ("severity", "\"><b>SEV</b>")]);
    cases.push(
        f.post("every field hostile, title missing: all shown back as text", f.body())
            .refused(422, "Nothing was saved")
            .shows(None, "textarea[name=summary]", summary)
            .shows_attr(None, "input[name=impact_started]", "value", IMG)
            .shows(None, ".error-message li", "Unknown severity \u{201c}\"><b>SEV</b>\u{201d}; choose one of SEV0, SEV1, SEV2, SEV3, SEV4 or unknown."),
    );

    // A replayed idempotency key: the same submission is answered with its incident; anything
    // else (other content, another person) is refused.
    let (key, title) = (s.replay_key.as_str(), s.replay_title.as_str());
    let replayed = "POST /declare: replayed idempotency key";
    let conflict = "already used to declare";
    for (what, body, who) in [
        ("different title", form(&[("idempotency_key", key), ("title", "A different title")]), Who::Me),
        ("different summary", form(&[("idempotency_key", key), ("title", title), ("summary", SCRIPT)]), Who::Me),
        ("now a drill", form(&[("idempotency_key", key), ("title", title), ("drill", "on")]), Who::Me),
        ("same body, another person", form(&[("csrf", "{other_csrf}"), ("idempotency_key", key), ("title", title)]), Who::Other),
    ] {
        cases.push(Case::post(format!("{replayed}, {what}"), "/declare", body).who(who).refused(409, conflict));
    }
    cases.push(
        Case::post(format!("{replayed}, same body"), "/declare", form(&[("idempotency_key", key), ("title", title)]))
            .redirect(&format!("/incidents/{}", s.other)),
    );
    cases
}

/// The incident page's forms (status, severity, lead, notes, retry) and every incident path.
#[rustfmt::skip]
fn incident_form_cases(s: &Setup, all: &[Form]) -> Vec<Case> {
    let mut cases = Vec::new();
    let t = s.target;
    let by = |label: &str| all.iter().find(|f| f.label == label).unwrap();
    let stale = "Someone changed this incident";
    let (ten_k_r, ten_k_i, ten_k_s) = ("r".repeat(10_000), "i".repeat(10_000), "S".repeat(10_000));
    let (long_name, long_email) = ("n".repeat(101), format!("{}@example.com", "g".repeat(243)));
    let lead_action = "Choose whether to take, assign or clear";
    let role_action = "Choose whether to take, hand over or leave the role";
    for (label, what, field, value, code, says) in [
        ("POST status", "status empty", "status", "", 422, "Choose a status"),
        ("POST status", "status markup", "status", SCRIPT, 422, "Choose a status"),
        ("POST status", "status 10,000 characters", "status", &ten_k_r, 422, "Choose a status"),
        ("POST status", "status with a newline inside", "status", "resol\nved", 422, "Choose a status"),
        ("POST status", "status in capitals", "status", "RESOLVED", 422, "Choose a status"),
        ("POST status", "status unchanged", "status", "investigating", 409, "already"),
        ("POST status", "expected status stale and hostile", "expected", IMG, 409, stale),
        ("POST status", "expected status 10,000 characters", "expected", &ten_k_i, 409, stale),
        ("POST status", "expected status missing", "expected", "", 409, stale),
        ("POST severity", "severity empty", "severity", "", 422, "Choose the new severity"),
        ("POST severity", "severity only spaces", "severity", "   ", 422, "Choose the new severity"),
        ("POST severity", "severity markup", "severity", SCRIPT, 422, "Unknown severity \u{201c}<script>alert(1)</script>\u{201d}"),
        ("POST severity", "severity 10,000 characters", "severity", &ten_k_s, 422, "Unknown severity"),
        ("POST severity", "severity with a newline inside", "severity", "SEV\n1", 422, "Unknown severity"),
        ("POST severity", "severity unchanged", "severity", "unknown", 409, "already"),
        ("POST severity", "expected severity stale and hostile", "expected", QUOTES, 409, stale),
        ("POST lead", "action missing", "action", "", 422, lead_action),
        ("POST lead", "action markup", "action", SCRIPT, 422, lead_action),
        ("POST lead", "action in capitals", "action", "TAKE", 422, lead_action),
        ("POST lead", "name empty", "name", "", 422, "Enter your name"),
        ("POST lead", "name 101 characters", "name", &long_name, 422, "at most 100 characters"),
        ("POST lead", "name with a newline", "name", "Grace\nHopper", 422, "control characters"),
        ("POST lead", "email markup", "email", IMG, 422, "Enter an email address"),
        ("POST lead", "email empty", "email", "", 422, "Enter an email address"),
        ("POST lead", "email 255 characters", "email", &long_email, 422, "Enter an email address"),
        ("POST lead", "email with a newline", "email", "grace@example.com\r\nBcc: x@evil.example", 422, "Enter an email address"),
        ("POST lead", "expected lead stale and hostile", "expected", EVIL_EMAIL, 409, stale),
        ("POST role", "action missing", "action", "", 422, role_action),
        ("POST role", "action markup", "action", SCRIPT, 422, role_action),
        ("POST role", "action in capitals", "action", "ASSIGN", 422, role_action),
        ("POST role", "name 101 characters", "name", &long_name, 422, "at most 100 characters"),
        ("POST role", "name with a newline", "name", "Grace\nHopper", 422, "control characters"),
        ("POST role", "email markup", "email", IMG, 422, "Enter an email address"),
        ("POST role", "email empty", "email", "", 422, "Choose who should hold the role"),
        ("POST role", "email 255 characters", "email", &long_email, 422, "Enter an email address"),
        ("POST role", "email with a newline", "email", "grace@example.com\r\nBcc: x@evil.example", 422, "Enter an email address"),
        ("POST role", "expected holder stale and hostile", "expected", EVIL_EMAIL, 409, stale),
        ("POST notes", "note empty", "note", "", 422, "Write something"),
        ("POST notes", "note only whitespace and newlines", "note", " \r\n\t\n ", 422, "Write something"),
        ("POST notes", "note only invisible characters", "note", INVISIBLE, 422, "Write something"),
        ("POST lead", "name only invisible characters", "name", INVISIBLE, 422, "Enter your name"),
        ("POST notes", "note 20,001 characters", "note", &"n".repeat(20_001), 422, "at most 20,000 characters"),
        ("POST notes", "note 20,001 characters of markup", "note", &format!("{}x", SCRIPT.repeat(800)), 422, "at most 20,000 characters"),
        ("POST status", "status declined without a reason", "status", "declined", 422, "needs a reason"),
        ("POST status", "status merged without a survivor", "status", "merged", 422, "needs a reason"),
        ("POST decline", "reason empty", "reason", "", 422, "Say why this is not an incident"),
        ("POST decline", "reason only invisible characters", "reason", INVISIBLE, 422, "Say why this is not an incident"),
        ("POST decline", "reason 2,001 characters", "reason", &"r".repeat(2001), 422, "at most 2,000 characters"),
        ("POST decline", "expected status stale and hostile", "expected", IMG, 409, stale),
        ("POST merge", "into itself", "into", &t.to_string(), 422, "cannot be merged into itself"),
        ("POST merge", "into itself, with the prefix", "into", &format!("INC-{t}"), 422, "cannot be merged into itself"),
        ("POST merge", "into markup", "into", SCRIPT, 422, "Give the number"),
        ("POST merge", "into empty", "into", "", 422, "Give the number"),
        ("POST merge", "into 1,000 digits", "into", &"9".repeat(1000), 422, "Give the number"),
        ("POST merge", "into an unknown incident", "into", "INC-424242", 422, "There is no INC-424242"),
        ("POST merge", "expected status stale and hostile", "expected", QUOTES, 409, stale),
    ] {
        let f = by(label);
        cases.push(f.post(what, f.body_with(field, value)).refused(code, says));
    }
    let notes = by("POST notes");
    cases.push(notes.post("note field missing", notes.body_without("note")).refused(422, "Write something"));
    let drills = by("POST /drills");
    let pick = "Choose a drill scenario from the list";
    for (what, value) in [
        ("scenario empty", ""),
        ("scenario markup", SCRIPT),
        ("scenario unknown", "not-a-scenario"),
        ("scenario in capitals", "GAME-DAY"),
        ("scenario 10,000 characters", &"g".repeat(10_000)),
        ("scenario only invisible characters", INVISIBLE),
    ] {
        cases.push(drills.post(what, drills.body_with("scenario", value)).refused(422, pick));
    }
    cases.push(drills.post("scenario missing", drills.body_without("scenario")).refused(422, pick));
    let lead = format!("/incidents/{t}/lead");
    cases.push(Case::post("POST lead: take, with a stale hostile expected lead", &lead, form(&[("action", "take"), ("expected", SCRIPT)])).refused(409, stale));
    cases.push(Case::post("POST lead: clear when nobody leads", &lead, form(&[("action", "clear"), ("expected", "")])).refused(409, "already leads"));
    let role = |r: &str| format!("/incidents/{t}/roles/{r}");
    cases.push(Case::post("POST role: leave a role nobody holds", &role("scribe"), form(&[("action", "leave"), ("expected", "")])).refused(409, "Nobody holds the scribe role"));
    cases.push(Case::post("POST role: take, with a stale hostile expected holder", &role("scribe"), form(&[("action", "take"), ("expected", SCRIPT)])).refused(409, stale));
    cases.push(Case::post("POST role: hand over to someone unknown, without a name", &role("scribe"), form(&[("action", "assign"), ("expected", ""), ("email", "stranger@example.com")])).refused(422, "has signed in yet"));
    for (what, r) in [
        ("unknown role", "chef"),
        ("role in capitals", "COMMS"),
        ("role of markup", "%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ("role with a NUL", "comms%00"),
        ("role of invalid UTF-8", "%FF%FE"),
        ("role of 1,000 characters", &"c".repeat(1000)),
    ] {
        cases.push(Case::post(format!("POST role: {what}"), &role(r), form(&[("action", "take"), ("expected", "")])).refused(404, "no such role"));
    }

    // Retry: only a failed delivery of this very incident.
    let retry = |what: &str, incident: &str, id: &str| {
        Case::post(format!("POST retry: {what}"), &format!("/incidents/{incident}/deliveries/{id}/retry"), form(&[]))
    };
    let (t, dead, done, other) = (t.to_string(), s.dead_delivery.to_string(), s.done_delivery.to_string(), s.other.to_string());
    cases.push(retry("a delivery that did not fail", &t, &done).refused(409, "not failed"));
    cases.push(retry("another incident's failed delivery", &other, &dead).refused(409, "not failed"));
    cases.push(retry("a delivery that does not exist", &t, "987654").refused(409, "not failed"));
    for (what, id) in [
        ("a delivery id that is not a number", "abc"),
        ("a delivery id of markup", "%3Cscript%3E"),
        ("a delivery id of zero", "0"),
        ("a negative delivery id", "-1"),
        ("a delivery id past i64", "99999999999999999999"),
        ("a delivery id with a NUL", "1%00"),
        ("a delivery id of invalid UTF-8", "%FF%FE"),
    ] {
        cases.push(retry(what, &t, id).refused(404, "no such delivery"));
    }

    // Bad incident numbers in every incident path, with a body that would otherwise be valid.
    let valid = form(&[("status", "identified"), ("expected", "investigating"), ("severity", "SEV1"), ("action", "take"), ("note", "x"), ("reason", "x"), ("into", "1")]);
    for (what, number, says) in [
        ("not a number", "abc", "no such incident"),
        ("markup", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "no such incident"),
        ("zero", "0", "no such incident"),
        ("negative", "-1", "no such incident"),
        ("past i64", "99999999999999999999", "no such incident"),
        ("19 digits (i64 max)", "9223372036854775807", "no such incident"),
        ("1,000 digits", &"9".repeat(1000), "no such incident"),
        ("INC- prefix, no digits", "INC-", "no such incident"),
        ("a NUL", "1%00", "no such incident"),
        ("invalid UTF-8", "%FF%FE", "no such incident"),
        ("unknown", "424242", "There is no incident INC-424242"),
        ("unknown with prefix", "INC-424242", "There is no incident INC-424242"),
    ] {
        cases.push(Case::get(format!("GET incident page: number {what}"), &format!("/incidents/{number}")).refused(404, says));
        for action in ["status", "severity", "lead", "notes", "roles/comms", "decline", "merge"] {
            let path = format!("/incidents/{number}/{action}");
            cases.push(Case::post(format!("POST {action}: incident number {what}"), &path, valid.clone()).refused(404, says));
        }
        cases.push(retry(&format!("incident number {what}"), number, &dead).refused(404, says));
    }
    cases
}

/// GETs with hostile query strings, cookies, methods and paths.
#[rustfmt::skip]
fn query_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (what, query) in [
        ("page -1", "page=-1"),
        ("page 0", "page=0"),
        ("page past i64", "page=99999999999999999999"),
        ("page 1e3", "page=1e3"),
        ("page of markup", "page=%3Cscript%3E"),
        ("page with a NUL", "page=1%00"),
        ("page over the maximum", "page=100001"),
    ] {
        cases.push(Case::get(format!("GET /: {what}"), &format!("/?{query}")).page("Page 1 of 1"));
    }
    cases.push(Case::get("GET /: page far past the end", "/?page=100000").page("Page 100000 of 1"));
    let long_severity = format!("severity={}", "S".repeat(10_000));
    for (what, query, says) in [
        ("status unknown", "status=bogus", "Unknown status filter ignored"),
        ("status markup", "status=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "Unknown status filter ignored"),
        ("status with a NUL", "status=resolved%00", "Unknown status filter ignored"),
        ("severity markup", "severity=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", "Unknown severity filter ignored"),
        ("severity 10,000 characters", &long_severity, "Unknown severity filter ignored"),
        ("service markup", "service=%27%20onmouseover%3D%27alert(1)", "Unknown service filter ignored"),
        ("every filter unknown", "status=x&severity=y&service=z", "Unknown status filter ignored. Unknown severity filter ignored. Unknown service filter ignored."),
        ("search for SQL", "q=%27%20OR%201%3D1%20--", "No live incidents match these filters"),
        ("search for LIKE wildcards", "q=%25_%25", "No live incidents match these filters"),
        ("search ending in the LIKE escape", "q=a%5C", "No live incidents match these filters"),
        ("a query of invalid UTF-8 keys", "%FF%FE=1", "Incidents"),
    ] {
        cases.push(Case::get(format!("GET /: {what}"), &format!("/?{query}")).page(says));
    }
    // The search box and the pager links echo the search: as an attribute, and encoded.
    let q = "\"><script>alert('q')</script>";
    for (what, query, selector, attr, shows) in [
        ("search for markup", format!("q={}", enc(q)), "input[name=q]", "value", q.to_string()),
        ("search for markup on page 2 (echoed into the pager link)", format!("page=2&status=resolved&q={}", enc(q)), "a[rel=prev]", "href", format!("/?page=1&status=resolved&q={}", enc(q))),
        ("search 60,000 characters long", format!("q={}", "q".repeat(60_000)), "input[name=q]", "value", "q".repeat(200)),
        ("search with control characters", "q=a%0Ab%00c%1Bd".into(), "input[name=q]", "value", "abcd".into()),
        ("search of invalid UTF-8", "q=%FF%FE".into(), "input[name=q]", "value", "\u{fffd}\u{fffd}".into()),
    ] {
        cases.push(Case::get(format!("GET /: {what}"), &format!("/?{query}")).page("Incidents").shows_attr(None, selector, attr, &shows));
    }
    cases.push(Case::get("GET /: a filter given twice", "/?status=resolved&status=investigating").refused(400, "duplicate field"));
    cases.push(Case::get("GET /declare: preselected service of markup", &format!("/declare?service={}", enc(SCRIPT))).page("Declare an incident"));
    cases.push(Case::get("GET /declare: a service given twice", "/declare?service=a&service=b").refused(400, "duplicate field"));

    let next = "/\"><script>alert('next')</script>";
    cases.push(Case::get("GET /identify: next of markup", &format!("/identify?next={}", enc(next))).page("Who are you?").shows_attr(None, "input[name=next]", "value", next));
    for (what, next) in [
        ("javascript: next", "javascript:alert(1)"),
        ("protocol-relative next", "//evil.example/"),
        ("next with a newline", "/a\nb"),
        ("backslash next", "/\\evil.example"),
    ] {
        let path = format!("/identify?next={}", enc(next));
        cases.push(Case::get(format!("GET /identify: {what}"), &path).page("Who are you?").shows_attr(None, "input[name=next]", "value", "/"));
    }
    let cookie = "rb_csrf=\"><script>alert('cookie')</script>AAAAAAAAAAAAAAAAAAAAAAAA";
    cases.push(
        Case::get("GET /identify: a sign-in token cookie of markup", "/identify")
            .who(Who::Cookie(cookie))
            .page("Who are you?")
            .shows_attr(None, "input[name=csrf]", "value", cookie.trim_start_matches("rb_csrf=")),
    );

    for (what, path) in [
        ("path traversal", "/static/..%2F..%2FCargo.toml"),
        ("encoded NUL", "/static/app.js%00"),
        ("markup", "/static/%3Cscript%3E"),
    ] {
        cases.push(Case::get(format!("GET static: {what}"), path).refused(404, "no such file"));
    }
    // No route answers another method: the same page as any unknown address.
    for (method, path) in [
        ("PUT", "/declare"),
        ("DELETE", "/incidents/1"),
        ("GET", "/incidents/1/notes"),
        ("GET", "/signout"),
        ("PATCH", "/identify"),
    ] {
        cases.push(Case::other_method(format!("{method} {path}: wrong method"), method, path).refused(404, "nothing at this address"));
    }
    cases.push(Case::get("GET an unknown path of markup", "/%3Cscript%3Ealert(1)%3C%2Fscript%3E").refused(404, "nothing at this address"));
    cases.push(Case::get("GET an unknown path with a quote", "/x%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E").refused(404, "nothing at this address"));
    cases
}

/// Hostile content that is a legitimate value: stored, then shown as text everywhere.
#[rustfmt::skip]
fn accepted_cases(s: &Setup) -> Vec<Case> {
    let mut cases = Vec::new();
    let inc = Some("/incidents/{n}");

    // A person whose name and email are markup; everything after this is done by them.
    let body = form(&[("csrf", "{pre_csrf}"), ("next", "javascript:alert(1)"), ("name", EVIL_NAME), ("email", EVIL_EMAIL)]);
    cases.push(
        Case::post("POST /identify: name and email of markup, next javascript:", "/identify", body)
            .redirect("/")
            .shows(Some("/"), "form.me span", EVIL_NAME)
            .shows_attr(Some("/"), "form.me span", "title", EVIL_EMAIL),
    );

    for (what, title) in [
        ("script tag", SCRIPT),
        ("attribute breakout with double quotes", IMG),
        ("attribute breakout with single quotes", QUOTES),
        ("closing the title element", "</title><script>alert('title')</script>"),
        ("closing a textarea", "</textarea><svg onload=alert(1)>"),
        ("template syntax", "{{ 7*7 }} {% if true %}x{% endif %} ${7*7}"),
        ("a Markdown javascript: link", "[click](javascript:alert(1))"),
        ("HTML entities", "&lt;script&gt; &amp; &#x3C;b&#x3E;"),
        ("200 characters of markup", &"<>\"'&".repeat(40)),
        ("right-to-left override", "\u{202e}txt.exe evil"),
    ] {
        let f = declare_form(&[("title", title), ("summary", "")]);
        cases.push(
            f.post(&format!("title {what}"), f.body())
                .stored()
                .shows(inc, "h1", title)
                .shows(inc, "title", &format!("INC-{{n}} {title} · Big Red Button"))
                .shows(Some("/"), "#live a", &format!("INC-{{n}} {title}"))
                .shows(Some("/declare"), "#join a", &format!("INC-{{n}} {title}")),
        );
    }

    // The Markdown summary: scripts and dangerous links dropped, the words kept.
    for (what, summary, words) in [
        ("javascript: link", "[click me](javascript:alert(1))", "click me"),
        ("JaVaScRiPt: link", "[click me](JaVaScRiPt:alert(1))", "click me"),
        ("javascript: link with an entity-encoded tab", "[click me](java&#x09;script:alert(1))", "click me"),
        ("javascript: link with spaces", "[click me](<  javascript:alert(1)>)", "click me"),
        ("data:text/html link", "[click me](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", "click me"),
        ("vbscript: link", "[click me](vbscript:msgbox(1))", "click me"),
        ("javascript: image", "![a picture](javascript:alert(1)) after", "after"),
        ("data: image", "![a picture](data:text/html,alert(1)) after", "after"),
        ("reference link to javascript:", "[click me][r]\n\n[r]: javascript:alert(1)", "click me"),
        ("autolink to javascript:", "see <javascript:alert(1)>", "see"),
        ("raw script tag", "before <script>alert(1)</script> after", "before after"),
        ("raw img onerror", "before <img src=x onerror=alert(1)> after", "before after"),
        ("raw anchor to javascript:", "<a href=\"javascript:alert(1)\">click me</a>", "click me"),
        ("raw anchor with an entity-encoded scheme", "<a href=\"&#106;avascript:alert(1)\">click me</a>", "click me"),
        ("iframe srcdoc", "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe> after", "after"),
        ("svg onload", "<svg onload=alert(1)><circle r=1 /></svg> after", "after"),
        ("details ontoggle", "<details open ontoggle=alert(1)>click me</details>", "click me"),
        ("style tag", "<style>body{display:none}</style> after", "after"),
        ("link with a quote breakout", "[click me](https://example.com/\"onmouseover=\"alert(1))", "click me"),
        ("form and button", "<form action=\"https://evil.example\"><button>click me</button></form>", "click me"),
    ] {
        let f = declare_form(&[("title", &format!("Summary with a {what}")), ("summary", summary)]);
        cases.push(f.post(&format!("summary {what}"), f.body()).stored().shows(inc, ".markdown", words));
    }
    let f = declare_form(&[("title", "Summary with safe Markdown"), ("summary", "**bold** and [docs](https://example.com/a?b=1&c=2)")]);
    cases.push(
        f.post("summary with safe Markdown (the renderer is really in use)", f.body())
            .stored()
            .shows(inc, ".markdown strong", "bold")
            .shows_attr(inc, ".markdown a", "href", "https://example.com/a?b=1&c=2"),
    );
    let f = declare_form(&[("title", "Checkboxes with markup"), ("lead_self", SCRIPT), ("drill", "JaVaScRiPt:alert(1)")]);
    cases.push(f.post("checkboxes with hostile values count as unticked", f.body()).stored().shows(inc, ".facts .warn", "nobody yet"));

    // Notes are plain text: markup and Markdown links are shown as typed.
    let (notes, target) = (format!("/incidents/{}/notes", s.target), format!("/incidents/{}", s.target));
    for (what, note) in [
        ("script tag", SCRIPT),
        ("Markdown javascript: link", "[click me](javascript:alert(1))"),
        ("Markdown data: image", "![x](data:text/html,<script>alert(1)</script>)"),
        ("attribute breakout", IMG),
        ("several lines closing the paragraph", "line one\n</p><script>alert(1)</script>\nline three"),
        ("20,000 characters of markup", &SCRIPT.repeat(800)),
    ] {
        cases.push(Case::post(format!("POST notes: {what}"), &notes, form(&[("note", note)])).stored().shows(Some(&target), ".note-body", note));
    }

    // A lead whose name and email are markup, then taking the lead back.
    let lead = format!("/incidents/{}/lead", s.target);
    cases.push(
        Case::post("POST lead: assign a person named and addressed in markup", &lead, form(&[("expected", ""), ("action", "assign"), ("name", IMG), ("email", LEAD_EMAIL)]))
            .stored()
            .shows(Some(&target), ".facts strong", IMG)
            .shows_attr(Some(&target), "input[name=expected]", "value", LEAD_EMAIL)
            .shows(Some(&target), "#timeline li", &format!("made {IMG} the lead"))
            .shows(Some("/"), "#live td", IMG),
    );
    cases.push(
        Case::post("POST lead: take it back, expected lead given as markup", &lead, form(&[("expected", LEAD_EMAIL), ("action", "take")]))
            .stored()
            .shows(Some(&target), ".facts strong", EVIL_NAME)
            .shows(Some(&target), "#timeline li", &format!("handed the lead from {IMG} to {EVIL_NAME}")),
    );
    // The same person as comms lead: the Roles card and the timeline show the markup as text.
    let comms = format!("/incidents/{}/roles/comms", s.target);
    cases.push(
        Case::post("POST role: give the comms lead to a person named and addressed in markup", &comms, form(&[("expected", ""), ("action", "assign"), ("name", IMG), ("email", LEAD_EMAIL)]))
            .stored()
            .shows(Some(&target), "#role-comms .role-holder", IMG)
            .shows_attr(Some(&target), "#role-comms input[name=expected]", "value", LEAD_EMAIL)
            .shows(Some(&target), "#timeline li", &format!("made {IMG} comms lead")),
    );
    cases
}

// ---------------------------------------------------------------------------------------------
// Running it.

/// Everything stored, table by table, so a refusal can be shown to have changed nothing.
async fn stored(app: &TestApp) -> Vec<String> {
    use redbutton::db::schema as s;
    app.state
        .db
        .run(|c| {
            Ok(vec![
                format!(
                    "incidents {:?}",
                    s::incidents::table
                        .order(s::incidents::id)
                        .select(IncidentRow::as_select())
                        .load(c)?
                ),
                format!(
                    "incident_services {:?}",
                    s::incident_services::table
                        .order((s::incident_services::incident_id, s::incident_services::service))
                        .load::<(i64, String)>(c)?
                ),
                format!(
                    "timeline_entries {:?}",
                    s::timeline_entries::table
                        .order(s::timeline_entries::id)
                        .select(TimelineEntryRow::as_select())
                        .load(c)?
                ),
                format!(
                    "outbox {:?}",
                    s::outbox::table
                        .order(s::outbox::id)
                        .select(OutboxRow::as_select())
                        .load(c)?
                ),
                format!(
                    "status_updates {:?}",
                    s::status_updates::table
                        .order(s::status_updates::id)
                        .select(redbutton::db::models::StatusUpdateRow::as_select())
                        .load(c)?
                ),
                format!(
                    "idempotency_keys {:?}",
                    s::idempotency_keys::table
                        .order(s::idempotency_keys::key)
                        .select(IdempotencyRecord::as_select())
                        .load(c)?
                ),
                format!(
                    "external_refs {:?}",
                    s::external_refs::table
                        .order((
                            s::external_refs::incident_id,
                            s::external_refs::integration,
                            s::external_refs::name
                        ))
                        .select(ExternalRefRow::as_select())
                        .load(c)?
                ),
                format!(
                    "incident_roles {:?}",
                    s::incident_roles::table
                        .order((s::incident_roles::incident_id, s::incident_roles::role))
                        .select(redbutton::db::models::RoleRow::as_select())
                        .load(c)?
                ),
                // Not `users`: a sign-in writes its row (name, last seen) even when the corpus
                // only checks where it redirects to.
                format!(
                    "api_tokens {:?}",
                    s::api_tokens::table
                        .order(s::api_tokens::id)
                        .select(redbutton::db::models::api_token::ApiTokenRow::as_select())
                        .load(c)?
                ),
                // `write_lock` is bumped by every committed SQLite write (the way it takes the
                // lock), even a repeat that writes nothing else; it holds no data.
                format!(
                    "counters {:?}",
                    s::counters::table
                        .filter(s::counters::name.ne("write_lock"))
                        .order(s::counters::name)
                        .load::<(String, i64)>(c)?
                ),
                format!(
                    "app_secrets {:?}",
                    s::app_secrets::table
                        .order(s::app_secrets::name)
                        .select(s::app_secrets::name)
                        .load::<String>(c)?
                ),
            ])
        })
        .await
        .unwrap()
}

/// Waits until the worker has finished with every delivery (done or failed for good).
async fn settle(app: &TestApp) {
    app.wait_outbox(&["done", "dead"], Duration::from_secs(30)).await;
}

struct Sessions {
    csrf: String,
    other_cookie: String,
    other_csrf: String,
}

fn cookie_from(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .find_map(|v| {
            let pair = v.to_str().ok()?.split(';').next()?;
            let (k, val) = pair.split_once('=')?;
            (k.trim() == name).then(|| val.trim().to_string())
        })
}

/// Names a second person in a separate cookie jar.
async fn other_session(app: &TestApp) -> (String, String) {
    let r = app
        .client
        .get(format!("{}/identify", app.address))
        .send()
        .await
        .unwrap();
    let pre = cookie_from(&r, "rb_csrf").unwrap();
    let token = hidden(&r.text().await.unwrap(), "csrf");
    let r = app
        .client
        .post(format!("{}/identify", app.address))
        .header(reqwest::header::COOKIE, format!("rb_csrf={pre}"))
        .header(reqwest::header::CONTENT_TYPE, URLENCODED)
        .body(format!(
            "csrf={token}&next=%2F&name=Mallory&email=mallory%40example.com"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = format!("rb_session={}", cookie_from(&r, "rb_session").unwrap());
    let html = app
        .client
        .get(format!("{}/declare", app.address))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (cookie, hidden(&html, "csrf"))
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

struct Answer {
    status: u16,
    location: Option<String>,
    content_type: String,
    body: String,
}

async fn send(app: &TestApp, sessions: &mut Sessions, case: &Case) -> Answer {
    let pre = app.cookies.lock().unwrap().get("rb_csrf").cloned().unwrap_or_default();
    let mut body = replace_all(&case.body, b"{csrf}", sessions.csrf.as_bytes());
    body = replace_all(&body, b"{other_csrf}", sessions.other_csrf.as_bytes());
    body = replace_all(&body, b"{pre_csrf}", pre.as_bytes());
    let cookie = match case.who {
        Who::Me => Some(app.cookie_header()),
        Who::Other => Some(sessions.other_cookie.clone()),
        Who::Nobody => None,
        Who::Forged => Some(FORGED_SESSION.to_string()),
        Who::Cookie(c) => Some(c.to_string()),
    };
    if case.chunked {
        return send_chunked(app, case, cookie.as_deref(), &body).await;
    }
    let url = format!("{}{}", app.address, case.path);
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut req = app.client.request(method.clone(), url);
    if method != reqwest::Method::GET {
        req = req.body(body);
    }
    if let Some(c) = cookie {
        req = req.header(reqwest::header::COOKIE, c);
    }
    if let Some(ct) = &case.content_type {
        req = req.header(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_bytes(ct).unwrap(),
        );
    }
    if let Some(o) = case.origin {
        req = req.header(reqwest::header::ORIGIN, o);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: request failed: {e}", case.name));
    let new_session = matches!(case.who, Who::Me) && cookie_from(&resp, "rb_session").is_some();
    if matches!(case.who, Who::Me) {
        for name in ["rb_session", "rb_csrf"] {
            if let Some(v) = cookie_from(&resp, name) {
                app.cookies.lock().unwrap().insert(name.into(), v);
            }
        }
    }
    let answer = Answer {
        status: resp.status().as_u16(),
        location: resp
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string()),
        content_type: resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        body: resp.text().await.unwrap(),
    };
    if new_session {
        sessions.csrf = app.csrf().await;
    }
    answer
}

/// Sends a POST whose body comes in chunks with no declared length (so the size limit has to
/// be enforced while reading), over a plain socket, and reads the whole answer.
async fn send_chunked(app: &TestApp, case: &Case, cookie: Option<&str>, body: &[u8]) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n",
        case.path
    );
    if let Some(c) = cookie {
        head.push_str(&format!("Cookie: {c}\r\n"));
    }
    if let Some(ct) = &case.content_type {
        head.push_str(&format!("Content-Type: {}\r\n", String::from_utf8_lossy(ct)));
    }
    head.push_str("\r\n");
    let mut wire = head.into_bytes();
    for chunk in body.chunks(16 * 1024) {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before it has read everything: that is allowed.
    let _ = stream.write_all(&wire).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{}: no answer: {text:?}", case.name));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        })
    };
    let chunked_answer = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    Answer {
        status,
        location: header("location"),
        content_type: header("content-type").unwrap_or_default(),
        body: if chunked_answer {
            dechunk(body)
        } else {
            body.to_string()
        },
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Whitespace folded, as a person reads it.
fn fold(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether an attribute value would run script if a browser followed it: the scheme after the
/// whitespace and control characters browsers ignore, in any case.
fn dangerous_url(value: &str) -> bool {
    let v: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    ["javascript:", "data:", "vbscript:"].iter().any(|s| v.starts_with(s))
}

const URL_ATTRS: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "xlink:href",
    "poster",
    "background",
    "data",
    "srcset",
    "ping",
    "cite",
    "lowsrc",
    "dynsrc",
];

/// Asserts that a document (or fragment) holds no markup that could run script: no script but
/// the app's own, no event handler attribute, no `javascript:`/`data:`/`vbscript:` URL, no
/// element that embeds another document.
fn assert_no_active_markup(root: ElementRef<'_>, whence: &str, email: bool) {
    let all = Selector::parse("*").unwrap();
    for el in std::iter::once(root).chain(root.select(&all)) {
        let e = el.value();
        let name = e.name().to_ascii_lowercase();
        if name == "script" {
            assert!(
                e.attr("src") == Some("/static/app.js") && el.text().all(|t| t.trim().is_empty()),
                "{whence}: a script that is not the app's own: {}",
                el.html()
            );
        }
        assert!(
            ![
                "iframe", "frame", "frameset", "object", "embed", "applet", "base", "svg", "math", "style", "template"
            ]
            .contains(&name.as_str()),
            "{whence}: a <{name}> element: {}",
            el.html()
        );
        if name == "meta" {
            assert!(e.attr("http-equiv").is_none(), "{whence}: {}", el.html());
        }
        if name == "link" {
            assert_eq!(e.attr("href"), Some("/static/style.css"), "{whence}: {}", el.html());
        }
        if name == "form"
            && let Some(action) = e.attr("action")
        {
            assert!(
                action.starts_with('/') && !action.starts_with("//"),
                "{whence}: a form posting away: {}",
                el.html()
            );
        }
        for (attr, value) in e.attrs() {
            let attr = attr.to_ascii_lowercase();
            assert!(!attr.starts_with("on"), "{whence}: an event handler: {}", el.html());
            assert!(attr != "srcdoc", "{whence}: srcdoc: {}", el.html());
            assert!(email || attr != "style", "{whence}: an inline style: {}", el.html());
            if URL_ATTRS.contains(&attr.as_str()) {
                assert!(!dangerous_url(value), "{whence}: a script URL in {attr}: {}", el.html());
            }
        }
    }
}

/// A whole page, and each live part of it as `static/app.js` swaps it in (serialised, then
/// parsed again as a fragment: markup that changes meaning on the way would show here).
fn assert_inert(html: &str, whence: &str) {
    let doc = Html::parse_document(html);
    assert_no_active_markup(doc.root_element(), whence, false);
    for id in ["live", "timeline", "deliveries", "links", "join"] {
        let sel = Selector::parse(&format!("#{id}")).unwrap();
        if let Some(part) = doc.select(&sel).next() {
            let again = Html::parse_fragment(&part.inner_html());
            assert_no_active_markup(again.root_element(), &format!("{whence} #{id} (refreshed)"), false);
        }
    }
}

/// The values an element has: its text, or an attribute.
fn values(html: &str, selector: &str, attr: Option<&str>) -> Vec<String> {
    let doc = Html::parse_document(html);
    let sel = Selector::parse(selector).unwrap();
    doc.select(&sel)
        .filter_map(|e| match attr {
            Some(a) => e.value().attr(a).map(str::to_string),
            None => Some(fold(&e.text().collect::<String>())),
        })
        .collect()
}

/// What a person reads in an answer: the text of an HTML page, whitespace folded, or the body.
fn readable(a: &Answer) -> String {
    if a.content_type.starts_with("text/html") {
        fold(&Html::parse_document(&a.body).root_element().text().collect::<String>())
    } else {
        a.body.clone()
    }
}

/// A refusal is the app's own page, says something in words, and nothing of the app's insides.
fn assert_clear_message(case: &Case, a: &Answer) {
    assert!(
        a.content_type.starts_with("text/html"),
        "{}: a refusal should be the app's page, not {:?}: {:?}",
        case.name,
        a.content_type,
        a.body
    );
    let text = readable(a);
    assert!(
        text.split_whitespace().count() >= 2,
        "{}: no message in the answer: {:?}",
        case.name,
        a.body
    );
    for leak in [
        "panicked",
        "backtrace",
        "RUST_BACKTRACE",
        ".rs:",
        "diesel",
        "Error {",
        "SQLITE",
        "syntax error",
    ] {
        assert!(
            !a.body.contains(leak),
            "{}: the answer leaks internals ({leak}): {}",
            case.name,
            a.body
        );
    }
}

/// Sends one case and checks everything its row promises.
async fn run_case(app: &TestApp, sessions: &mut Sessions, case: &Case) {
    let before = stored(app).await;
    let a = send(app, sessions, case).await;
    match &case.expect {
        Expect::Refused(status, says) => {
            assert_eq!(a.status, *status, "{}: {}", case.name, a.body);
            let text = readable(&a);
            assert!(
                text.contains(says),
                "{}: the answer should say {says:?}: {text}",
                case.name
            );
            assert_clear_message(case, &a);
        }
        Expect::Page(says) => {
            assert_eq!(a.status, 200, "{}: {}", case.name, a.body);
            assert!(
                readable(&a).contains(says),
                "{}: the page should say {says:?}",
                case.name
            );
        }
        Expect::Redirect(to) => {
            assert_eq!(a.status, 303, "{}: {}", case.name, a.body);
            assert_eq!(a.location.as_deref(), Some(to.as_str()), "{}", case.name);
        }
        Expect::Stored => assert_eq!(a.status, 303, "{}: {}", case.name, a.body),
    }
    if a.content_type.starts_with("text/html") {
        assert_inert(&a.body, &case.name);
    } else {
        assert!(
            !a.body.to_ascii_lowercase().contains("<script"),
            "{}: {}",
            case.name,
            a.body
        );
    }

    let after = stored(app).await;
    if matches!(case.expect, Expect::Stored) {
        assert_ne!(before, after, "{}: nothing was stored", case.name);
        settle(app).await;
    } else {
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b, a, "{}: something was stored", case.name);
        }
    }

    // `{n}`: the incident the case redirected to.
    let n = a
        .location
        .as_deref()
        .and_then(|l| l.strip_prefix("/incidents/"))
        .unwrap_or("?");
    for shown in &case.shows {
        let html = match &shown.path {
            None => a.body.clone(),
            Some(p) => {
                let path = p.replace("{n}", n);
                let html = app.get_html(&path).await;
                assert_inert(&html, &format!("{} (then {path})", case.name));
                html
            }
        };
        let text = shown.text.replace("{n}", n);
        let found = values(&html, shown.selector, shown.attr);
        let hit = found.iter().any(|v| match shown.attr {
            Some(_) => *v == text,
            None => v.contains(&text),
        });
        assert!(
            hit,
            "{}: {} should show {text:?}, shows {found:?}",
            case.name, shown.selector
        );
    }
}

/// The app with an email integration (to a real SMTP sink) and the hostile vendor, and the
/// incidents the corpus aims at.
async fn start(sink: &SmtpSink) -> (TestApp, TestDb, Setup) {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.services = vec![
        service("checkout", "Checkout", &["payments@example.com"]),
        service("search", "Search", &[]),
    ];
    spawn.settings.integrations.email = Some(email_to_sink(sink.port));
    route_all_to(&mut spawn.settings, &["email", "hostile"]);
    spawn.notifiers = vec![Arc::new(HostileVendor)];
    // Ada (and Mallory, the other session) are admins, so the token forms are in the corpus too.
    spawn.settings.auth.admin_emails = vec!["ada@example.com".into(), "mallory@example.com".into()];
    // Two drill scenarios, so the "Start a drill" form (with its select) is in the corpus too.
    // Drills (the declare form's cases tick the box) reach the same integrations.
    spawn.settings.drills = Some(redbutton::config::DrillSettings {
        notifiers: vec!["email".into(), "hostile".into()],
        email_to: vec!["game-day@example.com".into()],
        events: redbutton::config::default_rule_events(),
        scenarios: ["game-day", "failover"]
            .map(|id| redbutton::config::DrillScenario {
                id: id.into(),
                title: format!("Drill {id}"),
                severity: "SEV2".into(),
                services: vec!["checkout".into()],
                summary: String::new(),
            })
            .to_vec(),
    });
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;

    let target = app.declare_ok("The target of every refusal").await;
    let (csrf, replay_key) = app.declare_form().await;
    // Its title holds the markup the dashboard search cases look for, so they find it.
    let replay_title = "Declared once with this key \"><script>alert('q')</script>".to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", &replay_key),
        ("title", &replay_title),
    ];
    let r = app.post_form("/declare", &form).await;
    assert_eq!(r.status(), 303);
    let other = number_from_location(&r);
    app.change_status(other, "investigating", "resolved").await;
    settle(&app).await;

    let target_id = incident_id(&app, target).await;
    let rows = app.outbox_rows().await;
    let of_target = |notifier: &str, state: &str| {
        rows.iter()
            .find(|r| r.incident_id == target_id && r.notifier == notifier && r.state == state)
            .unwrap_or_else(|| panic!("a {state} {notifier} delivery of the target"))
            .id
    };
    let token = redbutton::services::tokens::create(
        &app.state,
        &redbutton::domain::Actor {
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
        },
        &redbutton::services::tokens::TokenRequest {
            name: SCRIPT.into(),
            scopes: vec!["incidents:read".into()],
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap()
    .row
    .id;
    let setup = Setup {
        target,
        other,
        replay_key,
        replay_title,
        dead_delivery: of_target("hostile", "dead"),
        done_delivery: of_target("email", "done"),
        token,
    };
    (app, db, setup)
}

async fn incident_id(app: &TestApp, n: i64) -> i64 {
    app.state
        .db
        .run(move |c| redbutton::db::models::incident::find_by_number(c, n))
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Once everything is stored: every page at once, the live parts, the integration's hostile
/// answers, and the emails.
async fn assert_everything_shown_inert(app: &TestApp, sink: &SmtpSink, setup: &Setup) {
    settle(app).await;
    let all: Vec<(i64, String)> = app
        .state
        .db
        .run(|c| {
            use redbutton::db::schema::incidents::dsl::*;
            incidents.select((number, title)).order(number).load(c)
        })
        .await
        .unwrap();
    // The <script> incident in the past list too.
    let script = all.iter().find(|(_, t)| t == SCRIPT).unwrap().0;
    app.change_status(script, "investigating", "resolved").await;
    settle(app).await;
    let past = app.get_html("/?status=resolved").await;
    let row = format!("INC-{script} {SCRIPT}");
    assert!(
        values(&past, "#past a", None).contains(&row),
        "the past list shows {row:?}"
    );

    let mut pages: Vec<String> = [
        "/",
        "/?status=resolved",
        "/?q=%3Cscript",
        "/declare",
        "/declare?service=checkout",
    ]
    .map(String::from)
    .to_vec();
    pages.extend(all.iter().map(|(n, _)| format!("/incidents/{n}")));
    for p in &pages {
        assert_inert(&app.get_html(p).await, p);
    }
    // The admin page, as Ada again: the token named with markup is text.
    app.identify("Ada Lovelace", "ada@example.com").await;
    let tokens = app.get_html("/admin/tokens").await;
    assert_inert(&tokens, "/admin/tokens");
    assert!(
        values(&tokens, "td", None).iter().any(|t| t == SCRIPT),
        "the token's name as text"
    );

    // What the hostile integration said is shown as text; its javascript: links are not links.
    let page = app.get_html(&format!("/incidents/{}", setup.target)).await;
    for (selector, text) in [
        ("#deliveries .target", VENDOR_TARGET),
        ("#deliveries .derror", VENDOR_ERROR),
        ("#deliveries .ext", VENDOR_ID),
        ("#links a", VENDOR_KEY),
    ] {
        let found = values(&page, selector, None);
        assert!(
            found.iter().any(|v| v == text),
            "{selector} should show {text:?}: {found:?}"
        );
    }
    assert_eq!(
        values(&page, "#links a", Some("href")),
        vec!["https://jira.example.com/browse/\"><script>alert(3)</script>"],
        "only the http(s) link is shown; the javascript: one is dropped"
    );

    // The emails: the HTML part of each, as a mail client would render it.
    let expected = app.outbox_rows().await.iter().filter(|r| r.notifier == "email").count();
    let mails = sink.wait_for(expected, Duration::from_secs(30)).await;
    assert_eq!(mails.len(), expected);
    let (mut titles, mut notes) = (0, 0);
    for m in &mails {
        let decoded = m.decoded();
        let lower = decoded.to_ascii_lowercase();
        let start = lower.find("<!doctype html>").expect("an HTML part");
        let end = lower.rfind("</html>").expect("the end of the HTML part") + "</html>".len();
        let html = &decoded[start..end];
        assert_no_active_markup(
            Html::parse_document(html).root_element(),
            &format!("{:?}", m.header("Subject")),
            true,
        );
        titles += values(html, "h1", None)
            .iter()
            .filter(|t| t.ends_with(&format!(": {SCRIPT}")))
            .count();
        notes += values(html, "p", None).iter().filter(|t| *t == SCRIPT).count();
    }
    assert!(titles >= 1, "an email shows the <script> title as text");
    assert!(notes >= 1, "an email shows the <script> note as text");
}

#[tokio::test]
async fn the_hostile_corpus_is_refused_or_rendered_inert_and_refusals_store_nothing() {
    let sink = SmtpSink::start();
    let (app, _db, setup) = start(&sink).await;
    let (other_cookie, other_csrf) = other_session(&app).await;
    let mut sessions = Sessions {
        csrf: app.csrf().await,
        other_cookie,
        other_csrf,
    };

    let forms = forms(&setup);
    let mut corpus = every_form_cases(&forms);
    corpus.extend(identify_cases(&forms[0]));
    corpus.extend(declare_cases(&setup));
    corpus.extend(incident_form_cases(&setup, &forms));
    corpus.extend(query_cases());
    corpus.extend(token_cases(&forms));
    // Last: these change who is signed in and what the target incident shows.
    corpus.extend(accepted_cases(&setup));
    let mut names = std::collections::HashSet::new();
    for c in &corpus {
        assert!(names.insert(c.name.clone()), "two cases named {}", c.name);
    }

    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for case in &corpus {
        run_case(&app, &mut sessions, case).await;
        *outcomes.entry(case.outcome()).or_default() += 1;
    }
    assert_everything_shown_inert(&app, &sink, &setup).await;

    println!("hostile corpus: {} cases", corpus.len());
    for (outcome, count) in &outcomes {
        println!("  {count:4}  {outcome}");
    }
    app.stop().await;
}
