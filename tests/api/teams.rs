//! Microsoft Teams against wiremock "Workflows" endpoints, one per channel: the exact message for
//! a declaration, a status update and a resolve, the Adaptive Card's structure, routing by
//! service, retries on 429 and 5xx, a permanent 400, hostile titles and drills.

use std::time::Duration;

use redbutton::notifiers::teams::{TeamsChannel, TeamsSettings};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::*;

const CHECKOUT_PATH: &str = "/workflows/checkout/triggers/manual/paths/invoke";
const DEFAULT_PATH: &str = "/workflows/default/triggers/manual/paths/invoke";
const CHECKOUT_SIG: &str = "CHECKOUTSIGsecret123";
const DEFAULT_SIG: &str = "DEFAULTSIGsecret456";

fn spawn(db: &TestDb, server: &MockServer) -> Spawn {
    let mut spawn = Spawn::new(db);
    spawn.settings.services = vec![service("checkout", "Checkout", &[]), service("search", "Search", &[])];
    spawn.settings.integrations.teams = Some(TeamsSettings {
        default_url_env: Some("TEAMS_DEFAULT_URL".into()),
        default_name: "Incidents channel".into(),
        channels: vec![TeamsChannel {
            service: "checkout".into(),
            url_env: "TEAMS_CHECKOUT_URL".into(),
            name: None,
        }],
    });
    spawn.settings.secret_values.insert(
        "TEAMS_CHECKOUT_URL".into(),
        format!("{}{CHECKOUT_PATH}?api-version=1&sig={CHECKOUT_SIG}", server.uri()),
    );
    spawn.settings.secret_values.insert(
        "TEAMS_DEFAULT_URL".into(),
        format!("{}{DEFAULT_PATH}?api-version=1&sig={DEFAULT_SIG}", server.uri()),
    );
    spawn
}

/// A Workflows endpoint answering 202 like the real one.
async fn teams() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    server
}

async fn posts(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

fn json_of(r: &Request) -> Value {
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    serde_json::from_slice(&r.body).unwrap()
}

async fn declare(app: &TestApp, fields: &[(&str, &str)]) -> i64 {
    let r = app.declare(fields).await;
    assert_eq!(r.status(), 303);
    number_from_location(&r)
}

/// The message envelope around a card.
fn message(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

fn card(body: Vec<Value>, url: &str) -> Value {
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open incident", "url": url}],
    })
}

fn title(text: &str) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true, "weight": "Bolder", "size": "Medium"})
}

fn line(text: &str) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true})
}

fn facts(pairs: &[(&str, &str)]) -> Value {
    let facts: Vec<Value> = pairs.iter().map(|(t, v)| json!({"title": t, "value": v})).collect();
    json!({"type": "FactSet", "facts": facts})
}

