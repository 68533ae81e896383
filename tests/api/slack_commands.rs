//! The `/incident` slash command: Slack's signing (its published example through the injected
//! clock, stale, forged and replayed requests refused with nothing stored), then each command end
//! to end: the ephemeral answer, the incident in the database, and what the outbox then does at
//! the fake Slack.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::helpers::*;
use crate::slack::{CENTRAL, SlackWorld, TOKEN};

const SECRET: &str = "e2c4b9a1f0d3867c5b4a29e1d0c8f7a6";
const SECRET_ENV: &str = "TEST_SLACK_SIGNING_SECRET";

/// Slack's published example (see src/auth/slack_signature.rs).
const VECTOR_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const VECTOR_TS: &str = "1531420618";
const VECTOR_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const VECTOR_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

/// Members the fake `users.info` knows: id → (name, email).
fn member(id: &str) -> Option<(&'static str, &'static str)> {
    match id {
        "UADA0001" => Some(("Ada Lovelace", "ada@example.com")),
        "UGRACE01" => Some(("Grace Hopper", "grace@example.com")),
        "UVERA001" => Some(("Vera Viewer", "vera@example.com")),
        "UNOMAIL1" => Some(("No Mail", "")),
        _ => None,
    }
}

/// Adds `users.info` to the fake Slack (ahead of its catch-all).
async fn with_users_info(world: &SlackWorld) {
    Mock::given(method("GET"))
        .and(path("/api/users.info"))
        .respond_with(|req: &Request| {
            let user = req
                .url
                .query_pairs()
                .find(|(k, _)| k == "user")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            let authed = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                == Some(&*format!("Bearer {TOKEN}"));
            match member(&user) {
                Some((name, email)) if authed => {
                    let mut profile = json!({"real_name": name, "display_name": ""});
                    if !email.is_empty() {
                        profile["email"] = json!(email);
                    }
                    ResponseTemplate::new(200).set_body_json(
                        json!({"ok": true, "user": {"id": user, "name": "handle", "real_name": name, "profile": profile}}),
                    )
                }
                _ if !authed => ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "invalid_auth"})),
                _ => ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "user_not_found"})),
            }
        })
        .with_priority(1)
        .mount(&world.server)
        .await;
}

fn spawn(world: &SlackWorld, db: &TestDb) -> Spawn {
    let mut spawn = world.spawn(db);
    let slack = spawn.settings.integrations.slack.as_mut().unwrap();
    slack.signing_secret_env = Some(SECRET_ENV.into());
    slack.command_severity = Some("SEV2".into());
    spawn.settings.secret_values.insert(SECRET_ENV.into(), SECRET.into());
    spawn.settings.auth.viewer_emails = vec!["vera@example.com".into()];
    spawn
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(secret: &str, ts: &str, body: &str) -> String {
    redbutton::auth::slack_signature::sign(secret.as_bytes(), ts, body.as_bytes())
}

/// A slash-command body as Slack sends it.
fn body(text: &str, channel: &str, user: &str) -> String {
    let pairs = [
        ("token", "deprecated-verification-token"),
        ("team_id", "T0ACME001"),
        ("team_domain", "acme"),
        ("channel_id", channel),
        ("channel_name", "somewhere"),
        ("user_id", user),
        ("user_name", "handle"),
        ("command", "/incident"),
        ("text", text),
        ("api_app_id", "A0REDBTN1"),
        ("is_enterprise_install", "false"),
        ("response_url", "https://hooks.slack.com/commands/T0ACME001/1/abc"),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
    ];
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn post(app: &TestApp, ts: &str, signature: &str, body: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/slack/commands", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Runs a command, freshly signed, and returns the ephemeral text (asserting the envelope).
async fn command(app: &TestApp, text: &str, channel: &str, user: &str) -> String {
    let b = body(text, channel, user);
    let ts = now().to_string();
    let r = post(app, &ts, &sign(SECRET, &ts, &b), &b).await;
    assert_eq!(r.status(), 200, "{text}");
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["response_type"], "ephemeral", "{v}");
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    v["text"].as_str().unwrap().to_string()
}

async fn count(app: &TestApp, table: &'static str) -> i64 {
    app.state
        .db
        .run(move |c| {
            use diesel::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                .get_result::<N>(c)
                .map(|r| r.n)
        })
        .await
        .unwrap()
}

/// Row counts of everything a command could write.
async fn stored(app: &TestApp) -> Vec<i64> {
    let mut v = Vec::new();
    for t in [
        "incidents",
        "timeline_entries",
        "outbox",
        "status_updates",
        "idempotency_keys",
        "users",
    ] {
        v.push(count(app, t).await);
    }
    v
}

async fn incident(app: &TestApp, n: i64) -> redbutton::db::models::IncidentRow {
    app.state
        .db
        .run(move |c| redbutton::db::models::incident::find_by_number(c, n))
        .await
        .unwrap()
        .unwrap()
}

/// The Slack requests of `api` since the `skip` first ones.
fn calls(world: &SlackWorld, api: &str) -> Vec<Value> {
    world.seen(api).into_iter().map(|s| s.body).collect()
}

async fn users_info_calls(world: &SlackWorld) -> Vec<String> {
    world
        .server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/api/users.info")
        .map(|r| r.url.query().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn slacks_published_example_is_accepted_at_its_own_time_and_only_then() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let mut spawn = world.spawn(&db);
    spawn.settings.integrations.slack.as_mut().unwrap().signing_secret_env = Some(SECRET_ENV.into());
    spawn
        .settings
        .secret_values
        .insert(SECRET_ENV.into(), VECTOR_SECRET.into());
    let app = TestApp::spawn(spawn).await;
    let commands = app.state.slack_commands.clone().unwrap();

    // Five minutes and a second after the example was signed: too late.
    commands.set_clock(Arc::new(|| 1_531_420_618 + 301));
    let r = post(&app, VECTOR_TS, VECTOR_SIGNATURE, VECTOR_BODY).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("five minutes"));
    assert_eq!(
        count(&app, "slack_requests_seen").await,
        0,
        "a refused request is not recorded"
    );

    // At its own moment it verifies; its empty text asks for help.
    commands.set_clock(Arc::new(|| 1_531_420_618));
    let r = post(&app, VECTOR_TS, VECTOR_SIGNATURE, VECTOR_BODY).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["response_type"], "ephemeral");
    assert!(v["text"].as_str().unwrap().starts_with("*/incident* declares"), "{v}");
    assert_eq!(count(&app, "slack_requests_seen").await, 1);

    // The same request again is a replay.
    let r = post(&app, VECTOR_TS, VECTOR_SIGNATURE, VECTOR_BODY).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("already handled"));
    assert_eq!(count(&app, "slack_requests_seen").await, 1);

    // Once it has left the window it is forgotten (and still refused, by its age).
    commands.set_clock(Arc::new(|| 1_531_420_618 + 301));
    let b = body("help", "C0ANYWHERE", "UADA0001");
    let ts = (1_531_420_618 + 301).to_string();
    let r = post(&app, &ts, &sign(VECTOR_SECRET, &ts, &b), &b).await;
    assert_eq!(r.status(), 200);
    assert_eq!(count(&app, "slack_requests_seen").await, 1, "the old row was pruned");
    app.stop().await;
}

