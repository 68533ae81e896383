//! Declining (not an incident) and merging a duplicate: each is recorded on the timeline, closes
//! the incident, fans out like a resolve (PagerDuty resolves under the same dedup key, the Slack
//! channel is told and archived), and leaves the incident out of the dashboard's figures. A
//! merged incident's page sends readers to the survivor, and the API says where it went.
//! Refused merges (into itself, an unknown or merged incident) change nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redbutton::domain::Actor;
use redbutton::notifiers::pagerduty::PagerDutySettings;
use redbutton::notifiers::webhook::WebhookSettings;
use redbutton::services::tokens::{TokenRequest, create};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::pagers::{PD_DEFAULT, assert_pd_request, body, pd_accepted};
use crate::slack::SlackWorld;

/// The test vendors one app talks to.
struct World {
    slack: SlackWorld,
    pd: MockServer,
    hook: MockServer,
    sink: SmtpSink,
}

/// Slack (archiving at once), PagerDuty (paging at SEV1), email and a webhook, every event but
/// notes to each (no routing rules).
async fn world(db: &TestDb) -> (World, Spawn) {
    let slack = SlackWorld::start().await;
    let pd = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(pd_accepted("accepted"))
        .mount(&pd)
        .await;
    let mut spawn = slack.spawn_archiving_at_once(db);
    spawn
        .settings
        .secret_values
        .insert("PD_DEFAULT".into(), PD_DEFAULT.into());
    spawn.settings.integrations.pagerduty = Some(PagerDutySettings {
        base_url: pd.uri(),
        routing_key_env: Some("PD_DEFAULT".into()),
        page_at_or_above: "SEV1".into(),
        severity_map: BTreeMap::new(),
        services: BTreeMap::new(),
    });
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    spawn.settings.integrations.webhooks = vec![WebhookSettings {
        name: "audit".into(),
        url: format!("{}/hooks/audit", hook.uri()),
        secret_env: "AUDIT_HOOK_SECRET".into(),
        events: vec![],
        drills: true,
    }];
    spawn.settings.secret_values.insert(
        "AUDIT_HOOK_SECRET".into(),
        "a-webhook-secret-long-enough-for-tests".into(),
    );
    let sink = SmtpSink::start();
    spawn.settings.integrations.email = Some(email_to_sink(sink.port));
    (World { slack, pd, hook, sink }, spawn)
}

