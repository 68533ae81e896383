//! Access control, route by route: anonymous callers are refused everywhere but the health checks,
//! viewers read but change nothing, admins alone manage tokens, revoked and expired tokens stop
//! working at once, proxy headers count only from the trusted proxy, and sign-in is rate limited.

use std::time::Duration;

use redbutton::auth::Role;
use redbutton::config::{AuthMode, ProxySettings};
use redbutton::domain::{Actor, DeclarationInput};
use redbutton::services::tokens::{TokenRequest, create};

use serde_json::{Value, json};

use crate::helpers::*;

/// Every route the app serves, as (method, path). `{n}` is an incident number, `{d}` a delivery
/// id, `{t}` a token id. `every_route_is_in_the_table` keeps this list complete.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/static/{file}"),
    ("GET", "/identify"),
    ("POST", "/identify"),
    ("GET", "/auth/login"),
    ("GET", "/auth/callback"),
    ("POST", "/signout"),
    ("GET", "/signed-out"),
    ("GET", "/admin/tokens"),
    ("POST", "/admin/tokens"),
    ("POST", "/admin/tokens/{id}/revoke"),
    ("GET", "/me"),
    ("POST", "/me/time-zone"),
    ("GET", "/"),
    ("GET", "/declare"),
    ("POST", "/declare"),
    ("POST", "/drills"),
    ("GET", "/incidents/{number}"),
    ("GET", "/incidents/{number}/postmortem"),
    ("GET", "/incidents/{number}/postmortem.md"),
    ("POST", "/incidents/{number}/status"),
    ("POST", "/incidents/{number}/decline"),
    ("POST", "/incidents/{number}/merge"),
    ("POST", "/incidents/{number}/severity"),
    ("POST", "/incidents/{number}/lead"),
    ("POST", "/incidents/{number}/roles/{role}"),
    ("POST", "/incidents/{number}/notes"),
    ("POST", "/incidents/{number}/updates"),
    ("POST", "/incidents/{number}/key-times"),
    ("POST", "/incidents/{number}/follow-ups"),
    ("POST", "/incidents/{number}/follow-ups/{id}"),
    ("POST", "/incidents/{number}/follow-ups/{id}/status"),
    ("POST", "/incidents/{number}/deliveries/{id}/retry"),
    ("GET", "/api/v1/incidents"),
    ("POST", "/api/v1/incidents"),
    ("GET", "/api/v1/incidents/{number}"),
    ("GET", "/api/v1/incidents/{number}/postmortem"),
    ("POST", "/api/v1/incidents/{number}/status"),
    ("POST", "/api/v1/incidents/{number}/severity"),
    ("POST", "/api/v1/incidents/{number}/lead"),
    ("POST", "/api/v1/incidents/{number}/roles/{role}"),
    ("POST", "/api/v1/incidents/{number}/notes"),
    ("POST", "/api/v1/incidents/{number}/updates"),
    ("POST", "/api/v1/incidents/{number}/key-times"),
    ("GET", "/api/v1/incidents/{number}/follow-ups"),
    ("POST", "/api/v1/incidents/{number}/follow-ups"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/slack/commands"),
    ("POST", "/api/v1/alertmanager"),
    ("GET", "/insights"),
    ("GET", "/insights/incidents.csv"),
];

fn is_api(path: &str) -> bool {
    // `/metrics` answers tokens like the API (tests/api/metrics.rs).
    path.starts_with("/api/") || path == "/metrics"
}

