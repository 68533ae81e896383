//! The OpenID Connect client (`redbutton::auth::oidc`) against a mock provider (wiremock serving
//! discovery, keys and the token endpoint, with ID tokens signed here by the test keys in
//! tests/fixtures/oidc), and once end to end against a real provider (tests/oidc-provider, which
//! needs Node.js; see tests/support/oidc_provider.rs).
#![allow(clippy::unwrap_used)]

#[path = "support/oidc_provider.rs"]
mod oidc_provider;
#[path = "support/oidc_tokens.rs"]
mod oidc_tokens;

use oidc_tokens::{fixture, public_jwk, rsa_key, sign};

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use redbutton::auth::oidc::{OidcClient, OidcError, OidcIdentity, OidcSettings, PendingLogin};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CLIENT_ID: &str = "redbutton";
const SECRET: &str = "s3cret:with/odd&chars";
const REDIRECT_URI: &str = "https://rb.example.com/auth/oidc/callback";

/// The provider's keys, and one an attacker has.
struct Keys {
    rsa: EncodingKey,
    ec: EncodingKey,
    rotated: EncodingKey,
    forger: EncodingKey,
}

fn keys() -> Keys {
    Keys {
        rsa: rsa_key("rsa-signing.pem"),
        ec: EncodingKey::from_ec_pem(&fixture("ec-signing.pem")).expect("an EC PEM key"),
        rotated: rsa_key("rsa-rotated.pem"),
        forger: rsa_key("rsa-forger.pem"),
    }
}

fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(issuer: &str, nonce: &str) -> Value {
    json!({
        "iss": issuer,
        "aud": CLIENT_ID,
        "sub": "user-42",
        "iat": now(),
        "exp": now() + 300,
        "nonce": nonce,
        "email": "Ada@Example.com",
        "email_verified": true,
        "name": "Ada Lovelace",
        "groups": ["responders", "sre"],
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

/// A mock provider publishing `keys`.
async fn provider(keys: &[Value]) -> MockServer {
    let server = MockServer::start().await;
    let issuer = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize?tenant=acme"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "end_session_endpoint": format!("{issuer}/logout"),
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(keys)))
        .mount(&server)
        .await;
    server
}

/// The provider publishing the RSA and EC signing keys.
async fn standard_provider(k: &Keys) -> MockServer {
    provider(&[
        public_jwk(&k.rsa, Algorithm::RS256, "rsa-1"),
        public_jwk(&k.ec, Algorithm::ES256, "ec-1"),
    ])
    .await
}

fn settings(issuer: &str) -> OidcSettings {
    OidcSettings {
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        ..OidcSettings::default()
    }
}

fn client_with(settings: OidcSettings) -> OidcClient {
    OidcClient::new(settings, Some(SECRET.into()), REDIRECT_URI.into()).expect("client")
}

fn client(server: &MockServer) -> OidcClient {
    client_with(settings(&server.uri()))
}

async fn jwks_requests(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .expect("recording")
        .iter()
        .filter(|r| r.url.path() == "/jwks")
        .count()
}

fn ada() -> OidcIdentity {
    OidcIdentity {
        subject: "user-42".into(),
        email: "ada@example.com".into(),
        name: "Ada Lovelace".into(),
        groups: vec!["responders".into(), "sre".into()],
    }
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .into_owned()
        .collect()
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn sign_in_from_begin_to_finish() {
    let k = keys();
    let server = standard_provider(&k).await;
    let oidc = client(&server);

    let (url, pending) = oidc.begin().await.expect("begin");
    assert!(url.starts_with(&format!("{}/authorize?", server.uri())), "{url}");
    let q = query(&url);
    assert_eq!(q["tenant"], "acme", "the endpoint's own query is kept");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"], pending.state);
    assert_eq!(q["nonce"], pending.nonce);
    assert_eq!(
        q["code_challenge"],
        URL_SAFE_NO_PAD.encode(Sha256::digest(pending.code_verifier.as_bytes()))
    );
    for value in [&pending.state, &pending.nonce, &pending.code_verifier] {
        assert_eq!(URL_SAFE_NO_PAD.decode(value).expect("base64url").len(), 32);
    }
    assert!(!url.contains(&pending.code_verifier), "the verifier stays with us");

    // The browser comes back with a code; the provider answers the exchange only to the exact
    // request a confidential client must send.
    let id_token = sign(
        &k.rsa,
        Algorithm::RS256,
        Some("rsa-1"),
        &claims(&server.uri(), &q["nonce"]),
    );
    let basic = STANDARD.encode(format!("{CLIENT_ID}:{}", form_encode(SECRET)));
    let expected_body = format!(
        "grant_type=authorization_code&code=the-code&redirect_uri={}&code_verifier={}",
        form_encode(REDIRECT_URI),
        pending.code_verifier
    );
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", format!("Basic {basic}").as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(expected_body))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": id_token,
        })))
        .expect(1)
        .mount(&server)
        .await;

    assert_eq!(oidc.finish("the-code", &pending).await.expect("finish"), ada());
    assert_eq!(
        oidc.end_session_endpoint().await.as_deref(),
        Some(format!("{}/logout", server.uri()).as_str())
    );
    // The pending login survives a round trip through a cookie.
    let kept: PendingLogin = serde_json::from_str(&serde_json::to_string(&pending).unwrap()).unwrap();
    assert_eq!(kept, pending);
}

