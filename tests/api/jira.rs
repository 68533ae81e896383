//! Jira: wiremock plays Jira Cloud (REST v3, Atlassian Document Format) and Jira Server (REST
//! v2, wiki markup); every request we send is checked whole.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use redbutton::notifiers::Notifier;
use redbutton::notifiers::jira::{JiraNotifier, JiraSettings};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

pub const TOKEN: &str = "jira-s3cret-token";
const BRIDGE: &str = "https://meet.example.com/checkout";

fn jira_settings(base_url: &str, extra: &str) -> JiraSettings {
    toml::from_str(&format!(
        "base_url = \"{base_url}\"\nemail = \"bot@example.com\"\ntoken_env = \"JIRA_TOKEN\"\nproject = \"OPS\"\n{extra}"
    ))
    .unwrap()
}

fn with_jira(db: &TestDb, base_url: &str, extra: &str) -> Spawn {
    let mut spawn = Spawn::new(db);
    let mut checkout = service("checkout", "Checkout", &[]);
    checkout.conference_url = Some(BRIDGE.into());
    spawn.settings.services = vec![checkout];
    spawn.settings.integrations.jira = Some(jira_settings(base_url, extra));
    spawn.settings.secret_values.insert("JIRA_TOKEN".into(), TOKEN.into());
    spawn
}

pub fn basic_auth() -> String {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("bot@example.com:{TOKEN}"));
    format!("Basic {pair}")
}

fn header<'r>(r: &'r Request, name: &str) -> &'r str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header on {} {}", r.method, r.url.path()))
        .to_str()
        .unwrap()
}

/// Method, path, auth, content negotiation; returns the JSON body (Null when there is none).
pub fn check_request(r: &Request, verb: &str, want_path: &str, auth: &str) -> Value {
    assert_eq!(r.method.as_str(), verb, "{}", r.url);
    assert_eq!(r.url.path(), want_path);
    assert_eq!(header(r, "authorization"), auth);
    assert_eq!(header(r, "accept"), "application/json");
    if r.body.is_empty() {
        assert!(
            r.headers.get("content-type").is_none(),
            "a bodiless request has no content type"
        );
        Value::Null
    } else {
        assert_eq!(header(r, "content-type"), "application/json");
        serde_json::from_slice(&r.body).unwrap()
    }
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

// --- ADF, built and checked -----------------------------------------------------------------

fn t(s: &str) -> Value {
    json!({ "type": "text", "text": s })
}
fn strong(s: &str) -> Value {
    json!({ "type": "text", "text": s, "marks": [{ "type": "strong" }] })
}
fn link(text: &str, href: &str) -> Value {
    json!({ "type": "text", "text": text, "marks": [{ "type": "link", "attrs": { "href": href } }] })
}
fn para(content: Vec<Value>) -> Value {
    json!({ "type": "paragraph", "content": content })
}
fn item(label: &str, value: &str) -> Value {
    json!({ "type": "listItem", "content": [para(vec![strong(label), t(value)])] })
}
fn doc(content: Vec<Value>) -> Value {
    json!({ "type": "doc", "version": 1, "content": content })
}

fn keys_within(v: &Value, allowed: &[&str]) {
    for k in v.as_object().unwrap().keys() {
        assert!(allowed.contains(&k.as_str()), "unexpected key {k} in {v}");
    }
}

/// The rules of the ADF schema for the nodes we use: a `doc` of version 1 holding block nodes,
/// inline text never empty, marks only where the schema allows them.
fn check_adf(d: &Value) {
    keys_within(d, &["type", "version", "content"]);
    assert_eq!(d["type"], "doc");
    assert_eq!(d["version"], 1);
    let blocks = d["content"].as_array().expect("doc content is an array");
    assert!(!blocks.is_empty());
    for b in blocks {
        check_block(b);
    }
}

fn check_block(b: &Value) {
    match b["type"].as_str().unwrap() {
        "paragraph" => {
            keys_within(b, &["type", "content"]);
            b["content"].as_array().unwrap().iter().for_each(check_inline);
        }
        "heading" => {
            keys_within(b, &["type", "attrs", "content"]);
            let level = b["attrs"]["level"].as_u64().unwrap();
            assert!((1..=6).contains(&level));
            b["content"].as_array().unwrap().iter().for_each(check_inline);
        }
        "bulletList" => {
            keys_within(b, &["type", "content"]);
            let items = b["content"].as_array().unwrap();
            assert!(!items.is_empty(), "a list needs items");
            for i in items {
                keys_within(i, &["type", "content"]);
                assert_eq!(i["type"], "listItem");
                let inner = i["content"].as_array().unwrap();
                assert!(!inner.is_empty(), "a list item needs content");
                inner.iter().for_each(check_block);
            }
        }
        other => panic!("block node {other} is not one we send: {b}"),
    }
}

fn check_inline(i: &Value) {
    match i["type"].as_str().unwrap() {
        "text" => {
            keys_within(i, &["type", "text", "marks"]);
            let text = i["text"].as_str().unwrap();
            assert!(!text.is_empty() && !text.contains('\n'), "text node {i}");
            for m in i["marks"].as_array().map(Vec::as_slice).unwrap_or_default() {
                match m["type"].as_str().unwrap() {
                    "strong" | "em" => keys_within(m, &["type"]),
                    "link" => {
                        keys_within(m, &["type", "attrs"]);
                        keys_within(&m["attrs"], &["href"]);
                        assert!(m["attrs"]["href"].as_str().unwrap().starts_with("http"));
                    }
                    other => panic!("mark {other}"),
                }
            }
        }
        "hardBreak" => keys_within(i, &["type"]),
        other => panic!("inline node {other}"),
    }
}

// --- A Jira that remembers the ticket's status ----------------------------------------------

/// Answers `GET …/transitions` by the ticket's current status and applies `POST …/transitions`.
#[derive(Clone)]
struct Workflow {
    status: Arc<Mutex<&'static str>>,
}

impl Workflow {
    fn new() -> Self {
        Workflow {
            status: Arc::new(Mutex::new("To Do")),
        }
    }
}

impl Respond for Workflow {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let mut status = self.status.lock().unwrap();
        if r.method.as_str() == "POST" {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            *status = match body["transition"]["id"].as_str().unwrap() {
                "31" => "Done",
                "41" => "To Do",
                _ => return ResponseTemplate::new(400).set_body_json(json!({"errorMessages": ["bad id"]})),
            };
            return ResponseTemplate::new(204);
        }
        let offered = if *status == "Done" {
            json!([{ "id": "41", "name": "Reopen Issue", "to": { "name": "To Do" } }])
        } else {
            json!([
                { "id": "11", "name": "Start Progress", "to": { "name": "In Progress" } },
                { "id": "31", "name": "Done", "to": { "name": "Done" } }
            ])
        };
        ResponseTemplate::new(200).set_body_json(json!({ "expand": "transitions", "transitions": offered }))
    }
}