/// The routes registered in the source: `.route("PATH", web::METHOD()…)` in src/web/mod.rs and
/// `web::resource("PATH")` with its `.route(web::METHOD()…)`s under `/api/v1` in src/api/mod.rs.
fn registered_routes() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = include_str!("../../src/web/mod.rs");
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + 7..];
        if let Some(after_quote) = rest.trim_start().strip_prefix('"') {
            let path = &after_quote[..after_quote.find('"').unwrap()];
            let m = after_quote.find("web::").unwrap() + 5;
            let method = &after_quote[m..m + after_quote[m..].find('(').unwrap()];
            out.push((method.to_ascii_uppercase(), path.to_string()));
        }
    }
    let api = include_str!("../../src/api/mod.rs");
    for chunk in api.split("web::resource(\"").skip(1) {
        let path = &chunk[..chunk.find('"').unwrap()];
        let mut body = chunk;
        while let Some(i) = body.find(".route(web::") {
            body = &body[i + 12..];
            let method = &body[..body.find('(').unwrap()];
            out.push((method.to_ascii_uppercase(), format!("/api/v1{path}")));
        }
    }
    out.sort();
    out
}

#[test]
fn every_route_is_in_the_table() {
    let mut table: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    table.sort();
    let registered = registered_routes();
    assert!(
        registered.len() > 20,
        "the source scan found the routes: {registered:?}"
    );
    assert_eq!(table, registered, "ROUTES must list every registered route");
}

/// Routes anyone may open: health checks, static files, and the sign-in steps themselves.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/static/{file}" | "/identify" | "/auth/login" | "/auth/callback" | "/signed-out"
    ) || is_slack_signed(path)
}

/// Routes that Slack signs instead of a session: no sign-in, and (without a signing secret
/// configured, as in these tests) not there at all (tests/api/slack_commands.rs).
fn is_slack_signed(path: &str) -> bool {
    path == "/slack/commands"
}

/// A concrete address for a route template.
fn concrete(path: &str, number: i64) -> String {
    path.replace("{number}", &number.to_string())
        .replace("{id}", "1")
        .replace("{file}", "style.css")
        .replace("{role}", "comms")
}

/// Row counts of every table a request could change.
async fn fingerprint(app: &TestApp) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for table in [
        "incidents",
        "timeline_entries",
        "outbox",
        "idempotency_keys",
        "users",
        "api_tokens",
        "external_refs",
        "follow_ups",
        "incident_roles",
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let n = app
            .state
            .db
            .run(move |c| {
                use diesel::RunQueryDsl;
                #[derive(diesel::QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                diesel::sql_query(sql).get_result::<Count>(c).map(|r| r.n)
            })
            .await
            .unwrap();
        out.push((table.to_string(), n));
    }
    let revoked = app
        .state
        .db
        .run(|c| {
            use diesel::prelude::*;
            use redbutton::db::schema::api_tokens::dsl as t;
            t::api_tokens
                .filter(t::revoked_at.is_not_null())
                .count()
                .get_result::<i64>(c)
        })
        .await
        .unwrap();
    out.push(("revoked tokens".into(), revoked));
    let statuses = app
        .state
        .db
        .run(|c| {
            use diesel::prelude::*;
            use redbutton::db::schema::incidents::dsl as i;
            i::incidents
                .select((i::status, i::severity, i::lead_email.nullable()))
                .load::<(String, String, Option<String>)>(c)
        })
        .await
        .unwrap();
    out.push((format!("incident fields {statuses:?}"), 0));
    out
}

