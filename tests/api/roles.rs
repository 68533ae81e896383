//! Incident roles: the lead, the comms lead, the scribe and a configured extra role, each taken,
//! handed over and left through the Roles card; the timeline entries and what reaches the test
//! vendors (Slack posts and invites, webhooks); and everything refused changes nothing.

use std::time::Duration;

use redbutton::config::RoleSetting;
use redbutton::db::models::{TimelineEntryRow, timeline};
use redbutton::notifiers::webhook::WebhookSettings;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::slack::{SlackWorld, TOKEN};

const ADA: (&str, &str) = ("Ada Lovelace", "ada@example.com");
const LIN: (&str, &str) = ("Lin Wu", "lin@example.com");

async fn entries(app: &TestApp, n: i64, kind: &'static str) -> Vec<TimelineEntryRow> {
    app.state
        .db
        .run(move |c| {
            let id = redbutton::db::models::incident::find_by_number(c, n)?.unwrap().id;
            timeline::list_for(c, id)
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// Posts the Roles card form of `role` as the signed-in person.
async fn role_form(app: &TestApp, n: i64, role: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    // From the incident page, which viewers may open too.
    let csrf = hidden(&app.get_html(&format!("/incidents/{n}")).await, "csrf");
    let mut pairs = vec![("csrf", csrf.as_str())];
    pairs.extend_from_slice(fields);
    app.post_form(&format!("/incidents/{n}/roles/{role}"), &pairs).await
}

/// Every row a role request could change, to show a refusal changed nothing.
async fn everything(app: &TestApp, n: i64) -> (Vec<(String, Option<String>, Option<String>)>, usize, Vec<String>) {
    let rows = app
        .state
        .db
        .run(move |c| {
            let row = redbutton::db::models::incident::find_by_number(c, n)?.unwrap();
            let roles = redbutton::db::models::role::list_for(c, row.id)?;
            let timeline = timeline::list_for(c, row.id)?;
            Ok::<_, diesel::result::Error>((row, roles, timeline))
        })
        .await
        .unwrap();
    let (row, roles, timeline) = rows;
    let mut held: Vec<_> = roles
        .into_iter()
        .map(|r| (r.role, Some(r.name), Some(r.email)))
        .collect();
    held.push(("lead".into(), row.lead_name, row.lead_email));
    let kinds = timeline.into_iter().map(|e| e.kind).collect();
    (held, app.outbox_rows().await.len(), kinds)
}

fn text_of(m: &crate::slack::Message) -> String {
    m.blocks[0]["text"]["text"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn each_default_role_is_taken_handed_over_and_left_with_timeline_slack_posts_and_invites() {
    let world = SlackWorld::start().await;
    world
        .fake
        .0
        .lock()
        .unwrap()
        .users
        .insert(LIN.1.into(), "ULIN0001".into());
    let db = TestDb::new();
    let app = TestApp::spawn(world.spawn(&db)).await;
    // Lin has signed in once, so the picker knows her by email.
    app.identify(LIN.0, LIN.1).await;
    app.identify(ADA.0, ADA.1).await;
    let r = app
        .declare(&[
            ("title", "Checkout down"),
            ("severity", "SEV1"),
            ("services", "checkout"),
        ])
        .await;
    assert_eq!(r.status(), 303);
    let n = number_from_location(&r);
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    let cid = world.channels()[0].0.clone();
    let invites_before = world.seen("conversations.invite").len();
    let lookups_before = world.seen("users.lookupByEmail").len();

    let descriptions: Vec<String> = texts(
        &app.get_html(&format!("/incidents/{n}")).await,
        "#roles .role-description",
    );
    let settings = redbutton::config::Settings::default();
    assert_eq!(
        descriptions,
        settings
            .roles()
            .iter()
            .map(|r| r.description.clone())
            .collect::<Vec<_>>(),
        "every role shows its one-line description"
    );

    for role in ["lead", "comms", "scribe"] {
        // Ada takes it, hands it to Lin, and Lin leaves it.
        let r = role_form(&app, n, role, &[("action", "take"), ("expected", "")]).await;
        assert_eq!(r.status(), 303, "{role}: take");
        let r = role_form(
            &app,
            n,
            role,
            &[("action", "assign"), ("expected", ADA.1), ("email", LIN.1)],
        )
        .await;
        assert_eq!(r.status(), 303, "{role}: hand over");
        app.identify(LIN.0, LIN.1).await;
        let html = app.get_html(&format!("/incidents/{n}")).await;
        assert_eq!(
            texts(&html, &format!("#role-{role} .role-holder")),
            vec![LIN.0.to_string()],
            "{role}: the card shows the holder"
        );
        assert!(
            texts(&html, &format!("#role-{role} button")).contains(&"Leave this role".to_string()),
            "{role}: the holder may leave"
        );
        let r = role_form(&app, n, role, &[("action", "leave"), ("expected", LIN.1)]).await;
        assert_eq!(r.status(), 303, "{role}: leave");
        app.identify(ADA.0, ADA.1).await;
        let html = app.get_html(&format!("/incidents/{n}")).await;
        assert_eq!(
            texts(&html, &format!("#role-{role} .role-holder")),
            vec!["Nobody".to_string()]
        );
    }
    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    assert_eq!(
        rows.len(),
        1 + 9,
        "the declaration and one Slack delivery per role change"
    );
    assert_eq!(
        rows.iter().filter(|r| r.event == "role_changed").count(),
        6,
        "comms and scribe changes go out as role_changed"
    );
    assert_eq!(rows.iter().filter(|r| r.event == "lead_changed").count(), 3);

    // The timeline: lead changes as before, the other roles as role_changed (field = role id,
    // old and new holders by name).
    let roles: Vec<_> = entries(&app, n, "role_changed")
        .await
        .into_iter()
        .map(|e| (e.actor_name, e.field.unwrap(), e.old_value, e.new_value))
        .collect();
    let step = |who: &str, role: &str, old: Option<&str>, new: Option<&str>| {
        (
            who.to_string(),
            role.to_string(),
            old.map(str::to_string),
            new.map(str::to_string),
        )
    };
    assert_eq!(
        roles,
        vec![
            step(ADA.0, "comms", None, Some(ADA.0)),
            step(ADA.0, "comms", Some(ADA.0), Some(LIN.0)),
            step(LIN.0, "comms", Some(LIN.0), None),
            step(ADA.0, "scribe", None, Some(ADA.0)),
            step(ADA.0, "scribe", Some(ADA.0), Some(LIN.0)),
            step(LIN.0, "scribe", Some(LIN.0), None),
        ]
    );
    assert_eq!(entries(&app, n, "lead_changed").await.len(), 3);
    // Lin's first action (leaving the lead) mustered the responders, once.
    let mustered = entries(&app, n, "mustered").await;
    assert_eq!(mustered.len(), 1);
    assert_eq!(mustered[0].actor_name, LIN.0);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let timeline_texts = texts(&html, "#timeline li div");
    for expected in [
        "Ada Lovelace took the comms lead role",
        "Ada Lovelace handed the comms lead role from Ada Lovelace to Lin Wu",
        "Lin Wu left the comms lead role",
        "Lin Wu left the scribe role",
    ] {
        assert!(
            timeline_texts.iter().any(|t| t == expected),
            "{expected}: {timeline_texts:?}"
        );
    }

    // Slack: one post per change in the incident channel, in order, with the description while
    // someone holds the role.
    let posts: Vec<String> = world.messages(&cid).iter().skip(1).map(text_of).collect();
    let comms = settings.role("comms").unwrap().description;
    let scribe = settings.role("scribe").unwrap().description;
    assert_eq!(
        posts,
        vec![
            "Ada Lovelace is now leading the incident (set by Ada Lovelace).".to_string(),
            "Lin Wu is now leading the incident (set by Ada Lovelace).".to_string(),
            "Lin Wu left the lead; the incident needs a lead.".to_string(),
            format!("Ada Lovelace is now comms lead \u{2014} {comms}"),
            format!("Comms lead handed over from Ada Lovelace to Lin Wu \u{2014} {comms}"),
            "Lin Wu left the comms lead role; nobody holds it.".to_string(),
            format!("Ada Lovelace is now scribe \u{2014} {scribe}"),
            format!("Scribe handed over from Ada Lovelace to Lin Wu \u{2014} {scribe}"),
            "Lin Wu left the scribe role; nobody holds it.".to_string(),
        ]
    );
    // Each post carries its delivery key, so a repeat finds it instead of posting twice.
    let keys: Vec<Option<String>> = world.messages(&cid).iter().skip(1).map(|m| m.key.clone()).collect();
    assert!(
        keys.iter()
            .all(|k| k.as_deref().is_some_and(|k| k.starts_with(&format!("inc-{n}-t")))),
        "{keys:?}"
    );

    // Whoever takes or is handed a role is invited: looked up by email, then invited with force.
    let lookups: Vec<String> = world.seen("users.lookupByEmail")[lookups_before..]
        .iter()
        .map(|s| s.query.get("email").cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        lookups,
        vec![LIN.1.to_string()],
        "Lin looked up once (Ada at the declaration), then cached"
    );
    let invites: Vec<Value> = world.seen("conversations.invite")[invites_before..]
        .iter()
        .map(|s| s.body.clone())
        .collect();
    let ada_invite = json!({"channel": cid, "users": "UADA0001", "force": true});
    let lin_invite = json!({"channel": cid, "users": "ULIN0001", "force": true});
    assert_eq!(
        invites,
        vec![
            ada_invite.clone(),
            lin_invite.clone(),
            ada_invite.clone(),
            lin_invite.clone(),
            ada_invite,
            lin_invite
        ]
    );
    for s in world.seen("conversations.invite") {
        assert_eq!(s.auth.as_deref(), Some(&*format!("Bearer {TOKEN}")));
    }
    assert!(
        world.channels()[0].2.contains(&"ULIN0001".to_string()),
        "Lin is in the channel"
    );
    app.stop().await;
}

fn hook(server: &MockServer) -> WebhookSettings {
    WebhookSettings {
        name: "ops".into(),
        url: format!("{}/hooks/ops", server.uri()),
        secret_env: "TEST_ROLES_HOOK_SECRET".into(),
        events: vec![],
        drills: true,
    }
}

#[tokio::test]
async fn a_configured_role_shows_its_description_and_reaches_a_webhook() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/ops"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.roles = vec![
        RoleSetting {
            id: "comms".into(),
            name: String::new(),
            description: String::new(),
        },
        RoleSetting {
            id: "sme".into(),
            name: "Subject matter expert".into(),
            description: "Knows the failing system and advises the lead on fixes.".into(),
        },
    ];
    spawn.settings.integrations.webhooks = vec![hook(&receiver)];
    spawn.settings.secret_values.insert(
        "TEST_ROLES_HOOK_SECRET".into(),
        "roles-hook-secret-of-some-length".into(),
    );
    let app = TestApp::spawn(spawn).await;
    app.identify(LIN.0, LIN.1).await;
    app.identify(ADA.0, ADA.1).await;
    let n = app.declare_ok("Search is slow").await;
    app.wait_outbox(&["done"], Duration::from_secs(15)).await;

    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert_eq!(
        texts(&html, "#roles .role-name"),
        vec!["Incident lead", "Comms lead", "Subject matter expert"],
        "configured roles replace the default scribe; the lead stays"
    );
    assert_eq!(
        texts(&html, "#role-sme .role-description"),
        vec!["Knows the failing system and advises the lead on fixes."]
    );
    assert_eq!(texts(&html, "#role-sme .role-holder"), vec!["Nobody"]);
    assert_eq!(texts(&html, "#role-sme button")[0], "I'll take it");

    let r = role_form(
        &app,
        n,
        "sme",
        &[("action", "assign"), ("expected", ""), ("email", LIN.1)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert_eq!(texts(&html, "#role-sme .role-holder"), vec![LIN.0]);
    assert!(texts(&html, "#timeline li div").contains(&"Ada Lovelace made Lin Wu subject matter expert".to_string()));
    // The dashboard row names who holds the roles besides the lead.
    assert_eq!(
        texts(&app.get_html("/").await, "#live .role-held"),
        vec!["Subject matter expert: Lin Wu"]
    );
    // The scribe is not configured here, so it cannot be taken.
    let before = everything(&app, n).await;
    let r = role_form(&app, n, "scribe", &[("action", "take"), ("expected", "")]).await;
    assert_eq!(r.status(), 404);
    assert_eq!(everything(&app, n).await, before);

    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    assert_eq!(rows.len(), 2, "declared and role_changed");
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(body["type"], json!("incident.role_changed"));
    assert_eq!(body["actor"], json!({"name": ADA.0, "email": ADA.1}));
    assert_eq!(body["change"], json!({"field": "sme", "old": null, "new": LIN.0}));
    assert_eq!(
        body["role"],
        json!({
            "id": "sme",
            "name": "Subject matter expert",
            "description": "Knows the failing system and advises the lead on fixes.",
            "holder": {"name": LIN.0, "email": LIN.1},
        })
    );
    let declared: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert!(declared.get("role").is_none(), "other events carry no role: {declared}");
    app.stop().await;
}

/// (what, role, form fields, status, message shown).
type RefusedCase = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    u16,
    &'static str,
);

#[tokio::test]
async fn refused_role_changes_say_why_and_change_nothing() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.viewer_emails = vec!["vera@example.com".into()];
    let app = TestApp::spawn(spawn).await;
    app.identify(LIN.0, LIN.1).await;
    app.identify(ADA.0, ADA.1).await;
    let n = app.declare_ok("Queue backlog").await;
    let r = role_form(&app, n, "comms", &[("action", "take"), ("expected", "")]).await;
    assert_eq!(r.status(), 303);
    let before = everything(&app, n).await;

    let cases: Vec<RefusedCase> = vec![
        (
            "stale: the form showed nobody",
            "comms",
            vec![("action", "take"), ("expected", "")],
            409,
            "the comms lead is now Ada Lovelace",
        ),
        (
            "stale hand over",
            "comms",
            vec![("action", "assign"), ("expected", LIN.1), ("email", LIN.1)],
            409,
            "Nothing was changed",
        ),
        (
            "same person",
            "comms",
            vec![("action", "assign"), ("expected", ADA.1), ("email", ADA.1)],
            409,
            "Ada Lovelace already holds the comms lead role",
        ),
        (
            "leaving a role nobody holds",
            "scribe",
            vec![("action", "leave"), ("expected", "")],
            409,
            "Nobody holds the scribe role",
        ),
        (
            "someone who never signed in, without a name",
            "comms",
            vec![("action", "assign"), ("expected", ADA.1), ("email", "who@example.com")],
            422,
            "Nobody with the email who@example.com has signed in yet",
        ),
        (
            "no one chosen",
            "scribe",
            vec![("action", "assign"), ("expected", ""), ("email", "")],
            422,
            "Choose who should hold the role",
        ),
        (
            "not an email",
            "scribe",
            vec![
                ("action", "assign"),
                ("expected", ""),
                ("email", "lin"),
                ("name", "Lin"),
            ],
            422,
            "Enter an email address",
        ),
        (
            "unknown action",
            "scribe",
            vec![("action", "grab"), ("expected", "")],
            422,
            "Choose whether to take, hand over or leave the role",
        ),
    ];
    for (what, role, fields, status, message) in cases {
        let r = role_form(&app, n, role, &fields).await;
        assert_eq!(r.status().as_u16(), status, "{what}");
        let html = r.text().await.unwrap();
        let shown = texts(&html, ".error-message").join(" ");
        assert!(shown.contains(message), "{what}: {shown}");
        assert_eq!(everything(&app, n).await, before, "{what}: nothing changed");
    }

    // An unknown role, and an unknown incident.
    let r = role_form(&app, n, "chef", &[("action", "take"), ("expected", "")]).await;
    assert_eq!(r.status(), 404);
    let csrf = hidden(&app.get_html(&format!("/incidents/{n}")).await, "csrf");
    let r = app
        .post_form(
            &format!("/incidents/{}/roles/comms", n + 50),
            &[("csrf", &csrf), ("action", "take"), ("expected", "")],
        )
        .await;
    assert_eq!(r.status(), 404);
    // A forged CSRF token.
    let r = app
        .post_form(
            &format!("/incidents/{n}/roles/scribe"),
            &[("csrf", "forged"), ("action", "take"), ("expected", "")],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(everything(&app, n).await, before);

    // A viewer sees who holds what and the descriptions, but no controls, and cannot post.
    app.identify("Vera", "vera@example.com").await;
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert_eq!(texts(&html, "#role-comms .role-holder"), vec![ADA.0]);
    assert_eq!(texts(&html, "#roles .role-description").len(), 3);
    assert!(texts(&html, "#roles form").is_empty(), "no role controls for a viewer");
    let r = role_form(&app, n, "scribe", &[("action", "take"), ("expected", "")]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(everything(&app, n).await, before);
    app.stop().await;
}

/// Sends `body` to the role endpoint with a bearer token.
async fn api_role(app: &TestApp, token: &str, n: i64, role: &str, body: Value) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/incidents/{n}/roles/{role}", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_api_takes_hands_over_and_clears_roles_and_lists_them() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify(LIN.0, LIN.1).await;
    app.identify(ADA.0, ADA.1).await;
    let n = app.declare_ok("API roles").await;
    let made = redbutton::services::tokens::create(
        &app.state,
        &redbutton::domain::Actor {
            name: ADA.0.into(),
            email: ADA.1.into(),
        },
        &redbutton::services::tokens::TokenRequest {
            name: "roles bot".into(),
            scopes: vec!["incidents:write".into(), "incidents:read".into()],
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap();
    let token = made.secret;

    // Give the scribe role to Lin (known by email), then hand it to a newcomer named in full.
    let r = api_role(&app, &token, n, "scribe", json!({"email": LIN.1})).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let scribe = &body["roles"][2];
    assert_eq!(scribe["id"], "scribe");
    assert_eq!(scribe["name"], "Scribe");
    assert_eq!(scribe["holder"], json!({"name": LIN.0, "email": LIN.1}));
    assert_eq!(body["roles"][0]["id"], "lead");
    assert!(body["roles"][0]["holder"].is_null());
    let r = api_role(
        &app,
        &token,
        n,
        "scribe",
        json!({"email": "Noor@Example.com", "name": "Noor Haddad", "expected": LIN.1}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // The lead goes through the same endpoint.
    let r = api_role(&app, &token, n, "lead", json!({"email": ADA.1})).await;
    assert_eq!(r.status(), 200);

    let before = everything(&app, n).await;
    for (what, role, body, status) in [
        (
            "stale expected",
            "scribe",
            json!({"clear": true, "expected": LIN.1}),
            409,
        ),
        (
            "same person",
            "scribe",
            json!({"email": "noor@example.com", "name": "Noor H."}),
            409,
        ),
        (
            "unknown person without a name",
            "comms",
            json!({"email": "who@example.com"}),
            422,
        ),
        ("email and clear", "comms", json!({"email": LIN.1, "clear": true}), 422),
        ("nothing", "comms", json!({}), 422),
        ("clear nobody", "comms", json!({"clear": true}), 409),
        ("unknown role", "chef", json!({"email": LIN.1}), 404),
        ("unknown field", "comms", json!({"email": LIN.1, "role": "x"}), 400),
    ] {
        let r = api_role(&app, &token, n, role, body).await;
        assert_eq!(r.status().as_u16(), status, "{what}");
        assert_eq!(r.headers()["content-type"], "application/problem+json", "{what}");
        assert_eq!(everything(&app, n).await, before, "{what}: nothing changed");
    }
    let r = api_role(&app, &token, n + 9, "comms", json!({"email": LIN.1})).await;
    assert_eq!(r.status(), 404);

    // The incident lists every role with its holder.
    let r = app
        .client
        .get(format!("{}/api/v1/incidents/{n}", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let detail: Value = r.json().await.unwrap();
    let roles: Vec<(String, Value)> = detail["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["holder"].clone()))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("lead".to_string(), json!({"name": ADA.0, "email": ADA.1})),
            ("comms".to_string(), Value::Null),
            (
                "scribe".to_string(),
                json!({"name": "Noor Haddad", "email": "noor@example.com"})
            ),
        ]
    );
    assert!(
        detail["roles"][1]["description"]
            .as_str()
            .unwrap()
            .starts_with("Keeps stakeholders")
    );
    let kinds: Vec<String> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "role_changed").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "lead_changed").count(), 1);

    // A read-only token changes nothing.
    let reader = redbutton::services::tokens::create(
        &app.state,
        &redbutton::domain::Actor {
            name: ADA.0.into(),
            email: ADA.1.into(),
        },
        &redbutton::services::tokens::TokenRequest {
            name: "reader".into(),
            scopes: vec!["incidents:read".into()],
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap();
    let r = api_role(&app, &reader.secret, n, "comms", json!({"email": LIN.1})).await;
    assert_eq!(r.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn role_changes_are_emailed_to_the_routed_lists() {
    let sink = SmtpSink::start();
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.integrations.email = Some(email_to_sink(sink.port));
    let app = TestApp::spawn(spawn).await;
    app.identify(LIN.0, LIN.1).await;
    app.identify(ADA.0, ADA.1).await;
    let n = app.declare_ok("Email roles").await;
    sink.wait_for(1, Duration::from_secs(15)).await;

    let r = role_form(&app, n, "scribe", &[("action", "take"), ("expected", "")]).await;
    assert_eq!(r.status(), 303);
    let r = role_form(&app, n, "scribe", &[("action", "leave"), ("expected", ADA.1)]).await;
    assert_eq!(r.status(), 303);
    let mails = sink.wait_for(3, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 3);
    let scribe = redbutton::config::Settings::default()
        .role("scribe")
        .unwrap()
        .description;
    let took = &mails[1];
    assert_eq!(took.rcpt_tos, vec!["incidents@example.com"]);
    assert_eq!(
        took.header("Subject").unwrap(),
        format!("[unknown] INC-{n} has a new scribe: Email roles")
    );
    assert!(
        took.decoded()
            .contains(&format!("Ada Lovelace is now scribe. {scribe}")),
        "{}",
        took.decoded()
    );
    let left = &mails[2];
    assert_eq!(
        left.header("Subject").unwrap(),
        format!("[unknown] INC-{n} has no scribe: Email roles")
    );
    assert!(
        left.decoded()
            .contains("Ada Lovelace left the scribe role; nobody holds it.")
    );
    // Each has its own stable Message-ID, from its timeline entry.
    assert_ne!(took.header("Message-ID"), left.header("Message-ID"));
    assert!(took.header("Message-ID").unwrap().starts_with(&format!("<inc-{n}-t")));
    app.stop().await;
}
