//! Pagers: PagerDuty Events API v2 and Opsgenie alerts, each played by a wiremock server that
//! records every request. We page for real, unresolved incidents at or above the threshold, stop
//! paging when that ends, and never page for drills.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redbutton::notifiers::opsgenie::{OpsgenieService, OpsgenieSettings};
use redbutton::notifiers::pagerduty::{PagerDutyService, PagerDutySettings};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::*;

pub const PD_DEFAULT: &str = "pd-default-routing-key-000000000";
const PD_SEARCH: &str = "pd-search-routing-key-0000000000";
pub const GENIE_KEY: &str = "6f1c2d3e-genie-key-for-tests";

fn services() -> Vec<redbutton::config::Service> {
    let mut checkout = service("checkout", "Checkout", &[]);
    checkout.conference_url = Some("https://meet.example.com/checkout".into());
    vec![checkout, service("search", "Search", &[])]
}

fn with_pagerduty(db: &TestDb, vendor: &MockServer) -> Spawn {
    let mut spawn = Spawn::new(db);
    spawn.settings.services = services();
    spawn
        .settings
        .secret_values
        .insert("PD_DEFAULT".into(), PD_DEFAULT.into());
    spawn
        .settings
        .secret_values
        .insert("PD_SEARCH".into(), PD_SEARCH.into());
    spawn.settings.integrations.pagerduty = Some(PagerDutySettings {
        base_url: vendor.uri(),
        routing_key_env: Some("PD_DEFAULT".into()),
        page_at_or_above: "SEV1".into(),
        severity_map: BTreeMap::new(),
        services: BTreeMap::from([(
            "search".to_string(),
            PagerDutyService {
                routing_key_env: "PD_SEARCH".into(),
            },
        )]),
    });
    spawn
}

fn with_opsgenie(db: &TestDb, vendor: &MockServer) -> Spawn {
    let mut spawn = Spawn::new(db);
    spawn.settings.services = services();
    spawn
        .settings
        .secret_values
        .insert("GENIE_KEY".into(), GENIE_KEY.into());
    spawn.settings.integrations.opsgenie = Some(OpsgenieSettings {
        base_url: vendor.uri(),
        api_key_env: "GENIE_KEY".into(),
        page_at_or_above: "SEV1".into(),
        priorities: BTreeMap::new(),
        services: BTreeMap::from([
            (
                "checkout".to_string(),
                OpsgenieService {
                    teams: vec!["payments-oncall".into(), "sre".into()],
                },
            ),
            (
                "search".to_string(),
                OpsgenieService {
                    teams: vec!["sre".into()],
                },
            ),
        ]),
    });
    spawn
}

/// PagerDuty's answer to an accepted event.
pub fn pd_accepted(dedup_key: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "status": "success",
        "message": "Event processed",
        "dedup_key": dedup_key,
    }))
}

/// Opsgenie's answer to an accepted (queued) request.
pub fn og_accepted() -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "result": "Request will be processed",
        "took": 0.107,
        "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120",
    }))
}

async fn requests(vendor: &MockServer) -> Vec<Request> {
    vendor.received_requests().await.unwrap()
}

pub fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

/// Checks the request line and headers every PagerDuty event has: no credentials in headers.
pub fn assert_pd_request(r: &Request) {
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(r.url.path(), "/v2/enqueue");
    assert_eq!(r.url.query(), None);
    assert_eq!(header(r, "content-type"), Some("application/json"));
    assert_eq!(header(r, "authorization"), None, "the routing key travels in the body");
}

/// Checks what every Opsgenie call carries.
pub fn assert_og_request(r: &Request, want_path: &str, want_query: Option<&str>) {
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(r.url.path(), want_path);
    assert_eq!(r.url.query(), want_query);
    assert_eq!(header(r, "content-type"), Some("application/json"));
    assert_eq!(
        header(r, "authorization").map(str::to_string),
        Some(format!("GenieKey {GENIE_KEY}"))
    );
}

/// Replaces the trigger's timestamp (the declaration time) after checking it is RFC 3339 UTC.
fn without_timestamp(mut v: Value) -> Value {
    let ts = v["payload"]["timestamp"].as_str().expect("timestamp").to_string();
    assert!(ts.ends_with('Z'), "UTC: {ts}");
    chrono::DateTime::parse_from_rfc3339(&ts).expect("RFC 3339 timestamp");
    v["payload"]["timestamp"] = json!("<declared_at>");
    v
}

async fn declare(app: &TestApp, fields: &[(&str, &str)]) -> i64 {
    let r = app.declare(fields).await;
    assert_eq!(r.status(), 303);
    number_from_location(&r)
}