async fn seed_incident(app: &TestApp) -> i64 {
    let actor = Actor {
        name: "Rita Responder".into(),
        email: "rita@example.com".into(),
    };
    let input = DeclarationInput {
        title: "Seeded for the access walk".into(),
        severity: "SEV2".into(),
        ..Default::default()
    };
    redbutton::services::declare::declare(&app.state, actor, input, None)
        .await
        .unwrap()
        .number
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let url = format!("{}{path}", app.address);
    let mut req = match method {
        "GET" => app.client.get(url),
        _ => {
            let body = form
                .iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                .collect::<Vec<_>>()
                .join("&");
            app.client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body)
        }
    };
    if let Some(c) = cookie {
        req = req.header(reqwest::header::COOKIE, c);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_route_refuses_anonymous_callers_except_the_public_ones() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    let n = seed_incident(&app).await;
    let before = fingerprint(&app).await;
    for (method, template) in ROUTES {
        let path = concrete(template, n);
        let resp = send(&app, method, &path, None, &[("csrf", "x"), ("title", "anonymous")]).await;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{method} {path}: security headers on every answer"
        );
        if is_public(template) {
            assert!(
                status != 303 || !location.starts_with("/identify"),
                "{method} {path} is public"
            );
            if is_slack_signed(template) {
                assert_eq!(status, 404, "{method} {path}: off without a signing secret");
            }
            continue;
        }
        if is_api(template) {
            assert_eq!(status, 401, "{method} {path}: the API needs a token");
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
            continue;
        }
        assert!(
            status == 303 && location.starts_with("/identify?next="),
            "{method} {path}: anonymous must be sent to sign in, got {status} {location}"
        );
    }
    assert_eq!(fingerprint(&app).await, before, "anonymous requests changed nothing");
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_reads_everything_and_changes_nothing() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.viewer_emails = vec!["vera@example.com".into()];
    let app = TestApp::spawn(spawn).await;
    let n = seed_incident(&app).await;
    app.identify("Vera Viewer", "vera@example.com").await;

    // Reads work; the incident page offers no forms but sign-out.
    let page = app.get_html(&format!("/incidents/{n}")).await;
    let forms = texts(&page, "main form");
    assert!(
        forms.is_empty(),
        "a viewer sees no forms on the incident page: {forms:?}"
    );
    assert!(page.contains("(read-only)"));
    let csrf = hidden(&app.get_html("/").await, "csrf");

    let before = fingerprint(&app).await;
    let cookie = app.cookie_header();
    for (method, template) in ROUTES {
        // Signing out and choosing one's own time zone are a viewer's to do (tests/api/keytimes.rs).
        if is_public(template) || *template == "/signout" || *template == "/me/time-zone" {
            continue;
        }
        let path = concrete(template, n);
        let form = [
            ("csrf", csrf.as_str()),
            ("title", "viewer was here"),
            ("status", "mitigated"),
            ("expected", "investigating"),
            ("severity", "SEV1"),
            ("action", "take"),
            ("note", "viewer note"),
            ("name", "viewer token"),
            ("scopes", "incidents:read"),
        ];
        let resp = send(&app, method, &path, Some(&cookie), &form).await;
        let status = resp.status().as_u16();
        if is_api(template) {
            assert_eq!(status, 401, "{method} {path}: a session cookie is not an API token");
            continue;
        }
        let reading = *method == "GET" && !matches!(*template, "/declare" | "/admin/tokens");
        if reading {
            assert_eq!(status, 200, "{method} {path}: a viewer may read");
        } else {
            assert_eq!(status, 403, "{method} {path}: a viewer may not change anything");
            let body = resp.text().await.unwrap();
            assert!(body.contains("viewer"), "{method} {path}: the refusal says why: {body}");
        }
    }
    assert_eq!(fingerprint(&app).await, before, "a viewer changed nothing");
    app.stop().await;
}