/// What the Adaptive Card schema (1.4) requires of the elements we use, checked on a body as
/// received: the envelope, the card's type, version and schema, every TextBlock's text, every
/// FactSet's facts with title and value, and an absolute http(s) URL on every Action.OpenUrl.
fn assert_valid_card(message: &Value) {
    assert_eq!(message["type"], "message");
    let attachments = message["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1);
    let a = &attachments[0];
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    assert!(a.get("contentUrl").is_some_and(Value::is_null));
    let c = &a["content"];
    assert_eq!(c["type"], "AdaptiveCard");
    assert_eq!(c["version"], "1.4");
    assert_eq!(c["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
    let body = c["body"].as_array().expect("body");
    assert!(!body.is_empty());
    for element in body {
        match element["type"].as_str() {
            Some("TextBlock") => {
                assert!(element["text"].as_str().is_some_and(|t| !t.is_empty()), "{element}");
                if let Some(w) = element.get("weight") {
                    assert!(["Lighter", "Default", "Bolder"].contains(&w.as_str().unwrap()));
                }
                if let Some(s) = element.get("size") {
                    assert!(["Small", "Default", "Medium", "Large", "ExtraLarge"].contains(&s.as_str().unwrap()));
                }
            }
            Some("FactSet") => {
                let facts = element["facts"].as_array().expect("facts");
                assert!(!facts.is_empty());
                for f in facts {
                    assert!(f["title"].is_string() && f["value"].is_string(), "{f}");
                }
            }
            other => panic!("unexpected element {other:?}"),
        }
    }
    for action in c["actions"].as_array().expect("actions") {
        assert_eq!(action["type"], "Action.OpenUrl");
        assert!(action["title"].is_string());
        let url = url::Url::parse(action["url"].as_str().unwrap()).expect("absolute URL");
        assert!(url.scheme() == "http" || url.scheme() == "https");
    }
}

#[tokio::test]
async fn declare_update_and_resolve_post_exact_cards_to_the_services_channel() {
    let server = teams().await;
    let db = TestDb::new();
    let app = TestApp::spawn(spawn(&db, &server)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let n = declare(
        &app,
        &[
            ("title", "Card payments failing"),
            ("severity", "SEV1"),
            ("services", "checkout"),
        ],
    )
    .await;
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let url = format!("{}/incidents/{n}", app.address);

    let got = posts(&server).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].url.path(), CHECKOUT_PATH);
    assert_eq!(got[0].url.query(), Some(&*format!("api-version=1&sig={CHECKOUT_SIG}")));
    let declared = json_of(&got[0]);
    assert_valid_card(&declared);
    assert_eq!(
        declared,
        message(card(
            vec![
                title(&format!("INC-{n}: Card payments failing")),
                line("Declared by Ada Lovelace."),
                facts(&[
                    ("Severity", "SEV1"),
                    ("Status", "Investigating"),
                    ("Services", "checkout"),
                    ("Lead", "nobody yet"),
                ]),
            ],
            &url
        ))
    );

    // A status update, with no further update planned.
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/updates"),
            &[
                ("csrf", &csrf),
                ("known", "Declines at 40%.\nOnly Visa."),
                ("doing", "Rolling back deploy 4412"),
                ("next_update", "none"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let got = posts(&server).await;
    assert_eq!(got.len(), 2);
    let update = json_of(&got[1]);
    assert_valid_card(&update);
    assert_eq!(
        update,
        message(card(
            vec![
                title(&format!("INC-{n}: Card payments failing")),
                line("Status update from Ada Lovelace."),
                line("**What we know**"),
                line("Declines at 40%.\n\nOnly Visa."),
                line("**What we are doing**"),
                line("Rolling back deploy 4412"),
                facts(&[
                    ("Severity", "SEV1"),
                    ("Status", "Investigating"),
                    ("Services", "checkout"),
                    ("Lead", "nobody yet"),
                    ("Next update", "none planned"),
                ]),
            ],
            &url
        ))
    );

    // Resolve. (A severity change is not posted: Teams takes declarations, statuses and updates.)
    app.change_severity(n, "SEV1", "SEV2").await;
    app.change_status(n, "investigating", "resolved").await;
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let got = posts(&server).await;
    assert_eq!(got.len(), 3, "nothing for the severity change");
    let resolved = json_of(&got[2]);
    assert_valid_card(&resolved);
    assert_eq!(
        resolved,
        message(card(
            vec![
                title(&format!("INC-{n}: Card payments failing")),
                line("Status: Investigating → Resolved, by Ada Lovelace."),
                facts(&[
                    ("Severity", "SEV2"),
                    ("Status", "Resolved"),
                    ("Services", "checkout"),
                    ("Lead", "nobody yet"),
                ]),
            ],
            &url
        ))
    );

    // The page names the channel, never its URL.
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(
        texts(&html, "#deliveries .target")
            .iter()
            .all(|t| t == "Teams: Checkout channel"),
        "{:?}",
        texts(&html, "#deliveries .target")
    );
    assert!(!html.contains(CHECKOUT_SIG) && !html.contains("/workflows/"));
    app.stop().await;
}

#[tokio::test]
async fn other_services_go_to_the_default_channel() {
    let server = teams().await;
    let db = TestDb::new();
    let app = TestApp::spawn(spawn(&db, &server)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    declare(&app, &[("title", "Search slow"), ("services", "search")]).await;
    declare(&app, &[("title", "Nobody knows what")]).await;
    declare(
        &app,
        &[("title", "Both"), ("services", "search"), ("services", "checkout")],
    )
    .await;
    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    assert_eq!(rows.len(), 3);
    let targets: Vec<_> = rows.iter().map(|r| r.target.clone().unwrap_or_default()).collect();
    assert_eq!(
        targets,
        vec![
            "Teams: Incidents channel",
            "Teams: Incidents channel",
            "Teams: Checkout channel"
        ]
    );
    let mut paths: Vec<(String, String)> = posts(&server)
        .await
        .iter()
        .map(|r| {
            let v = json_of(r);
            (
                v["attachments"][0]["content"]["body"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r.url.path().to_string(),
            )
        })
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            ("INC-1: Search slow".to_string(), DEFAULT_PATH.to_string()),
            ("INC-2: Nobody knows what".to_string(), DEFAULT_PATH.to_string()),
            ("INC-3: Both".to_string(), CHECKOUT_PATH.to_string()),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_and_a_400_is_final() {
    let server = MockServer::start().await;
    Mock::given(path(CHECKOUT_PATH))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(CHECKOUT_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_string("try later"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(path(CHECKOUT_PATH))
        .respond_with(ResponseTemplate::new(202))
        .with_priority(3)
        .mount(&server)
        .await;
    // The default channel's flow was deleted: it answers 400, echoing its address.
    Mock::given(path(DEFAULT_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_string(format!(
            "{{\"error\":{{\"code\":\"TriggerInputSchemaMismatch\",\"message\":\"bad request to {DEFAULT_PATH}?api-version=1&sig={DEFAULT_SIG}\"}}}}"
        )))
        .mount(&server)
        .await;
    let db = TestDb::new();
    let mut s = spawn(&db, &server);
    s.settings.outbox.max_attempts = 5;
    let app = TestApp::spawn(s).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    declare(&app, &[("title", "Checkout down"), ("services", "checkout")]).await;
    declare(&app, &[("title", "Elsewhere")]).await;
    let rows = app.wait_outbox(&["done", "dead"], Duration::from_secs(20)).await;
    let checkout = rows
        .iter()
        .find(|r| r.target.as_deref() == Some("Teams: Checkout channel"))
        .unwrap();
    assert_eq!(
        (checkout.state.as_str(), checkout.attempts),
        ("done", 3),
        "429, then 503, then taken"
    );
    let elsewhere = rows
        .iter()
        .find(|r| r.target.as_deref() == Some("Teams: Incidents channel"))
        .unwrap();
    assert_eq!(
        (elsewhere.state.as_str(), elsewhere.attempts),
        ("dead", 1),
        "a 400 is not retried"
    );
    let error = elsewhere.last_error.clone().unwrap();
    assert!(
        error.contains("HTTP 400") && error.contains("Incidents channel"),
        "{error}"
    );
    assert!(
        !error.contains(DEFAULT_SIG) && !error.contains("/workflows/"),
        "{error}"
    );
    let checkout_posts = posts(&server)
        .await
        .into_iter()
        .filter(|r| r.url.path() == CHECKOUT_PATH)
        .count();
    assert_eq!(checkout_posts, 3);
    app.stop().await;
}

#[tokio::test]
async fn hostile_titles_stay_text_and_drills_say_so() {
    let server = teams().await;
    let db = TestDb::new();
    let app = TestApp::spawn(spawn(&db, &server)).await;
    app.identify("Eve [x](https://evil.example)", "eve@example.com").await;
    declare(
        &app,
        &[
            (
                "title",
                "[Reset your password](https://evil.example) **now** <at>all</at> _x_ #1",
            ),
            ("services", "checkout"),
        ],
    )
    .await;
    declare(
        &app,
        &[
            ("title", "Practice - checkout"),
            ("services", "checkout"),
            ("drill", "on"),
        ],
    )
    .await;
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let got = posts(&server).await;
    assert_eq!(got.len(), 2);
    let mut bodies: Vec<Value> = got.iter().map(json_of).collect();
    bodies.sort_by_key(|b| {
        b["attachments"][0]["content"]["body"][0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    });
    for b in &bodies {
        assert_valid_card(b);
    }
    let hostile = &bodies[0]["attachments"][0]["content"];
    assert_eq!(
        hostile["body"][0]["text"],
        "INC-1: \\[Reset your password\\](https://evil.example) \\*\\*now\\*\\* \\<at\\>all\\</at\\> \\_x\\_ #1"
    );
    assert_eq!(
        hostile["body"][1]["text"],
        "Declared by Eve \\[x\\](https://evil.example)."
    );
    let drill = &bodies[1]["attachments"][0]["content"];
    assert_eq!(drill["body"][0]["text"], "[DRILL] INC-2: Practice - checkout");
    // The only link on either card is the incident page.
    for b in &bodies {
        let actions = b["attachments"][0]["content"]["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1);
        assert!(actions[0]["url"].as_str().unwrap().starts_with(&app.address));
    }
    app.stop().await;
}

#[tokio::test]
async fn configuration_mistakes_are_named_and_urls_never_repeated() {
    let server = teams().await;
    let db = TestDb::new();
    let mut s = spawn(&db, &server);
    s.settings.integrations.teams.as_mut().unwrap().channels[0].service = "nope".into();
    let err = s.settings.validate(&[]).unwrap_err().to_string();
    assert!(err.contains("integrations.teams.channels[0].service"), "{err}");

    let mut s = spawn(&db, &server);
    s.settings.integrations.teams = Some(TeamsSettings {
        default_url_env: None,
        default_name: "x".into(),
        channels: vec![],
    });
    let err = s.settings.validate(&[]).unwrap_err().to_string();
    assert!(err.contains("integrations.teams"), "{err}");

    let mut s = spawn(&db, &server);
    s.settings
        .secret_values
        .insert("TEAMS_CHECKOUT_URL".into(), "not a url sig=leaky".into());
    let err = match redbutton::notifiers::Registry::from_settings(&s.settings) {
        Ok(_) => panic!("a URL that is not one is refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("integrations.teams.channels[0].url_env") && err.contains("TEAMS_CHECKOUT_URL"),
        "{err}"
    );
    assert!(!err.contains("leaky"), "{err}");
}
