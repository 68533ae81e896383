//! Outgoing webhooks against wiremock receivers: the exact requests and bodies, a receiver that
//! verifies signatures the way docs/webhooks.md tells consumers to, per-endpoint filters and
//! secrets, retries that keep the webhook-id, and dead letters shown on the incident page.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use redbutton::notifiers::webhook::WebhookSettings;
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::*;

pub const OPS_SECRET: &str = "whsec_MfKQ9r6ZnqQ4y5e0cW1lXy3mJ9sK2pT7vB8xN4aH6dE=";
const AUDIT_SECRET: &str = "plain-audit-secret-of-some-length";

// ---------------------------------------------------------------------------------------------
// A receiver written from docs/webhooks.md alone ("Verifying a request").

/// Why a request was rejected.
#[derive(Debug, PartialEq, Eq)]
enum Rejected {
    MissingHeader(&'static str),
    BadTimestamp,
    TooOld,
    BadSecret,
    NoMatchingSignature,
}

/// Step by step as the docs say: read the three headers, check the timestamp is within five
/// minutes of `now`, derive the key from the secret, sign `id.timestamp.body`, and compare with
/// every `v1,` entry of the signature header in constant time.
fn verify(headers: &wiremock::http::HeaderMap, body: &[u8], secret: &str, now: i64) -> Result<String, Rejected> {
    let get = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or(Rejected::MissingHeader(name))
    };
    let id = get("webhook-id")?;
    let timestamp = get("webhook-timestamp")?;
    let signatures = get("webhook-signature")?;
    let ts: i64 = timestamp.parse().map_err(|_| Rejected::BadTimestamp)?;
    if (now - ts).abs() > 5 * 60 {
        return Err(Rejected::TooOld);
    }
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| Rejected::BadSecret)?,
        None => secret.as_bytes().to_vec(),
    };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(|_| Rejected::BadSecret)?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut ok = false;
    for entry in signatures.split(' ') {
        if let Some(("v1", sig)) = entry.split_once(',') {
            ok |= bool::from(sig.as_bytes().ct_eq(expected.as_bytes()));
        }
    }
    if ok { Ok(id) } else { Err(Rejected::NoMatchingSignature) }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

// ---------------------------------------------------------------------------------------------
// Setup.

fn hook(name: &str, server: &MockServer, secret_env: &str, events: &[&str]) -> WebhookSettings {
    WebhookSettings {
        name: name.into(),
        url: format!("{}/hooks/{name}?token=abc123", server.uri()),
        secret_env: secret_env.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        drills: true,
    }
}

fn with_hooks(db: &TestDb, hooks: Vec<WebhookSettings>) -> Spawn {
    let mut spawn = Spawn::new(db);
    spawn.settings.services = vec![service("checkout", "Checkout", &[])];
    spawn.settings.integrations.webhooks = hooks;
    spawn
        .settings
        .secret_values
        .insert("OPS_HOOK_SECRET".into(), OPS_SECRET.into());
    spawn
        .settings
        .secret_values
        .insert("AUDIT_HOOK_SECRET".into(), AUDIT_SECRET.into());
    spawn
}

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

async fn wait_requests(server: &MockServer, n: usize) -> Vec<Request> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = requests(server).await;
        if got.len() >= n || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn body_of(req: &Request) -> Value {
    serde_json::from_slice(&req.body).expect("the body is JSON")
}

fn header<'a>(req: &'a Request, name: &str) -> &'a str {
    req.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// Checks what every request shares (method, path, headers, a valid signature, the id in the