#[tokio::test]
async fn only_admins_manage_tokens_and_a_secret_is_shown_once() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.admin_emails = vec!["ada@example.com".into()];
    let app = TestApp::spawn(spawn).await;

    app.identify("Rita Responder", "rita@example.com").await;
    assert_eq!(
        app.get("/admin/tokens").await.status(),
        403,
        "a responder is not an admin"
    );
    assert!(
        !app.get_html("/").await.contains("/admin/tokens"),
        "no admin link for responders"
    );

    app.identify("Ada Admin", "ada@example.com").await;
    let html = app.get_html("/admin/tokens").await;
    let csrf = hidden(&html, "csrf");
    let resp = app
        .post_form(
            "/admin/tokens",
            &[
                ("csrf", &csrf),
                ("name", "alertmanager"),
                ("scopes", "incidents:declare"),
                ("scopes", "incidents:read"),
                ("expires_in_days", "30"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 201);
    let html = resp.text().await.unwrap();
    let secret = texts(&html, "#new-token").pop().expect("the secret is shown");
    assert!(secret.starts_with("rbt_"), "{secret}");

    let rows = redbutton::services::tokens::list(&app.state).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.scopes, "incidents:read incidents:declare");
    assert_eq!(row.created_by_email, "ada@example.com");
    assert!(row.expires_at.is_some());
    assert!(!row.secret_hash.contains(&secret[21..]), "only a hash is stored");
    let again = app.get_html("/admin/tokens").await;
    assert!(!again.contains(&secret), "the secret is never shown again");
    assert!(again.contains("alertmanager") && again.contains(&row.public_id));
    assert!(again.contains("Ada Admin"), "people who signed in are listed");

    // Bad requests are refused with the reason and store nothing.
    let resp = app
        .post_form(
            "/admin/tokens",
            &[("csrf", &csrf), ("name", " "), ("expires_in_days", "0")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("Give the token a name") && body.contains("at least one scope"),
        "{body}"
    );
    assert_eq!(redbutton::services::tokens::list(&app.state).await.unwrap().len(), 1);

    // Revocation, with a valid CSRF token only.
    let id = row.id;
    let forged = app
        .post_form(&format!("/admin/tokens/{id}/revoke"), &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status(), 403);
    let resp = app
        .post_form(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(resp.status(), 303);
    let rows = redbutton::services::tokens::list(&app.state).await.unwrap();
    assert!(rows[0].revoked_at.is_some());
    assert!(app.get_html("/admin/tokens").await.contains("revoked"));
    app.stop().await;
}

#[tokio::test]
async fn roles_follow_the_configuration_and_users_are_recorded() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.admin_emails = vec!["ada@example.com".into()];
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Admin", "ada@example.com").await;
    app.identify("Rita Responder", "Rita@Example.com").await;
    let people = app
        .state
        .db
        .run(|c| redbutton::db::models::user::list(c, 10))
        .await
        .unwrap();
    let summary: Vec<_> = people.iter().map(|u| (u.email.as_str(), u.role.as_str())).collect();
    assert_eq!(
        summary,
        vec![("ada@example.com", "admin"), ("rita@example.com", "responder")]
    );

    // The lead picker offers them, and picking by email alone uses the stored name.
    let n = app.declare_ok("Lead picker").await;
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(
        html.contains("<option value=\"ada@example.com\">Ada Admin</option>"),
        "{html}"
    );
    let csrf = hidden(&html, "csrf");
    let resp = app
        .post_form(
            &format!("/incidents/{n}/lead"),
            &[
                ("csrf", &csrf),
                ("expected", ""),
                ("action", "assign"),
                ("email", "ada@example.com"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(
        texts(&html, ".meta strong, header strong")
            .iter()
            .any(|t| t == "Ada Admin")
            || html.contains("<strong>Ada Admin</strong>")
    );
    assert_eq!(Role::parse("admin"), Some(Role::Admin));
    app.stop().await;
}

#[tokio::test]
async fn a_development_session_is_worthless_once_real_sign_in_is_on() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Dev Person", "dev@example.com").await;
    let cookie = app.cookie_header();
    assert_eq!(app.get("/").await.status(), 200);
    let banner = app.get_html("/").await;
    assert!(banner.contains("Development sign-in"), "dev mode shows its banner");
    app.stop().await;

    // The same database (so the same stored signing key), now behind a proxy.
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.mode = AuthMode::Proxy;
    spawn.settings.auth.proxy = Some(ProxySettings {
        trusted_proxies: vec!["127.0.0.1".into()],
        ..ProxySettings::default()
    });
    let app = TestApp::spawn(spawn).await;
    let resp = send(&app, "GET", "/", Some(&cookie), &[]).await;
    assert_eq!(resp.status(), 401, "the dev cookie does not sign anyone in");
    let resp = send(&app, "GET", "/identify", None, &[]).await;
    assert_eq!(resp.status(), 404, "no self-naming outside dev mode");
    app.stop().await;
}

fn proxy_client(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(source.parse().unwrap()))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn proxy_headers_count_from_the_trusted_proxy_only() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.mode = AuthMode::Proxy;
    spawn.settings.auth.admin_groups = vec!["sre-leads".into()];
    spawn.settings.auth.proxy = Some(ProxySettings {
        trusted_proxies: vec!["127.0.0.1/32".into()],
        ..ProxySettings::default()
    });
    let app = TestApp::spawn(spawn).await;
    let headers = [
        ("X-Forwarded-Email", "Pat@Example.com"),
        ("X-Forwarded-Preferred-Username", "Pat Proxy"),
        ("X-Forwarded-Groups", "eng,sre-leads"),
    ];
    let get = |client: reqwest::Client, path: &'static str, with_headers: bool| {
        let url = format!("{}{path}", app.address);
        async move {
            let mut req = client.get(url);
            if with_headers {
                for (k, v) in headers {
                    req = req.header(k, v);
                }
            }
            req.send().await.unwrap()
        }
    };

    // From the trusted address, the headers sign Pat in, with the role their groups give.
    let trusted = proxy_client("127.0.0.1");
    let resp = get(trusted.clone(), "/", true).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Pat Proxy"), "name from the header");
    assert!(!html.contains("Development sign-in"), "no dev banner behind a proxy");
    assert!(html.contains("/admin/tokens"), "sre-leads are admins");
    assert_eq!(get(trusted.clone(), "/admin/tokens", true).await.status(), 200);
    let user = app
        .state
        .db
        .run(|c| redbutton::db::models::user::find_by_email(c, "pat@example.com"))
        .await
        .unwrap()
        .expect("a user row on first sight");
    assert_eq!((user.name.as_str(), user.role.as_str()), ("Pat Proxy", "admin"));

    // Forms work with the CSRF token the page carries.
    let html = get(trusted.clone(), "/declare", true).await.text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    let key = hidden(&html, "idempotency_key");
    let mut req = trusted
        .post(format!("{}/declare", app.address))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={}&idempotency_key={key}&title=Proxy+declared",
            enc(&csrf)
        ));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 303);
    assert_eq!(app.incident_count().await, 1);

    // The same headers from any other address are ignored.
    let untrusted = proxy_client("127.0.0.2");
    let resp = get(untrusted.clone(), "/", true).await;
    assert_eq!(resp.status(), 401, "headers from an untrusted address are ignored");
    assert!(resp.text().await.unwrap().contains("sign-in proxy"));
    assert_eq!(get(untrusted, "/admin/tokens", true).await.status(), 401);
    // And the trusted address without headers is nobody.
    assert_eq!(get(trusted, "/", false).await.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_address() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.sign_in_per_minute = 3;
    let app = TestApp::spawn(spawn).await;
    let html = app.get_html("/identify").await;
    let csrf = hidden(&html, "csrf");
    let mut statuses = Vec::new();
    for i in 0..5 {
        let email = format!("p{i}@example.com");
        let resp = app
            .post_form(
                "/identify",
                &[("csrf", &csrf), ("next", "/"), ("name", "P"), ("email", &email)],
            )
            .await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait));
            assert!(resp.text().await.unwrap().contains("Too many sign-in attempts"));
        }
    }
    assert_eq!(statuses, vec![303, 303, 303, 429, 429]);
    // Reading pages is not limited.
    for _ in 0..10 {
        assert_eq!(app.get("/").await.status(), 200);
    }
    app.stop().await;
}

