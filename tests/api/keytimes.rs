//! Key times and durations: the order rules with their messages (and nothing stored when refused),
//! one audit entry per changed time, responders mustered by the first other person, durations in
//! the API, times shown in the viewer's time zone with UTC on hover.

use chrono::{Duration, NaiveDateTime};
use redbutton::db::models::{IncidentRow, TimelineEntryRow};
use redbutton::domain::Actor;
use redbutton::services::tokens::{TokenRequest, create};
use serde_json::{Value, json};

use crate::helpers::*;

async fn row(app: &TestApp, n: i64) -> IncidentRow {
    app.state
        .db
        .run(move |c| redbutton::db::models::incident::find_by_number(c, n))
        .await
        .unwrap()
        .unwrap()
}

async fn entries(app: &TestApp, n: i64) -> Vec<TimelineEntryRow> {
    let id = row(app, n).await.id;
    app.state
        .db
        .run(move |c| redbutton::db::models::timeline::list_for(c, id))
        .await
        .unwrap()
}

async fn of_kind(app: &TestApp, n: i64, kind: &str) -> Vec<TimelineEntryRow> {
    entries(app, n).await.into_iter().filter(|e| e.kind == kind).collect()
}

/// Everything a refused edit must leave alone: the incident row and its timeline.
async fn snapshot(app: &TestApp, n: i64) -> String {
    format!("{:?} {:?}", row(app, n).await, entries(app, n).await)
}

/// The value of an input of the key times form.
fn form_value(html: &str, name: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("form[action$=\"/key-times\"] input[name=\"{name}\"]")).unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_else(|| panic!("no key times input {name}"))
        .to_string()
}

/// A `datetime-local` value in UTC.
fn local(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn minute(t: NaiveDateTime) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(&t.format("%Y-%m-%d %H:%M").to_string(), "%Y-%m-%d %H:%M").unwrap()
}

/// How the domain shows a time in a message next to `other`.
fn said(t: NaiveDateTime, other: NaiveDateTime) -> String {
    if t.date() != other.date() {
        t.format("%Y-%m-%d %H:%M UTC").to_string()
    } else if t.format("%H:%M").to_string() == other.format("%H:%M").to_string() {
        t.format("%H:%M:%S UTC").to_string()
    } else {
        t.format("%H:%M UTC").to_string()
    }
}

/// Posts the key times form of incident `n` as the page shows it, with `changes` applied.
async fn post_key_times(app: &TestApp, n: i64, changes: &[(&str, &str)]) -> reqwest::Response {
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let csrf = form_value(&html, "csrf");
    let expected = form_value(&html, "expected");
    let mut pairs: Vec<(String, String)> = vec![("csrf".into(), csrf), ("expected".into(), expected)];
    for name in ["impact_started", "detected", "mustered", "mitigated", "resolved"] {
        let value = match changes.iter().find(|(k, _)| *k == name) {
            Some((_, v)) => v.to_string(),
            None => {
                // Disabled inputs are not sent by browsers.
                let doc = scraper::Html::parse_document(&html);
                let sel = scraper::Selector::parse(&format!("input[name=\"{name}\"][disabled]")).unwrap();
                if doc.select(&sel).next().is_some() {
                    continue;
                }
                form_value(&html, name)
            }
        };
        pairs.push((name.into(), value));
    }
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.post_form(&format!("/incidents/{n}/key-times"), &pairs).await
}

async fn refused(app: &TestApp, n: i64, changes: &[(&str, &str)], message: &str) {
    let before = snapshot(app, n).await;
    let resp = post_key_times(app, n, changes).await;
    assert_eq!(resp.status(), 422, "{changes:?}");
    let html = resp.text().await.unwrap();
    let shown = texts(&html, ".error-message").join(" ");
    assert!(
        shown.contains(message),
        "{changes:?}: wanted {message:?}, page says {shown:?}"
    );
    assert_eq!(snapshot(app, n).await, before, "{changes:?}: nothing stored");
}

async fn spawn_with_incident() -> (TestApp, TestDb, i64) {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Grace Hopper", "grace@example.com").await;
    let n = app.declare_ok("Payments failing").await;
    (app, db, n)
}

