//! OpenID Connect sign-in through the app: the full redirect flow against a real provider on
//! loopback (tests/oidc-provider), session cookie, roles from groups, sign-out; and refusals, with a
//! provider played by wiremock that hands out bad ID tokens: forged signature, wrong audience,
//! expired, a nonce from an earlier sign-in, an unknown key id (one key-set refetch, not one per
//! request), a replayed answer and an answer in the wrong browser.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonwebtoken::Algorithm;
use redbutton::auth::oidc::OidcSettings;
use redbutton::config::AuthMode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::helpers::*;
use crate::oidc_provider;
use crate::oidc_tokens::{public_jwk, rsa_key, sign};

const SECRET: &str = "app-level-oidc-secret";
const SECRET_VAR: &str = "RB_TEST_OIDC_SECRET";

fn oidc_spawn(db: &TestDb, issuer: &str) -> Spawn {
    let mut spawn = Spawn::new(db);
    spawn.settings.auth.mode = AuthMode::Oidc;
    spawn.settings.auth.admin_groups = vec!["sre-leads".into()];
    spawn.settings.auth.oidc = Some(OidcSettings {
        issuer: issuer.into(),
        client_id: "redbutton".into(),
        client_secret_env: Some(SECRET_VAR.into()),
        scopes: vec!["openid".into(), "email".into(), "profile".into(), "groups".into()],
        ..OidcSettings::default()
    });
    spawn.settings.secret_values.insert(SECRET_VAR.into(), SECRET.into());
    spawn
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn sign_in_with_a_real_provider_then_sign_out() {
    let Some(idp) = oidc_provider::start(&oidc_provider::ProviderOptions {
        client_secret: SECRET,
        redirect_uri: "http://127.0.0.1/auth/callback",
        email: "Grace.Hopper@Example.org",
        name: "Grace Hopper",
        groups: &["eng", "sre-leads"],
    }) else {
        return;
    };
    let db = TestDb::new();
    let app = TestApp::spawn(oidc_spawn(&db, &idp.issuer)).await;

    // Anonymous: a page sends the browser to sign in, which sends it to the provider.
    let resp = app.get("/incidents?x=1").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/auth/login?next=%2Fincidents%3Fx%3D1");
    let resp = app.get("/auth/login?next=/").await;
    assert_eq!(resp.status(), 303);
    let authorize = location(&resp);
    assert!(authorize.starts_with(&idp.issuer), "{authorize}");
    let q: HashMap<String, String> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/auth/callback", app.address));
    assert!(q.contains_key("nonce") && q.contains_key("state"));
    let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );

    // The person signs in at the provider, which sends the browser back to us.
    let back = oidc_provider::sign_in_as_a_browser(&authorize, &format!("{}/auth/callback", app.address)).await;
    let callback = format!("{}?{}", back.path(), back.query().unwrap());
    let resp = app.get(&callback).await;
    let status = resp.status();
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("rb_session="));
    assert_eq!(status, 303, "{}", resp.text().await.unwrap());
    let session = session.expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax") && !session.contains("Secure"));

    let html = app.get_html("/").await;
    assert!(html.contains("Grace Hopper"));
    assert!(!html.contains("Development sign-in"), "no dev banner");
    assert_eq!(app.get("/admin/tokens").await.status(), 200, "sre-leads are admins");
    let user = app
        .state
        .db
        .run(|c| redbutton::db::models::user::find_by_email(c, "grace.hopper@example.org"))
        .await
        .unwrap()
        .expect("a user row");
    assert_eq!(user.role, "admin");
    let n = app.declare_ok("Declared after OIDC sign-in").await;
    assert!(n > 0);

    // The same answer again (say, from the browser history) signs no one in.
    let before = app.cookie_header();
    let replay = app
        .client
        .get(format!("{}{callback}", app.address))
        .header("cookie", format!("rb_login={}", q["state"]))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert!(
        replay
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("rb_session="))
    );
    let body = replay.text().await.unwrap();
    assert!(body.contains("already used"), "{body}");
    assert_eq!(app.cookie_header(), before);

    // Sign out: the cookie goes, and the next page asks to sign in again.
    let csrf = hidden(&app.get_html("/").await, "csrf");
    let resp = app.post_form("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/signed-out");
    assert!(!app.cookie_header().contains("rb_session=ey"), "session cookie removed");
    let page = app.get_html("/signed-out").await;
    assert!(page.contains("/auth/login"));
    let resp = app.get("/").await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with("/auth/login"));
    app.stop().await;
}

/// A provider played by wiremock: discovery and keys, and a token endpoint that hands out
/// whatever ID token the test puts in `token`.
struct FakeProvider {
    server: MockServer,
    token: Arc<Mutex<String>>,
}

/// The token endpoint's answer: whatever ID token the test last set.
struct TokenAnswer(Arc<Mutex<String>>);

impl Respond for TokenAnswer {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let id_token = self.0.lock().unwrap().clone();
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": id_token,
        }))
    }
}

impl FakeProvider {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let issuer = server.uri();
        Mock::given(method("GET"))
            .and(path("/.well-known/openid-configuration"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })))
            .mount(&server)
            .await;
        let key = rsa_key("rsa-signing.pem");
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "keys": [public_jwk(&key, Algorithm::RS256, "k1")] })),
            )
            .mount(&server)
            .await;
        let token = Arc::new(Mutex::new(String::new()));
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(TokenAnswer(token.clone()))
            .mount(&server)
            .await;
        FakeProvider { server, token }
    }

    /// The token endpoint answers with this ID token from now on.
    async fn answer_with(&self, id_token: &str) {
        *self.token.lock().unwrap() = id_token.to_string();
    }

    async fn jwks_fetches(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/jwks")
            .count()
    }
}

