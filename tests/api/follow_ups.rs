//! Follow-ups: recorded, closed and reopened through the incident page with timeline entries;
//! refused input changes nothing; overdue ones on the dashboard; viewers cannot add any. With
//! Jira follow-ups on, a stateful wiremock Jira checks every request: one issue per follow-up,
//! linked to the incident's ticket, found again after a lost answer instead of created twice, and
//! the status sync (one `key in (…)` search) closes and reopens follow-ups.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use redbutton::db::models::{FollowUpRow, TimelineEntryRow};
use redbutton::services::follow_ups::{JiraSync, SyncReport, today};
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;
use crate::jira::{TOKEN, basic_auth, check_request};

// --- helpers ----------------------------------------------------------------------------------

fn day(offset: i64) -> String {
    (today() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

async fn follow_ups(app: &TestApp) -> Vec<FollowUpRow> {
    use redbutton::db::schema::follow_ups::dsl as f;
    app.state
        .db
        .run(|c| {
            f::follow_ups
                .order(f::id.asc())
                .select(FollowUpRow::as_select())
                .load(c)
        })
        .await
        .unwrap()
}

async fn timeline_of(app: &TestApp, incident_id: i64) -> Vec<TimelineEntryRow> {
    app.state
        .db
        .run(move |c| redbutton::db::models::timeline::list_for(c, incident_id))
        .await
        .unwrap()
}

async fn add(app: &TestApp, n: i64, title: &str, owner: &str, due: &str) -> reqwest::Response {
    let csrf = app.csrf().await;
    app.post_form(
        &format!("/incidents/{n}/follow-ups"),
        &[("csrf", &csrf), ("title", title), ("owner", owner), ("due_on", due)],
    )
    .await
}

async fn set_status(app: &TestApp, n: i64, id: i64, expected: &str, action: &str) -> reqwest::Response {
    let csrf = app.csrf().await;
    app.post_form(
        &format!("/incidents/{n}/follow-ups/{id}/status"),
        &[("csrf", &csrf), ("expected", expected), ("action", action)],
    )
    .await
}

/// Row counts of what a follow-up form could change.
async fn counts(app: &TestApp) -> (usize, i64, usize) {
    (
        follow_ups(app).await.len(),
        app.timeline_count().await,
        app.outbox_rows().await.len(),
    )
}

/// A timeline entry's kind, field, old and new value, and body.
type Entry = (String, Option<String>, Option<String>, Option<String>, Option<String>);

// --- the page ---------------------------------------------------------------------------------

#[tokio::test]
async fn follow_ups_are_added_closed_reopened_and_edited_with_timeline_entries() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Grace Hopper", "grace@example.com").await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = app.declare_ok("Card payments failing").await;
    let due = day(10);

    // An owner given by the email of someone who signed in gets their name.
    let r = add(
        &app,
        n,
        "  Add a canary step to the checkout deploy ",
        "Grace@Example.com",
        &due,
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/incidents/{n}"));
    let rows = follow_ups(&app).await;
    assert_eq!(rows.len(), 1);
    let f = &rows[0];
    assert_eq!(f.title, "Add a canary step to the checkout deploy");
    assert_eq!(f.owner_name, "Grace Hopper");
    assert_eq!(f.owner_email.as_deref(), Some("grace@example.com"));
    assert_eq!(f.due_on, due);
    assert_eq!(f.status, "open");
    assert_eq!(f.created_by_email, "ada@example.com");
    assert!(f.closed_at.is_none() && f.jira_key.is_none());
    // A team as owner is free text.
    assert_eq!(
        add(&app, n, "Write the runbook", "Payments team", &due).await.status(),
        303
    );

    let html = app.get_html(&format!("/incidents/{n}")).await;
    let card = texts(&html, "#follow-ups").join(" ");
    assert!(card.contains("Add a canary step to the checkout deploy"), "{card}");
    assert!(card.contains("Grace Hopper <grace@example.com>"), "{card}");
    assert!(card.contains(&format!("due {due}")), "{card}");
    assert!(card.contains("Payments team") && card.contains("2 open"), "{card}");
    let timeline = texts(&html, "#timeline").join(" ");
    assert!(
        timeline.contains(&format!(
            "added a follow-up for Grace Hopper <grace@example.com>, due {due}:"
        )),
        "{timeline}"
    );

    // Done, then reopened; each with its entry, in the same transaction as the change.
    assert_eq!(set_status(&app, n, f.id, "open", "done").await.status(), 303);
    let done = &follow_ups(&app).await[0];
    assert_eq!(done.status, "done");
    assert!(done.closed_at.is_some());
    // A form drawn before that change is refused and changes nothing.
    let before = counts(&app).await;
    let stale = set_status(&app, n, f.id, "open", "wont_do").await;
    assert_eq!(stale.status(), 409);
    assert!(stale.text().await.unwrap().contains("Someone changed this follow-up"));
    assert_eq!(counts(&app).await, before);
    assert_eq!(set_status(&app, n, f.id, "done", "reopen").await.status(), 303);
    let reopened = &follow_ups(&app).await[0];
    assert_eq!(reopened.status, "open");
    assert!(reopened.closed_at.is_none());

    // New owner and due date: one entry per field that changed.
    let later = day(20);
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/follow-ups/{}", f.id),
            &[("csrf", &csrf), ("owner", "Payments team"), ("due_on", &later)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let edited = &follow_ups(&app).await[0];
    assert_eq!(
        (
            edited.owner_name.as_str(),
            edited.owner_email.as_deref(),
            edited.due_on.as_str()
        ),
        ("Payments team", None, later.as_str())
    );

    let entries: Vec<Entry> = timeline_of(&app, f.incident_id)
        .await
        .into_iter()
        .filter(|e| e.kind.starts_with("follow_up"))
        .map(|e| (e.kind, e.field, e.old_value, e.new_value, e.body))
        .collect();
    let title = Some("Add a canary step to the checkout deploy".to_string());
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        entries,
        vec![
            (
                "follow_up_added".into(),
                Some(format!("follow_up:{}", f.id)),
                None,
                Some(format!("Grace Hopper <grace@example.com>, due {due}")),
                title.clone()
            ),
            (
                "follow_up_added".into(),
                Some(format!("follow_up:{}", f.id + 1)),
                None,
                Some(format!("Payments team, due {due}")),
                s("Write the runbook")
            ),
            (
                "follow_up_changed".into(),
                s("status"),
                s("open"),
                s("done"),
                title.clone()
            ),
            (
                "follow_up_changed".into(),
                s("status"),
                s("done"),
                s("open"),
                title.clone()
            ),
            (
                "follow_up_changed".into(),
                s("owner"),
                s("Grace Hopper <grace@example.com>"),
                s("Payments team"),
                title.clone()
            ),
            (
                "follow_up_changed".into(),
                s("due_on"),
                Some(due.clone()),
                Some(later.clone()),
                title
            ),
        ]
    );
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let timeline = texts(&html, "#timeline").join(" ");
    for words in [
        "marked a follow-up done:",
        "reopened a follow-up:",
        "handed a follow-up from Grace Hopper <grace@example.com> to Payments team:",
        &format!("moved a follow-up's due date from {due} to {later}:"),
    ] {
        assert!(timeline.contains(words), "{words} in {timeline}");
    }
    // No integration is configured, so nothing was enqueued.
    assert!(app.outbox_rows().await.is_empty());

    // The postmortem draft lists them.
    let md = app
        .get(&format!("/incidents/{n}/postmortem.md"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        md.contains(&format!(
            "- [ ] Add a canary step to the checkout deploy Owner: Payments team. Due {later} (open)."
        )),
        "{md}"
    );
    app.stop().await;
}

#[tokio::test]
async fn refused_input_says_why_and_changes_nothing() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = app.declare_ok("Card payments failing").await;
    let due = day(3);
    assert_eq!(add(&app, n, "Keep me", "Ada", &due).await.status(), 303);
    let id = follow_ups(&app).await[0].id;
    let before = counts(&app).await;
    let rows_before = follow_ups(&app).await;

    let long = "x".repeat(201);
    let far = day(5 * 366 + 1);
    let cases: Vec<(&str, &str, &str, Vec<&str>)> = vec![
        (
            "",
            "ada@",
            "2026-02-30",
            vec![
                "Say what needs doing",
                "not one like ada@example.com",
                "Write the due date as YYYY-MM-DD",
            ],
        ),
        (&long, "Ada", &due, vec!["at most 200 characters"]),
        ("\u{200b}", "Ada", &due, vec!["Say what needs doing"]),
        ("Two\nlines", "Ada", &due, vec!["single line"]),
        ("Fine", "", &due, vec!["Name an owner"]),
        ("Fine", "Ada", "", vec!["Give the follow-up a due date"]),
        ("Fine", "Ada", "tomorrow", vec!["YYYY-MM-DD"]),
        ("Fine", "Ada", &far, vec!["more than five years away"]),
    ];
    for (title, owner, due_on, messages) in cases {
        let r = add(&app, n, title, owner, due_on).await;
        assert_eq!(r.status(), 422, "{title:?} {owner:?} {due_on:?}");
        let html = r.text().await.unwrap();
        let alert = texts(&html, ".error-message").join(" ");
        for m in messages {
            assert!(alert.contains(m), "{m:?} in {alert:?}");
        }
        assert_eq!(counts(&app).await, before, "refused input stored nothing");
    }

    // Status and edit forms: unknown action, unknown follow-up, bad date, wrong state.
    let r = set_status(&app, n, id, "open", "close").await;
    assert_eq!(r.status(), 422);
    let r = set_status(&app, n, id + 100, "open", "done").await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("There is no such follow-up on INC-"));
    let r = set_status(&app, n, id, "open", "reopen").await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("already open"));
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/follow-ups/{id}"),
            &[("csrf", &csrf), ("owner", "someone@"), ("due_on", "2026-99-01")],
        )
        .await;
    assert_eq!(r.status(), 422);
    // A foreign CSRF token is refused too.
    let r = app
        .post_form(
            &format!("/incidents/{n}/follow-ups"),
            &[
                ("csrf", "forged"),
                ("title", "Sneaky"),
                ("owner", "Ada"),
                ("due_on", &due),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(counts(&app).await, before);
    assert_eq!(follow_ups(&app).await, rows_before, "no field changed");
    app.stop().await;
}

#[tokio::test]
async fn viewers_see_follow_ups_but_cannot_add_or_change_them() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.viewer_emails = vec!["vera@example.com".into()];
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = app.declare_ok("Card payments failing").await;
    assert_eq!(add(&app, n, "Add a canary", "Ada", &day(3)).await.status(), 303);
    let id = follow_ups(&app).await[0].id;

    app.identify("Vera Viewer", "vera@example.com").await;
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(texts(&html, "#follow-ups").join(" ").contains("Add a canary"));
    assert!(texts(&html, "#follow-ups form").is_empty(), "no forms for viewers");
    let before = counts(&app).await;
    // A valid CSRF token of the viewer's own session (from the sign-out form).
    let csrf = hidden(&html, "csrf");
    let due = day(3);
    let r = app
        .post_form(
            &format!("/incidents/{n}/follow-ups"),
            &[
                ("csrf", &csrf),
                ("title", "Viewer's idea"),
                ("owner", "Vera"),
                ("due_on", &due),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("viewer"));
    let r = app
        .post_form(
            &format!("/incidents/{n}/follow-ups/{id}/status"),
            &[("csrf", &csrf), ("expected", "open"), ("action", "done")],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(counts(&app).await, before);
    assert_eq!(follow_ups(&app).await[0].status, "open");
    app.stop().await;
}

#[tokio::test]
async fn overdue_follow_ups_are_listed_on_the_dashboard_until_done() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = app.declare_ok("Card payments failing").await;
    let m = app.declare_ok("Search is slow").await;
    assert_eq!(add(&app, n, "Late canary", "Ada", &day(-3)).await.status(), 303);
    assert_eq!(add(&app, m, "Due today", "Ada", &day(0)).await.status(), 303);
    assert_eq!(add(&app, m, "Next week", "Ada", &day(7)).await.status(), 303);
    let late = follow_ups(&app).await[0].id;

    let html = app.get_html("/").await;
    let overdue = texts(&html, "#overdue-follow-ups tbody tr");
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert!(overdue[0].contains("Late canary") && overdue[0].contains("3 days late"));
    assert!(overdue[0].contains(&format!("INC-{n} Card payments failing")));
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("#overdue-follow-ups a").unwrap();
    let hrefs: Vec<&str> = doc.select(&sel).filter_map(|a| a.value().attr("href")).collect();
    assert_eq!(hrefs, vec![format!("/incidents/{n}#follow-up-{late}")]);

    // The incident page marks it too.
    let page = app.get_html(&format!("/incidents/{n}")).await;
    assert_eq!(texts(&page, "#follow-ups li.is-overdue").len(), 1);
    assert!(texts(&page, "#follow-ups h2").join(" ").contains("1 overdue"));

    assert_eq!(set_status(&app, n, late, "open", "done").await.status(), 303);
    let html = app.get_html("/").await;
    assert!(texts(&html, "#overdue-follow-ups").is_empty(), "done is not overdue");
    app.stop().await;
}

// --- Jira -------------------------------------------------------------------------------------

/// A Jira that remembers the issues it made: the incident's ticket is OPS-7, follow-ups OPS-8
/// on; it answers label and `key in (…)` searches from what it holds, and refuses (400) a key
/// search naming an issue it does not have, as Jira does.
#[derive(Clone, Default)]
struct FakeJira {
    /// Created issues: key → create body.
    issues: Arc<Mutex<BTreeMap<String, Value>>>,
    /// Status category per key (default `new`).
    categories: Arc<Mutex<BTreeMap<String, String>>>,
    /// Follow-up creates to make but answer with a 500 (the answer is lost, the issue is not).
    lose_answers: Arc<Mutex<u32>>,
    /// Issues to forget (deleted in Jira).
    deleted: Arc<Mutex<Vec<String>>>,
}

impl FakeJira {
    fn set(&self, key: &str, category: &str) {
        self.categories.lock().unwrap().insert(key.into(), category.into());
    }
}

fn quoted(jql: &str) -> Vec<String> {
    jql.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

impl Respond for FakeJira {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        match r.url.path() {
            "/rest/api/3/issue" => {
                let follow_up = body["fields"]["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l == "redbutton-follow-up");
                let mut issues = self.issues.lock().unwrap();
                let key = if follow_up {
                    format!("OPS-{}", 7 + issues.len())
                } else {
                    "OPS-7".to_string()
                };
                issues.insert(key.clone(), body);
                let mut lose = self.lose_answers.lock().unwrap();
                if follow_up && *lose > 0 {
                    *lose -= 1;
                    return ResponseTemplate::new(500).set_body_string("Internal Server Error");
                }
                ResponseTemplate::new(201).set_body_json(json!({ "id": "10008", "key": key, "self": "x" }))
            }
            "/rest/api/3/search/jql" => {
                let jql = body["jql"].as_str().unwrap();
                let issues = self.issues.lock().unwrap();
                let deleted = self.deleted.lock().unwrap();
                let live = |k: &String| issues.contains_key(k) && !deleted.contains(k);
                if jql.starts_with("labels = ") {
                    let label = json!(quoted(jql)[0]);
                    let found: Vec<Value> = issues
                        .iter()
                        .filter(|(k, b)| live(k) && b["fields"]["labels"].as_array().unwrap().contains(&label))
                        .map(|(k, _)| json!({ "id": "1", "key": k }))
                        .collect();
                    return ResponseTemplate::new(200).set_body_json(json!({ "issues": found }));
                }
                let keys = quoted(jql);
                if let Some(missing) = keys.iter().find(|k| !live(k)) {
                    return ResponseTemplate::new(400).set_body_json(json!({
                        "errorMessages": [format!("An issue with key '{missing}' does not exist for field 'key'.")]
                    }));
                }
                let categories = self.categories.lock().unwrap();
                let found: Vec<Value> = keys
                    .iter()
                    .map(|k| {
                        let cat = categories.get(k).cloned().unwrap_or_else(|| "new".into());
                        json!({ "id": "1", "key": k, "fields": { "status": {
                            "name": if cat == "done" { "Done" } else { "To Do" },
                            "statusCategory": { "id": 3, "key": cat, "name": cat }
                        } } })
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({ "issues": found, "isLast": true }))
            }
            other => ResponseTemplate::new(404).set_body_string(format!("no {other} here")),
        }
    }
}

async fn jira_app(db: &TestDb, jira: &MockServer, counter: &CountingNotifier) -> TestApp {
    let mut spawn = Spawn::new(db);
    spawn.settings.integrations.jira = Some(
        toml::from_str(&format!(
            "base_url = \"{}\"\nemail = \"bot@example.com\"\ntoken_env = \"JIRA_TOKEN\"\nproject = \"OPS\"\n\
             follow_ups = true\nfollow_up_issue_type = \"Improvement\"\n",
            jira.uri()
        ))
        .unwrap(),
    );
    spawn.settings.secret_values.insert("JIRA_TOKEN".into(), TOKEN.into());
    spawn.notifiers = vec![Arc::new(counter.clone())];
    TestApp::spawn(spawn).await
}

async fn mount(jira: &MockServer, fake: &FakeJira) {
    Mock::given(method("POST"))
        .and(path_regex("^/rest/api/3/(issue|search/jql)$"))
        .respond_with(fake.clone())
        .mount(jira)
        .await;
}

/// Waits until `count` outbox rows exist and all are done.
async fn settle(app: &TestApp, count: usize) -> Vec<redbutton::db::models::OutboxRow> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = app.outbox_rows().await;
        if rows.len() == count && rows.iter().all(|r| r.state == "done") {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "outbox did not settle: {:?}",
            rows.iter()
                .map(|r| (&r.notifier, &r.event, &r.state, r.attempts, &r.last_error))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn text(s: &str) -> Value {
    json!({ "type": "text", "text": s })
}
fn strong(s: &str) -> Value {
    json!({ "type": "text", "text": s, "marks": [{ "type": "strong" }] })
}
fn link(s: &str, href: &str) -> Value {
    json!({ "type": "text", "text": s, "marks": [{ "type": "link", "attrs": { "href": href } }] })
}
fn item(label: &str, value: &str) -> Value {
    json!({ "type": "listItem", "content": [{ "type": "paragraph", "content": [strong(label), text(value)] }] })
}

async fn creates(jira: &MockServer) -> Vec<Request> {
    jira.received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/rest/api/3/issue")
        .collect()
}

async fn searches(jira: &MockServer) -> Vec<Value> {
    jira.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/rest/api/3/search/jql")
        .map(|r| check_request(r, "POST", "/rest/api/3/search/jql", &basic_auth()))
        .collect()
}

#[tokio::test]
async fn a_follow_up_opens_one_jira_issue_linked_to_the_incident_ticket() {
    let jira = MockServer::start().await;
    let fake = FakeJira::default();
    mount(&jira, &fake).await;
    let counter = CountingNotifier {
        name: "counter",
        ..Default::default()
    };
    let db = TestDb::new();
    let app = jira_app(&db, &jira, &counter).await;
    app.identify("Grace Hopper", "grace@example.com").await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = app.declare_ok("Card payments failing").await;
    settle(&app, 2).await;
    let due = day(14);
    assert_eq!(
        add(&app, n, "Add a canary step", "grace@example.com", &due)
            .await
            .status(),
        303
    );

    let rows = settle(&app, 3).await;
    // Only Jira is told about the follow-up; the other integration saw the declaration alone.
    let events: Vec<(&str, &str)> = rows.iter().map(|r| (r.notifier.as_str(), r.event.as_str())).collect();
    assert_eq!(
        events,
        vec![
            ("counter", "declared"),
            ("jira", "declared"),
            ("jira", "follow_up_added")
        ]
    );
    assert_eq!(counter.seen.lock().unwrap().len(), 1);
    let row = &rows[2];
    assert_eq!(row.attempts, 1);
    assert_eq!(row.external_id.as_deref(), Some("OPS-8"));
    assert_eq!(row.target.as_deref(), Some("project OPS (follow-up)"));

    let made = creates(&jira).await;
    assert_eq!(made.len(), 2, "the incident's ticket, then the follow-up's");
    let body = check_request(&made[1], "POST", "/rest/api/3/issue", &basic_auth());
    let url = app.state.incident_url(n);
    let key = app.external_key(n).await;
    let f = &follow_ups(&app).await[0];
    assert_eq!(
        body,
        json!({
            "fields": {
                "project": { "key": "OPS" },
                "issuetype": { "name": "Improvement" },
                "summary": format!("INC-{n} follow-up: Add a canary step"),
                "description": { "type": "doc", "version": 1, "content": [
                    { "type": "paragraph", "content": [
                        text("Ada Lovelace recorded this follow-up of "),
                        link(&format!("INC-{n}"), &url),
                        text(" (Card payments failing)."),
                    ] },
                    { "type": "bulletList", "content": [
                        item("What:", " Add a canary step"),
                        item("Owner:", " Grace Hopper (grace@example.com)"),
                        item("Due:", &format!(" {due}")),
                    ] },
                    { "type": "paragraph", "content": [strong("Incident page:"), text(" "), link(&url, &url)] },
                ] },
                "duedate": due,
                "labels": ["redbutton", "redbutton-follow-up", format!("redbutton-{key}-fu{}", f.id)],
            },
            "update": { "issuelinks": [{ "add": {
                "type": { "name": "Relates" },
                "outwardIssue": { "key": "OPS-7" }
            } }] }
        })
    );
    // The incident's own ticket does not carry the follow-up labels (its search stays exact).
    let first = check_request(&made[0], "POST", "/rest/api/3/issue", &basic_auth());
    assert!(
        !first["fields"]["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("redbutton-follow-up"))
    );

    assert_eq!(f.jira_key.as_deref(), Some("OPS-8"));
    assert_eq!(f.jira_url, Some(format!("{}/browse/OPS-8", jira.uri())));
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let doc = scraper::Html::parse_document(&html);
    let sel = scraper::Selector::parse("#follow-ups a.fu-jira").unwrap();
    let links: Vec<(String, String)> = doc
        .select(&sel)
        .map(|a| (a.text().collect(), a.value().attr("href").unwrap().to_string()))
        .collect();
    assert_eq!(
        links,
        vec![("OPS-8".to_string(), format!("{}/browse/OPS-8", jira.uri()))]
    );
    assert!(
        searches(&jira).await.is_empty(),
        "nothing was lost, so nothing was searched"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_create_answered_500_is_found_by_its_label_not_created_twice() {
    let jira = MockServer::start().await;
    let fake = FakeJira::default();
    *fake.lose_answers.lock().unwrap() = 1;
    mount(&jira, &fake).await;
    let counter = CountingNotifier {
        name: "counter",
        ..Default::default()
    };
    let db = TestDb::new();
    let app = jira_app(&db, &jira, &counter).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = app.declare_ok("Card payments failing").await;
    assert_eq!(add(&app, n, "Add a canary step", "Ada", &day(14)).await.status(), 303);

    let rows = settle(&app, 3).await;
    let row = rows.iter().find(|r| r.event == "follow_up_added").unwrap();
    assert_eq!(row.attempts, 2, "the 500, then the search that found it");
    assert_eq!(row.external_id.as_deref(), Some("OPS-8"));
    assert!(
        row.last_error.as_deref().unwrap_or_default().contains("HTTP 500"),
        "{:?}",
        row.last_error
    );
    assert_eq!(
        creates(&jira).await.len(),
        2,
        "one create for the ticket, one for the follow-up"
    );
    assert_eq!(fake.issues.lock().unwrap().len(), 2, "Jira holds one issue per thing");
    let f = &follow_ups(&app).await[0];
    assert_eq!(f.jira_key.as_deref(), Some("OPS-8"));
    let key = app.external_key(n).await;
    assert_eq!(
        searches(&jira).await,
        vec![json!({
            "jql": format!("labels = \"redbutton-{key}-fu{}\"", f.id),
            "fields": ["key"],
            "maxResults": 1
        })]
    );
    // The in-flight marker is gone once the key is stored.
    let incident_id = f.incident_id;
    let refs = app
        .state
        .db
        .run(move |c| redbutton::db::models::external_ref::list_for(c, incident_id))
        .await
        .unwrap();
    assert!(refs.iter().all(|r| !r.name.starts_with("follow-up-create")), "{refs:?}");
    app.stop().await;
}

async fn sync(app: &TestApp) -> SyncReport {
    JiraSync::from_state(&app.state)
        .unwrap()
        .expect("Jira follow-ups are on")
        .run_once()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_status_sync_closes_and_reopens_follow_ups_as_jira_moves() {
    let jira = MockServer::start().await;
    let fake = FakeJira::default();
    mount(&jira, &fake).await;
    let counter = CountingNotifier {
        name: "counter",
        ..Default::default()
    };
    let db = TestDb::new();
    let app = jira_app(&db, &jira, &counter).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = app.declare_ok("Card payments failing").await;
    assert_eq!(add(&app, n, "Add a canary step", "Ada", &day(14)).await.status(), 303);
    settle(&app, 3).await;
    let f = follow_ups(&app).await[0].clone();
    assert_eq!(f.jira_key.as_deref(), Some("OPS-8"));
    let entries = || async { timeline_of(&app, f.incident_id).await.len() };

    // In progress in Jira: nothing to do here, but what Jira said is remembered.
    fake.set("OPS-8", "indeterminate");
    assert_eq!(
        sync(&app).await,
        SyncReport {
            checked: 1,
            closed: 0,
            reopened: 0
        }
    );
    assert_eq!(
        searches(&jira).await,
        vec![json!({ "jql": "key in (\"OPS-8\")", "fields": ["status"], "maxResults": 1 })]
    );
    let before = entries().await;

    // Done in Jira: done here, written by the system with its timeline entry; once.
    fake.set("OPS-8", "done");
    assert_eq!(sync(&app).await.closed, 1);
    assert_eq!(
        sync(&app).await.closed,
        0,
        "a second pass (or another replica) changes nothing"
    );
    let now = follow_ups(&app).await[0].clone();
    assert_eq!(
        (now.status.as_str(), now.jira_status.as_deref()),
        ("done", Some("done"))
    );
    assert!(now.closed_at.is_some());
    let tl = timeline_of(&app, f.incident_id).await;
    assert_eq!(tl.len(), before + 1);
    let last = tl.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.actor_name.as_str(), last.new_value.as_deref()),
        ("follow_up_changed", "Big Red Button", Some("done"))
    );

    // Reopened in Jira: open here again.
    fake.set("OPS-8", "new");
    assert_eq!(sync(&app).await.reopened, 1);
    assert_eq!(follow_ups(&app).await[0].status, "open");

    // Closed here while the issue stays open in Jira: the sync leaves the person's decision.
    assert_eq!(set_status(&app, n, f.id, "open", "done").await.status(), 303);
    assert_eq!(
        sync(&app).await,
        SyncReport {
            checked: 1,
            closed: 0,
            reopened: 0
        }
    );
    assert_eq!(follow_ups(&app).await[0].status, "done");

    // A second follow-up whose issue is then deleted in Jira: the batch Jira refuses is split,
    // and the issue that still exists is synced.
    assert_eq!(add(&app, n, "Alert on declines", "Ada", &day(14)).await.status(), 303);
    settle(&app, 4).await;
    assert_eq!(follow_ups(&app).await[1].jira_key.as_deref(), Some("OPS-9"));
    fake.deleted.lock().unwrap().push("OPS-9".into());
    assert_eq!(set_status(&app, n, f.id, "done", "reopen").await.status(), 303);
    fake.set("OPS-8", "indeterminate");
    fake.set("OPS-8", "done");
    let searched_before = searches(&jira).await.len();
    assert_eq!(
        sync(&app).await,
        SyncReport {
            checked: 1,
            closed: 1,
            reopened: 0
        }
    );
    let jqls: Vec<String> = searches(&jira).await[searched_before..]
        .iter()
        .map(|b| b["jql"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        jqls,
        vec![
            "key in (\"OPS-8\", \"OPS-9\")".to_string(),
            "key in (\"OPS-8\")".to_string(),
            "key in (\"OPS-9\")".to_string()
        ]
    );
    let all = follow_ups(&app).await;
    assert_eq!((all[0].status.as_str(), all[1].status.as_str()), ("done", "open"));
    app.stop().await;
}

// --- the JSON API -----------------------------------------------------------------------------

async fn api_token(app: &TestApp, scopes: &[&str]) -> String {
    redbutton::services::tokens::create(
        &app.state,
        &redbutton::domain::Actor {
            name: "Ada Admin".into(),
            email: "ada@example.com".into(),
        },
        &redbutton::services::tokens::TokenRequest {
            name: format!("bot {}", scopes.join(" ")),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap()
    .secret
}

#[tokio::test]
async fn the_api_lists_and_adds_follow_ups_with_the_same_rules() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = app.declare_ok("Card payments failing").await;
    let writer = api_token(&app, &["incidents:read", "incidents:write"]).await;
    let reader = api_token(&app, &["incidents:read"]).await;
    let url = format!("{}/api/v1/incidents/{n}/follow-ups", app.address);
    let due = day(-1);

    let r = app
        .client
        .post(&url)
        .bearer_auth(&writer)
        .json(&json!({ "title": "Add a canary", "owner": "ada@example.com", "due_on": due }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], format!("/api/v1/incidents/{n}/follow-ups"));
    let body: Value = r.json().await.unwrap();
    let f = &body["follow_ups"][0];
    assert_eq!(f["title"], "Add a canary");
    assert_eq!(f["owner_name"], "Ada Lovelace");
    assert_eq!(f["owner_email"], "ada@example.com");
    assert_eq!(f["due_on"], due.as_str());
    assert_eq!(f["status"], "open");
    assert_eq!(f["overdue"], true);
    assert_eq!(f["jira_key"], Value::Null);
    assert_eq!(f["created_by"], "ada@example.com");

    // Refused fields: 422 naming each, nothing stored.
    let before = counts(&app).await;
    let r = app
        .client
        .post(&url)
        .bearer_auth(&writer)
        .json(&json!({ "title": " ", "owner": "x@", "due_on": "2026-02-30" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["title", "owner", "due_on"]);
    // A read-only token may list but not add.
    let r = app
        .client
        .post(&url)
        .bearer_auth(&reader)
        .json(&json!({ "title": "Sneaky", "owner": "Ada", "due_on": day(1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(counts(&app).await, before);
    let listed: Value = app
        .client
        .get(&url)
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, body);
    let missing = app
        .client
        .get(format!("{}/api/v1/incidents/999/follow-ups", app.address))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}