#[tokio::test]
async fn times_out_of_order_are_refused_with_both_times_named_and_nothing_stored() {
    let (app, _db, n) = spawn_with_incident().await;
    let declared = row(&app, n).await.declared_at;
    let d = minute(declared);
    let impact = d - Duration::minutes(60);
    let detected = d - Duration::minutes(30);
    assert_eq!(
        post_key_times(
            &app,
            n,
            &[("impact_started", &local(impact)), ("detected", &local(detected))]
        )
        .await
        .status(),
        303
    );

    // Detected before impact started.
    let early = d - Duration::minutes(90);
    refused(
        &app,
        n,
        &[("detected", &local(early))],
        &format!(
            "Detected ({}) cannot be before impact started ({}).",
            said(early, impact),
            said(impact, early)
        ),
    )
    .await;
    // Impact started after detection.
    let late = d - Duration::minutes(10);
    refused(
        &app,
        n,
        &[("impact_started", &local(late))],
        &format!(
            "Detected ({}) cannot be before impact started ({}).",
            said(detected, late),
            said(late, detected)
        ),
    )
    .await;
    // Detected after the declaration (two minutes on: within the clock skew, so not "future").
    let after = d + Duration::minutes(2);
    refused(
        &app,
        n,
        &[("detected", &local(after))],
        &format!(
            "Declared ({}) cannot be before detected ({}).",
            said(declared, after),
            said(after, declared)
        ),
    )
    .await;
    // Mustered before the declaration.
    let muster = d - Duration::minutes(5);
    refused(
        &app,
        n,
        &[("mustered", &local(muster))],
        &format!(
            "Responders mustered ({}) cannot be before declared ({}).",
            said(muster, declared),
            said(declared, muster)
        ),
    )
    .await;
    // In the future.
    let future = d + Duration::hours(2);
    refused(&app, n, &[("mustered", &local(future))], "is in the future").await;
    // Not a time at all.
    refused(&app, n, &[("detected", "soon")], "Detected: Enter a date and time").await;
    // Mitigated while the incident is not: the status says so first.
    let form = app.get_html(&format!("/incidents/{n}")).await;
    assert!(
        form.contains("name=\"mitigated\" value=\"\" disabled"),
        "the page offers no mitigated time while investigating"
    );
    refused(
        &app,
        n,
        &[("mitigated", &local(d))],
        "move the status to mitigated first",
    )
    .await;

    // Mitigated before impact started; before the declaration is fine.
    app.change_status(n, "investigating", "mitigated").await;
    let too_early = d - Duration::minutes(75);
    refused(
        &app,
        n,
        &[("mitigated", &local(too_early))],
        &format!(
            "Mitigated ({}) cannot be before impact started ({}).",
            said(too_early, impact),
            said(impact, too_early)
        ),
    )
    .await;
    refused(&app, n, &[("mitigated", "")], "keeps a mitigated time").await;
    let mitigated = d - Duration::minutes(20);
    assert_eq!(
        post_key_times(&app, n, &[("mitigated", &local(mitigated))])
            .await
            .status(),
        303,
        "mitigated before the declaration"
    );

    // Resolved before mitigated.
    app.change_status(n, "mitigated", "resolved").await;
    let resolved = d - Duration::minutes(25);
    refused(
        &app,
        n,
        &[("resolved", &local(resolved))],
        &format!(
            "Resolved ({}) cannot be before mitigated ({}).",
            said(resolved, mitigated),
            said(mitigated, resolved)
        ),
    )
    .await;
    let stored = row(&app, n).await;
    assert_eq!(stored.impact_started_at, Some(impact));
    assert_eq!(stored.detected_at, Some(detected));
    assert_eq!(stored.mitigated_at, Some(mitigated));
    app.stop().await;
}