#[tokio::test]
async fn a_public_client_sends_its_id_in_the_body() {
    let k = keys();
    let server = standard_provider(&k).await;
    let oidc = OidcClient::new(settings(&server.uri()), None, REDIRECT_URI.into()).expect("client");
    let (_, pending) = oidc.begin().await.expect("begin");
    let id_token = sign(
        &k.ec,
        Algorithm::ES256,
        Some("ec-1"),
        &claims(&server.uri(), &pending.nonce),
    );
    let expected_body = format!(
        "grant_type=authorization_code&code=c0de&redirect_uri={}&code_verifier={}&client_id={CLIENT_ID}",
        form_encode(REDIRECT_URI),
        pending.code_verifier
    );
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string(expected_body))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id_token": id_token })))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(oidc.finish("c0de", &pending).await.expect("finish"), ada());
    let token_request = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path() == "/token")
        .unwrap();
    assert!(!token_request.headers.contains_key("authorization"));
}

#[tokio::test]
async fn a_refused_code_says_why_without_repeating_it() {
    let k = keys();
    let server = standard_provider(&k).await;
    let oidc = client(&server);
    let (_, pending) = oidc.begin().await.expect("begin");
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": "authorization code c0de-SECRET is invalid",
        })))
        .mount(&server)
        .await;
    let err = oidc.finish("c0de-SECRET", &pending).await.expect_err("refused");
    assert!(matches!(err, OidcError::Token(_)), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("invalid_grant"), "{shown}");
    for secret in ["c0de-SECRET", SECRET, &pending.code_verifier, &pending.nonce] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[tokio::test]
async fn good_tokens_of_both_key_types_are_accepted() {
    let k = keys();
    let server = standard_provider(&k).await;
    let oidc = client(&server);
    let c = claims(&server.uri(), "n1");
    assert_eq!(
        oidc.verify_id_token(&sign(&k.rsa, Algorithm::RS256, Some("rsa-1"), &c), "n1")
            .await,
        Ok(ada())
    );
    assert_eq!(
        oidc.verify_id_token(&sign(&k.ec, Algorithm::ES256, Some("ec-1"), &c), "n1")
            .await,
        Ok(ada())
    );
    assert_eq!(oidc.jwks_fetches(), 1, "the key set is kept");
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key() {
    let k = keys();
    let server = provider(&[public_jwk(&k.rsa, Algorithm::RS256, "only")]).await;
    let oidc = client(&server);
    let token = sign(&k.rsa, Algorithm::RS256, None, &claims(&server.uri(), "n1"));
    assert_eq!(oidc.verify_id_token(&token, "n1").await, Ok(ada()));
}

#[tokio::test]
async fn a_forged_signature_is_refused() {
    let k = keys();
    let server = standard_provider(&k).await;
    let oidc = client(&server);
    let forged = sign(&k.forger, Algorithm::RS256, Some("rsa-1"), &claims(&server.uri(), "n1"));
    assert_eq!(oidc.verify_id_token(&forged, "n1").await, Err(OidcError::BadSignature));

    // Claims swapped under a genuine signature.
    let genuine = sign(&k.rsa, Algorithm::RS256, Some("rsa-1"), &claims(&server.uri(), "n1"));
    let evil = with(claims(&server.uri(), "n1"), "email", json!("mallory@example.com"));
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(evil.to_string()), parts[2]);
    assert_eq!(
        oidc.verify_id_token(&tampered, "n1").await,
        Err(OidcError::BadSignature)
    );
}