#[tokio::test]
async fn stale_forged_and_replayed_requests_are_refused_and_change_nothing() {
    let world = SlackWorld::start().await;
    with_users_info(&world).await;
    let db = TestDb::new();
    let app = TestApp::spawn(spawn(&world, &db)).await;
    let b = body("sev1 checkout errors", "C0ANYWHERE", "UADA0001");
    let before = stored(&app).await;

    for ts in [now() - 301, now() + 301] {
        let ts = ts.to_string();
        let r = post(&app, &ts, &sign(SECRET, &ts, &b), &b).await;
        assert_eq!(r.status(), 401, "{ts}");
    }
    let ts = now().to_string();
    let forged = sign("not-the-signing-secret", &ts, &b);
    assert_eq!(post(&app, &ts, &forged, &b).await.status(), 401);
    let good = sign(SECRET, &ts, &b);
    let tampered = b.replace("sev1", "sev0");
    assert_eq!(
        post(&app, &ts, &good, &tampered).await.status(),
        401,
        "the body is signed"
    );
    assert_eq!(post(&app, "", &good, &b).await.status(), 401);
    assert_eq!(post(&app, &ts, "", &b).await.status(), 401);
    assert_eq!(stored(&app).await, before, "refused requests store nothing");
    assert_eq!(count(&app, "slack_requests_seen").await, 0);
    assert!(
        users_info_calls(&world).await.is_empty(),
        "nothing was looked up either"
    );

    // The genuine request declares once; the same bytes again are refused.
    let r = post(&app, &ts, &good, &b).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.incident_count().await, 1);
    let after_first = stored(&app).await;
    let r = post(&app, &ts, &good, &b).await;
    assert_eq!(r.status(), 401);
    assert_eq!(stored(&app).await, after_first, "a replay stores nothing twice");
    assert_eq!(count(&app, "slack_requests_seen").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn without_a_signing_secret_the_endpoint_is_not_there() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let app = TestApp::spawn(world.spawn(&db)).await;
    let b = body("sev1 x", "C0ANYWHERE", "UADA0001");
    let ts = now().to_string();
    let r = post(&app, &ts, &sign(SECRET, &ts, &b), &b).await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("signing_secret_env"));
    assert_eq!(app.incident_count().await, 0);
    app.stop().await;
}