/// Waits for `n` outbox rows, all done.
async fn wait_done(app: &TestApp, n: usize) -> Vec<redbutton::db::models::OutboxRow> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
        if rows.len() >= n {
            assert_eq!(rows.len(), n, "rows: {rows:?}");
            return rows;
        }
        assert!(Instant::now() < deadline, "only {} rows", rows.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// PagerDuty

#[tokio::test]
async fn pagerduty_declaring_a_sev1_triggers_with_every_field_and_resolving_resolves() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(pd_accepted("redbutton-inc-1"))
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_pagerduty(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare(
        &app,
        &[
            ("title", "Card payments failing"),
            ("severity", "SEV1"),
            ("services", "checkout"),
            ("summary", "Declines at **40%**."),
            ("lead_self", "on"),
        ],
    )
    .await;
    let rows = wait_done(&app, 1).await;
    assert_eq!(rows[0].notifier, "pagerduty");
    assert_eq!(rows[0].target.as_deref(), Some("default routing key"));
    assert_eq!(
        rows[0].external_id.as_deref(),
        Some(format!("redbutton-inc-{n}").as_str())
    );
    assert_eq!(rows[0].external_url, None);

    let url = format!("{}/incidents/{n}", app.address);
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 1);
    assert_pd_request(&sent[0]);
    assert_eq!(
        without_timestamp(body(&sent[0])),
        json!({
            "routing_key": PD_DEFAULT,
            "event_action": "trigger",
            "dedup_key": format!("redbutton-{}", app.external_key(n).await),
            "payload": {
                "summary": format!("INC-{n} [SEV1] Card payments failing"),
                "source": "127.0.0.1",
                "severity": "error",
                "timestamp": "<declared_at>",
                "component": "checkout",
                "group": format!("INC-{n}"),
                "class": "incident",
                "custom_details": {
                    "status": "investigating",
                    "services": ["checkout"],
                    "declared_by": "Ada Lovelace",
                    "lead": "Ada Lovelace",
                    "summary": "Declines at **40%**.",
                    "bridge": "https://meet.example.com/checkout",
                },
            },
            "client": "Big Red Button",
            "client_url": url,
            "links": [
                {"href": url, "text": format!("INC-{n} in Big Red Button")},
                {"href": "https://meet.example.com/checkout", "text": "Conference bridge"},
            ],
        })
    );

    // Moving along without crossing the line sends nothing and queues nothing.
    app.change_status(n, "investigating", "identified").await;
    assert_eq!(app.outbox_rows().await.len(), 1);

    app.change_status(n, "identified", "resolved").await;
    wait_done(&app, 2).await;
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 2);
    assert_pd_request(&sent[1]);
    assert_eq!(
        body(&sent[1]),
        json!({
            "routing_key": PD_DEFAULT,
            "event_action": "resolve",
            "dedup_key": format!("redbutton-{}", app.external_key(n).await),
        })
    );

    // Reopening pages again, under the same dedup key.
    app.change_status(n, "resolved", "investigating").await;
    wait_done(&app, 3).await;
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 3);
    let again = body(&sent[2]);
    assert_eq!(again["event_action"], "trigger");
    assert_eq!(again["dedup_key"], format!("redbutton-{}", app.external_key(n).await));

    let html = app.get_html(&format!("/incidents/{n}")).await;
    let d = texts(&html, "#deliveries tbody tr");
    assert!(
        d.iter().all(|r| r.contains("pagerduty") && r.contains("Delivered")),
        "{d:?}"
    );
    assert!(
        d[0].contains(&format!("redbutton-inc-{n}")),
        "the dedup key is shown: {d:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn pagerduty_below_the_threshold_nothing_is_queued_until_raised_and_lowering_resolves() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(pd_accepted("redbutton-inc-1"))
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_pagerduty(&db, &vendor)).await;
    app.identify("Grace Hopper", "grace@example.com").await;
    let n = declare(
        &app,
        &[
            ("title", "Slow admin pages"),
            ("severity", "SEV3"),
            ("services", "checkout"),
        ],
    )
    .await;
    assert!(app.outbox_rows().await.is_empty(), "no outbox row below the threshold");

    app.change_severity(n, "SEV3", "SEV1").await;
    let rows = wait_done(&app, 1).await;
    assert_eq!(rows[0].event, "severity_changed");
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 1);
    assert_pd_request(&sent[0]);
    let trigger = without_timestamp(body(&sent[0]));
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], PD_DEFAULT);
    assert_eq!(
        trigger["payload"]["summary"],
        format!("INC-{n} [SEV1] Slow admin pages")
    );
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(
        trigger["payload"]["custom_details"],
        json!({
            "status": "investigating",
            "services": ["checkout"],
            "declared_by": "Grace Hopper",
            "bridge": "https://meet.example.com/checkout",
        }),
        "no lead and no summary: those keys are left out"
    );

    app.change_severity(n, "SEV1", "SEV0").await;
    assert_eq!(app.outbox_rows().await.len(), 1, "already paging: nothing to send");

    app.change_severity(n, "SEV0", "SEV3").await;
    wait_done(&app, 2).await;
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(
        body(&sent[1]),
        json!({
            "routing_key": PD_DEFAULT,
            "event_action": "resolve",
            "dedup_key": format!("redbutton-{}", app.external_key(n).await),
        })
    );

    // Resolving an incident that no longer pages sends nothing.
    app.change_status(n, "investigating", "resolved").await;
    assert_eq!(app.outbox_rows().await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn pagerduty_never_pages_for_a_drill() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(pd_accepted("x"))
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_pagerduty(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare(
        &app,
        &[
            ("title", "Game day: checkout down"),
            ("severity", "SEV0"),
            ("services", "checkout"),
            ("drill", "on"),
        ],
    )
    .await;
    app.change_severity(n, "SEV0", "SEV1").await;
    app.change_status(n, "investigating", "resolved").await;
    assert!(app.outbox_rows().await.is_empty(), "a drill queues nothing for a pager");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(requests(&vendor).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn pagerduty_uses_the_first_service_with_its_own_routing_key_for_trigger_and_resolve() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(pd_accepted("redbutton-inc-1"))
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_pagerduty(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare(
        &app,
        &[
            ("title", "Search and checkout down"),
            ("severity", "SEV0"),
            ("services", "checkout"),
            ("services", "search"),
        ],
    )
    .await;
    let rows = wait_done(&app, 1).await;
    assert_eq!(rows[0].target.as_deref(), Some("routing key of Search"));
    app.change_status(n, "investigating", "resolved").await;
    wait_done(&app, 2).await;
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 2);
    let trigger = body(&sent[0]);
    assert_eq!(trigger["routing_key"], PD_SEARCH);
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["component"], "checkout, search");
    assert_eq!(body(&sent[1])["routing_key"], PD_SEARCH);
    assert_eq!(body(&sent[1])["event_action"], "resolve");
    app.stop().await;
}

#[tokio::test]
async fn pagerduty_rate_limit_waits_as_told_then_delivers() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&vendor)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(pd_accepted("redbutton-inc-1"))
        .with_priority(2)
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_pagerduty(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let started = Instant::now();
    declare(&app, &[("title", "Checkout down"), ("severity", "SEV1")]).await;
    let rows = wait_done(&app, 1).await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited for Retry-After: {:?}",
        started.elapsed()
    );
    assert_eq!(rows[0].attempts, 2);
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(body(&sent[0]), body(&sent[1]), "the retry sends the same event");
    app.stop().await;
}

