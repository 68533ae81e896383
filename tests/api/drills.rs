//! Drills: with `[drills]` configured, a drill reaches only the drill targets (and email only the
//! drill recipients), never a pager even at SEV1, and says it is a drill in the email subject,
//! the Slack channel name and posts, and on the pages. "Start a drill" on the dashboard declares
//! one from a configured scenario. Drills, declined and merged incidents leave the dashboard's
//! figures as they were.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use redbutton::config::{DrillScenario, DrillSettings};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::slack::{CENTRAL, SlackWorld};

fn rule(toml: &str) -> redbutton::config::RoutingRule {
    toml::from_str(toml).unwrap()
}

fn scenario(id: &str, title: &str, severity: &str) -> DrillScenario {
    DrillScenario {
        id: id.into(),
        title: title.into(),
        severity: severity.into(),
        services: vec!["checkout".into()],
        summary: format!("Game day: **{title}**."),
    }
}

fn drills(notifiers: &[&str], scenarios: Vec<DrillScenario>) -> DrillSettings {
    DrillSettings {
        notifiers: notifiers.iter().map(|s| s.to_string()).collect(),
        email_to: vec!["game-day@example.com".into()],
        events: redbutton::config::default_rule_events(),
        scenarios,
    }
}

/// Every outbox row done, and no more arriving for a moment.
async fn settle(app: &TestApp) -> Vec<redbutton::db::models::OutboxRow> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = app.outbox_rows().await;
        if rows.iter().all(|r| r.state == "done") {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let again = app.outbox_rows().await;
            if again.len() == rows.len() && again.iter().all(|r| r.state == "done") {
                return again;
            }
        }
        assert!(Instant::now() < deadline, "not settled: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn notifiers_of(rows: &[redbutton::db::models::OutboxRow], n: i64) -> BTreeSet<String> {
    rows.iter()
        .filter(|r| {
            let p: serde_json::Value = serde_json::from_str(&r.payload).unwrap();
            p["incident"]["number"] == json!(n)
        })
        .map(|r| r.notifier.clone())
        .collect()
}