#[tokio::test]
async fn declaring_from_slack_opens_the_incident_and_its_channel_through_the_outbox() {
    let world = SlackWorld::start().await;
    with_users_info(&world).await;
    let db = TestDb::new();
    let app = TestApp::spawn(spawn(&world, &db)).await;

    let text = command(&app, "sev1 Checkout <errors> & timeouts", "C0ANYWHERE", "UADA0001").await;
    let url = format!("{}/incidents/1", app.address);
    assert_eq!(
        text,
        format!(
            "Declared <{url}|INC-1: Checkout &lt;errors&gt; &amp; timeouts> (SEV1). Its Slack channel is on its way."
        )
    );
    let row = incident(&app, 1).await;
    assert_eq!(row.title, "Checkout <errors> & timeouts");
    assert_eq!(row.severity, "SEV1");
    assert_eq!(row.status, "investigating");
    assert_eq!(
        (row.declared_by_name.as_str(), row.declared_by_email.as_str()),
        ("Ada Lovelace", "ada@example.com")
    );
    assert_eq!(users_info_calls(&world).await, vec!["user=UADA0001"]);

    // Without a severity word, the configured command severity.
    let text = command(&app, "search is slow", "C0ANYWHERE", "UADA0001").await;
    assert!(text.contains("INC-2: search is slow> (SEV2)"), "{text}");
    assert_eq!(incident(&app, 2).await.severity, "SEV2");

    // Everything Slack sees happens in the outbox: one channel per incident, announced.
    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.notifier == "slack" && r.event == "declared"));
    let mut created = calls(&world, "conversations.create");
    created.sort_by_key(|v| v["name"].as_str().unwrap().to_string());
    assert_eq!(
        created,
        vec![
            json!({"name": "inc-1-checkout-errors-timeouts", "is_private": false}),
            json!({"name": "inc-2-search-is-slow", "is_private": false}),
        ]
    );
    assert_eq!(world.messages(CENTRAL).len(), 2, "both announced");
    app.stop().await;
}

/// Declares through the command and waits for its channel; returns the channel id.
async fn declared_channel(app: &TestApp, world: &SlackWorld, text: &str) -> String {
    command(app, text, "C0ANYWHERE", "UADA0001").await;
    app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    world.channels().last().unwrap().0.clone()
}

#[tokio::test]
async fn status_lead_and_update_work_in_the_incident_channel() {
    let world = SlackWorld::start().await;
    with_users_info(&world).await;
    let db = TestDb::new();
    let app = TestApp::spawn(spawn(&world, &db)).await;
    let cid = declared_channel(&app, &world, "sev1 checkout errors").await;
    let posts_before = world.messages(&cid).len();

    // Status.
    let text = command(&app, "status mitigated", &cid, "UADA0001").await;
    assert_eq!(text, "INC-1 is now Mitigated.");
    let row = incident(&app, 1).await;
    assert_eq!(row.status, "mitigated");
    assert!(row.mitigated_at.is_some());
    app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    let msgs = world.messages(&cid);
    assert_eq!(msgs.len(), posts_before + 1);
    assert_eq!(
        msgs.last().unwrap().text,
        "INC-1 Ada Lovelace changed the status from Investigating to Mitigated."
    );
    let topic = &world.channels()[0].3;
    assert!(
        topic.starts_with("SEV1 \u{b7} Mitigated \u{b7} Lead: nobody yet"),
        "{topic}"
    );

    // Lead: Grace, known to Big Red Button by her Slack id, so no lookup is needed for her.
    app.state
        .db
        .run(|c| {
            redbutton::db::models::user::upsert(
                c,
                "grace@example.com",
                "Grace Hopper",
                "responder",
                redbutton::domain::declaration::now_utc(),
            )?;
            redbutton::db::models::user::set_slack_id(c, "grace@example.com", Some("UGRACE01"))
        })
        .await
        .unwrap();
    let lookups = users_info_calls(&world).await.len();
    let text = command(&app, "lead <@UGRACE01|grace>", &cid, "UADA0001").await;
    assert_eq!(text, "Grace Hopper now leads INC-1.");
    let row = incident(&app, 1).await;
    assert_eq!(row.lead_email.as_deref(), Some("grace@example.com"));
    assert_eq!(row.lead_name.as_deref(), Some("Grace Hopper"));
    assert_eq!(
        users_info_calls(&world).await.len(),
        lookups + 1,
        "only the actor (Ada) was looked up"
    );
    app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    assert_eq!(
        world.messages(&cid).last().unwrap().text,
        "INC-1 Grace Hopper is now leading the incident (set by Ada Lovelace)."
    );
    let invites = calls(&world, "conversations.invite");
    assert_eq!(
        invites.last().unwrap(),
        &json!({"channel": cid, "users": "UGRACE01", "force": true})
    );

    // Grace, acting herself, is found by her Slack id: no lookup at all.
    let lookups = users_info_calls(&world).await.len();
    let text = command(
        &app,
        "update Errors are back to normal | Watching the error rate for an hour",
        &cid,
        "UGRACE01",
    )
    .await;
    assert_eq!(text, "Status update posted on INC-1.");
    assert_eq!(users_info_calls(&world).await.len(), lookups);
    let (known, doing, author, next) = app
        .state
        .db
        .run(|c| {
            use diesel::prelude::*;
            use redbutton::db::schema::status_updates::dsl as s;
            s::status_updates
                .select((s::known, s::doing, s::author_email, s::next_update_at))
                .first::<(String, String, String, Option<chrono::NaiveDateTime>)>(c)
        })
        .await
        .unwrap();
    assert_eq!(known, "Errors are back to normal");
    assert_eq!(doing, "Watching the error rate for an hour");
    assert_eq!(author, "grace@example.com");
    assert!(next.is_some(), "SEV1 expects updates, so the next one is due");
    app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    let last = world.messages(&cid).last().unwrap().clone();
    assert_eq!(
        last.text,
        "INC-1 status update from Grace Hopper: Errors are back to normal Watching the error rate for an hour"
    );
    assert_eq!(
        last.blocks[1]["text"]["text"],
        json!("*What we know*\nErrors are back to normal")
    );
    app.stop().await;
}