async fn mount_jira(server: &MockServer, api: &str) -> Workflow {
    Mock::given(method("POST"))
        .and(path(format!("/rest/api/{api}/issue")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": "10007", "key": "OPS-7", "self": format!("{}/rest/api/{api}/issue/10007", server.uri())
        })))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/rest/api/{api}/issue/OPS-7/comment")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "10100", "body": {} })))
        .mount(server)
        .await;
    let flow = Workflow::new();
    Mock::given(path(format!("/rest/api/{api}/issue/OPS-7/transitions")))
        .respond_with(flow.clone())
        .mount(server)
        .await;
    flow
}

async fn declare_checkout(app: &TestApp) -> i64 {
    app.identify("Ada Lovelace", "ada@example.com").await;
    let r = app
        .declare(&[
            ("title", "Card payments failing"),
            ("severity", "SEV1"),
            ("services", "checkout"),
            ("summary", "Declines at **40%**.\nSince 09:50."),
        ])
        .await;
    assert_eq!(r.status(), 303);
    number_from_location(&r)
}

/// Waits until `count` rows exist and all are in `states`.
async fn settle(app: &TestApp, count: usize, states: &[&str]) -> Vec<redbutton::db::models::OutboxRow> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = app.outbox_rows().await;
        if rows.len() == count && rows.iter().all(|r| states.contains(&r.state.as_str())) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "outbox did not settle: {:?}",
            rows.iter()
                .map(|r| (&r.event, &r.state, r.attempts, &r.last_error))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn links_in(html: &str, selector: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).unwrap();
    doc.select(&sel)
        .filter_map(|e| e.value().attr("href").map(str::to_string))
        .collect()
}