#[tokio::test]
async fn pagerduty_refusal_is_dead_lettered_with_its_message_on_the_incident_page() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["'payload.summary' is missing or blank"],
        })))
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_pagerduty(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare(&app, &[("title", "Checkout down"), ("severity", "SEV1")]).await;
    let rows = app.wait_outbox(&["dead"], Duration::from_secs(15)).await;
    assert_eq!(rows[0].attempts, 1, "a refusal is not retried");
    assert_eq!(requests(&vendor).await.len(), 1);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(!html.contains(PD_DEFAULT), "the routing key never reaches the page");
    let errors = texts(&html, "#deliveries .derror");
    assert_eq!(
        errors,
        vec![
            "PagerDuty refused the request (HTTP 400): Event object is invalid; 'payload.summary' is missing or blank"
        ]
    );
    let d = texts(&html, "#deliveries tbody tr");
    assert!(d[0].contains("Failed") && d[0].contains("Retry"), "{d:?}");
    app.stop().await;
}

#[tokio::test]
async fn pagerduty_a_dead_trigger_retried_after_the_incident_resolved_pages_nobody() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"status": "invalid event", "message": "no"})))
        .up_to_n_times(1)
        .mount(&vendor)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(pd_accepted("redbutton-inc-1"))
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_pagerduty(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare(&app, &[("title", "Checkout down"), ("severity", "SEV1")]).await;
    let rows = app.wait_outbox(&["dead"], Duration::from_secs(15)).await;
    app.change_status(n, "investigating", "resolved").await;
    app.wait_outbox(&["dead", "done"], Duration::from_secs(15)).await;
    assert_eq!(requests(&vendor).await.len(), 2, "the refused trigger and the resolve");

    // Someone retries the dead trigger after the incident is over: nobody is woken up.
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/deliveries/{}/retry", rows[0].id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    assert_eq!(rows.len(), 2);
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 2, "no trigger for a resolved incident");
    assert_eq!(body(&sent[1])["event_action"], "resolve");
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Opsgenie

