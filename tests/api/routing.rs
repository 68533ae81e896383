//! Routing across integrations, configured the way README's example is: every incident gets a
//! Slack channel; SEV0-1 also page and email leadership; drills get a drill channel and never page.
//! And email follows an incident through severity changes and resolution, with the call link.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::slack::{CENTRAL, SlackWorld};

fn rule(toml: &str) -> redbutton::config::RoutingRule {
    toml::from_str(toml).unwrap()
}

#[tokio::test]
async fn rules_pick_integrations_by_severity_and_drills_never_page() {
    let slack = SlackWorld::start().await;
    let pagerduty = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"status": "success", "dedup_key": "x"})))
        .mount(&pagerduty)
        .await;
    let sink = SmtpSink::start();
    let db = TestDb::new();
    let mut spawn = slack.spawn(&db);
    let s = &mut spawn.settings;
    s.integrations.email = Some(email_to_sink(sink.port));
    s.integrations.pagerduty = Some(
        toml::from_str(&format!(
            "base_url = \"{}\"\nrouting_key_env = \"TEST_PD_KEY\"\n",
            pagerduty.uri()
        ))
        .unwrap(),
    );
    s.secret_values.insert("TEST_PD_KEY".into(), "R0UTING".into());
    s.routing = vec![
        rule("name = \"everything gets a channel\"\nnotifiers = [\"slack\"]\ndrills = true\n"),
        rule(
            "name = \"SEV0-1 page and email leadership\"\nseverities = [\"SEV0\", \"SEV1\"]\ndrills = true\n\
             notifiers = [\"pagerduty\", \"email\"]\nemail_to = [\"leadership@example.com\"]\nservice_lists = false\n",
        ),
    ];
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;

    let minor = app.declare_ok("Slow admin pages").await;
    let r = app.declare(&[("title", "Checkout down"), ("severity", "SEV1")]).await;
    let major = number_from_location(&r);
    let r = app
        .declare(&[("title", "Failover practice"), ("severity", "SEV0"), ("drill", "on")])
        .await;
    let drill = number_from_location(&r);
    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;

    let mut routed: Vec<(i64, String)> = Vec::new();
    for row in &rows {
        let payload: serde_json::Value = serde_json::from_str(&row.payload).unwrap();
        routed.push((payload["incident"]["number"].as_i64().unwrap(), row.notifier.clone()));
    }
    routed.sort();
    assert_eq!(
        routed,
        vec![
            (minor, "slack".to_string()),
            (major, "email".to_string()),
            (major, "pagerduty".to_string()),
            (major, "slack".to_string()),
            (drill, "email".to_string()),
            (drill, "slack".to_string()),
        ],
        "unknown severity: channel only; SEV1: channel, page, email; drill: no page even at SEV0"
    );
    let mut names: Vec<String> = slack.channels().into_iter().map(|c| c.1).collect();
    names.sort_by_key(|n| n.split('-').nth(1).unwrap().parse::<i64>().unwrap());
    assert_eq!(
        names,
        vec![
            format!("inc-{minor}-slow-admin-pages"),
            format!("inc-{major}-checkout-down"),
            format!("drill-{drill}-failover-practice"),
        ]
    );
    assert_eq!(
        slack.messages(CENTRAL).len(),
        2,
        "drills are not announced in the incidents channel"
    );
    assert_eq!(pagerduty.received_requests().await.unwrap().len(), 1);
    let mails = sink.wait_for(2, Duration::from_secs(10)).await;
    assert!(
        mails
            .iter()
            .all(|m| m.rcpt_tos.contains(&"leadership@example.com".to_string()))
    );
    app.stop().await;
}

#[tokio::test]
async fn email_follows_severity_changes_and_resolution_with_the_call_link() {
    let sink = SmtpSink::start();
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.integrations.email = Some(email_to_sink(sink.port));
    let mut checkout = service("checkout", "Checkout", &["payments@example.com"]);
    checkout.conference_url = Some("https://meet.example.com/checkout".into());
    spawn.settings.services = vec![checkout];
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let r = app
        .declare(&[
            ("title", "Card payments failing"),
            ("severity", "SEV2"),
            ("services", "checkout"),
        ])
        .await;
    let n = number_from_location(&r);
    app.change_severity(n, "SEV2", "SEV1").await;
    app.change_status(n, "investigating", "resolved").await;
    let mails = sink.wait_for(3, Duration::from_secs(15)).await;
    let subjects: Vec<String> = mails.iter().map(|m| m.header("Subject").unwrap()).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(
        subjects[1].contains("SEV1") && subjects[1].to_lowercase().contains("severity"),
        "{subjects:?}"
    );
    assert!(subjects[2].contains("resolved"), "{subjects:?}");
    for m in &mails {
        assert!(
            m.decoded().contains("https://meet.example.com/checkout"),
            "call link in every email"
        );
    }
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let links = texts(&html, "#links li");
    assert_eq!(links.len(), 1);
    assert!(links[0].contains("Join the incident call"));
    assert!(html.contains("href=\"https://meet.example.com/checkout\""));
    app.stop().await;
}