#[tokio::test]
async fn claims_that_do_not_fit_are_refused() {
    let k = keys();
    let server = standard_provider(&k).await;
    let issuer = server.uri();
    let oidc = client(&server);
    let verify = |c: Value| {
        let token = sign(&k.rsa, Algorithm::RS256, Some("rsa-1"), &c);
        let oidc = &oidc;
        async move { oidc.verify_id_token(&token, "n1").await }
    };
    let base = || claims(&issuer, "n1");

    assert_eq!(
        verify(with(base(), "aud", json!("someone-else"))).await,
        Err(OidcError::WrongAudience)
    );
    assert_eq!(
        verify(with(base(), "aud", json!([CLIENT_ID, "someone-else"]))).await,
        Err(OidcError::WrongAuthorizedParty)
    );
    assert_eq!(
        verify(with(base(), "iss", json!("https://evil.example.com"))).await,
        Err(OidcError::WrongIssuer)
    );
    // Default skew is 60 s.
    assert_eq!(
        verify(with(base(), "exp", json!(now() - 120))).await,
        Err(OidcError::Expired)
    );
    assert_eq!(
        verify(with(base(), "exp", json!(now() - 30))).await,
        Ok(ada()),
        "within the skew"
    );
    assert_eq!(
        verify(with(base(), "iat", json!(now() + 600))).await,
        Err(OidcError::NotYetValid)
    );
    assert_eq!(
        verify(with(base(), "email_verified", json!(false))).await,
        Err(OidcError::EmailNotVerified)
    );
    assert_eq!(
        verify(with(base(), "nonce", json!("n2"))).await,
        Err(OidcError::NonceMismatch)
    );
}

#[tokio::test]
async fn a_nonce_from_an_earlier_sign_in_is_refused() {
    let k = keys();
    let server = standard_provider(&k).await;
    let oidc = client(&server);
    let (_, earlier) = oidc.begin().await.expect("begin");
    let (_, now_pending) = oidc.begin().await.expect("begin");
    assert_ne!(earlier.nonce, now_pending.nonce);
    let replayed = sign(
        &k.rsa,
        Algorithm::RS256,
        Some("rsa-1"),
        &claims(&server.uri(), &earlier.nonce),
    );
    assert_eq!(oidc.verify_id_token(&replayed, &earlier.nonce).await, Ok(ada()));
    assert_eq!(
        oidc.verify_id_token(&replayed, &now_pending.nonce).await,
        Err(OidcError::NonceMismatch)
    );
}

#[tokio::test]
async fn domain_and_group_rules() {
    let k = keys();
    let server = standard_provider(&k).await;
    let token = sign(&k.rsa, Algorithm::RS256, Some("rsa-1"), &claims(&server.uri(), "n1"));

    let domains = client_with(OidcSettings {
        allowed_email_domains: vec!["example.org".into()],
        ..settings(&server.uri())
    });
    assert_eq!(
        domains.verify_id_token(&token, "n1").await,
        Err(OidcError::DomainNotAllowed("example.com".into()))
    );
    let groups = client_with(OidcSettings {
        allowed_groups: vec!["admins".into()],
        ..settings(&server.uri())
    });
    assert_eq!(
        groups.verify_id_token(&token, "n1").await,
        Err(OidcError::GroupNotAllowed)
    );
    let both = client_with(OidcSettings {
        allowed_email_domains: vec!["example.com".into()],
        allowed_groups: vec!["admins".into(), "sre".into()],
        ..settings(&server.uri())
    });
    assert_eq!(both.verify_id_token(&token, "n1").await, Ok(ada()));
}