fn expected_cloud_description(n: i64, url: &str) -> Value {
    doc(vec![
        para(vec![
            t("Ada Lovelace declared "),
            link(&format!("INC-{n}"), url),
            t("."),
        ]),
        json!({ "type": "bulletList", "content": [
            item("What:", " Card payments failing"),
            item("Severity:", " SEV1 (Major)"),
            item("Status:", " investigating"),
            item("Services:", " Checkout"),
            item("Declared by:", " Ada Lovelace (ada@example.com)"),
            item("Lead:", " nobody yet"),
        ] }),
        json!({ "type": "heading", "attrs": { "level": 3 }, "content": [t("Summary")] }),
        para(vec![
            t("Declines at **40%**."),
            json!({ "type": "hardBreak" }),
            t("Since 09:50."),
        ]),
        para(vec![strong("Incident page:"), t(" "), link(url, url)]),
        para(vec![strong("Conference bridge:"), t(" "), link(BRIDGE, BRIDGE)]),
    ])
}

fn change_comment(what: &str, old: &str, new: &str, url: &str, delivery: &str) -> Value {
    json!({ "properties": [{ "key": "redbutton", "value": { "delivery": delivery } }], "body": doc(vec![
        para(vec![
            t(&format!("Ada Lovelace changed the {what} from ")),
            strong(old),
            t(" to "),
            strong(new),
            t("."),
        ]),
        para(vec![strong("Incident page:"), t(" "), link(url, url)]),
    ]) })
}

#[tokio::test]
async fn cloud_ticket_follows_the_incident_from_declare_to_reopen() {
    let jira = MockServer::start().await;
    let flow = mount_jira(&jira, "3").await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_jira(&db, &jira.uri(), "labels = [\"ops\"]\n")).await;
    let n = declare_checkout(&app).await;
    let url = format!("{}/incidents/{n}", app.address);
    let auth = basic_auth();

    let rows = settle(&app, 1, &["done"]).await;
    assert_eq!(rows[0].external_id.as_deref(), Some("OPS-7"));
    let browse = format!("{}/browse/OPS-7", jira.uri());
    assert_eq!(rows[0].external_url.as_deref(), Some(browse.as_str()));
    assert_eq!(rows[0].target.as_deref(), Some("project OPS"));

    let seen = requests(&jira).await;
    assert_eq!(seen.len(), 1);
    let body = check_request(&seen[0], "POST", "/rest/api/3/issue", &auth);
    check_adf(&body["fields"]["description"]);
    assert_eq!(
        body,
        json!({ "fields": {
            "project": { "key": "OPS" },
            "issuetype": { "name": "Task" },
            "summary": format!("INC-{n}: Card payments failing"),
            "description": expected_cloud_description(n, &url),
            "priority": { "name": "High" },
            "labels": ["redbutton", format!("redbutton-{}", app.external_key(n).await), "ops"],
        } })
    );

    // The page links to the ticket.
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(
        links_in(&html, "#deliveries a").contains(&browse),
        "{:?}",
        texts(&html, "#deliveries")
    );

    // A status update is a comment.
    app.change_status(n, "investigating", "identified").await;
    settle(&app, 2, &["done"]).await;
    let seen = requests(&jira).await;
    assert_eq!(seen.len(), 2);
    let body = check_request(&seen[1], "POST", "/rest/api/3/issue/OPS-7/comment", &auth);
    check_adf(&body["body"]);
    assert_eq!(
        body,
        change_comment("status", "investigating", "identified", &url, "inc-1-t2-jira")
    );

    // So is a severity change, with the levels' names.
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/severity"),
            &[("csrf", &csrf), ("expected", "SEV1"), ("severity", "SEV2")],
        )
        .await;
    assert_eq!(r.status(), 303);
    settle(&app, 3, &["done"]).await;
    let seen = requests(&jira).await;
    assert_eq!(seen.len(), 3);
    let body = check_request(&seen[2], "POST", "/rest/api/3/issue/OPS-7/comment", &auth);
    check_adf(&body["body"]);
    assert_eq!(
        body,
        change_comment("severity", "SEV1 (Major)", "SEV2 (Significant)", &url, "inc-1-t3-jira")
    );

    // Resolving comments, reads the transitions and takes "Done".
    app.change_status(n, "identified", "resolved").await;
    let rows = settle(&app, 4, &["done"]).await;
    assert_eq!(rows[3].attempts, 1);
    let seen = requests(&jira).await;
    assert_eq!(seen.len(), 6);
    let body = check_request(&seen[3], "POST", "/rest/api/3/issue/OPS-7/comment", &auth);
    assert_eq!(
        body,
        change_comment("status", "identified", "resolved", &url, "inc-1-t4-jira")
    );
    let none = check_request(&seen[4], "GET", "/rest/api/3/issue/OPS-7/transitions", &auth);
    assert_eq!(none, Value::Null);
    assert_eq!(seen[4].url.query(), None);
    let body = check_request(&seen[5], "POST", "/rest/api/3/issue/OPS-7/transitions", &auth);
    assert_eq!(body, json!({ "transition": { "id": "31" } }));
    assert_eq!(*flow.status.lock().unwrap(), "Done");

    // Reopening takes "Reopen Issue".
    app.change_status(n, "resolved", "investigating").await;
    settle(&app, 5, &["done"]).await;
    let seen = requests(&jira).await;
    assert_eq!(seen.len(), 9);
    let body = check_request(&seen[6], "POST", "/rest/api/3/issue/OPS-7/comment", &auth);
    assert_eq!(
        body,
        change_comment("status", "resolved", "investigating", &url, "inc-1-t5-jira")
    );
    check_request(&seen[7], "GET", "/rest/api/3/issue/OPS-7/transitions", &auth);
    let body = check_request(&seen[8], "POST", "/rest/api/3/issue/OPS-7/transitions", &auth);
    assert_eq!(body, json!({ "transition": { "id": "41" } }));
    assert_eq!(*flow.status.lock().unwrap(), "To Do");

    // The comment rows link to their comment on the ticket.
    let rows = app.outbox_rows().await;
    assert_eq!(
        rows[1].external_url.as_deref(),
        Some(format!("{browse}?focusedCommentId=10100").as_str())
    );
    app.stop().await;
}