#[tokio::test]
async fn each_changed_time_gets_one_audit_entry_and_unchanged_ones_none() {
    let (app, _db, n) = spawn_with_incident().await;
    let d = minute(row(&app, n).await.declared_at);
    let impact = d - Duration::minutes(45);
    let detected = d - Duration::minutes(15);
    let resp = post_key_times(
        &app,
        n,
        &[("impact_started", &local(impact)), ("detected", &local(detected))],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let changes = of_kind(&app, n, "key_time_changed").await;
    let fields: Vec<_> = changes
        .iter()
        .map(|e| (e.field.clone(), e.old_value.clone(), e.new_value.clone()))
        .collect();
    let iso = |t: NaiveDateTime| Some(t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    assert_eq!(
        fields,
        vec![
            (Some("impact_started".into()), None, iso(impact)),
            (Some("detected".into()), None, iso(detected)),
        ]
    );
    assert!(changes.iter().all(|e| e.actor_email == "grace@example.com"));

    // The form sent back as shown changes nothing and records nothing.
    assert_eq!(post_key_times(&app, n, &[]).await.status(), 303);
    assert_eq!(of_kind(&app, n, "key_time_changed").await.len(), 2);

    // One field changed: one entry, with the old and new values; the page says it in words.
    let later = d - Duration::minutes(10);
    assert_eq!(
        post_key_times(&app, n, &[("detected", &local(later))]).await.status(),
        303
    );
    let changes = of_kind(&app, n, "key_time_changed").await;
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[2].old_value, iso(detected));
    assert_eq!(changes[2].new_value, iso(later));
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let timeline = texts(&html, ".timeline li").join("\n");
    assert!(
        timeline.contains(&format!(
            "changed detected from {} to {}",
            detected.format("%Y-%m-%d %H:%M UTC"),
            later.format("%Y-%m-%d %H:%M UTC")
        )),
        "{timeline}"
    );

    // Clearing is a change too.
    assert_eq!(post_key_times(&app, n, &[("detected", "")]).await.status(), 303);
    let changes = of_kind(&app, n, "key_time_changed").await;
    assert_eq!(changes.len(), 4);
    assert_eq!(
        (changes[3].old_value.clone(), changes[3].new_value.clone()),
        (iso(later), None)
    );
    assert_eq!(row(&app, n).await.detected_at, None);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let times = texts(&html, ".times").join(" ");
    assert!(times.contains("Detected not recorded"), "{times}");

    // A form shown before someone else's change is refused, and stores nothing.
    let stale_html = app.get_html(&format!("/incidents/{n}")).await;
    assert_eq!(
        post_key_times(&app, n, &[("detected", &local(later))]).await.status(),
        303
    );
    let before = snapshot(&app, n).await;
    let resp = app
        .post_form(
            &format!("/incidents/{n}/key-times"),
            &[
                ("csrf", &form_value(&stale_html, "csrf")),
                ("expected", &form_value(&stale_html, "expected")),
                ("detected", &local(d - Duration::minutes(5))),
            ],
        )
        .await;
    assert_eq!(resp.status(), 409);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("changed the key times while you were looking")
    );
    assert_eq!(snapshot(&app, n).await, before);
    app.stop().await;
}

#[tokio::test]
async fn responders_muster_at_the_first_action_of_someone_other_than_the_declarer() {
    let (app, _db, n) = spawn_with_incident().await;
    // The declarer's own actions do not muster anyone.
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/notes"),
            &[("csrf", &csrf), ("note", "still looking")],
        )
        .await;
    assert_eq!(r.status(), 303);
    app.change_severity(n, "unknown", "SEV2").await;
    assert_eq!(row(&app, n).await.mustered_at, None);
    assert!(of_kind(&app, n, "mustered").await.is_empty());
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(
        texts(&html, ".times")
            .join(" ")
            .contains("Responders mustered not recorded")
    );
    assert!(texts(&html, ".durations").join(" ").contains("Time to muster \u{2014}"));

    // Someone else's first action does.
    app.identify("Bob Builder", "bob@example.com").await;
    let csrf = app.csrf().await;
    let r = app
        .post_form(&format!("/incidents/{n}/notes"), &[("csrf", &csrf), ("note", "on it")])
        .await;
    assert_eq!(r.status(), 303);
    let after_bob = row(&app, n).await;
    let mustered = after_bob.mustered_at.expect("mustered by Bob");
    let entries_now = of_kind(&app, n, "mustered").await;
    assert_eq!(entries_now.len(), 1);
    assert_eq!(entries_now[0].actor_email, "bob@example.com");
    assert_eq!(entries_now[0].at, mustered);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let timeline = texts(&html, ".timeline li").join("\n");
    assert!(
        timeline.contains("responders mustered (first action by Bob Builder)"),
        "{timeline}"
    );

    // Later actions by others do not move it.
    app.identify("Carol Ops", "carol@example.com").await;
    app.change_status(n, "investigating", "identified").await;
    app.change_severity(n, "SEV2", "SEV1").await;
    assert_eq!(row(&app, n).await.mustered_at, Some(mustered));
    assert_eq!(of_kind(&app, n, "mustered").await.len(), 1);
    app.stop().await;
}