/// The webhook bodies received so far.
async fn hook_bodies(hook: &MockServer) -> Vec<Value> {
    hook.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn declare_sev1(app: &TestApp, title: &str) -> i64 {
    let r = app
        .declare(&[("title", title), ("severity", "SEV1"), ("services", "checkout")])
        .await;
    assert_eq!(r.status(), 303);
    number_from_location(&r)
}

/// Waits until every outbox row is done and there are `n` of them.
async fn settle(app: &TestApp, n: usize) -> Vec<redbutton::db::models::OutboxRow> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = app.outbox_rows().await;
        if rows.len() == n && rows.iter().all(|r| r.state == "done") {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "wanted {n} done rows: {:?}",
            rows.iter()
                .map(|r| (
                    r.notifier.clone(),
                    r.event.clone(),
                    r.state.clone(),
                    r.last_error.clone()
                ))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pd_bodies(pd: &MockServer) -> Vec<Value> {
    let sent = pd.received_requests().await.unwrap();
    sent.iter().for_each(assert_pd_request);
    sent.iter().map(body).collect()
}

fn channel_texts(slack: &SlackWorld, channel: &str) -> Vec<String> {
    slack
        .messages(channel)
        .iter()
        .map(|m| m.blocks[0]["text"]["text"].as_str().unwrap().to_string())
        .collect()
}

/// An API token with every scope, for reading incidents.
async fn read_token(app: &TestApp) -> String {
    let admin = Actor {
        name: "Ada Admin".into(),
        email: "ada@example.com".into(),
    };
    create(
        &app.state,
        &admin,
        &TokenRequest {
            name: "reader".into(),
            scopes: vec!["incidents:read".into(), "incidents:write".into()],
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap()
    .secret
}

async fn api_get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// What a refused change must leave alone.
async fn fingerprint(app: &TestApp) -> (i64, i64, usize) {
    (
        app.incident_count().await,
        app.timeline_count().await,
        app.outbox_rows().await.len(),
    )
}

#[tokio::test]
async fn declining_records_the_reason_closes_and_fans_out_like_a_resolve_and_can_be_reopened() {
    let db = TestDb::new();
    let (w, spawn) = world(&db).await;
    let (slack, pd) = (&w.slack, &w.pd);
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare_sev1(&app, "Checkout alarm").await;
    let declared = settle(&app, 4).await.len();
    let dedup = format!("redbutton-{}", app.external_key(n).await);
    let csrf = app.csrf().await;
    let base = format!("/incidents/{n}");

    // A reason is required; a blank one or a stale form changes nothing.
    let before = fingerprint(&app).await;
    for (reason, expected, want) in [
        ("", "investigating", 422),
        ("\u{200b} ", "investigating", 422),
        ("a test alert", "mitigated", 409),
    ] {
        let r = app
            .post_form(
                &format!("{base}/decline"),
                &[("csrf", &csrf), ("expected", expected), ("reason", reason)],
            )
            .await;
        assert_eq!(r.status(), want, "{reason:?} {expected}");
        assert_eq!(fingerprint(&app).await, before);
    }
    // The plain status form cannot decline (it needs a reason).
    let r = app
        .post_form(
            &format!("{base}/status"),
            &[("csrf", &csrf), ("expected", "investigating"), ("status", "declined")],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(fingerprint(&app).await, before);

    let r = app
        .post_form(
            &format!("{base}/decline"),
            &[
                ("csrf", &csrf),
                ("expected", "investigating"),
                ("reason", "A synthetic check <fired> in staging"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    // Slack: the post, then the archive; PagerDuty: the resolve; email; the webhook.
    let rows = settle(&app, declared + 5).await;
    let new: Vec<(String, String)> = rows[declared..]
        .iter()
        .map(|r| (r.notifier.clone(), r.event.clone()))
        .collect();
    assert_eq!(new.len(), 5, "{new:?}");
    assert!(new.iter().all(|(_, e)| e == "status_changed"), "{new:?}");

    let mails = w.sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        mails[1].header("Subject").unwrap(),
        format!("[SEV1] INC-{n} declined (not an incident): Checkout alarm")
    );
    let hooks = hook_bodies(&w.hook).await;
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[1]["type"], "incident.status_changed");
    assert_eq!(
        hooks[1]["change"],
        json!({"field": "status", "old": "investigating", "new": "declined"})
    );
    assert_eq!(hooks[1]["incident"]["status"], "declined");
    assert_eq!(
        hooks[1]["incident"]["closed_reason"],
        "A synthetic check <fired> in staging"
    );
    assert!(hooks[1]["incident"].get("merged_into").is_none());

    let page = app.get_html(&base).await;
    assert!(page.contains("Not an incident"), "status label");
    assert_eq!(
        texts(&page, "#declined"),
        ["Closed as not an incident: A synthetic check <fired> in staging"]
    );
    let timeline = texts(&page, "#timeline li");
    assert!(
        timeline[0].contains("Ada Lovelace closed the incident as not an incident")
            && timeline[0].contains("A synthetic check <fired> in staging"),
        "{timeline:?}"
    );
    assert!(!page.contains("/decline\""), "a closed incident offers no decline form");

    let sent = pd_bodies(pd).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1],
        json!({"routing_key": PD_DEFAULT, "event_action": "resolve", "dedup_key": dedup})
    );

    let channel = slack.channels()[0].clone();
    let said = channel_texts(slack, &channel.0);
    assert_eq!(
        said.last().unwrap(),
        &format!("Ada Lovelace declined INC-{n}: not an incident. Reason: A synthetic check &lt;fired&gt; in staging")
    );
    assert!(channel.6, "the channel is archived as after a resolve");
    let central = slack.messages(crate::slack::CENTRAL);
    assert!(
        central[0].blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with(":large_green_circle:"),
        "the announcement shows it closed"
    );

    // The dashboard lists it as past, labelled.
    let dash = app.get_html("/").await;
    let past = texts(&dash, "#past tbody tr");
    assert!(past[0].contains("Not an incident"), "{past:?}");

    // Declining twice is refused; reopening works like after a resolve and pages again.
    let r = app
        .post_form(
            &format!("{base}/decline"),
            &[("csrf", &csrf), ("expected", "declined"), ("reason", "again")],
        )
        .await;
    assert_eq!(r.status(), 409);
    app.change_status(n, "declined", "investigating").await;
    let token = read_token(&app).await;
    let (status, v) = api_get(&app, &token, &format!("/api/v1/incidents/{n}")).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"], "investigating");
    assert_eq!(v["closed_reason"], Value::Null, "reopening clears the reason");
    let sent = loop {
        let sent = pd_bodies(pd).await;
        if sent.len() == 3 {
            break sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sent[2]["event_action"], "trigger");
    assert_eq!(sent[2]["dedup_key"], json!(dedup));
    app.stop().await;
}

#[tokio::test]
async fn merging_closes_the_duplicate_links_both_timelines_redirects_and_fans_out() {
    let db = TestDb::new();
    let (w, spawn) = world(&db).await;
    let (slack, pd) = (&w.slack, &w.pd);
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let survivor = declare_sev1(&app, "Checkout failing").await;
    let dup = declare_sev1(&app, "Payments erroring").await;
    let declared = settle(&app, 8).await.len();
    let dup_key = format!("redbutton-{}", app.external_key(dup).await);
    let csrf = app.csrf().await;
    let merge = |into: String| {
        let csrf = csrf.clone();
        let app = &app;
        async move {
            app.post_form(
                &format!("/incidents/{dup}/merge"),
                &[("csrf", &csrf), ("expected", "investigating"), ("into", &into)],
            )
            .await
        }
    };

    // Refusals: itself, nothing like a number, an incident that does not exist.
    let before = fingerprint(&app).await;
    for (into, says) in [
        (format!("INC-{dup}"), "cannot be merged into itself"),
        ("seven".to_string(), "Give the number"),
        ("INC-99".to_string(), "There is no INC-99"),
    ] {
        let r = merge(into.clone()).await;
        assert_eq!(r.status(), 422, "{into}");
        let html = r.text().await.unwrap();
        assert!(html.contains(says), "{into}: {html}");
        assert_eq!(fingerprint(&app).await, before, "{into}");
    }

    let r = merge(format!("INC-{survivor}")).await;
    assert_eq!(r.status(), 303);

    // The duplicate's page now answers with the survivor's.
    let r = app.get(&format!("/incidents/{dup}")).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/incidents/{survivor}")
    );
    let page = app.get_html(&format!("/incidents/{survivor}")).await;
    assert!(
        page.contains(&format!("INC-{dup} (Payments erroring) was merged into this incident.")),
        "the survivor says what was merged into it"
    );
    let timeline = texts(&page, "#timeline li");
    assert!(
        timeline[0].contains(&format!(
            "Ada Lovelace merged INC-{dup} into this incident as a duplicate"
        )),
        "{timeline:?}"
    );

    // The duplicate's own record says where it went, in the API too.
    let token = read_token(&app).await;
    let (status, v) = api_get(&app, &token, &format!("/api/v1/incidents/{dup}")).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"], "merged", "{v}");
    assert_eq!(v["merged_into"], json!(survivor));
    let kinds: Vec<&str> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.last(), Some(&"merged"), "{kinds:?}");
    let (_, v) = api_get(&app, &token, &format!("/api/v1/incidents/{survivor}")).await;
    assert_eq!(v["status"], "investigating");
    assert_eq!(v["merged_into"], Value::Null);

    // Fan-out for the duplicate only: its page resolved, its channel told and archived at once,
    // email and the webhook told where it went.
    let rows = settle(&app, declared + 5).await;
    assert!(rows[declared..].iter().all(|r| r.event == "status_changed"), "{rows:?}");
    let sent = pd_bodies(pd).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[2],
        json!({"routing_key": PD_DEFAULT, "event_action": "resolve", "dedup_key": dup_key})
    );
    let channels = slack.channels();
    let dup_channel = channels
        .iter()
        .find(|c| c.1.starts_with(&format!("inc-{dup}-")))
        .unwrap();
    let kept = channels
        .iter()
        .find(|c| c.1.starts_with(&format!("inc-{survivor}-")))
        .unwrap();
    assert!(dup_channel.6, "the duplicate's channel is archived");
    assert!(!kept.6, "the survivor's channel stays open");
    let url = format!("{}/incidents/{survivor}", app.address);
    assert_eq!(
        channel_texts(slack, &dup_channel.0).last().unwrap(),
        &format!(
            "Ada Lovelace merged INC-{dup} into INC-{survivor} <{url}|INC-{survivor}>. Please carry on there; this channel will be archived."
        )
    );
    assert_eq!(channel_texts(slack, &kept.0).len(), 1, "only the summary");
    let mails = w.sink.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(
        mails[2].header("Subject").unwrap(),
        format!("[SEV1] INC-{dup} merged into INC-{survivor}: Payments erroring")
    );
    let hooks = hook_bodies(&w.hook).await;
    assert_eq!(hooks.len(), 3);
    assert_eq!(hooks[2]["type"], "incident.status_changed");
    assert_eq!(hooks[2]["incident"]["number"], json!(dup));
    assert_eq!(
        hooks[2]["incident"]["merged_into"],
        json!({"number": survivor, "reference": format!("INC-{survivor}"), "url": url})
    );

    // No chains or cycles: the survivor cannot be merged into its duplicate, and the merged
    // incident is final.
    let before = fingerprint(&app).await;
    let r = app
        .post_form(
            &format!("/incidents/{survivor}/merge"),
            &[
                ("csrf", &csrf),
                ("expected", "investigating"),
                ("into", &dup.to_string()),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("was itself merged"));
    let r = app
        .post_form(
            &format!("/incidents/{dup}/status"),
            &[("csrf", &csrf), ("expected", "merged"), ("status", "investigating")],
        )
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(fingerprint(&app).await, before);
    app.stop().await;
}
