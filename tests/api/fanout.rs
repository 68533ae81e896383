//! Fan-out: one declaration with Slack, Jira, PagerDuty, email and two webhooks configured, each
//! test vendor answering after a fixed delay. Integrations run side by side, so everything is
//! delivered in about the slowest vendor's time, not the sum of them all.

use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::slack::SlackWorld;

#[tokio::test]
async fn a_declaration_reaches_every_integration_in_about_the_slowest_delay() {
    let slack_delay = Duration::from_millis(60);
    let jira_delay = Duration::from_millis(300);
    let pd_delay = Duration::from_millis(250);
    let smtp_delay = Duration::from_millis(200);
    let hook_delay = Duration::from_millis(400);

    let slack = SlackWorld::start().await;
    slack.fake.0.lock().unwrap().delay = slack_delay;
    let jira = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(
                    json!({"id": "10001", "key": "OPS-1", "self": format!("{}/rest/api/3/issue/10001", jira.uri())}),
                )
                .set_delay(jira_delay),
        )
        .expect(1)
        .mount(&jira)
        .await;
    let pagerduty = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(
                    json!({"status": "success", "message": "Event processed", "dedup_key": "redbutton-inc-1"}),
                )
                .set_delay(pd_delay),
        )
        .expect(1)
        .mount(&pagerduty)
        .await;
    let hooks = MockServer::start().await;
    for p in ["/a", "/b"] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(204).set_delay(hook_delay))
            .expect(1)
            .mount(&hooks)
            .await;
    }
    let sink = SmtpSink::start();
    sink.set_delay(smtp_delay.as_secs_f64());

    let db = TestDb::new();
    let mut spawn = slack.spawn(&db);
    let s = &mut spawn.settings;
    // Production backoff: the Slack step that waits for the Jira ticket must be woken when the
    // ticket exists, not find it at its next check a second later.
    s.outbox.backoff_base_ms = 2_000;
    s.outbox.backoff_max_ms = 60_000;
    s.services[0].email_to = vec!["payments@example.com".into()];
    s.integrations.email = Some(email_to_sink(sink.port));
    s.integrations.jira = Some(
        toml::from_str(&format!(
            "base_url = \"{}\"\nemail = \"bot@example.com\"\ntoken_env = \"TEST_JIRA_TOKEN\"\nproject = \"OPS\"\n",
            jira.uri()
        ))
        .unwrap(),
    );
    s.integrations.pagerduty = Some(
        toml::from_str(&format!(
            "base_url = \"{}\"\nrouting_key_env = \"TEST_PD_KEY\"\n",
            pagerduty.uri()
        ))
        .unwrap(),
    );
    for (name, p) in [("audit", "/a"), ("chatops", "/b")] {
        s.integrations.webhooks.push(
            toml::from_str(&format!(
                "name = \"{name}\"\nurl = \"{}{p}\"\nsecret_env = \"TEST_HOOK_{}\"\n",
                hooks.uri(),
                name.to_uppercase()
            ))
            .unwrap(),
        );
        s.secret_values.insert(
            format!("TEST_HOOK_{}", name.to_uppercase()),
            format!("a-long-enough-secret-for-{name}"),
        );
    }
    s.secret_values.insert("TEST_JIRA_TOKEN".into(), "jira-token".into());
    s.secret_values
        .insert("TEST_PD_KEY".into(), "R0UTINGKEY0000000000000000000000".into());
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;

    let r = app
        .declare(&[
            ("title", "Everything at once"),
            ("severity", "SEV1"),
            ("services", "checkout"),
        ])
        .await;
    assert_eq!(r.status(), 303);
    let answered = Instant::now();
    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    let last_done = rows.iter().filter_map(|r| r.delivered_at).max().unwrap();
    let elapsed = answered.elapsed();
    let mut names: Vec<&str> = rows.iter().map(|r| r.notifier.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "email",
            "jira",
            "pagerduty",
            "slack",
            "slack",
            "webhook:audit",
            "webhook:chatops"
        ],
        "every integration, plus Slack's bookmark of the Jira ticket"
    );
    assert!(rows.iter().all(|r| r.attempts == 1), "{rows:?}");
    // Slack bookmarked the ticket the Jira delivery created.
    let ticket_bookmarks: Vec<_> = slack
        .seen("bookmarks.add")
        .into_iter()
        .filter(|s| s.body["title"] == json!("Jira OPS-1"))
        .collect();
    assert_eq!(ticket_bookmarks.len(), 1);
    assert_eq!(
        ticket_bookmarks[0].body["link"],
        json!(format!("{}/browse/OPS-1", jira.uri()))
    );
    assert_eq!(sink.messages().len(), 1);

    // Slack's own steps are in order (create, then the rest side by side, then the pin), so its
    // chain is three answers long; everything else is one answer.
    let slowest = [
        slack_delay * 3,
        jira_delay + slack_delay,
        pd_delay,
        smtp_delay,
        hook_delay,
    ]
    .into_iter()
    .max()
    .unwrap();
    let sum = slack_delay * 9 + jira_delay + pd_delay + smtp_delay + hook_delay * 2;
    println!(
        "fan-out: all 7 deliveries done {} ms after the declaration answered (slowest single vendor chain {} ms, \
         sum of every call {} ms, ratio {:.2}); last delivered_at {last_done}",
        elapsed.as_millis(),
        slowest.as_millis(),
        sum.as_millis(),
        elapsed.as_secs_f64() / slowest.as_secs_f64()
    );
    assert!(
        elapsed < sum,
        "deliveries ran one after another: {elapsed:?} >= {sum:?}"
    );
    assert!(
        elapsed < slowest + Duration::from_millis(400),
        "took {elapsed:?}, slowest vendor needs {slowest:?}"
    );
    app.stop().await;
}