#[tokio::test]
async fn opsgenie_declaring_a_sev1_creates_with_every_field_and_resolving_closes() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(og_accepted())
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_opsgenie(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare(
        &app,
        &[
            ("title", "Card payments failing"),
            ("severity", "SEV1"),
            ("services", "checkout"),
            ("services", "search"),
            ("summary", "Declines at **40%**."),
            ("lead_self", "on"),
        ],
    )
    .await;
    let rows = wait_done(&app, 1).await;
    assert_eq!(rows[0].notifier, "opsgenie");
    assert_eq!(rows[0].target.as_deref(), Some("teams payments-oncall, sre"));
    assert_eq!(
        rows[0].external_id.as_deref(),
        Some(format!("redbutton-{}", app.external_key(n).await).as_str())
    );

    let url = format!("{}/incidents/{n}", app.address);
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 1);
    assert_og_request(&sent[0], "/v2/alerts", None);
    assert_eq!(
        body(&sent[0]),
        json!({
            "message": format!("INC-{n} [SEV1] Card payments failing"),
            "alias": format!("redbutton-{}", app.external_key(n).await),
            "description": format!("Declines at **40%**.\n\nIncident page: {url}"),
            "responders": [
                {"name": "payments-oncall", "type": "team"},
                {"name": "sre", "type": "team"},
            ],
            "tags": ["redbutton", "SEV1", "checkout", "search"],
            "details": {
                "incident": url,
                "status": "investigating",
                "severity": "SEV1",
                "declared_by": "Ada Lovelace",
                "lead": "Ada Lovelace",
                "bridge": "https://meet.example.com/checkout",
            },
            "entity": format!("INC-{n}"),
            "priority": "P2",
            "source": "Big Red Button",
            "user": "Ada Lovelace",
        })
    );

    app.change_status(n, "investigating", "resolved").await;
    wait_done(&app, 2).await;
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 2);
    assert_og_request(
        &sent[1],
        &format!("/v2/alerts/redbutton-{}/close", app.external_key(n).await),
        Some("identifierType=alias"),
    );
    assert_eq!(
        body(&sent[1]),
        json!({
            "user": "Ada Lovelace",
            "source": "Big Red Button",
            "note": format!("INC-{n} resolved in Big Red Button by Ada Lovelace."),
        })
    );
    app.stop().await;
}

#[tokio::test]
async fn opsgenie_below_the_threshold_nothing_is_queued_until_raised_and_lowering_closes() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(og_accepted())
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_opsgenie(&db, &vendor)).await;
    app.identify("Grace Hopper", "grace@example.com").await;
    let n = declare(&app, &[("title", "Slow admin pages"), ("severity", "SEV3")]).await;
    assert!(app.outbox_rows().await.is_empty(), "no outbox row below the threshold");

    app.change_severity(n, "SEV3", "SEV0").await;
    wait_done(&app, 1).await;
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 1);
    assert_og_request(&sent[0], "/v2/alerts", None);
    let url = format!("{}/incidents/{n}", app.address);
    assert_eq!(
        body(&sent[0]),
        json!({
            "message": format!("INC-{n} [SEV0] Slow admin pages"),
            "alias": format!("redbutton-{}", app.external_key(n).await),
            "description": format!("Incident page: {url}"),
            "responders": [],
            "tags": ["redbutton", "SEV0"],
            "details": {
                "incident": url,
                "status": "investigating",
                "severity": "SEV0",
                "declared_by": "Grace Hopper",
            },
            "entity": format!("INC-{n}"),
            "priority": "P1",
            "source": "Big Red Button",
            "user": "Grace Hopper",
        })
    );

    app.change_severity(n, "SEV0", "SEV2").await;
    wait_done(&app, 2).await;
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 2);
    assert_og_request(
        &sent[1],
        &format!("/v2/alerts/redbutton-{}/close", app.external_key(n).await),
        Some("identifierType=alias"),
    );
    assert_eq!(
        body(&sent[1]),
        json!({
            "user": "Grace Hopper",
            "source": "Big Red Button",
            "note": format!("INC-{n} lowered to SEV2 by Grace Hopper, below the paging threshold SEV1."),
        })
    );
    app.stop().await;
}