#[tokio::test]
async fn a_drill_reaches_only_the_drill_targets_never_pages_and_is_labelled() {
    let slack = SlackWorld::start().await;
    let pagers = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"status": "success", "dedup_key": "x"})))
        .mount(&pagers)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"result": "ok", "requestId": "r"})))
        .mount(&pagers)
        .await;
    let sink = SmtpSink::start();
    let db = TestDb::new();
    let mut spawn = slack.spawn(&db);
    let s = &mut spawn.settings;
    s.integrations.email = Some(email_to_sink(sink.port));
    s.integrations.pagerduty = Some(
        toml::from_str(&format!(
            "base_url = \"{}\"\nrouting_key_env = \"TEST_PD_KEY\"\npage_at_or_above = \"SEV1\"\n",
            pagers.uri()
        ))
        .unwrap(),
    );
    s.integrations.opsgenie = Some(
        toml::from_str(&format!(
            "base_url = \"{}\"\napi_key_env = \"TEST_OG_KEY\"\npage_at_or_above = \"SEV1\"\n",
            pagers.uri()
        ))
        .unwrap(),
    );
    s.secret_values.insert("TEST_PD_KEY".into(), "R0UTING".into());
    s.secret_values.insert("TEST_OG_KEY".into(), "genie-key".into());
    // The rules would send drills everywhere; the drill targets decide instead.
    s.routing = vec![rule(
        "name = \"everything\"\ndrills = true\nnotifiers = [\"slack\", \"email\", \"pagerduty\", \"opsgenie\"]\n\
         email_to = [\"leadership@example.com\"]\n",
    )];
    s.drills = Some(drills(&["slack", "email"], vec![]));
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;

    let r = app
        .declare(&[
            ("title", "Failover practice"),
            ("severity", "SEV1"),
            ("services", "checkout"),
            ("drill", "on"),
        ])
        .await;
    assert_eq!(r.status(), 303);
    let drill = number_from_location(&r);
    app.change_status(drill, "investigating", "resolved").await;
    let rows = settle(&app).await;
    assert_eq!(
        notifiers_of(&rows, drill),
        BTreeSet::from(["email".to_string(), "slack".to_string()]),
        "only the drill targets, even though the rules name the pagers"
    );
    assert!(
        pagers.received_requests().await.unwrap().is_empty(),
        "no pager was called for a SEV1 drill"
    );

    // Email: only the drill recipients, labelled in the subject.
    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 2, "declared and resolved");
    for m in &mails {
        assert_eq!(m.rcpt_tos, vec!["game-day@example.com".to_string()]);
        let subject = m.header("Subject").unwrap();
        assert!(subject.starts_with("[DRILL] [SEV1]"), "{subject}");
    }

    // Slack: a drill channel, posts that say so, no announcement in the incidents channel.
    let channels = slack.channels();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].1, format!("drill-{drill}-failover-practice"));
    assert!(channels[0].3.starts_with("DRILL"), "topic: {}", channels[0].3);
    let posts = slack.messages(&channels[0].0);
    assert!(
        posts[0].text.starts_with(&format!("[DRILL] INC-{drill}")),
        "{}",
        posts[0].text
    );
    let last = posts.last().unwrap();
    assert!(last.text.starts_with("[DRILL] "), "{}", last.text);
    assert_eq!(
        last.blocks[1]["elements"][0]["text"].as_str().unwrap(),
        "DRILL \u{b7} SEV1 \u{b7} Resolved \u{b7} Lead: nobody yet"
    );
    assert!(slack.messages(CENTRAL).is_empty());

    // Pages label it too.
    let page = app.get_html(&format!("/incidents/{drill}")).await;
    assert_eq!(texts(&page, ".drill-banner"), ["This is a drill."]);
    let dash = app.get_html("/").await;
    assert!(texts(&dash, "#past tbody tr")[0].contains("drill"));

    // A real incident next to it still follows the rules: it pages and emails leadership.
    let r = app
        .declare(&[
            ("title", "Checkout down"),
            ("severity", "SEV1"),
            ("services", "checkout"),
        ])
        .await;
    let real = number_from_location(&r);
    let rows = settle(&app).await;
    assert_eq!(
        notifiers_of(&rows, real),
        BTreeSet::from(["email", "opsgenie", "pagerduty", "slack"].map(String::from))
    );
    assert_eq!(pagers.received_requests().await.unwrap().len(), 2, "one page each");
    let mails = sink.wait_for(3, Duration::from_secs(10)).await;
    assert!(mails[2].rcpt_tos.contains(&"leadership@example.com".to_string()));
    assert!(!mails[2].header("Subject").unwrap().contains("DRILL"));
    app.stop().await;
}

#[tokio::test]
async fn start_a_drill_declares_the_chosen_scenario_once() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.services = vec![service("checkout", "Checkout", &[])];
    spawn.settings.drills = Some(drills(
        &[],
        vec![
            scenario("checkout-down", "Checkout is down", "SEV1"),
            scenario("slow-search", "Search is slow", "SEV3"),
        ],
    ));
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;

    let dash = app.get_html("/").await;
    assert_eq!(
        texts(&dash, "#start-drill select option"),
        ["Checkout is down", "Search is slow"]
    );
    let csrf = hidden(&dash, "csrf");
    let key = hidden(&dash, "idempotency_key");

    // An unknown scenario, or a forged token, starts nothing.
    for (scenario, token, want) in [("nope", csrf.as_str(), 422), ("slow-search", "forged", 403)] {
        let r = app
            .post_form(
                "/drills",
                &[("csrf", token), ("idempotency_key", &key), ("scenario", scenario)],
            )
            .await;
        assert_eq!(r.status(), want, "{scenario}");
        assert_eq!(app.incident_count().await, 0);
    }

    let form = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("scenario", "slow-search"),
    ];
    let r = app.post_form("/drills", &form).await;
    assert_eq!(r.status(), 303);
    let n = number_from_location(&r);
    // A second press of the same form opens the same drill.
    let again = app.post_form("/drills", &form).await;
    assert_eq!(again.status(), 303);
    assert_eq!(number_from_location(&again), n);
    assert_eq!(app.incident_count().await, 1);

    let row = app
        .state
        .db
        .run(move |c| redbutton::db::models::incident::find_by_number(c, n))
        .await
        .unwrap()
        .unwrap();
    assert!(row.drill);
    assert_eq!(row.title, "Search is slow");
    assert_eq!(row.severity, "SEV3");
    assert_eq!(row.summary, "Game day: **Search is slow**.");
    assert_eq!(row.declared_by_email, "ada@example.com");
    let page = app.get_html(&format!("/incidents/{n}")).await;
    assert_eq!(texts(&page, ".drill-banner"), ["This is a drill."]);
    assert!(texts(&page, ".facts")[0].contains("SEV3"));

    // One scenario: no choice to make, the button names it.
    app.stop().await;
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.drills = Some(drills(&[], vec![scenario("only", "Only drill", "unknown")]));
    spawn.settings.services = vec![service("checkout", "Checkout", &[])];
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let dash = app.get_html("/").await;
    assert!(texts(&dash, "#start-drill select").is_empty());
    assert_eq!(hidden(&dash, "scenario"), "only");
    app.stop().await;

    // No scenarios: no button.
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    assert!(texts(&app.get_html("/").await, "#start-drill").is_empty());
    app.stop().await;
}