#[tokio::test]
async fn server_flavor_uses_api_2_wiki_text_and_a_bearer_token() {
    let jira = MockServer::start().await;
    mount_jira(&jira, "2").await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_jira(
        &db,
        &jira.uri(),
        "flavor = \"server\"\nauth = \"bearer\"\nissue_type = \"Incident\"\n[priorities]\nSEV1 = \"Critical\"\n",
    ))
    .await;
    let n = declare_checkout(&app).await;
    let url = format!("{}/incidents/{n}", app.address);
    let auth = format!("Bearer {TOKEN}");
    settle(&app, 1, &["done"]).await;

    let seen = requests(&jira).await;
    let body = check_request(&seen[0], "POST", "/rest/api/2/issue", &auth);
    let description = format!(
        "Ada Lovelace declared [INC-{n}|{url}].\n\n\
         * *What:* Card payments failing\n\
         * *Severity:* SEV1 (Major)\n\
         * *Status:* investigating\n\
         * *Services:* Checkout\n\
         * *Declared by:* Ada Lovelace (ada@example.com)\n\
         * *Lead:* nobody yet\n\n\
         h3. Summary\n\n\
         {{noformat}}\nDeclines at **40%**.\nSince 09:50.\n{{noformat}}\n\n\
         *Incident page:* [{url}]\n\n\
         *Conference bridge:* [{BRIDGE}]"
    );
    assert_eq!(
        body,
        json!({ "fields": {
            "project": { "key": "OPS" },
            "issuetype": { "name": "Incident" },
            "summary": format!("INC-{n}: Card payments failing"),
            "description": description,
            "priority": { "name": "Critical" },
            "labels": ["redbutton", format!("redbutton-{}", app.external_key(n).await)],
        } })
    );

    app.change_status(n, "investigating", "resolved").await;
    settle(&app, 2, &["done"]).await;
    let seen = requests(&jira).await;
    assert_eq!(seen.len(), 4);
    let body = check_request(&seen[1], "POST", "/rest/api/2/issue/OPS-7/comment", &auth);
    assert_eq!(
        body,
        json!({
            "body": format!(
                "Ada Lovelace changed the status from *investigating* to *resolved*.\n\n*Incident page:* [{url}]"
            ),
            "properties": [{ "key": "redbutton", "value": { "delivery": "inc-1-t2-jira" } }],
        })
    );
    check_request(&seen[2], "GET", "/rest/api/2/issue/OPS-7/transitions", &auth);
    let body = check_request(&seen[3], "POST", "/rest/api/2/issue/OPS-7/transitions", &auth);
    assert_eq!(body, json!({ "transition": { "id": "31" } }));
    app.stop().await;
}

