//! The Prometheus Alertmanager receiver (`POST /api/v1/alertmanager`) on webhook bodies written
//! for these tests (tests/fixtures/alertmanager): one incident per group with the mapped severity
//! and service, exact timeline entries, repeats and replicas deduplicated, concurrent first
//! notifications opening one incident, resolved → mitigated when configured, a closed group
//! firing again, malformed bodies and bad tokens refused with nothing stored. The run with the
//! real Alertmanager is in `alertmanager_real`.

use std::collections::BTreeMap;

use diesel::prelude::*;
use redbutton::config::AlertmanagerSettings;
use redbutton::domain::Actor;
use redbutton::services::tokens::{TokenRequest, create};
use serde_json::{Value, json};

use crate::helpers::*;

pub const PATH: &str = "/api/v1/alertmanager";

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/alertmanager/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The receiver's settings used here: critical → SEV1, warning → SEV3, the rest SEV2.
pub fn am_settings(mitigate: bool) -> AlertmanagerSettings {
    AlertmanagerSettings {
        severities: BTreeMap::from([
            ("critical".to_string(), "SEV1".to_string()),
            ("warning".to_string(), "SEV3".to_string()),
        ]),
        default_severity: "SEV2".into(),
        mitigate_on_resolved: mitigate,
        ..Default::default()
    }
}

/// An app with the receiver on, a `checkout` service, and a counting notifier that gets every
/// event; with a token holding `scopes`.
pub async fn am_app(
    db: &TestDb,
    am: Option<AlertmanagerSettings>,
    scopes: &[&str],
) -> (TestApp, String, CountingNotifier) {
    let counter = CountingNotifier {
        name: "counter",
        ..Default::default()
    };
    let mut spawn = Spawn::new(db);
    spawn.settings.services = vec![service("checkout", "Checkout", &[])];
    spawn.settings.alertmanager = am;
    route_all_to(&mut spawn.settings, &["counter"]);
    spawn.notifiers = vec![std::sync::Arc::new(counter.clone())];
    let app = TestApp::spawn(spawn).await;
    let secret = token(&app, "alertmanager", scopes).await;
    (app, secret, counter)
}