#[tokio::test]
async fn none_and_hmac_are_refused_before_any_key_is_fetched() {
    let k = keys();
    let server = standard_provider(&k).await;
    let oidc = client(&server);
    let c = claims(&server.uri(), "n1");

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(c.to_string())
    );
    assert_eq!(
        oidc.verify_id_token(&unsigned, "n1").await,
        Err(OidcError::AlgorithmNotAllowed("none".into()))
    );
    // HMAC keyed with something public (here the client ID), the classic confusion attack.
    let hmac = sign(
        &EncodingKey::from_secret(CLIENT_ID.as_bytes()),
        Algorithm::HS256,
        Some("rsa-1"),
        &c,
    );
    assert_eq!(
        oidc.verify_id_token(&hmac, "n1").await,
        Err(OidcError::AlgorithmNotAllowed("HS256".into()))
    );
    // Allowed by the library but not by these settings.
    let rs384 = sign(&k.rsa, Algorithm::RS384, Some("rsa-1"), &c);
    assert_eq!(
        oidc.verify_id_token(&rs384, "n1").await,
        Err(OidcError::AlgorithmNotAllowed("RS384".into()))
    );
    assert_eq!(oidc.jwks_fetches(), 0);
    assert_eq!(jwks_requests(&server).await, 0);

    // An RSA key cannot verify an ES256 token, whatever the token says.
    let confused = sign(&k.ec, Algorithm::ES256, Some("rsa-1"), &c);
    assert_eq!(
        oidc.verify_id_token(&confused, "n1").await,
        Err(OidcError::KeyMismatch("rsa-1".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_unknown_keys_fetches_the_key_set_once() {
    let k = keys();
    let server = standard_provider(&k).await;
    let issuer = server.uri();
    let oidc = Arc::new(client(&server));
    let good = sign(&k.rsa, Algorithm::RS256, Some("rsa-1"), &claims(&issuer, "n1"));
    assert_eq!(oidc.verify_id_token(&good, "n1").await, Ok(ada()));
    assert_eq!(oidc.jwks_fetches(), 1);

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let oidc = oidc.clone();
            let token = sign(
                &k.forger,
                Algorithm::RS256,
                Some(&format!("unknown-{i}")),
                &claims(&issuer, "n1"),
            );
            tokio::spawn(async move { oidc.verify_id_token(&token, "n1").await })
        })
        .collect();
    for (i, task) in futures_util::future::join_all(tasks).await.into_iter().enumerate() {
        assert_eq!(task.expect("task"), Err(OidcError::UnknownKey(format!("unknown-{i}"))));
    }
    assert_eq!(oidc.jwks_fetches(), 2, "exactly one extra fetch for the whole burst");
    assert_eq!(jwks_requests(&server).await, 2);

    // Within the window, a later unknown key fetches nothing; known keys still work.
    let late = sign(
        &k.forger,
        Algorithm::RS256,
        Some("unknown-late"),
        &claims(&issuer, "n1"),
    );
    assert_eq!(
        oidc.verify_id_token(&late, "n1").await,
        Err(OidcError::UnknownKey("unknown-late".into()))
    );
    assert_eq!(oidc.verify_id_token(&good, "n1").await, Ok(ada()));
    assert_eq!(oidc.jwks_fetches(), 2);
    assert_eq!(jwks_requests(&server).await, 2);
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_with_one_fetch() {
    let k = keys();
    let server = provider(&[public_jwk(&k.rsa, Algorithm::RS256, "2024")]).await;
    let issuer = server.uri();
    let oidc = client(&server);
    let old = sign(&k.rsa, Algorithm::RS256, Some("2024"), &claims(&issuer, "n1"));
    assert_eq!(oidc.verify_id_token(&old, "n1").await, Ok(ada()));

    // The provider switches to a new key and withdraws the old one.
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&[public_jwk(
            &k.rotated,
            Algorithm::RS256,
            "2025",
        )])))
        .with_priority(1)
        .mount(&server)
        .await;
    let new = sign(&k.rotated, Algorithm::RS256, Some("2025"), &claims(&issuer, "n1"));
    assert_eq!(oidc.verify_id_token(&new, "n1").await, Ok(ada()));
    assert_eq!(oidc.jwks_fetches(), 2);
    assert_eq!(oidc.verify_id_token(&new, "n1").await, Ok(ada()));
    assert_eq!(oidc.jwks_fetches(), 2, "the new key is kept");
    assert_eq!(
        oidc.verify_id_token(&old, "n1").await,
        Err(OidcError::UnknownKey("2024".into())),
        "the withdrawn key is no longer trusted"
    );
    assert_eq!(jwks_requests(&server).await, 2);
}