#[tokio::test]
async fn opsgenie_never_pages_for_a_drill() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(og_accepted())
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_opsgenie(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare(&app, &[("title", "Game day"), ("severity", "SEV0"), ("drill", "on")]).await;
    app.change_status(n, "investigating", "resolved").await;
    assert!(app.outbox_rows().await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(requests(&vendor).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn opsgenie_rate_limit_waits_as_told_then_delivers() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&vendor)
        .await;
    Mock::given(method("POST"))
        .respond_with(og_accepted())
        .with_priority(2)
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_opsgenie(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let started = Instant::now();
    declare(&app, &[("title", "Checkout down"), ("severity", "SEV1")]).await;
    let rows = wait_done(&app, 1).await;
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(rows[0].attempts, 2);
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(body(&sent[0]), body(&sent[1]));
    app.stop().await;
}

#[tokio::test]
async fn opsgenie_refusal_is_dead_lettered_with_its_message_on_the_incident_page() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/alerts"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Request body is not processable. Please check the errors.",
            "errors": {"responders": "No team exists with name [payments-oncall]"},
            "took": 0.01,
            "requestId": "0d0b1b6e-9c1f-4bb3-8a8e-52f1a5a4b8f0",
        })))
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_opsgenie(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare(
        &app,
        &[
            ("title", "Checkout down"),
            ("severity", "SEV1"),
            ("services", "checkout"),
        ],
    )
    .await;
    let rows = app.wait_outbox(&["dead"], Duration::from_secs(15)).await;
    assert_eq!(rows[0].attempts, 1);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(!html.contains(GENIE_KEY), "the key never reaches the page");
    assert_eq!(
        texts(&html, "#deliveries .derror"),
        vec![
            "Opsgenie refused the request (HTTP 422): Request body is not processable. Please check the errors.; \
             responders: No team exists with name [payments-oncall]"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn opsgenie_garbage_success_body_is_retried() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_string("<html>proxy</html>"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&vendor)
        .await;
    Mock::given(method("POST"))
        .respond_with(og_accepted())
        .with_priority(2)
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_opsgenie(&db, &vendor)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    declare(&app, &[("title", "Checkout down"), ("severity", "SEV1")]).await;
    let rows = wait_done(&app, 1).await;
    assert_eq!(
        rows[0].attempts, 2,
        "the garbage answer was retried under the same alias"
    );
    let sent = requests(&vendor).await;
    assert_eq!(body(&sent[0])["alias"], body(&sent[1])["alias"]);
    app.stop().await;
}

#[tokio::test]
async fn probes_read_without_creating_and_say_why_they_fail() {
    let vendor = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/alerts"))
        .and(wiremock::matchers::query_param("limit", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [],
            "took": 0.005,
            "requestId": "9ae63dd7-ed00-4c81-86f0-c4ffd33142c9",
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&vendor)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": "Could not authenticate",
            "took": 0.0,
            "requestId": "c2b3b0a4-3a4c-4d19-9d05-1b2c3d4e5f60",
        })))
        .with_priority(2)
        .mount(&vendor)
        .await;
    let db = TestDb::new();
    let mut spawn = with_opsgenie(&db, &vendor);
    spawn.settings.integrations.pagerduty = with_pagerduty(&db, &vendor).settings.integrations.pagerduty;
    spawn
        .settings
        .secret_values
        .insert("PD_DEFAULT".into(), PD_DEFAULT.into());
    spawn
        .settings
        .secret_values
        .insert("PD_SEARCH".into(), PD_SEARCH.into());
    let app = TestApp::spawn(spawn).await;
    let og = app.state.registry.get("opsgenie").unwrap();
    assert_eq!(og.probe().await, Ok("the API key can read alerts".to_string()));
    let sent = requests(&vendor).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method.as_str(), "GET");
    assert_eq!(
        header(&sent[0], "authorization").map(str::to_string),
        Some(format!("GenieKey {GENIE_KEY}"))
    );
    let failed = og.probe().await.unwrap_err();
    assert!(
        failed.starts_with("Opsgenie refused the API key (HTTP 401): ") && failed.contains("Could not authenticate"),
        "{failed}"
    );
    assert!(!failed.contains(GENIE_KEY));

    let pd = app.state.registry.get("pagerduty").unwrap();
    let said = pd.probe().await.unwrap();
    assert!(
        said.contains("no read-only call") && !said.contains(PD_DEFAULT),
        "{said}"
    );
    assert_eq!(requests(&vendor).await.len(), 2, "the PagerDuty probe calls nothing");
    app.stop().await;
}
