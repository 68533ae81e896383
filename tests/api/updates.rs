//! Status updates for stakeholders: written on the incident page (or through the API), kept as
//! their own kind of timeline entry, shown as the latest update with its next-update time on the
//! incident page and the dashboard, and sent wherever routing sends them: a post in the incident
//! channel and a refreshed announcement (Slack), the severity's email lists, a Jira comment and
//! webhooks, each checked at its test vendor.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::slack::{CENTRAL, SlackWorld};

const KNOWN: &str = "Card payments fail for about 20% of customers since 14:05.\nOther payments work.";
const DOING: &str = "Rolling back deploy 4412 & watching the error rate <closely>.";

async fn post_update(app: &TestApp, n: i64, known: &str, doing: &str, next: &str) -> reqwest::Response {
    let csrf = app.csrf().await;
    app.post_form(
        &format!("/incidents/{n}/updates"),
        &[
            ("csrf", &csrf),
            ("known", known),
            ("doing", doing),
            ("next_update", next),
        ],
    )
    .await
}

async fn jira_vendor() -> MockServer {
    let jira = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"id": "10001", "key": "OPS-1", "self": format!("{}/rest/api/3/issue/10001", jira.uri())}),
        ))
        .expect(1)
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/OPS-1/comment"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "10100", "body": {}})))
        .expect(1)
        .mount(&jira)
        .await;
    jira
}

/// All text nodes of an ADF document, in order.
fn adf_text(v: &Value, out: &mut Vec<String>) {
    if let Some(t) = v.get("text").and_then(Value::as_str) {
        out.push(t.to_string());
    }
    if let Some(items) = v.get("content").and_then(Value::as_array) {
        for i in items {
            adf_text(i, out);
        }
    }
}