#[tokio::test]
async fn mistakes_get_a_clear_answer_and_change_nothing() {
    let world = SlackWorld::start().await;
    with_users_info(&world).await;
    let db = TestDb::new();
    let app = TestApp::spawn(spawn(&world, &db)).await;
    let cid = declared_channel(&app, &world, "sev1 checkout errors").await;
    let before = stored(&app).await;

    let cases: Vec<(&str, &str, &str, &str)> = vec![
        (
            "status mitigated",
            "C0NOTINCIDENT",
            "UADA0001",
            "not an incident channel",
        ),
        (
            "update all good",
            "C0NOTINCIDENT",
            "UADA0001",
            "not an incident channel",
        ),
        (
            "lead <@UGRACE01>",
            "C0NOTINCIDENT",
            "UADA0001",
            "not an incident channel",
        ),
        (
            "status sleeping",
            &cid,
            "UADA0001",
            "\u{201c}sleeping\u{201d} is not a status",
        ),
        ("status declined", &cid, "UADA0001", "needs a reason"),
        ("status", &cid, "UADA0001", "Say which status"),
        ("lead grace", &cid, "UADA0001", "Mention the new lead"),
        ("lead <@UNOBODY1>", &cid, "UADA0001", "could not look up <@UNOBODY1>"),
        ("lead <@UVERA001>", &cid, "UADA0001", "viewer"),
        ("update", &cid, "UADA0001", "Say what we know"),
        ("update  | doing things", &cid, "UADA0001", "Say what we know"),
        ("declare", "C0ANYWHERE", "UADA0001", "Give the incident a title"),
        ("sev1 x", "C0ANYWHERE", "UNOBODY1", "could not look up <@UNOBODY1>"),
        ("sev1 x", "C0ANYWHERE", "UNOMAIL1", "users:read.email"),
        ("sev1 x", "C0ANYWHERE", "UVERA001", "viewer"),
        ("status investigating", &cid, "UADA0001", "already"),
    ];
    for (text, channel, user, expected) in &cases {
        let answer = command(&app, text, channel, user).await;
        assert!(answer.contains(expected), "{text}: {answer}");
        assert_eq!(stored(&app).await, before, "{text} changed nothing");
    }
    let title = "x".repeat(201);
    let answer = command(&app, &format!("sev1 {title}"), "C0ANYWHERE", "UADA0001").await;
    assert!(answer.starts_with("Not declared: "), "{answer}");
    assert_eq!(stored(&app).await, before);

    // A closed incident takes no update.
    assert_eq!(
        command(&app, "status resolved", &cid, "UADA0001").await,
        "INC-1 is now Resolved."
    );
    let before = stored(&app).await;
    let answer = command(&app, "update all good | nothing", &cid, "UADA0001").await;
    assert!(answer.contains("This incident is closed"), "{answer}");
    assert_eq!(stored(&app).await, before);
    assert_eq!(incident(&app, 1).await.status, "resolved");
    app.stop().await;
}

#[tokio::test]
async fn a_bad_command_severity_is_refused_by_name() {
    let world = SlackWorld::start().await;
    let db = TestDb::new();
    let mut s = spawn(&world, &db);
    s.settings.integrations.slack.as_mut().unwrap().command_severity = Some("SEV9".into());
    let err = s.settings.validate(&[]).unwrap_err().to_string();
    assert!(err.contains("integrations.slack.command_severity"), "{err}");
    assert!(err.contains("SEV9"), "{err}");
}