#[tokio::test]
async fn an_unanswered_create_is_found_again_instead_of_opening_a_second_ticket() {
    let jira = MockServer::start().await;
    // The first create is made but answered too late: the attempt gives up after sending it.
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": "10007", "key": "OPS-7", "self": "x" }))
                .set_delay(Duration::from_millis(2500)),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "10008", "key": "OPS-8" })))
        .expect(0)
        .named("a second create")
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/search/jql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issues": [{ "id": "10007", "key": "OPS-7", "fields": {} }],
            "isLast": true
        })))
        .expect(1)
        .mount(&jira)
        .await;
    let db = TestDb::new();
    let mut spawn = with_jira(&db, &jira.uri(), "");
    spawn.settings.outbox.delivery_timeout_ms = 1_000;
    let app = TestApp::spawn(spawn).await;
    let n = declare_checkout(&app).await;

    let rows = settle(&app, 1, &["done"]).await;
    assert_eq!(rows[0].attempts, 2, "{:?}", rows[0].last_error);
    assert_eq!(rows[0].external_id.as_deref(), Some("OPS-7"));

    let seen = requests(&jira).await;
    let creates = seen.iter().filter(|r| r.url.path() == "/rest/api/3/issue").count();
    assert_eq!(creates, 1, "exactly one create reached Jira");
    let search = seen.iter().find(|r| r.url.path() == "/rest/api/3/search/jql").unwrap();
    let body = check_request(search, "POST", "/rest/api/3/search/jql", &basic_auth());
    assert_eq!(
        body,
        json!({ "jql": format!("labels = \"redbutton-{}\"", app.external_key(n).await), "fields": ["key"], "maxResults": 1 })
    );
    app.stop().await;
    jira.verify().await;
}

#[tokio::test]
async fn a_search_that_misses_a_just_lost_create_waits_instead_of_creating_again() {
    let jira = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": "10007", "key": "OPS-7" }))
                .set_delay(Duration::from_millis(2500)),
        )
        .mount(&jira)
        .await;
    // Jira's search index has not caught up with the new issue yet.
    Mock::given(method("POST"))
        .and(path("/rest/api/3/search/jql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "issues": [], "isLast": true })))
        .mount(&jira)
        .await;
    let db = TestDb::new();
    let mut spawn = with_jira(&db, &jira.uri(), "");
    spawn.settings.outbox.delivery_timeout_ms = 1_000;
    let app = TestApp::spawn(spawn).await;
    declare_checkout(&app).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = requests(&jira).await;
        if seen.iter().filter(|r| r.url.path() == "/rest/api/3/search/jql").count() >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no second search");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = requests(&jira).await;
    assert_eq!(seen.iter().filter(|r| r.url.path() == "/rest/api/3/issue").count(), 1);
    // The search has answered; wait for the worker to record the attempt it belongs to (until
    // then the row is leased, with the claim's provisional attempt count).
    let rows = loop {
        let rows = app.outbox_rows().await;
        let waiting = rows[0].state == "pending"
            && rows[0]
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("search does not show it yet");
        if waiting {
            break rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recorded as waiting: {:?}",
            rows[0]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Waiting out the index lag spends no attempts (the crash drill once saw this window use up
    // all ten and dead-letter the ticket).
    assert_eq!(rows[0].attempts, 1, "only the lost create counted");
    app.stop().await;
}

#[tokio::test]
async fn a_comment_whose_answer_was_lost_is_found_by_its_property_not_posted_again() {
    let jira = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "10007", "key": "OPS-7" })))
        .mount(&jira)
        .await;
    // Jira stores the comment but the answer comes too late for the attempt.
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/OPS-7/comment"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "id": "10100" }))
                .set_delay(Duration::from_millis(2500)),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/OPS-7/comment"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "10101" })))
        .expect(0)
        .named("a second comment")
        .mount(&jira)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/issue/OPS-7/comment"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "comments": [
                { "id": "10099", "properties": [] },
                { "id": "10100", "properties": [{ "key": "redbutton", "value": { "delivery": "inc-1-t2-jira" } }] }
            ],
            "startAt": 0, "maxResults": 100, "total": 2
        })))
        .expect(1)
        .mount(&jira)
        .await;
    let db = TestDb::new();
    let mut spawn = with_jira(&db, &jira.uri(), "");
    spawn.settings.outbox.delivery_timeout_ms = 1_000;
    let app = TestApp::spawn(spawn).await;
    let n = declare_checkout(&app).await;
    settle(&app, 1, &["done"]).await;
    app.change_status(n, "investigating", "identified").await;
    let rows = settle(&app, 2, &["done"]).await;
    assert_eq!(rows[1].attempts, 2, "{:?}", rows[1].last_error);
    assert!(
        rows[1]
            .external_url
            .as_deref()
            .unwrap()
            .ends_with("focusedCommentId=10100")
    );
    let seen = requests(&jira).await;
    let read = seen.iter().find(|r| r.method.as_str() == "GET").unwrap();
    check_request(read, "GET", "/rest/api/3/issue/OPS-7/comment", &basic_auth());
    assert_eq!(
        read.url.query(),
        Some("orderBy=-created&maxResults=100&expand=properties")
    );
    app.stop().await;
    jira.verify().await;
}