#[tokio::test]
async fn tokens_made_in_code_have_the_asked_scopes() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    let admin = Actor {
        name: "Ada".into(),
        email: "ada@example.com".into(),
    };
    let made = create(
        &app.state,
        &admin,
        &TokenRequest {
            name: "reader".into(),
            scopes: vec!["incidents:read".into()],
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap();
    assert!(made.secret.starts_with(&format!("rbt_{}_", made.row.public_id)));
    assert_eq!(made.row.scopes, "incidents:read");
    app.stop().await;
}

#[tokio::test]
async fn signing_out_ends_the_session_even_for_a_copied_cookie() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Ada", "ada@example.com").await;
    let copied = app.cookie_header();
    assert_eq!(send(&app, "GET", "/", Some(&copied), &[]).await.status(), 200);

    let csrf = hidden(&app.get_html("/").await, "csrf");
    let resp = app.post_form("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), 303);
    // The copy of the cookie (another tab, a stolen copy) no longer signs anyone in.
    let resp = send(&app, "GET", "/", Some(&copied), &[]).await;
    assert_eq!(resp.status(), 303, "a signed-out session is refused");
    assert!(resp.headers()["location"].to_str().unwrap().starts_with("/identify"));
    // Signing in again starts a new session.
    app.identify("Ada", "ada@example.com").await;
    assert_eq!(app.get("/").await.status(), 200);
    app.stop().await;
}

/// Sends a request to an API route with a bearer token and a JSON body that would be accepted.
async fn api_call(app: &TestApp, method: &str, path: &str, token: &str) -> reqwest::Response {
    let url = format!("{}{path}", app.address);
    let req = match method {
        "GET" => app.client.get(url),
        _ => {
            let body = if path.ends_with("/status") {
                json!({"status": "mitigated"})
            } else if path.ends_with("/severity") {
                json!({"severity": "SEV1"})
            } else if path.ends_with("/lead") || path.contains("/roles/") {
                json!({"email": "rita@example.com", "name": "Rita"})
            } else if path.ends_with("/notes") {
                json!({"body": "a note"})
            } else if path.ends_with("/key-times") {
                json!({"detected_at": null})
            } else if path.ends_with("/updates") {
                json!({"known": "Checkout fails", "doing": "Rolling back", "next_update_in_minutes": 30})
            } else {
                json!({"title": "declared by a token"})
            };
            app.client.post(url).json(&body)
        }
    };
    req.header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
}

async fn token(app: &TestApp, scopes: &[&str]) -> (i64, String) {
    let made = create(
        &app.state,
        &Actor {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        },
        &TokenRequest {
            name: format!("token {}", scopes.join("+")),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_in_days: "30".into(),
        },
    )
    .await
    .unwrap();
    (made.row.id, made.secret)
}

/// The fingerprint without the tokens table (whose last-use and expiry columns the test itself
/// moves).
async fn fingerprint_but_tokens(app: &TestApp) -> Vec<(String, i64)> {
    let mut f = fingerprint(app).await;
    f.retain(|(k, _)| k != "api_tokens" && k != "revoked tokens");
    f
}

#[tokio::test]
async fn tokens_act_within_their_scopes_and_stop_at_once_when_revoked_or_expired() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    let n = seed_incident(&app).await;
    let api_routes: Vec<_> = ROUTES.iter().filter(|(_, p)| is_api(p)).collect();

    // A read-only token reads and changes nothing.
    let (_, reader) = token(&app, &["incidents:read"]).await;
    let before = fingerprint_but_tokens(&app).await;
    for (method, template) in &api_routes {
        let path = concrete(template, n);
        let resp = api_call(&app, method, &path, &reader).await;
        let status = resp.status().as_u16();
        // Metrics need their own scope (tests/api/metrics.rs).
        if *method == "GET" && *template != "/metrics" {
            assert_eq!(status, 200, "{method} {path}");
        } else {
            assert_eq!(
                status, 403,
                "{method} {path}: a read-only token may not change anything"
            );
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
            let body: Value = resp.json().await.unwrap();
            assert!(body["detail"].as_str().unwrap().contains("scope"), "{body}");
        }
    }
    // Pages do not take tokens.
    let resp = app
        .client
        .get(format!("{}/", app.address))
        .header("authorization", format!("Bearer {reader}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "a token is not a page session");
    assert_eq!(
        fingerprint_but_tokens(&app).await,
        before,
        "the read-only token changed nothing"
    );

    // A token with every scope works until it is revoked; then every route refuses it at once.
    let every = ["incidents:read", "incidents:write", "incidents:declare"];
    let (id, all) = token(&app, &every).await;
    assert_eq!(api_call(&app, "GET", "/api/v1/incidents", &all).await.status(), 200);
    redbutton::services::tokens::revoke(&app.state, id).await.unwrap();
    for (method, template) in &api_routes {
        let path = concrete(template, n);
        let resp = api_call(&app, method, &path, &all).await;
        assert_eq!(resp.status(), 401, "{method} {path}: revoked");
        let body: Value = resp.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("revoked"), "{body}");
    }

    // An expired token likewise.
    let (id, expiring) = token(&app, &every).await;
    assert_eq!(
        api_call(&app, "GET", "/api/v1/incidents", &expiring).await.status(),
        200
    );
    app.state
        .db
        .run(move |c| {
            use diesel::prelude::*;
            use redbutton::db::schema::api_tokens::dsl as t;
            diesel::update(t::api_tokens.find(id))
                .set(t::expires_at.eq(Some(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1))))
                .execute(c)
        })
        .await
        .unwrap();
    for (method, template) in &api_routes {
        let path = concrete(template, n);
        let resp = api_call(&app, method, &path, &expiring).await;
        assert_eq!(resp.status(), 401, "{method} {path}: expired");
        let body: Value = resp.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
    }
    // A forged secret for a real token id, and a token of the wrong shape.
    let forged = format!("{}{}", &reader[..21], "A".repeat(43));
    assert_eq!(api_call(&app, "GET", "/api/v1/incidents", &forged).await.status(), 401);
    assert_eq!(
        api_call(&app, "GET", "/api/v1/incidents", "not-a-token").await.status(),
        401
    );
    assert_eq!(
        fingerprint_but_tokens(&app).await,
        before,
        "refused tokens changed nothing"
    );

    // Last use is recorded.
    let rows = redbutton::services::tokens::list(&app.state).await.unwrap();
    assert!(
        rows.iter().all(|r| r.last_used_at.is_some()),
        "each token shows its last use"
    );
    app.stop().await;
}