/// body), then replaces the values that change from run to run so the rest can be compared whole.
pub fn checked_body(req: &Request, path_name: &str, secret: &str) -> Value {
    assert_eq!(req.method.as_str(), "POST");
    assert_eq!(req.url.path(), format!("/hooks/{path_name}"));
    assert_eq!(req.url.query(), Some("token=abc123"), "the URL is used as configured");
    assert_eq!(header(req, "content-type"), "application/json");
    assert_eq!(
        header(req, "user-agent"),
        concat!("redbutton/", env!("CARGO_PKG_VERSION"))
    );
    let id = verify(&req.headers, &req.body, secret, now()).expect("the signature verifies");
    assert!(id.starts_with("msg_"), "{id}");
    let mut body = body_of(req);
    assert_eq!(body["id"], id.as_str(), "the body carries the webhook-id");
    for field in ["occurred_at", "incident.declared_at"] {
        let slot = match field.split_once('.') {
            Some((a, b)) => &mut body[a][b],
            None => &mut body[field],
        };
        let raw = slot.as_str().unwrap_or_else(|| panic!("{field} is a string"));
        assert!(raw.ends_with('Z'), "{field} is UTC: {raw}");
        let when = chrono::DateTime::parse_from_rfc3339(raw).unwrap_or_else(|_| panic!("{field}: {raw}"));
        assert!((chrono::Utc::now() - when.to_utc()).num_seconds().abs() < 120, "{raw}");
        *slot = json!("<time>");
    }
    body["id"] = json!("<id>");
    body
}

fn incident_json(app: &TestApp, n: i64, severity: &str, status: &str) -> Value {
    json!({
        "number": n,
        "reference": format!("INC-{n}"),
        "title": "Card payments failing",
        "severity": severity,
        "status": status,
        "services": ["checkout"],
        "summary": "Declines at **40%** since the 09:20 deploy.",
        "drill": false,
        "declared_at": "<time>",
        "declared_by": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "lead": {"name": "Ada Lovelace", "email": "ada@example.com"},
        "url": format!("{}/incidents/{n}", app.address),
        "bridge_url": null
    })
}

async fn declare_payments(app: &TestApp) -> i64 {
    let r = app
        .declare(&[
            ("title", "Card payments failing"),
            ("severity", "SEV1"),
            ("services", "checkout"),
            ("summary", "Declines at **40%** since the 09:20 deploy."),
            ("lead_self", "on"),
        ])
        .await;
    assert_eq!(r.status(), 303);
    number_from_location(&r)
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn every_event_is_posted_signed_with_the_documented_body() {
    let ops = receiver(204).await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_hooks(&db, vec![hook("ops", &ops, "OPS_HOOK_SECRET", &[])])).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare_payments(&app).await;
    app.change_status(n, "investigating", "identified").await;
    app.change_severity(n, "SEV1", "SEV2").await;
    app.change_status(n, "identified", "resolved").await;

    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.notifier == "webhook:ops" && r.attempts == 1));
    let got = requests(&ops).await;
    assert_eq!(got.len(), 4, "one request per event");

    let ada = json!({"name": "Ada Lovelace", "email": "ada@example.com"});
    let expected = [
        json!({
            "type": "incident.declared", "version": 1, "id": "<id>", "occurred_at": "<time>",
            "actor": ada,
            "incident": incident_json(&app, n, "SEV1", "investigating"),
            "change": null, "note": null, "update": null
        }),
        json!({
            "type": "incident.status_changed", "version": 1, "id": "<id>", "occurred_at": "<time>",
            "actor": ada,
            "incident": incident_json(&app, n, "SEV1", "identified"),
            "change": {"field": "status", "old": "investigating", "new": "identified"},
            "note": null, "update": null
        }),
        json!({
            "type": "incident.severity_changed", "version": 1, "id": "<id>", "occurred_at": "<time>",
            "actor": ada,
            "incident": incident_json(&app, n, "SEV2", "identified"),
            "change": {"field": "severity", "old": "SEV1", "new": "SEV2"},
            "note": null, "update": null
        }),
        json!({
            "type": "incident.status_changed", "version": 1, "id": "<id>", "occurred_at": "<time>",
            "actor": ada,
            "incident": incident_json(&app, n, "SEV2", "resolved"),
            "change": {"field": "status", "old": "identified", "new": "resolved"},
            "note": null, "update": null
        }),
    ];
    for (i, (req, want)) in got.iter().zip(expected.iter()).enumerate() {
        assert_eq!(&checked_body(req, "ops", OPS_SECRET), want, "request {i}");
    }
    let ids: std::collections::HashSet<_> = got.iter().map(|r| header(r, "webhook-id").to_string()).collect();
    assert_eq!(ids.len(), 4, "every event has its own id");

    // The outbox row records the id, and the page shows it; the URL (and its token) is nowhere.
    assert_eq!(rows[0].external_id.as_deref(), Some(header(&got[0], "webhook-id")));
    assert_eq!(rows[0].target.as_deref(), Some(ops.address().to_string().as_str()));
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let d = texts(&html, "#deliveries tbody tr");
    assert!(
        d.iter().all(|t| t.contains("webhook:ops") && t.contains("Delivered")),
        "{d:?}"
    );
    assert!(d.iter().any(|t| t.contains(header(&got[0], "webhook-id"))), "{d:?}");
    assert!(!html.contains("abc123"));
}