pub async fn token(app: &TestApp, name: &str, scopes: &[&str]) -> String {
    create(
        &app.state,
        &Actor {
            name: "Ada Admin".into(),
            email: "ada@example.com".into(),
        },
        &TokenRequest {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap()
    .secret
}

async fn post(app: &TestApp, secret: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}{PATH}", app.address))
        .bearer_auth(secret)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn post_ok(app: &TestApp, secret: &str, body: &Value) -> Value {
    let r = post(app, secret, body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

/// An incident's timeline as (kind, actor, field, old, new, body).
type Entry = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub async fn timeline(app: &TestApp, number: i64) -> Vec<Entry> {
    app.state
        .db
        .run(move |c| {
            use redbutton::db::schema::incidents::dsl as i;
            use redbutton::db::schema::timeline_entries::dsl as t;
            let id: i64 = i::incidents.filter(i::number.eq(number)).select(i::id).first(c)?;
            t::timeline_entries
                .filter(t::incident_id.eq(id))
                .order(t::id.asc())
                .select((t::kind, t::actor_name, t::field, t::old_value, t::new_value, t::body))
                .load::<Entry>(c)
        })
        .await
        .unwrap()
}

pub async fn kinds(app: &TestApp, number: i64) -> Vec<String> {
    timeline(app, number).await.into_iter().map(|e| e.0).collect()
}

/// (number, title, severity, status, summary, declared_by_name, services)
pub async fn incident(app: &TestApp, number: i64) -> (String, String, String, String, String, Vec<String>) {
    app.state
        .db
        .run(move |c| {
            use redbutton::db::schema::incident_services::dsl as s;
            use redbutton::db::schema::incidents::dsl as i;
            let (id, title, severity, status, summary, by): (i64, String, String, String, String, String) =
                i::incidents
                    .filter(i::number.eq(number))
                    .select((i::id, i::title, i::severity, i::status, i::summary, i::declared_by_name))
                    .first(c)?;
            let services = s::incident_services
                .filter(s::incident_id.eq(id))
                .select(s::service)
                .load::<String>(c)?;
            Ok((title, severity, status, summary, by, services))
        })
        .await
        .unwrap()
}

/// Row counts of everything a notification could write.
pub async fn counts(app: &TestApp) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in ["incidents", "timeline_entries", "outbox", "alert_groups", "alerts"] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let n = app
            .state
            .db
            .run(move |c| {
                #[derive(diesel::QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                diesel::sql_query(sql).get_result::<Count>(c).map(|r| r.n)
            })
            .await
            .unwrap();
        out.push((table, n));
    }
    out
}

fn events(app_rows: &[redbutton::db::models::OutboxRow]) -> Vec<String> {
    app_rows.iter().map(|r| r.event.clone()).collect()
}

#[tokio::test]
async fn a_firing_group_opens_one_incident_and_its_later_alerts_land_on_the_timeline() {
    let db = TestDb::new();
    let (app, secret, _) = am_app(&db, Some(am_settings(false)), &["incidents:declare"]).await;

    let r = post_ok(&app, &secret, &fixture("firing")).await;
    assert_eq!(
        r,
        json!({"incident": 1, "opened": true, "recorded": 1, "mitigated": false})
    );
    let (title, severity, status, summary, by, services) = incident(&app, 1).await;
    assert_eq!(title, "Checkout p99 latency above 2s");
    assert_eq!(severity, "SEV1", "critical is mapped to SEV1");
    assert_eq!(status, "investigating");
    assert_eq!(services, vec!["checkout"]);
    assert_eq!(by, "alertmanager (API token)", "the token declares");
    assert!(
        summary.starts_with("p99 latency of POST /cart/checkout is 3\\.4s over 10m\\."),
        "{summary}"
    );
    assert!(
        summary.contains("[Open in Alertmanager](http://alertmanager.test:9093)")
            && summary.contains("([source](http://prometheus.test:9090/graph?g0.expr=checkout_latency_p99+%3E+2))"),
        "{summary}"
    );
    let fired_1 = (
        "alert_firing".to_string(),
        "alertmanager (API token)".to_string(),
        Some("1c2e4f6a8b0d2e4f".to_string()),
        Some("2026-11-21T09:12:30Z".to_string()),
        None,
        Some(
            "alertname=CheckoutLatencyHigh, instance=checkout-7f9c, service=checkout, severity=critical, team=payments\n\
             description: p99 latency of POST /cart/checkout is 3.4s over 10m.\n\
             summary: Checkout p99 latency above 2s\n\
             source: http://prometheus.test:9090/graph?g0.expr=checkout_latency_p99+%3E+2"
                .to_string(),
        ),
    );
    let t = timeline(&app, 1).await;
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(t[0].0, "declared");
    assert_eq!(t[0].4.as_deref(), Some("SEV1 \u{00b7} investigating"));
    assert_eq!(t[1], fired_1);
    // The declaration fans out like any other (the outbox), and only the declaration.
    assert_eq!(events(&app.outbox_rows().await), vec!["declared"]);

    // Alertmanager repeats the group every repeat_interval, and every replica sends it: nothing.
    let before = counts(&app).await;
    for _ in 0..3 {
        let r = post_ok(&app, &secret, &fixture("firing")).await;
        assert_eq!(
            r,
            json!({"incident": 1, "opened": false, "recorded": 0, "mitigated": false})
        );
    }
    assert_eq!(counts(&app).await, before, "repeats add nothing");

    // A second alert joins the group: its own entry on the same incident.
    let r = post_ok(&app, &secret, &fixture("grouped")).await;
    assert_eq!(
        r,
        json!({"incident": 1, "opened": false, "recorded": 1, "mitigated": false})
    );
    let t = timeline(&app, 1).await;
    assert_eq!(t.len(), 3);
    assert_eq!(t[1], fired_1, "the first alert is not recorded again");
    assert_eq!(t[2].0, "alert_firing");
    assert_eq!(t[2].2.as_deref(), Some("93ab57cd19ef3b5d"));
    assert_eq!(t[2].3.as_deref(), Some("2026-11-21T09:14:00Z"));
    assert_eq!(app.incident_count().await, 1, "never a second incident");

    // Resolved: recorded, but without mitigate_on_resolved the status stays.
    let r = post_ok(&app, &secret, &fixture("resolved")).await;
    assert_eq!(
        r,
        json!({"incident": 1, "opened": false, "recorded": 2, "mitigated": false})
    );
    let t = timeline(&app, 1).await;
    let resolved: Vec<_> = t[3..]
        .iter()
        .map(|e| (e.0.as_str(), e.2.as_deref(), e.3.as_deref(), e.4.as_deref()))
        .collect();
    assert_eq!(
        resolved,
        vec![
            (
                "alert_resolved",
                Some("1c2e4f6a8b0d2e4f"),
                Some("2026-11-21T09:12:30Z"),
                Some("2026-11-21T09:31:00Z")
            ),
            (
                "alert_resolved",
                Some("93ab57cd19ef3b5d"),
                Some("2026-11-21T09:14:00Z"),
                Some("2026-11-21T09:31:30Z")
            ),
        ]
    );
    assert_eq!(incident(&app, 1).await.2, "investigating");
    let before = counts(&app).await;
    post_ok(&app, &secret, &fixture("resolved")).await;
    post_ok(&app, &secret, &fixture("grouped")).await;
    assert_eq!(
        counts(&app).await,
        before,
        "a repeated resolution, or a late firing copy of a resolved alert, adds nothing"
    );

    // The incident page shows the alerts readably: labels and the source link.
    app.identify("Rita Responder", "rita@example.com").await;
    let html = app.get_html("/incidents/1").await;
    let labels = texts(&html, "#timeline .alert-labels li");
    assert!(
        labels.contains(&"instance=checkout-7f9c".to_string()) && labels.contains(&"team=payments".to_string()),
        "{labels:?}"
    );
    assert!(
        html.contains("href=\"http://prometheus.test:9090/graph?g0.expr=checkout_latency_p99+%3E+2\""),
        "the source link is on the page"
    );
    app.stop().await;
}

#[tokio::test]
async fn resolving_every_alert_marks_the_incident_mitigated_when_configured() {
    let db = TestDb::new();
    let (app, secret, _) = am_app(&db, Some(am_settings(true)), &["incidents:declare"]).await;
    post_ok(&app, &secret, &fixture("grouped")).await;

    // One of two resolved: recorded, still investigating.
    let mut one = fixture("resolved");
    one["status"] = json!("firing");
    one["alerts"][1] = fixture("grouped")["alerts"][1].clone();
    let r = post_ok(&app, &secret, &one).await;
    assert_eq!(
        r,
        json!({"incident": 1, "opened": false, "recorded": 1, "mitigated": false})
    );
    assert_eq!(incident(&app, 1).await.2, "investigating");

    // The last one: mitigated through the status change, with its fan-out.
    let r = post_ok(&app, &secret, &fixture("resolved")).await;
    assert_eq!(
        r,
        json!({"incident": 1, "opened": false, "recorded": 1, "mitigated": true})
    );
    assert_eq!(incident(&app, 1).await.2, "mitigated");
    let t = timeline(&app, 1).await;
    let last = t.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.2.as_deref(), last.3.as_deref(), last.4.as_deref()),
        (
            "status_changed",
            Some("status"),
            Some("investigating"),
            Some("mitigated")
        )
    );
    assert_eq!(
        kinds(&app, 1).await,
        vec![
            "declared",
            "alert_firing",
            "alert_firing",
            "alert_resolved",
            "alert_resolved",
            "status_changed"
        ]
    );
    assert_eq!(events(&app.outbox_rows().await), vec!["declared", "status_changed"]);

    // A repeat does not move it again.
    let r = post_ok(&app, &secret, &fixture("resolved")).await;
    assert_eq!(r["mitigated"], false);
    assert_eq!(events(&app.outbox_rows().await), vec!["declared", "status_changed"]);
    app.stop().await;
}