/// Changing the severity routes the change (and everything after it) by the new level: going up
/// reaches leadership's list and pages; coming down below the paging threshold resolves the page,
/// and what follows no longer reaches leadership.
#[tokio::test]
async fn severity_changes_reapply_routing_for_the_new_level() {
    let pagerduty = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(crate::pagers::pd_accepted("redbutton-inc-1"))
        .mount(&pagerduty)
        .await;
    let sink = SmtpSink::start();
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    let s = &mut spawn.settings;
    s.services = vec![service("checkout", "Checkout", &["payments@example.com"])];
    let mut email = email_to_sink(sink.port);
    email.always_to.clear();
    s.integrations.email = Some(email);
    s.integrations.pagerduty = Some(
        toml::from_str(&format!(
            "base_url = \"{}\"\nrouting_key_env = \"PD_KEY\"\npage_at_or_above = \"SEV1\"\n",
            pagerduty.uri()
        ))
        .unwrap(),
    );
    s.secret_values
        .insert("PD_KEY".into(), crate::pagers::PD_DEFAULT.into());
    s.routing = vec![
        rule("name = \"teams\"\nnotifiers = [\"email\", \"pagerduty\"]\n"),
        rule(
            "name = \"leadership\"\nseverities = [\"SEV0\", \"SEV1\"]\nnotifiers = [\"email\"]\nemail_to = [\"leadership@example.com\"]\nservice_lists = false\n",
        ),
    ];
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let r = app
        .declare(&[
            ("title", "Slow checkout"),
            ("severity", "SEV3"),
            ("services", "checkout"),
        ])
        .await;
    let n = number_from_location(&r);
    let key = format!("redbutton-{}", app.external_key(n).await);
    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails[0].rcpt_tos, ["payments@example.com"], "SEV3: the team only");

    // Up to SEV1: leadership hears of it, and it pages.
    app.change_severity(n, "SEV3", "SEV1").await;
    let mails = sink.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(mails[1].rcpt_tos, ["leadership@example.com", "payments@example.com"]);
    assert!(
        mails[1]
            .header("Subject")
            .unwrap()
            .starts_with(&format!("[SEV1] INC-{n} severity changed"))
    );
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let sent = pagerduty.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    let trigger = crate::pagers::body(&sent[0]);
    assert_eq!(trigger["event_action"], json!("trigger"));
    assert_eq!(trigger["dedup_key"], json!(key));

    // An update while at SEV1 reaches leadership too.
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/updates"),
            &[
                ("csrf", &csrf),
                ("known", "Slow for all."),
                ("doing", "Scaling out."),
                ("next_update", "30"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let mails = sink.wait_for(3, Duration::from_secs(15)).await;
    assert_eq!(mails[2].rcpt_tos, ["leadership@example.com", "payments@example.com"]);

    // Down to SEV2: below the threshold, the page is resolved, and leadership is off the list.
    app.change_severity(n, "SEV1", "SEV2").await;
    let mails = sink.wait_for(4, Duration::from_secs(15)).await;
    assert_eq!(mails[3].rcpt_tos, ["payments@example.com"]);
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let sent = pagerduty.received_requests().await.unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        crate::pagers::body(&sent[1]),
        json!({"routing_key": crate::pagers::PD_DEFAULT, "event_action": "resolve", "dedup_key": key})
    );

    // Back up to SEV0: it pages again under the same key (a new alert on the same incident).
    app.change_severity(n, "SEV2", "SEV0").await;
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let sent = pagerduty.received_requests().await.unwrap();
    assert_eq!(sent.len(), 3);
    let again = crate::pagers::body(&sent[2]);
    assert_eq!(
        (again["event_action"].clone(), again["dedup_key"].clone()),
        (json!("trigger"), json!(key))
    );
    let mails = sink.wait_for(5, Duration::from_secs(15)).await;
    assert_eq!(mails[4].rcpt_tos, ["leadership@example.com", "payments@example.com"]);
    app.stop().await;
}