#[tokio::test]
async fn a_create_that_never_left_is_retried_without_searching() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let db = TestDb::new();
    let app = TestApp::spawn(with_jira(&db, &base, "")).await;
    declare_checkout(&app).await;

    // Jira is down: connection refused, twice.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = app.outbox_rows().await;
        if rows[0].attempts >= 2 {
            assert!(
                rows[0].last_error.as_deref().unwrap().contains("Jira unreachable"),
                "{:?}",
                rows[0].last_error
            );
            break;
        }
        assert!(Instant::now() < deadline, "no retries: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // It comes back on the same address.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let jira = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "10007", "key": "OPS-7" })))
        .expect(1)
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/search/jql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "issues": [] })))
        .expect(0)
        .mount(&jira)
        .await;
    let rows = settle(&app, 1, &["done"]).await;
    assert_eq!(rows[0].external_id.as_deref(), Some("OPS-7"));
    app.stop().await;
    jira.verify().await;
}

#[tokio::test]
async fn a_refused_create_is_dead_lettered_with_jiras_reasons_on_the_page() {
    let jira = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "errorMessages": ["Issue type is not valid for this project."],
            "errors": { "customfield_10010": "Field 'customfield_10010' cannot be set. It is not on the appropriate screen, or unknown." }
        })))
        .expect(1)
        .mount(&jira)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_jira(
        &db,
        &jira.uri(),
        "[services.checkout.fields]\ncustomfield_10010 = \"checkout\"\n",
    ))
    .await;
    let n = declare_checkout(&app).await;
    let rows = settle(&app, 1, &["dead"]).await;
    assert_eq!(rows[0].attempts, 1, "a refusal is not retried");
    let seen = requests(&jira).await;
    let body = check_request(&seen[0], "POST", "/rest/api/3/issue", &basic_auth());
    assert_eq!(body["fields"]["customfield_10010"], "checkout");

    let html = app.get_html(&format!("/incidents/{n}")).await;
    let d = texts(&html, "#deliveries tbody tr");
    assert!(
        d[0].contains(
            "Jira refused to create the issue (HTTP 400): Issue type is not valid for this project.; \
             customfield_10010: Field 'customfield_10010' cannot be set. It is not on the appropriate screen, or unknown."
        ),
        "{d:?}"
    );
    assert!(!html.contains(TOKEN));

    // Later events say why they cannot comment.
    app.change_status(n, "investigating", "identified").await;
    let rows = settle(&app, 2, &["dead"]).await;
    assert_eq!(rows[1].attempts, 1);
    let err = rows[1].last_error.as_deref().unwrap();
    assert!(
        err.starts_with(&format!("no Jira issue for INC-{n}: creating it failed (Jira refused")),
        "{err}"
    );
    assert_eq!(requests(&jira).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_resolve_without_a_matching_transition_names_the_ones_there_are() {
    let jira = MockServer::start().await;
    mount_jira(&jira, "3").await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_jira(&db, &jira.uri(), "resolve_transitions = [\"Close\"]\n")).await;
    let n = declare_checkout(&app).await;
    settle(&app, 1, &["done"]).await;
    app.change_status(n, "investigating", "resolved").await;
    let rows = settle(&app, 2, &["done", "dead"]).await;
    assert_eq!(rows[1].state, "dead");
    assert_eq!(
        rows[1].last_error.as_deref().unwrap(),
        "none of the resolve transitions (Close) is available on OPS-7; available: Start Progress, Done. \
         Set integrations.jira.resolve_transitions"
    );
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(
        texts(&html, "#deliveries")
            .join(" ")
            .contains("available: Start Progress, Done")
    );

    // A retry after fixing Jira's workflow does not comment twice.
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/deliveries/{}/retry", rows[1].id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let rows = settle(&app, 2, &["done", "dead"]).await;
    assert_eq!((rows[1].state.as_str(), rows[1].attempts), ("dead", 1), "the retry ran");
    let seen = requests(&jira).await;
    let reads = seen.iter().filter(|r| r.url.path().ends_with("/transitions")).count();
    assert_eq!(reads, 2, "the retry read the transitions again");
    let comments = seen.iter().filter(|r| r.url.path().ends_with("/comment")).count();
    assert_eq!(comments, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_probe_signs_in_or_says_why_not() {
    let jira = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/myself"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Incident Bot", "active": true
        })))
        .up_to_n_times(1)
        .mount(&jira)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/myself"))
        .respond_with(
            ResponseTemplate::new(401).set_body_string("Client must be authenticated to access this resource."),
        )
        .mount(&jira)
        .await;
    let settings = redbutton::config::Settings::default();
    let n = JiraNotifier::new(&jira_settings(&jira.uri(), ""), &settings, TOKEN, 2_000).unwrap();
    assert_eq!(n.probe().await.unwrap(), "signed in as Incident Bot");
    let seen = requests(&jira).await;
    check_request(&seen[0], "GET", "/rest/api/3/myself", &basic_auth());

    let err = n.probe().await.unwrap_err();
    assert!(err.contains("refused our credentials (HTTP 401)"), "{err}");
    assert!(!err.contains(TOKEN));

    let gone = JiraNotifier::new(
        &jira_settings(&format!("http://127.0.0.1:{}", free_port()), ""),
        &settings,
        TOKEN,
        2_000,
    )
    .unwrap();
    let err = gone.probe().await.unwrap_err();
    assert!(err.contains("Jira unreachable"), "{err}");
}