#[tokio::test]
async fn two_groups_open_two_incidents_and_an_unknown_service_is_recorded_not_fatal() {
    let db = TestDb::new();
    let (app, secret, _) = am_app(&db, Some(am_settings(false)), &["incidents:declare"]).await;
    let a = post_ok(&app, &secret, &fixture("firing")).await;
    // This body carries fields this receiver does not know (a newer Alertmanager): ignored.
    let b = post_ok(&app, &secret, &fixture("other-group")).await;
    assert_eq!(a["incident"], 1);
    assert_eq!(
        b,
        json!({"incident": 2, "opened": true, "recorded": 1, "mitigated": false})
    );
    let (title, severity, status, summary, _, services) = incident(&app, 2).await;
    assert_eq!(
        title, "QueueBacklog: service=billing-worker",
        "no summary annotation: the group labels"
    );
    assert_eq!(severity, "SEV3", "warning is mapped to SEV3");
    assert_eq!(status, "investigating");
    assert!(services.is_empty(), "billing-worker is not a configured service");
    assert!(summary.starts_with("Opened by Alertmanager"), "{summary}");
    let t = timeline(&app, 2).await;
    assert_eq!(
        t.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        vec!["declared", "alert_unknown_service", "alert_firing"]
    );
    assert_eq!(t[1].2.as_deref(), Some("service"));
    assert_eq!(t[1].4.as_deref(), Some("billing-worker"));
    app.identify("Rita Responder", "rita@example.com").await;
    let html = app.get_html("/incidents/2").await;
    assert!(
        html.contains("billing-worker") && html.contains("not a configured service"),
        "the page says why no service is set"
    );

    // Severity without a mapping: the default.
    let mut unmapped = fixture("other-group");
    unmapped["groupKey"] = json!("{}:{alertname=\"Other\"}");
    unmapped["commonLabels"]["severity"] = json!("page-someone");
    unmapped["alerts"][0]["labels"]["severity"] = json!("page-someone");
    let c = post_ok(&app, &secret, &unmapped).await;
    assert_eq!(incident(&app, c["incident"].as_i64().unwrap()).await.1, "SEV2");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_first_notifications_open_exactly_one_incident() {
    let db = TestDb::new();
    let (app, secret, _) = am_app(&db, Some(am_settings(false)), &["incidents:declare", "metrics:read"]).await;
    let body = fixture("grouped");
    let sends = (0..8).map(|_| post(&app, &secret, &body));
    let answers = futures_util::future::join_all(sends).await;
    let mut opened = 0;
    for r in answers {
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["incident"], 1, "{v}");
        if v["opened"] == true {
            opened += 1;
        }
    }
    assert_eq!(opened, 1, "one request opened it; the others found it");
    // And /metrics counts one declaration.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let declared: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("redbutton_declarations_total{"))
        .collect();
    assert_eq!(declared.len(), 1, "{metrics}");
    assert!(declared[0].ends_with(" 1"), "{declared:?}");
    assert_eq!(
        counts(&app).await,
        vec![
            ("incidents", 1),
            ("timeline_entries", 3),
            ("outbox", 1),
            ("alert_groups", 1),
            ("alerts", 2)
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_group_firing_again_after_its_incident_closed_opens_a_new_linked_incident() {
    let db = TestDb::new();
    let (app, secret, _) = am_app(&db, Some(am_settings(false)), &["incidents:declare"]).await;
    post_ok(&app, &secret, &fixture("firing")).await;
    let rita = Actor {
        name: "Rita Responder".into(),
        email: "rita@example.com".into(),
    };
    redbutton::services::lifecycle::change_status(&app.state, 1, rita, "resolved", "investigating")
        .await
        .unwrap();

    // The same alert repeated: still the closed incident's alert, nothing new.
    let r = post_ok(&app, &secret, &fixture("firing")).await;
    assert_eq!(
        r,
        json!({"incident": 1, "opened": false, "recorded": 0, "mitigated": false})
    );
    assert_eq!(app.incident_count().await, 1);

    // A new alert in the group: a new incident, linked both ways.
    let r = post_ok(&app, &secret, &fixture("grouped")).await;
    assert_eq!(
        r,
        json!({"incident": 2, "opened": true, "recorded": 2, "mitigated": false})
    );
    let (_, _, status, summary, _, _) = incident(&app, 2).await;
    assert_eq!(status, "investigating");
    assert!(
        summary.starts_with("This alert group fired again after INC-1 was closed."),
        "{summary}"
    );
    assert_eq!(
        kinds(&app, 2).await,
        vec!["declared", "alert_group_follows", "alert_firing", "alert_firing"]
    );
    let old = timeline(&app, 1).await;
    let moved = old.last().unwrap();
    assert_eq!((moved.0.as_str(), moved.4.as_deref()), ("alert_group_moved", Some("2")));
    assert_eq!(
        incident(&app, 1).await.2,
        "resolved",
        "the closed incident stays closed"
    );

    // From now on the group's notifications go to the new incident.
    let r = post_ok(&app, &secret, &fixture("resolved")).await;
    assert_eq!(r["incident"], 2);
    app.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_a_400_that_says_why_and_store_nothing() {
    let db = TestDb::new();
    let (app, secret, _) = am_app(&db, Some(am_settings(false)), &["incidents:declare"]).await;
    post_ok(&app, &secret, &fixture("firing")).await;
    let before = counts(&app).await;
    let good = fixture("grouped");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        ("{\"version\": \"4\", ".into(), "not valid JSON"),
        ("[]".into(), "does not fit"),
        (with(&|v| v["version"] = json!("3")), "version"),
        (with(&|v| v["version"] = json!(4)), "does not fit"),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("groupKey");
            }),
            "groupKey",
        ),
        (with(&|v| v["groupKey"] = json!("")), "groupKey"),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("alerts");
            }),
            "alerts",
        ),
        (with(&|v| v["alerts"] = json!([])), "alerts"),
        (with(&|v| v["alerts"] = json!({})), "does not fit"),
        (with(&|v| v["status"] = json!("pending")), "pending"),
        (with(&|v| v["alerts"][1]["status"] = json!("silenced")), "silenced"),
        (
            with(&|v| v["alerts"][1]["startsAt"] = json!("yesterday")),
            "alerts[1].startsAt",
        ),
        (
            with(&|v| v["alerts"][1]["startsAt"] = json!("2026-11-21T25:61:00Z")),
            "alerts[1].startsAt",
        ),
        (
            with(&|v| v["alerts"][1]["startsAt"] = json!("0001-01-01T00:00:00Z")),
            "start time",
        ),
        (with(&|v| v["alerts"][0]["endsAt"] = json!(12)), "does not fit"),
        (
            with(&|v| v["alerts"][1]["fingerprint"] = json!("has space")),
            "alerts[1].fingerprint",
        ),
        (
            with(&|v| v["alerts"][1]["fingerprint"] = json!("")),
            "alerts[1].fingerprint",
        ),
        (
            with(&|v| {
                v["alerts"][1].as_object_mut().unwrap().remove("fingerprint");
            }),
            "fingerprint",
        ),
        (
            with(&|v| v["alerts"][1]["labels"]["instance"] = json!("a\u{0}b")),
            "NUL",
        ),
        (
            with(&|v| v["alerts"][1]["labels"]["instance"] = json!(3)),
            "does not fit",
        ),
        (with(&|v| v["commonAnnotations"] = json!("text")), "does not fit"),
        (with(&|v| v["truncatedAlerts"] = json!(-1)), "truncatedAlerts"),
        (
            with(&|v| v["truncatedAlerts"] = json!(9_223_372_036_854_775_808u64)),
            "does not fit",
        ),
    ];
    for (body, says) in &cases {
        let r = app
            .client
            .post(format!("{}{PATH}", app.address))
            .bearer_auth(&secret)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: Value = r.json().await.unwrap();
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{body}: {detail}");
    }
    // Not JSON at all, and over the size limit.
    let r = app
        .client
        .post(format!("{}{PATH}", app.address))
        .bearer_auth(&secret)
        .header("content-type", "text/plain")
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let mut huge = good.clone();
    huge["commonAnnotations"]["description"] = json!("x".repeat(600 * 1024));
    let r = post(&app, &secret, &huge).await;
    assert_eq!(r.status(), 413);
    assert_eq!(counts(&app).await, before, "refused bodies changed nothing");
    app.stop().await;
}

#[tokio::test]
async fn the_receiver_needs_a_declare_token_and_is_off_without_its_section() {
    let db = TestDb::new();
    let (app, secret, _) = am_app(&db, Some(am_settings(false)), &["incidents:read", "incidents:write"]).await;
    let body = fixture("firing");
    let r = post(&app, &secret, &body).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.text().await.unwrap().contains("incidents:declare"));
    let r = post(&app, "rbt_nope_nothing", &body).await;
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .post(format!("{}{PATH}", app.address))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(app.incident_count().await, 0);
    app.stop().await;

    let db = TestDb::new();
    let (app, secret, _) = am_app(&db, None, &["incidents:declare"]).await;
    let r = post(&app, &secret, &body).await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("[alertmanager]"));
    assert_eq!(app.incident_count().await, 0);
    app.stop().await;
}