fn minutes_ago(m: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(m))
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

async fn declare_started(app: &TestApp, title: &str, started: i64, drill: bool) -> i64 {
    let started = minutes_ago(started);
    let mut fields = vec![("title", title), ("impact_started", started.as_str())];
    if drill {
        fields.push(("drill", "on"));
    }
    let r = app.declare(&fields).await;
    assert_eq!(r.status(), 303, "{title}");
    number_from_location(&r)
}

async fn figures(app: &TestApp) -> Vec<String> {
    let dash = app.get_html("/").await;
    ["#figure-count", "#figure-mitigate", "#figure-resolve"]
        .iter()
        .map(|s| texts(&dash, s).join(""))
        .collect()
}

#[tokio::test]
async fn drills_declined_and_merged_incidents_leave_the_figures_alone() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let csrf = app.csrf().await;

    let real = declare_started(&app, "Checkout down", 40, false).await;
    app.change_status(real, "investigating", "mitigated").await;
    app.change_status(real, "mitigated", "resolved").await;
    let other = declare_started(&app, "Search down", 20, false).await;
    app.change_status(other, "investigating", "mitigated").await;
    let before = figures(&app).await;
    assert_eq!(before[0], "2 incidents");
    assert!(
        before[1].starts_with("median time to mitigate 3"),
        "(40m + 20m) / 2: {before:?}"
    );
    assert!(
        before[2].starts_with("median time to resolve 4"),
        "only one resolved: {before:?}"
    );

    // A drill, mitigated and resolved quickly.
    let drill = declare_started(&app, "Game day", 2, true).await;
    app.change_status(drill, "investigating", "resolved").await;
    // A false alarm, declined.
    let alarm = declare_started(&app, "Flappy alert", 1, false).await;
    let r = app
        .post_form(
            &format!("/incidents/{alarm}/decline"),
            &[
                ("csrf", &csrf),
                ("expected", "investigating"),
                ("reason", "alert misfired"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    // A duplicate, mitigated, then merged into the first.
    let dup = declare_started(&app, "Checkout errors", 1, false).await;
    app.change_status(dup, "investigating", "mitigated").await;
    let r = app
        .post_form(
            &format!("/incidents/{dup}/merge"),
            &[("csrf", &csrf), ("expected", "mitigated"), ("into", &real.to_string())],
        )
        .await;
    assert_eq!(r.status(), 303);

    assert_eq!(figures(&app).await, before);
    // The rule is one query: exactly the two real incidents count.
    let since = chrono::Utc::now().naive_utc() - chrono::Duration::days(30);
    let counted = app
        .state
        .db
        .run(move |c| redbutton::db::models::incident::counted_since(c, since))
        .await
        .unwrap();
    let numbers: Vec<i64> = counted.iter().map(|r| r.number).collect();
    assert_eq!(numbers, vec![real, other]);
    app.stop().await;
}