async fn token(app: &TestApp, scopes: &[&str]) -> String {
    create(
        &app.state,
        &Actor {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        },
        &TokenRequest {
            name: "key times".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap()
    .secret
}

async fn api(app: &TestApp, token: &str, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let url = format!("{}{path}", app.address);
    let req = match (method, body) {
        ("GET", _) => app.client.get(url),
        (_, Some(b)) => app.client.post(url).json(&b),
        (_, None) => app.client.post(url),
    };
    req.header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_api_sets_key_times_and_reports_durations() {
    let (app, _db, n) = spawn_with_incident().await;
    let writer = token(&app, &["incidents:read", "incidents:write"]).await;
    let path = format!("/api/v1/incidents/{n}/key-times");
    let declared = row(&app, n).await.declared_at;
    let rfc = |t: NaiveDateTime| t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    // Before anything is known, only the declaration: every duration is null.
    let got: Value = api(&app, &writer, "GET", &format!("/api/v1/incidents/{n}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["detected_at"], Value::Null);
    assert_eq!(got["mustered_at"], Value::Null);
    for k in ["detect", "declare", "muster", "mitigate", "resolve"] {
        assert_eq!(got["durations"][format!("time_to_{k}_seconds")], Value::Null, "{k}");
    }

    let impact = declared - Duration::minutes(30);
    let detected = declared - Duration::minutes(20);
    let mustered = declared + Duration::seconds(90);
    let resp = api(
        &app,
        &writer,
        "POST",
        &path,
        Some(json!({
            "impact_started_at": rfc(impact),
            "detected_at": rfc(detected),
            "mustered_at": rfc(mustered),
        })),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["durations"]["time_to_detect_seconds"], 600);
    assert_eq!(body["durations"]["time_to_declare_seconds"], 1200);
    assert_eq!(body["durations"]["time_to_muster_seconds"], 90);
    assert_eq!(body["durations"]["time_to_mitigate_seconds"], Value::Null);

    let resp = api(
        &app,
        &writer,
        "POST",
        &format!("/api/v1/incidents/{n}/status"),
        Some(json!({"status": "mitigated"})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mitigated = declared + Duration::seconds(120);
    let resp = api(
        &app,
        &writer,
        "POST",
        &path,
        Some(json!({"mitigated_at": rfc(mitigated)})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let got: Value = api(&app, &writer, "GET", &format!("/api/v1/incidents/{n}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["durations"]["time_to_mitigate_seconds"], 1920);
    assert_eq!(got["durations"]["time_to_resolve_seconds"], Value::Null);
    let got_mustered: chrono::DateTime<chrono::Utc> = got["mustered_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(got_mustered.naive_utc(), mustered);
    let kinds: Vec<_> = got["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "key_time_changed")
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["impact_started", "detected", "mustered", "mitigated"]);

    // Out of order: 422 problem naming the field and both times, nothing stored.
    let before = snapshot(&app, n).await;
    let early = impact - Duration::minutes(1);
    let resp = api(&app, &writer, "POST", &path, Some(json!({"mitigated_at": rfc(early)}))).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "mitigated_at");
    assert_eq!(
        problem["errors"][0]["message"],
        format!(
            "Mitigated ({}) cannot be before impact started ({}).",
            said(early, impact),
            said(impact, early)
        )
    );
    // Clearing a time the status needs, changing the declaration, unknown fields: refused too.
    let resp = api(&app, &writer, "POST", &path, Some(json!({"mitigated_at": null}))).await;
    assert_eq!(resp.status(), 422);
    let resp = api(&app, &writer, "POST", &path, Some(json!({"declared_at": rfc(impact)}))).await;
    assert_eq!(resp.status(), 400, "declared_at is not a field of the request");
    assert_eq!(snapshot(&app, n).await, before);

    // null clears.
    let resp = api(&app, &writer, "POST", &path, Some(json!({"detected_at": null}))).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["detected_at"], Value::Null);
    assert_eq!(body["durations"]["time_to_detect_seconds"], Value::Null);
    assert_eq!(body["durations"]["time_to_declare_seconds"], 1800, "from impact start");

    // A read-only token may not; an unknown incident is 404.
    let reader = token(&app, &["incidents:read"]).await;
    let resp = api(&app, &reader, "POST", &path, Some(json!({"detected_at": null}))).await;
    assert_eq!(resp.status(), 403);
    let resp = api(
        &app,
        &writer,
        "POST",
        "/api/v1/incidents/999/key-times",
        Some(json!({"detected_at": null})),
    )
    .await;
    assert_eq!(resp.status(), 404);

    // The OpenAPI document describes the operation and the new fields.
    let doc: Value = api(&app, &reader, "GET", "/api/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/incidents/{number}/key-times"]["post"].is_object());
    assert!(doc["components"]["schemas"]["Incident"]["properties"]["durations"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn times_show_in_the_viewers_time_zone_with_utc_on_hover() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.viewer_emails = vec!["vera@example.com".into()];
    let app = TestApp::spawn(spawn).await;
    app.identify("Grace Hopper", "grace@example.com").await;
    let n = app.declare_ok("Search slow").await;

    let me = app.get_html("/me").await;
    let csrf = hidden(&me, "csrf");
    let resp = app
        .post_form("/me/time-zone", &[("csrf", &csrf), ("time_zone", "Mars/Olympus_Mons")])
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("Choose a time zone from the list"));
    let resp = app
        .post_form("/me/time-zone", &[("csrf", &csrf), ("time_zone", "Europe/Paris")])
        .await;
    assert_eq!(resp.status(), 303);
    let me = app.get_html("/me").await;
    assert_eq!(
        texts(&me, "option[selected]"),
        ["Europe/Paris"],
        "the page shows the choice"
    );

    // Typed in Paris time (15:05 CET), stored in UTC (14:05), shown in Paris time, UTC on hover.
    let resp = post_key_times(&app, n, &[("impact_started", "2020-11-20T15:05")]).await;
    assert_eq!(resp.status(), 303);
    let stored = row(&app, n).await.impact_started_at.unwrap();
    assert_eq!(stored.format("%Y-%m-%d %H:%M:%S").to_string(), "2020-11-20 14:05:00");
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse(".times time[datetime=\"2020-11-20T14:05:00Z\"]").unwrap();
    let el = doc
        .select(&sel)
        .next()
        .expect("the impact start, with its UTC datetime");
    assert_eq!(el.text().collect::<String>(), "2020-11-20 15:05 CET");
    assert_eq!(el.value().attr("title"), Some("2020-11-20 14:05 UTC"));
    assert_eq!(
        form_value(&html, "impact_started"),
        "2020-11-20T15:05",
        "the form is in Paris time too"
    );
    // Timeline times likewise.
    let sel = scraper::Selector::parse(".timeline time").unwrap();
    for t in doc.select(&sel) {
        let text = t.text().collect::<String>();
        assert!(text.ends_with(" CET") || text.ends_with(" CEST"), "{}", t.html());
        assert!(t.value().attr("title").unwrap().ends_with(" UTC"), "{}", t.html());
    }
    assert!(
        texts(&html, ".timeline li")
            .join("\n")
            .contains("changed impact started from not recorded to 2020-11-20 15:05 CET")
    );

    // Someone who chose nothing sees UTC; a viewer may choose their own zone.
    app.identify("Vera Viewer", "vera@example.com").await;
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(texts(&html, ".times").join(" ").contains("2020-11-20 14:05 UTC"));
    let csrf = hidden(&app.get_html("/me").await, "csrf");
    let resp = app
        .post_form("/me/time-zone", &[("csrf", &csrf), ("time_zone", "America/New_York")])
        .await;
    assert_eq!(resp.status(), 303, "a viewer sets their own time zone");
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(texts(&html, ".times").join(" ").contains("2020-11-20 09:05 EST"));
    // Without a CSRF token nothing is changed.
    let resp = app
        .post_form("/me/time-zone", &[("csrf", "forged"), ("time_zone", "UTC")])
        .await;
    assert_eq!(resp.status(), 403);
    let zone = app
        .state
        .db
        .run(|c| redbutton::db::models::user::time_zone_of(c, "vera@example.com"))
        .await
        .unwrap();
    assert_eq!(zone.as_deref(), Some("America/New_York"));
    app.stop().await;
}