#[tokio::test]
async fn the_documented_receiver_rejects_tampering_stale_requests_and_a_wrong_secret() {
    let ops = receiver(200).await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_hooks(&db, vec![hook("ops", &ops, "OPS_HOOK_SECRET", &[])])).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    declare_payments(&app).await;
    let got = wait_requests(&ops, 1).await;
    let req = &got[0];
    let ts: i64 = header(req, "webhook-timestamp").parse().unwrap();
    assert!((now() - ts).abs() <= 5, "the timestamp is the time of sending");

    assert!(verify(&req.headers, &req.body, OPS_SECRET, now()).is_ok());
    let tampered = String::from_utf8(req.body.clone())
        .unwrap()
        .replace("\"SEV1\"", "\"SEV4\"");
    assert_ne!(tampered.as_bytes(), req.body.as_slice());
    assert_eq!(
        verify(&req.headers, tampered.as_bytes(), OPS_SECRET, now()),
        Err(Rejected::NoMatchingSignature)
    );
    assert_eq!(
        verify(&req.headers, &req.body, AUDIT_SECRET, now()),
        Err(Rejected::NoMatchingSignature)
    );
    assert_eq!(
        verify(&req.headers, &req.body, OPS_SECRET, ts + 301),
        Err(Rejected::TooOld),
        "a replay after five minutes is refused"
    );

    // Several signatures may be sent (a sender rotating secrets); one match is enough.
    let mut headers = req.headers.clone();
    let real = header(req, "webhook-signature").to_string();
    let both = format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {real}");
    headers.insert("webhook-signature", both.parse().unwrap());
    assert!(verify(&headers, &req.body, OPS_SECRET, now()).is_ok());
    headers.insert(
        "webhook-signature",
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".parse().unwrap(),
    );
    assert_eq!(
        verify(&headers, &req.body, OPS_SECRET, now()),
        Err(Rejected::NoMatchingSignature)
    );
    headers.remove("webhook-id");
    assert_eq!(
        verify(&headers, &req.body, OPS_SECRET, now()),
        Err(Rejected::MissingHeader("webhook-id"))
    );
}