#[tokio::test]
async fn an_update_is_its_own_entry_and_reaches_the_channel_announcement_lists_ticket_and_webhooks() {
    let slack = SlackWorld::start().await;
    let jira = jira_vendor().await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    let sink = SmtpSink::start();
    let db = TestDb::new();
    let mut spawn = slack.spawn(&db);
    let s = &mut spawn.settings;
    s.services[0].email_to = vec!["payments@example.com".into()];
    s.integrations.email = Some(email_to_sink(sink.port));
    s.integrations.jira = Some(
        toml::from_str(&format!(
            "base_url = \"{}\"\nemail = \"bot@example.com\"\ntoken_env = \"TEST_JIRA_TOKEN\"\nproject = \"OPS\"\n",
            jira.uri()
        ))
        .unwrap(),
    );
    s.secret_values.insert("TEST_JIRA_TOKEN".into(), "jira-token".into());
    s.integrations.webhooks.push(
        toml::from_str(&format!(
            "name = \"status\"\nurl = \"{}/hook\"\nsecret_env = \"TEST_HOOK\"\nevents = [\"status_update\"]\n",
            hooks.uri()
        ))
        .unwrap(),
    );
    s.secret_values
        .insert("TEST_HOOK".into(), "a-long-enough-secret-for-the-hook".into());
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let r = app
        .declare(&[
            ("title", "Card payments failing"),
            ("severity", "SEV1"),
            ("services", "checkout"),
        ])
        .await;
    assert_eq!(r.status(), 303);
    let n = number_from_location(&r);
    let declared = app.wait_outbox(&["done"], Duration::from_secs(20)).await.len();
    let mails_before = sink.messages().len();

    let r = post_update(&app, n, KNOWN, DOING, "30").await;
    assert_eq!(r.status(), 303);
    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    let mut sent: Vec<&str> = rows[declared..].iter().map(|r| r.notifier.as_str()).collect();
    sent.sort();
    assert_eq!(
        sent,
        ["email", "jira", "slack", "webhook:status"],
        "routing's default rule"
    );
    assert!(rows[declared..].iter().all(|r| r.event == "status_update"));

    // Its own kind on the timeline, with its parts stored.
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(texts(&html, ".entry-status_update").len() == 1, "{html}");
    let card = texts(&html, "#latest-update").join(" ");
    assert!(
        card.contains("Card payments fail for about 20% of customers since 14:05."),
        "{card}"
    );
    assert!(card.contains("Rolling back deploy 4412 & watching the error rate <closely>."));
    assert!(
        card.contains("Next update due by") && (card.contains("(in 29 min)") || card.contains("(in 30 min)")),
        "{card}"
    );
    assert!(!html.contains("<closely>"), "escaped");
    let stored = app
        .state
        .db
        .run(move |c| {
            let row = redbutton::db::models::incident::find_by_number(c, n)?.unwrap();
            redbutton::db::models::status_update::list_for(c, row.id)
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let u = &stored[0];
    assert_eq!((u.known.as_str(), u.doing.as_str()), (KNOWN, DOING));
    assert_eq!(u.author_email, "ada@example.com");
    let next = u.next_update_at.unwrap();
    assert_eq!((next - u.at).num_minutes(), 30);
    let due = next.format("%H:%M UTC").to_string();

    // The dashboard shows it with the next-update time.
    let dash = app.get_html("/").await;
    let live = texts(&dash, "#live").join(" ");
    assert!(live.contains("Card payments fail for about 20%"), "{live}");
    assert!(live.contains(&format!("next due {due}")), "{live}");

    // Slack: a post in the incident channel, and the announcement edited to carry it.
    let cid = slack.channels()[0].0.clone();
    let posts = slack.messages(&cid);
    let post = posts.last().unwrap();
    assert_eq!(
        post.blocks[0]["text"]["text"],
        json!(format!(":mega: *INC-{n} status update from Ada Lovelace*"))
    );
    assert_eq!(
        post.blocks[1]["text"]["text"],
        json!("*What we know*\nCard payments fail for about 20% of customers since 14:05.\nOther payments work.")
    );
    assert_eq!(
        post.blocks[2]["text"]["text"],
        json!("*What we are doing*\nRolling back deploy 4412 &amp; watching the error rate &lt;closely&gt;.")
    );
    let context = post.blocks[3]["elements"][0]["text"].as_str().unwrap();
    assert!(context.starts_with(&format!("Next update by {due}.")), "{context}");
    let central = slack.messages(CENTRAL);
    assert_eq!(central.len(), 1);
    assert_eq!(central[0].edits, 1, "the announcement is refreshed in place");
    let latest = central[0].blocks[1]["elements"][0]["text"].as_str().unwrap();
    assert!(latest.starts_with("*Latest update* ("), "{latest}");
    assert!(latest.contains("Card payments fail for about 20%") && latest.contains(&format!("Next update by {due}.")));

    // Jira: one comment with the parts as headings and the text as written.
    let comments: Vec<_> = jira
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/rest/api/3/issue/OPS-1/comment")
        .collect();
    assert_eq!(comments.len(), 1);
    let body: Value = serde_json::from_slice(&comments[0].body).unwrap();
    let mut words = Vec::new();
    adf_text(&body["body"], &mut words);
    assert_eq!(
        words[..6],
        [
            "Status update from Ada Lovelace",
            "What we know",
            "Card payments fail for about 20% of customers since 14:05.",
            "Other payments work.",
            "What we are doing",
            DOING,
        ],
        "text as written, one node per line"
    );
    assert!(words[6].starts_with("Next update by "), "{words:?}");

    // Email: the service's list, with both parts and the next-update time.
    let mails = sink.messages();
    assert_eq!(mails.len(), mails_before + 1);
    let mail = mails.last().unwrap();
    assert_eq!(
        mail.rcpt_tos,
        ["incidents@example.com", "payments@example.com"],
        "always_to and the list"
    );
    assert_eq!(
        mail.header("Subject").unwrap(),
        format!("[SEV1] INC-{n} status update: Card payments failing")
    );
    let text = mail.decoded();
    assert!(
        text.contains("What we know:\r\nCard payments fail for about 20%"),
        "{text}"
    );
    assert!(text.contains(&format!("Next update by {due}.")));

    // Webhook: the event type and the update's parts.
    let got = hooks.received_requests().await.unwrap();
    assert_eq!(got.len(), 1, "the hook subscribes to status updates only");
    let event: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(event["type"], json!("incident.status_update"));
    assert_eq!(event["update"]["known"], json!(KNOWN));
    assert_eq!(event["update"]["doing"], json!(DOING));
    assert_eq!(event["update"]["author"]["email"], json!("ada@example.com"));
    assert!(event["update"]["next_update_at"].as_str().unwrap().ends_with('Z'));
    app.stop().await;
}

#[tokio::test]
async fn a_refused_update_changes_nothing_and_a_resolved_incident_takes_none() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = app.declare_ok("Search is slow").await;
    let before = (app.timeline_count().await, app.outbox_rows().await.len());
    for (known, doing, next, says) in [
        ("", "Rolling back", "30", "Say what we know."),
        ("Slow", "\u{200b} ", "30", "Say what we are doing."),
        ("Slow", "Rolling back", "7", "Choose when the next update is due"),
        (
            &"x".repeat(4_001),
            "Rolling back",
            "30",
            "Keep what we know to 4000 characters",
        ),
    ] {
        let r = post_update(&app, n, known, doing, next).await;
        assert_eq!(r.status(), 422, "{says}");
        assert!(r.text().await.unwrap().contains(says), "{says}");
    }
    assert_eq!((app.timeline_count().await, app.outbox_rows().await.len()), before);

    // "No further update": nothing is due afterwards.
    assert_eq!(
        post_update(&app, n, "Fixed by the rollback.", "Watching.", "none")
            .await
            .status(),
        303
    );
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(!texts(&html, "#latest-update").join(" ").contains("Next update due"));
    assert!(texts(&html, ".entry-status_update")[0].contains("no further update planned"));

    app.change_status(n, "investigating", "resolved").await;
    let count = app.timeline_count().await;
    let r = post_update(&app, n, "Late", "Nothing", "30").await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("reopen it before posting an update"));
    assert_eq!(app.timeline_count().await, count);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(
        !html.contains(&format!("action=\"/incidents/{n}/updates\"")),
        "no form once resolved"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_first_update_is_due_one_severity_period_after_declaring() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    // SEV0 expects an update every 15 minutes, SEV3 every two hours (the defaults).
    for (sev, minutes, preselected) in [("SEV0", 15, "in 15 min"), ("SEV3", 120, "in 2 h")] {
        let r = app.declare(&[("title", "Slow pages"), ("severity", sev)]).await;
        let n = number_from_location(&r);
        let html = app.get_html(&format!("/incidents/{n}")).await;
        let card = texts(&html, "#latest-update").join(" ");
        assert!(card.contains("No status update yet"), "{card}");
        let row = app
            .state
            .db
            .run(move |c| redbutton::db::models::incident::find_by_number(c, n))
            .await
            .unwrap()
            .unwrap();
        let due = (row.declared_at + chrono::Duration::minutes(minutes))
            .format("%H:%M")
            .to_string();
        assert!(card.contains(&due), "{sev}: due {due} in {card}");
        let selected = texts(&html, "select[name=next_update] option[selected]");
        assert_eq!(selected, [preselected], "{sev}");
    }
    app.stop().await;
}