fn claims(issuer: &str, nonce: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": issuer, "aud": "redbutton", "sub": "u-1", "iat": now, "exp": now + 300, "nonce": nonce,
        "email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace", "groups": ["eng"],
    })
}

/// Starts a sign-in in the app and returns (state, nonce) the app sent to the provider.
async fn start_login(app: &TestApp) -> (String, String) {
    let resp = app.get("/auth/login?next=/").await;
    assert_eq!(resp.status(), 303);
    let q: HashMap<String, String> = url::Url::parse(&location(&resp))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    (q["state"].clone(), q["nonce"].clone())
}

/// Finishes it as if the provider sent the browser back; returns (status, body, session set?).
async fn come_back(app: &TestApp, state: &str) -> (u16, String, bool) {
    let resp = app.get(&format!("/auth/callback?code=the-code&state={state}")).await;
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("rb_session=ey"));
    (resp.status().as_u16(), resp.text().await.unwrap(), session)
}

#[tokio::test]
async fn bad_id_tokens_sign_no_one_in() {
    let idp = FakeProvider::start().await;
    let issuer = idp.server.uri();
    let db = TestDb::new();
    let app = TestApp::spawn(oidc_spawn(&db, &issuer)).await;
    let good = rsa_key("rsa-signing.pem");
    let forger = rsa_key("rsa-forger.pem");

    // A good token works (and proves the setup).
    let (state, nonce) = start_login(&app).await;
    idp.answer_with(&sign(&good, Algorithm::RS256, Some("k1"), &claims(&issuer, &nonce)))
        .await;
    let (status, body, session) = come_back(&app, &state).await;
    assert_eq!((status, session), (303, true), "{body}");
    let first_nonce = nonce;
    assert_eq!(idp.jwks_fetches().await, 1);

    let now = chrono::Utc::now().timestamp();
    type Make = Box<dyn Fn(&str) -> String>;
    let (iss, iss2, iss3, iss4) = (issuer.clone(), issuer.clone(), issuer.clone(), issuer.clone());
    let (g1, g2, g3) = (good.clone(), good.clone(), good.clone());
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "forged signature",
            Box::new(move |n| sign(&forger, Algorithm::RS256, Some("k1"), &claims(&iss, n))),
            "signature is not valid",
        ),
        (
            "wrong audience",
            Box::new(move |n| {
                let mut c = claims(&iss2, n);
                c["aud"] = json!("another-app");
                sign(&g1, Algorithm::RS256, Some("k1"), &c)
            }),
            "meant for another client",
        ),
        (
            "expired",
            Box::new(move |n| {
                let mut c = claims(&iss3, n);
                c["iat"] = json!(now - 3600);
                c["exp"] = json!(now - 600);
                sign(&g2, Algorithm::RS256, Some("k1"), &c)
            }),
            "has expired",
        ),
        (
            "reused nonce",
            Box::new(move |_| sign(&g3, Algorithm::RS256, Some("k1"), &claims(&iss4, &first_nonce))),
            "nonce mismatch",
        ),
    ];
    for (name, make, says) in &cases {
        let (state, nonce) = start_login(&app).await;
        idp.answer_with(&make(&nonce)).await;
        let (status, body, session) = come_back(&app, &state).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert!(!session, "{name}: no session");
        assert!(body.contains(says), "{name}: the page says why ({says}): {body}");
        assert!(!body.contains("the-code"), "{name}: the code is not echoed");
    }

    // An unknown key id: the app fetches the provider's keys once more, then refuses; more tokens
    // with unknown keys right after do not make it fetch again.
    let before = idp.jwks_fetches().await;
    let rotated = rsa_key("rsa-rotated.pem");
    for i in 0..5 {
        let (state, nonce) = start_login(&app).await;
        idp.answer_with(&sign(
            &rotated,
            Algorithm::RS256,
            Some(&format!("new-{i}")),
            &claims(&issuer, &nonce),
        ))
        .await;
        let (status, body, session) = come_back(&app, &state).await;
        assert_eq!((status, session), (401, false), "{body}");
        assert!(body.contains("does not publish"), "{body}");
    }
    assert_eq!(
        idp.jwks_fetches().await,
        before + 1,
        "one refetch for five unknown key ids"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_answer_counts_only_once_and_only_in_the_browser_that_asked() {
    let idp = FakeProvider::start().await;
    let issuer = idp.server.uri();
    let db = TestDb::new();
    let app = TestApp::spawn(oidc_spawn(&db, &issuer)).await;
    let good = rsa_key("rsa-signing.pem");

    // Browser A starts; the answer arrives in browser B (no login cookie): refused.
    let (state, nonce) = start_login(&app).await;
    idp.answer_with(&sign(&good, Algorithm::RS256, Some("k1"), &claims(&issuer, &nonce)))
        .await;
    let resp = app
        .client
        .get(format!("{}/auth/callback?code=c&state={state}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("another browser"));

    // Back in browser A it still works, once.
    let (status, _, session) = come_back(&app, &state).await;
    assert_eq!((status, session), (303, true));
    let resp = app
        .client
        .get(format!("{}/auth/callback?code=c&state={state}", app.address))
        .header("cookie", format!("rb_login={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "a state works once");

    // A provider error is shown, and ends that sign-in.
    let (state, _) = start_login(&app).await;
    let resp = app
        .get(&format!(
            "/auth/callback?state={state}&error=access_denied&error_description=User+said+no"
        ))
        .await;
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("User said no"));
    // Dev sign-in does not exist in this mode.
    assert_eq!(app.get("/identify").await.status(), 404);
    app.stop().await;
}