#[tokio::test]
async fn two_endpoints_get_only_their_events_each_signed_with_its_own_secret() {
    let ops = receiver(202).await;
    let audit = receiver(200).await;
    let db = TestDb::new();
    let mut ops_hook = hook("ops", &ops, "OPS_HOOK_SECRET", &["declared", "status_changed"]);
    ops_hook.drills = false;
    let audit_hook = hook("audit", &audit, "AUDIT_HOOK_SECRET", &["severity_changed"]);
    let app = TestApp::spawn(with_hooks(&db, vec![ops_hook, audit_hook])).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare_payments(&app).await;
    app.change_severity(n, "SEV1", "SEV0").await;
    app.change_status(n, "investigating", "resolved").await;
    // A drill: ops does not take drills, audit does not take declarations.
    let r = app
        .declare(&[("title", "Game day"), ("severity", "SEV3"), ("drill", "on")])
        .await;
    assert_eq!(r.status(), 303);

    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let mut routed: Vec<_> = rows.iter().map(|r| (r.notifier.as_str(), r.event.as_str())).collect();
    routed.sort();
    assert_eq!(
        routed,
        vec![
            ("webhook:audit", "severity_changed"),
            ("webhook:ops", "declared"),
            ("webhook:ops", "status_changed"),
        ]
    );

    let to_ops = requests(&ops).await;
    let kinds: Vec<_> = to_ops.iter().map(|r| body_of(r)["type"].clone()).collect();
    assert_eq!(
        kinds,
        vec![json!("incident.declared"), json!("incident.status_changed")]
    );
    for req in &to_ops {
        checked_body(req, "ops", OPS_SECRET);
        assert_eq!(
            verify(&req.headers, &req.body, AUDIT_SECRET, now()),
            Err(Rejected::NoMatchingSignature)
        );
    }
    let to_audit = requests(&audit).await;
    assert_eq!(to_audit.len(), 1);
    let body = checked_body(&to_audit[0], "audit", AUDIT_SECRET);
    assert_eq!(body["type"], "incident.severity_changed");
    assert_eq!(
        body["change"],
        json!({"field": "severity", "old": "SEV1", "new": "SEV0"})
    );
    assert_eq!(
        verify(&to_audit[0].headers, &to_audit[0].body, OPS_SECRET, now()),
        Err(Rejected::NoMatchingSignature)
    );
    assert_ne!(
        header(&to_audit[0], "webhook-id"),
        header(&to_ops[0], "webhook-id"),
        "ids differ between endpoints"
    );
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_the_same_webhook_id_and_a_fresh_signature() {
    let ops = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/ops"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database is restarting"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&ops)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/ops"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&ops)
        .await;
    let db = TestDb::new();
    let mut spawn = with_hooks(&db, vec![hook("ops", &ops, "OPS_HOOK_SECRET", &[])]);
    // At least 1.1 s between attempts, so the second one has a later timestamp (in seconds).
    spawn.settings.outbox.backoff_base_ms = 2_200;
    spawn.settings.outbox.backoff_max_ms = 2_200;
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    declare_payments(&app).await;

    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    assert_eq!(rows[0].attempts, 2);
    let got = requests(&ops).await;
    assert_eq!(got.len(), 2);
    let (first, second) = (&got[0], &got[1]);
    assert_eq!(header(first, "webhook-id"), header(second, "webhook-id"));
    assert_eq!(first.body, second.body, "the same event, byte for byte");
    let (t1, t2): (i64, i64) = (
        header(first, "webhook-timestamp").parse().unwrap(),
        header(second, "webhook-timestamp").parse().unwrap(),
    );
    assert!(t2 > t1, "each attempt is stamped when sent: {t1} {t2}");
    assert_ne!(header(first, "webhook-signature"), header(second, "webhook-signature"));
    for req in &got {
        checked_body(req, "ops", OPS_SECRET);
    }
    assert_eq!(rows[0].external_id.as_deref(), Some(header(second, "webhook-id")));
}