#[tokio::test]
async fn discovery_is_lazy_retried_and_checked() {
    // Nothing listening yet: the client is made anyway, and the first use fails.
    let server = MockServer::start().await;
    let oidc = client(&server);
    assert!(matches!(oidc.begin().await, Err(OidcError::Discovery(_))));
    assert_eq!(oidc.end_session_endpoint().await, None);

    // The provider comes up: the next use succeeds.
    let issuer = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": format!("{issuer}/"),
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
        })))
        .mount(&server)
        .await;
    assert!(
        oidc.begin().await.is_ok(),
        "a trailing slash on the issuer is tolerated"
    );
    assert_eq!(oidc.end_session_endpoint().await, None);

    // A provider that claims to be someone else is not believed.
    let liar = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": "https://login.example.com",
            "authorization_endpoint": "https://login.example.com/authorize",
            "token_endpoint": "https://login.example.com/token",
            "jwks_uri": "https://login.example.com/jwks",
        })))
        .mount(&liar)
        .await;
    let err = client(&liar).begin().await.expect_err("refused");
    assert!(
        matches!(err, OidcError::Discovery(ref m) if m.contains("not the configured issuer")),
        "{err}"
    );

    // Endpoints must be https unless on loopback.
    let plain = MockServer::start().await;
    let issuer = plain.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": "http://login.example.com/token",
            "jwks_uri": format!("{issuer}/jwks"),
        })))
        .mount(&plain)
        .await;
    let err = client(&plain).begin().await.expect_err("refused");
    assert!(
        matches!(err, OidcError::Discovery(ref m) if m.contains("token_endpoint")),
        "{err}"
    );
}

#[tokio::test]
async fn an_oversized_key_set_is_not_read() {
    let k = keys();
    let server = standard_provider(&k).await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_string(" ".repeat(2 * 1024 * 1024)))
        .with_priority(1)
        .mount(&server)
        .await;
    let oidc = client(&server);
    let token = sign(&k.rsa, Algorithm::RS256, Some("rsa-1"), &claims(&server.uri(), "n1"));
    assert!(matches!(
        oidc.verify_id_token(&token, "n1").await,
        Err(OidcError::Jwks(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// End to end against a real provider.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sign_in_at_a_real_provider() {
    let secret = "real-provider-secret";
    let redirect_uri = "http://127.0.0.1:9/auth/oidc/callback";
    let Some(idp) = oidc_provider::start(&oidc_provider::ProviderOptions {
        client_secret: secret,
        redirect_uri,
        email: "Grace.Hopper@Example.org",
        name: "Grace Hopper",
        groups: &["responders", "navy"],
    }) else {
        return;
    };
    let settings = OidcSettings {
        issuer: idp.issuer.clone(),
        client_id: CLIENT_ID.into(),
        scopes: vec!["openid".into(), "email".into(), "profile".into(), "groups".into()],
        allowed_email_domains: vec!["example.org".into()],
        allowed_groups: vec!["responders".into()],
        ..OidcSettings::default()
    };
    let oidc = OidcClient::new(settings, Some(secret.into()), redirect_uri.into()).expect("client");

    let (authorize_url, pending) = oidc.begin().await.expect("begin");
    let back = oidc_provider::sign_in_as_a_browser(&authorize_url, redirect_uri).await;
    let q: HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(q.get("state"), Some(&pending.state), "{back}");
    let code = q.get("code").unwrap_or_else(|| panic!("no code in {back}"));

    let identity = oidc.finish(code, &pending).await.expect("finish");
    assert_eq!(identity.email, "grace.hopper@example.org");
    assert_eq!(identity.name, "Grace Hopper");
    assert_eq!(identity.groups, ["responders", "navy"]);
    assert!(!identity.subject.is_empty());
    assert_eq!(
        oidc.end_session_endpoint().await,
        Some(format!("{}/session/end", idp.issuer))
    );

    // A code works once.
    let again = oidc.finish(code, &pending).await.expect_err("a used code is refused");
    assert!(
        matches!(again, OidcError::Token(ref m) if m.contains("invalid_grant")),
        "{again}"
    );
    assert!(!again.to_string().contains(code.as_str()));
}