#[tokio::test]
async fn busy_rate_limited_and_garbled_answers_are_retried_without_duplicates() {
    let jira = MockServer::start().await;
    // The create succeeds but its answer is unreadable: the key is lost, the ticket is not.
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue"))
        .respond_with(ResponseTemplate::new(201).set_body_string("<html>proxy says hi</html>"))
        .expect(1)
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/search/jql"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "issues": [{ "id": "10007", "key": "OPS-7" }] })),
        )
        .expect(1)
        .mount(&jira)
        .await;
    // Comments: Jira is busy, then rate limits, then takes it.
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/OPS-7/comment"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(1)
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/OPS-7/comment"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&jira)
        .await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/OPS-7/comment"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "10100" })))
        .expect(1)
        .mount(&jira)
        .await;
    let db = TestDb::new();
    let app = TestApp::spawn(with_jira(&db, &jira.uri(), "")).await;
    let n = declare_checkout(&app).await;

    let rows = settle(&app, 1, &["done"]).await;
    assert_eq!(rows[0].attempts, 2);
    assert_eq!(rows[0].external_id.as_deref(), Some("OPS-7"));
    let err = rows[0].last_error.as_deref().unwrap();
    assert!(
        err.contains("not the JSON expected") && err.contains("proxy says hi"),
        "{err}"
    );

    app.change_status(n, "investigating", "identified").await;
    // While it waits, the page says why.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = app.outbox_rows().await;
        if rows[1].last_error.as_deref().is_some_and(|e| e.contains("HTTP 429")) {
            let html = app.get_html(&format!("/incidents/{n}")).await;
            let d = texts(&html, "#deliveries").join(" ");
            assert!(
                d.contains("could not comment on OPS-7: Jira is rate limiting (HTTP 429)"),
                "{d}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = settle(&app, 2, &["done"]).await;
    assert_eq!(rows[1].attempts, 3);
    let comments = requests(&jira)
        .await
        .iter()
        .filter(|r| r.url.path().ends_with("/comment"))
        .count();
    assert_eq!(comments, 3);
    app.stop().await;
    jira.verify().await;
}