#[tokio::test]
async fn a_gone_or_redirecting_endpoint_is_dead_lettered_and_shown_on_the_incident() {
    let gone = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(410).set_body_string("this hook was deleted: POST /hooks/ops?token=abc123"))
        .mount(&gone)
        .await;
    let moved = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "https://elsewhere.example.com/"))
        .mount(&moved)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_hooks(
        &db,
        vec![
            hook("ops", &gone, "OPS_HOOK_SECRET", &[]),
            hook("audit", &moved, "AUDIT_HOOK_SECRET", &[]),
        ],
    ))
    .await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare_payments(&app).await;

    let rows = app.wait_outbox(&["dead"], Duration::from_secs(15)).await;
    assert!(
        rows.iter().all(|r| r.attempts == 1),
        "no retries for a permanent refusal"
    );
    assert_eq!(requests(&gone).await.len(), 1);
    assert_eq!(requests(&moved).await.len(), 1, "the redirect is not followed");
    let by = |name: &str| rows.iter().find(|r| r.notifier == name).unwrap().clone();
    let gone_error = by("webhook:ops").last_error.unwrap();
    assert!(
        gone_error.contains("HTTP 410") && gone_error.contains("this hook was deleted: POST <path>?<query>"),
        "{gone_error}"
    );
    let moved_error = by("webhook:audit").last_error.unwrap();
    assert!(
        moved_error.contains("HTTP 301") && moved_error.contains("redirect"),
        "{moved_error}"
    );
    assert!(!gone_error.contains("abc123") && !moved_error.contains("abc123"));

    let html = app.get_html(&format!("/incidents/{n}")).await;
    let d = texts(&html, "#deliveries tbody tr");
    let ops_row = d.iter().find(|t| t.contains("webhook:ops")).expect("ops row");
    assert!(
        ops_row.contains("Failed") && ops_row.contains("HTTP 410") && ops_row.contains("Retry"),
        "{d:?}"
    );
    assert!(
        d.iter().any(|t| t.contains("webhook:audit") && t.contains("redirect")),
        "{d:?}"
    );
    assert!(!html.contains("abc123"), "the URL's token is not shown");
}

#[tokio::test]
async fn a_short_secret_stops_start_with_the_config_key_named() {
    let ops = receiver(200).await;
    let db = TestDb::new();
    let mut spawn = with_hooks(&db, vec![hook("ops", &ops, "OPS_HOOK_SECRET", &[])]);
    spawn
        .settings
        .secret_values
        .insert("OPS_HOOK_SECRET".into(), "too-short".into());
    let result = redbutton::startup::Application::build(
        spawn.settings,
        redbutton::startup::Options {
            listen: None,
            database_url: Some(spawn.db_url),
            extra_notifiers: vec![],
            run_worker: false,
            handle_signals: false,
        },
    )
    .await;
    let err = match result {
        Ok(_) => panic!("start should fail"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("integrations.webhooks[0].secret_env"), "{err}");
    assert!(err.contains("OPS_HOOK_SECRET") && !err.contains("too-short"), "{err}");
}

#[tokio::test]
async fn rate_limits_and_timeouts_are_retried_and_any_2xx_body_is_accepted() {
    let ops = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_string("slow down"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&ops)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&ops)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<<<not json at all"))
        .with_priority(3)
        .mount(&ops)
        .await;
    let db = TestDb::new();
    let mut spawn = with_hooks(&db, vec![hook("ops", &ops, "OPS_HOOK_SECRET", &[])]);
    spawn.settings.outbox.delivery_timeout_ms = 1_000;
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare_payments(&app).await;

    // The 429: waiting for its Retry-After, with the reason on the incident page.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut errors = Vec::new();
    loop {
        let row = app.outbox_rows().await.remove(0);
        if let Some(e) = &row.last_error
            && !errors.contains(e)
        {
            errors.push(e.clone());
            if e.contains("HTTP 429") {
                let html = app.get_html(&format!("/incidents/{n}")).await;
                let d = texts(&html, "#deliveries tbody tr");
                assert!(d[0].contains("HTTP 429") && d[0].contains("webhook:ops"), "{d:?}");
            }
        }
        if row.state == "done" {
            assert_eq!(row.attempts, 3);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered: {row:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(errors[0].contains("rate limiting (HTTP 429)"), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("did not answer in time")),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| !e.contains("abc123")), "{errors:?}");

    let got = requests(&ops).await;
    assert_eq!(got.len(), 3);
    let ids: std::collections::HashSet<_> = got.iter().map(|r| header(r, "webhook-id")).collect();
    assert_eq!(ids.len(), 1, "one event, one id, whatever happened to each attempt");
    for req in &got {
        checked_body(req, "ops", OPS_SECRET);
    }
}