#[tokio::test]
async fn api_calls_are_rate_limited_per_token() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.auth.api_per_minute = 5;
    let app = TestApp::spawn(spawn).await;
    let (_, a) = token(&app, &["incidents:read"]).await;
    let (_, b) = token(&app, &["incidents:read"]).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(api_call(&app, "GET", "/api/v1/incidents", &a).await.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429, 429]);
    let resp = api_call(&app, "GET", "/api/v1/incidents", &a).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let other = api_call(&app, "GET", "/api/v1/incidents", &b).await.status();
    assert_eq!(other, 200, "another token has its own allowance");
    app.stop().await;
}

#[tokio::test]
async fn behind_https_cookies_are_secure_and_browsers_are_told_to_stay_on_https() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.server.base_url = Some("https://incidents.example.com".into());
    let app = TestApp::spawn(spawn).await;
    let html = app.get_html("/identify").await;
    let csrf = hidden(&html, "csrf");
    let resp = app
        .post_form(
            "/identify",
            &[
                ("csrf", &csrf),
                ("next", "/"),
                ("name", "Ada"),
                ("email", "ada@example.com"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("rb_session="))
        .expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    let resp = app.get("/").await;
    assert_eq!(resp.headers()["strict-transport-security"], "max-age=31536000");
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert_eq!(resp.headers()["referrer-policy"], "same-origin");
    app.stop().await;
}
