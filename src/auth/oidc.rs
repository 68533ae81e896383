//! Signing in with OpenID Connect: the authorization code flow with PKCE, for one provider.
//!
//! [`OidcClient::begin`] builds the provider's authorize URL and the [`PendingLogin`] the web layer
//! keeps (in a cookie or the session) until the browser comes back; [`OidcClient::finish`]
//! exchanges the code and checks the ID token it gets: its signature against the provider's
//! published keys, then issuer, audience, times, nonce, e-mail and group rules. Only the ID token
//! is read (no userinfo call), so the provider must put the e-mail, name and groups in it.
//!
//! Nothing touches the network before the first sign-in: discovery and the key set are fetched on
//! first need and kept in memory. A failed discovery is not kept, so the next sign-in tries again.
//! The key set is fetched again when a token names a key we do not know (the provider rotated its
//! keys), at most once per `jwks_refresh_min_seconds` however many such tokens arrive at once, and
//! when it is older than [`JWKS_MAX_AGE`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

use crate::notifiers::http;

/// Time limit for one request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest clock skew the settings may allow.
const MAX_CLOCK_SKEW_SECONDS: u64 = 300;
/// A key set older than this is fetched again on next use, so keys the provider withdrew stop
/// being trusted even if no token ever names an unknown key.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Algorithms an ID token may be signed with, if the settings allow them: the asymmetric ones.
/// Never `none`, never HMAC (that would make the client secret a signing key).
const SUPPORTED_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// `[auth.oidc]` in the configuration file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcSettings {
    /// The provider's issuer URL, e.g. `https://login.example.com/realms/acme`; discovery is read
    /// from `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Our client ID at the provider.
    pub client_id: String,
    /// Name of the environment variable holding the client secret; none makes a public client
    /// (PKCE only).
    pub client_secret_env: Option<String>,
    /// Scopes asked for; `openid` is always sent.
    pub scopes: Vec<String>,
    /// The ID token claim listing the person's groups.
    pub groups_claim: String,
    /// Algorithms an ID token may be signed with.
    pub algorithms: Vec<String>,
    /// E-mail domains allowed to sign in; empty allows any.
    pub allowed_email_domains: Vec<String>,
    /// Groups allowed to sign in (a person needs one of them); empty allows anyone.
    pub allowed_groups: Vec<String>,
    /// Leeway for the token's times, for clocks that disagree a little.
    pub clock_skew_seconds: u64,
    /// A token naming an unknown key fetches the key set again at most once per this many seconds.
    pub jwks_refresh_min_seconds: u64,
    /// Refuse a token whose `email_verified` is false (a token without the claim is accepted).
    pub require_verified_email: bool,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            issuer: String::new(),
            client_id: String::new(),
            client_secret_env: None,
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            groups_claim: "groups".into(),
            algorithms: vec!["RS256".into(), "ES256".into()],
            allowed_email_domains: Vec::new(),
            allowed_groups: Vec::new(),
            clock_skew_seconds: 60,
            jwks_refresh_min_seconds: 60,
            require_verified_email: true,
        }
    }
}

impl OidcSettings {
    /// Checks the settings; the message names the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        fn bad(key: &str, why: impl std::fmt::Display) -> Result<(), String> {
            Err(format!("auth.oidc.{key}: {why}"))
        }
        if let Err(why) = check_provider_url(&self.issuer) {
            return bad("issuer", why);
        }
        let issuer = url::Url::parse(&self.issuer).map_err(|e| format!("auth.oidc.issuer: {e}"))?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return bad("issuer", "must not have a query or fragment");
        }
        if self.client_id.trim().is_empty() {
            return bad("client_id", "must be set");
        }
        if let Some(name) = &self.client_secret_env
            && (name.is_empty() || name.contains('=') || name.contains('\0'))
        {
            return bad(
                "client_secret_env",
                "must be the name of an environment variable (leave it out for a public client)",
            );
        }
        for scope in &self.scopes {
            if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') {
                return bad("scopes", format!("{scope:?} is not a scope name"));
            }
        }
        if self.groups_claim.trim().is_empty() {
            return bad("groups_claim", "must name a claim");
        }
        if self.algorithms.is_empty() {
            return bad("algorithms", "must list at least one algorithm, e.g. [\"RS256\"]");
        }
        for alg in &self.algorithms {
            if alg.eq_ignore_ascii_case("none") {
                return bad(
                    "algorithms",
                    "\"none\" would accept unsigned tokens; it is never allowed",
                );
            }
            if alg.to_ascii_uppercase().starts_with("HS") {
                return bad(
                    "algorithms",
                    format!("{alg} signs with the client secret; only public-key algorithms are allowed"),
                );
            }
            if !SUPPORTED_ALGORITHMS.contains(&alg.as_str()) {
                return bad(
                    "algorithms",
                    format!("{alg:?} is not supported (use {})", SUPPORTED_ALGORITHMS.join(", ")),
                );
            }
        }
        for domain in &self.allowed_email_domains {
            let d = domain.trim_start_matches('@');
            if d.is_empty() || d.contains('@') || d.chars().any(char::is_whitespace) {
                return bad("allowed_email_domains", format!("{domain:?} is not a domain"));
            }
        }
        if self.allowed_groups.iter().any(|g| g.is_empty()) {
            return bad("allowed_groups", "a group name cannot be empty");
        }
        if self.clock_skew_seconds > MAX_CLOCK_SKEW_SECONDS {
            return bad(
                "clock_skew_seconds",
                format!("must be at most {MAX_CLOCK_SKEW_SECONDS}"),
            );
        }
        if !(1..=86_400).contains(&self.jwks_refresh_min_seconds) {
            return bad("jwks_refresh_min_seconds", "must be between 1 and 86400 (a day)");
        }
        Ok(())
    }
}

/// Why a sign-in failed. The messages name no secret, token or code, so they can be logged and
/// shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The settings cannot work.
    #[error("OpenID Connect settings: {0}")]
    Config(String),
    /// The provider's discovery document could not be read or is not usable.
    #[error("OpenID Connect discovery failed: {0}")]
    Discovery(String),
    /// The provider's key set could not be read.
    #[error("could not read the identity provider's signing keys: {0}")]
    Jwks(String),
    /// The token endpoint refused the code or could not be reached.
    #[error("the identity provider did not exchange the sign-in code: {0}")]
    Token(String),
    /// The ID token is not a well-formed signed JWT.
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    /// The token's algorithm is not allowed (including `none` and HMAC, which never are).
    #[error("the ID token is signed with algorithm {0}, which is not allowed")]
    AlgorithmNotAllowed(String),
    /// The key the token names cannot verify the token's algorithm (e.g. an RSA key for ES256).
    #[error("the ID token's algorithm does not fit its key {0}")]
    KeyMismatch(String),
    /// The token names a key the provider does not publish, even after fetching its keys again.
    #[error("the ID token is signed with key {0:?}, which the identity provider does not publish")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the ID token's signature is not valid")]
    BadSignature,
    /// `iss` is not the provider.
    #[error("the ID token was issued by someone other than the configured identity provider")]
    WrongIssuer,
    /// `aud` does not name us.
    #[error("the ID token is meant for another client")]
    WrongAudience,
    /// Several audiences and `azp` is not us.
    #[error("the ID token's authorized party is another client")]
    WrongAuthorizedParty,
    /// `exp` has passed.
    #[error("the ID token has expired")]
    Expired,
    /// `iat` or `nbf` is in the future.
    #[error("the ID token is not valid yet (is a clock wrong?)")]
    NotYetValid,
    /// A claim every ID token must have is missing or of the wrong type.
    #[error("the ID token has no valid {0:?} claim")]
    MissingClaim(&'static str),
    /// The nonce is not the one this sign-in sent.
    #[error("the ID token does not belong to this sign-in (nonce mismatch)")]
    NonceMismatch,
    /// No usable e-mail address in the token.
    #[error("the identity provider gave no e-mail address; it is needed to sign in")]
    MissingEmail,
    /// `email_verified` is false.
    #[error("the e-mail address is not verified at the identity provider")]
    EmailNotVerified,
    /// The e-mail domain is not allowed.
    #[error("e-mail addresses at {0} may not sign in")]
    DomainNotAllowed(String),
    /// The person is in none of the allowed groups.
    #[error("you are not in a group allowed to sign in")]
    GroupNotAllowed,
}

/// What the web layer keeps between [`OidcClient::begin`] and [`OidcClient::finish`]. Secret: it
/// must live where only the browser that started the sign-in can send it back (e.g. an encrypted
/// or signed, HttpOnly cookie), and be used once.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PendingLogin {
    /// Sent to the provider and expected back on the redirect (compare it before `finish`).
    pub state: String,
    /// Expected in the ID token.
    pub nonce: String,
    /// PKCE: proves at the token endpoint that we started this sign-in.
    pub code_verifier: String,
}

/// Who signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcIdentity {
    /// `sub`: the provider's stable ID for the person.
    pub subject: String,
    /// E-mail address, lower-cased.
    pub email: String,
    /// Display name (`name`, else `preferred_username`, else the e-mail address).
    pub name: String,
    /// Groups from the configured claim.
    pub groups: Vec<String>,
}

/// What discovery told us (only what we use).
#[derive(Debug, Clone)]
struct Provider {
    issuer: String,
    authorization_endpoint: url::Url,
    token_endpoint: url::Url,
    jwks_uri: url::Url,
    end_session_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
}

/// The provider's keys as last fetched.
#[derive(Default)]
struct KeyCache {
    keys: Vec<Jwk>,
    fetched_at: Option<Instant>,
    /// Last time a token with an unknown key made us fetch again.
    last_unknown_key_refetch: Option<Instant>,
}

/// An OpenID Connect client for one provider. Cheap to share behind an `Arc`.
pub struct OidcClient {
    settings: OidcSettings,
    client_secret: Option<String>,
    redirect_uri: String,
    algorithms: Vec<Algorithm>,
    http: reqwest::Client,
    provider: Mutex<Option<Arc<Provider>>>,
    keys: Mutex<KeyCache>,
    /// Bumped by every key set fetch; lets a caller that waited for the lock see that someone
    /// else fetched meanwhile.
    keys_generation: AtomicU64,
    jwks_fetches: AtomicU64,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.settings.issuer)
            .field("client_id", &self.settings.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<set>"))
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// Makes a client. No network here: discovery happens on first use.
    pub fn new(settings: OidcSettings, client_secret: Option<String>, redirect_uri: String) -> Result<Self, OidcError> {
        settings.validate().map_err(OidcError::Config)?;
        let redirect = url::Url::parse(&redirect_uri)
            .map_err(|e| OidcError::Config(format!("redirect URI {redirect_uri:?} is not a URL: {e}")))?;
        if !matches!(redirect.scheme(), "https" | "http") || redirect.fragment().is_some() {
            return Err(OidcError::Config(format!(
                "redirect URI {redirect_uri:?} must be an http(s) URL without a fragment"
            )));
        }
        if client_secret.as_deref().is_some_and(str::is_empty) {
            return Err(OidcError::Config("the client secret is empty".into()));
        }
        let algorithms = settings
            .algorithms
            .iter()
            .map(|a| {
                a.parse::<Algorithm>()
                    .map_err(|_| OidcError::Config(format!("unknown algorithm {a}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let http = http::client(HTTP_TIMEOUT).map_err(|e| OidcError::Config(format!("HTTP client: {e}")))?;
        Ok(OidcClient {
            settings,
            client_secret,
            redirect_uri,
            algorithms,
            http,
            provider: Mutex::new(None),
            keys: Mutex::new(KeyCache::default()),
            keys_generation: AtomicU64::new(0),
            jwks_fetches: AtomicU64::new(0),
        })
    }

    /// Starts a sign-in: the URL to send the browser to, and what to keep until it comes back.
    pub async fn begin(&self) -> Result<(String, PendingLogin), OidcError> {
        let provider = self.provider().await?;
        let pending = PendingLogin {
            state: random_token(),
            nonce: random_token(),
            code_verifier: random_token(),
        };
        let mut url = provider.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.scope())
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pkce_challenge(&pending.code_verifier))
            .append_pair("code_challenge_method", "S256");
        Ok((url.into(), pending))
    }

    /// Ends a sign-in: exchanges the code the provider sent back and checks the ID token. The
    /// caller must first have checked that the redirect's `state` equals `pending.state`.
    pub async fn finish(&self, code: &str, pending: &PendingLogin) -> Result<OidcIdentity, OidcError> {
        if code.is_empty() {
            return Err(OidcError::Token("the provider sent back no code".into()));
        }
        let provider = self.provider().await?;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", &pending.code_verifier),
        ];
        let mut request = self
            .http
            .post(provider.token_endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match &self.client_secret {
            // RFC 6749, section 2.3.1: both are form-encoded before they go into Basic.
            Some(secret) => {
                request = request.basic_auth(form_encode(&self.settings.client_id), Some(form_encode(secret)));
            }
            None => form.push(("client_id", &self.settings.client_id)),
        }
        let answer = http::send(request.form(&form), "token endpoint")
            .await
            .map_err(|e| OidcError::Token(send_error_text(e)))?;
        if !answer.status.is_success() {
            return Err(OidcError::Token(token_refusal(answer.status.as_u16(), &answer.body)));
        }
        if answer.truncated {
            return Err(OidcError::Token("the token endpoint's answer is too large".into()));
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            id_token: Option<String>,
        }
        let tokens: TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|_| OidcError::Token("the token endpoint's answer is not the JSON expected".into()))?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| OidcError::Token("the token endpoint's answer has no ID token".into()))?;
        self.verify_id_token(&id_token, &pending.nonce).await
    }

    /// Verifies an ID token: signature, issuer, audience, times, nonce, then the e-mail and group
    /// rules.
    pub async fn verify_id_token(&self, id_token: &str, expected_nonce: &str) -> Result<OidcIdentity, OidcError> {
        let header = read_header(id_token)?;
        let alg = self.allowed_algorithm(&header.alg)?;
        let provider = self.provider().await?;
        let (key_id, key) = self.key_for(alg, header.kid.as_deref()).await?;
        let decoding_key = DecodingKey::from_jwk(&key)
            .map_err(|_| OidcError::Jwks(format!("the provider's key {key_id:?} cannot be read")))?;

        // jsonwebtoken checks the signature only; the claims are checked below, all of them.
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Value>(id_token, &decoding_key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => OidcError::BadSignature,
                ErrorKind::InvalidAlgorithm => OidcError::KeyMismatch(key_id.clone()),
                ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidKeyFormat => {
                    OidcError::Jwks(format!("the provider's key {key_id:?} cannot be used"))
                }
                ErrorKind::Json(_) => OidcError::Malformed("its payload is not a JSON object".into()),
                _ => OidcError::Malformed("it does not decode".into()),
            }
        })?;
        let expected = Expected {
            issuer: &provider.issuer,
            client_id: &self.settings.client_id,
            nonce: expected_nonce,
            skew: self.settings.clock_skew_seconds,
        };
        let identity = check_claims(&data.claims, &expected, &self.settings.groups_claim, unix_now())?;
        check_person(&data.claims, identity, &self.settings)
    }

    /// How many times the key set has been fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.jwks_fetches.load(Ordering::Relaxed)
    }

    /// The provider's end_session_endpoint, if discovery listed one (None also when discovery
    /// fails).
    pub async fn end_session_endpoint(&self) -> Option<String> {
        self.provider().await.ok()?.end_session_endpoint.clone()
    }

    fn scope(&self) -> String {
        let mut scopes = vec!["openid"];
        for s in &self.settings.scopes {
            if !scopes.contains(&s.as_str()) {
                scopes.push(s);
            }
        }
        scopes.join(" ")
    }

    fn allowed_algorithm(&self, alg: &str) -> Result<Algorithm, OidcError> {
        let refused = || OidcError::AlgorithmNotAllowed(printable(alg, 20));
        if alg.eq_ignore_ascii_case("none") || alg.to_ascii_uppercase().starts_with("HS") {
            return Err(refused());
        }
        let parsed: Algorithm = alg.parse().map_err(|_| refused())?;
        if !self.algorithms.contains(&parsed) {
            return Err(refused());
        }
        Ok(parsed)
    }

    /// Discovery, fetched once and kept; a failure is not kept.
    async fn provider(&self) -> Result<Arc<Provider>, OidcError> {
        let mut slot = self.provider.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let discovered = Arc::new(self.discover().await?);
        *slot = Some(discovered.clone());
        Ok(discovered)
    }

    async fn discover(&self) -> Result<Provider, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let body = self
            .get_json(&url, "identity provider")
            .await
            .map_err(OidcError::Discovery)?;
        let doc: DiscoveryDocument = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Discovery(format!("the discovery document is not the JSON expected: {e}")))?;
        if doc.issuer.trim_end_matches('/') != self.settings.issuer.trim_end_matches('/') {
            return Err(OidcError::Discovery(format!(
                "the provider calls itself {:?}, not the configured issuer {:?}",
                printable(&doc.issuer, 200),
                self.settings.issuer
            )));
        }
        let endpoint = |name: &str, value: &str| -> Result<url::Url, OidcError> {
            check_provider_url(value)
                .map_err(|why| OidcError::Discovery(format!("{name} {:?}: {why}", printable(value, 200))))?;
            url::Url::parse(value).map_err(|e| OidcError::Discovery(format!("{name}: {e}")))
        };
        let end_session_endpoint = match doc.end_session_endpoint {
            Some(e) if !e.is_empty() => Some(endpoint("end_session_endpoint", &e)?.into()),
            _ => None,
        };
        Ok(Provider {
            authorization_endpoint: endpoint("authorization_endpoint", &doc.authorization_endpoint)?,
            token_endpoint: endpoint("token_endpoint", &doc.token_endpoint)?,
            jwks_uri: endpoint("jwks_uri", &doc.jwks_uri)?,
            end_session_endpoint,
            issuer: doc.issuer,
        })
    }

    /// GETs a JSON document from the provider; the error is a sentence.
    async fn get_json(&self, url: &str, what: &str) -> Result<Vec<u8>, String> {
        let request = self.http.get(url).header(reqwest::header::ACCEPT, "application/json");
        let answer = http::send(request, what).await.map_err(send_error_text)?;
        if !answer.status.is_success() {
            return Err(format!("{what} answered HTTP {}", answer.status.as_u16()));
        }
        if answer.truncated {
            return Err(format!("{what} answered with over {} KiB", http::MAX_BODY_BYTES / 1024));
        }
        Ok(answer.body)
    }

    async fn fetch_keys(&self, provider: &Provider, cache: &mut KeyCache) -> Result<(), OidcError> {
        self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        self.keys_generation.fetch_add(1, Ordering::AcqRel);
        let body = self
            .get_json(provider.jwks_uri.as_str(), "identity provider")
            .await
            .map_err(OidcError::Jwks)?;
        #[derive(Deserialize)]
        struct KeySet {
            keys: Vec<Value>,
        }
        let set: KeySet = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Jwks(format!("the key set is not the JSON expected: {e}")))?;
        // A key we cannot read (another type, a future algorithm) is skipped, not fatal.
        cache.keys = set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .collect();
        cache.fetched_at = Some(Instant::now());
        Ok(())
    }

    /// The key to verify a token with, by `kid`; fetches the key set when needed.
    async fn key_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<(String, Jwk), OidcError> {
        let shown_kid = || kid.map_or_else(|| "(none)".to_string(), |k| printable(k, 100));
        let generation_seen = self.keys_generation.load(Ordering::Acquire);
        let provider = self.provider().await?;
        // Held throughout, so concurrent sign-ins share one fetch instead of each making one.
        let mut cache = self.keys.lock().await;

        let stale = cache.fetched_at.is_none_or(|at| at.elapsed() >= JWKS_MAX_AGE);
        if stale {
            let had_keys = cache.fetched_at.is_some();
            if let Err(e) = self.fetch_keys(&provider, &mut cache).await {
                if !had_keys {
                    return Err(e);
                }
                // The keys we have are better than none while the provider is unreachable.
                tracing::warn!(error = %e, "could not refresh the identity provider's keys; keeping the old ones");
            }
        }
        match select_key(&cache.keys, alg, kid) {
            KeyChoice::Found(k) => return Ok((shown_kid(), k.clone())),
            KeyChoice::Unfit => return Err(OidcError::KeyMismatch(shown_kid())),
            KeyChoice::Missing => {}
        }
        if stale {
            // Just fetched: nothing newer to find.
            return Err(OidcError::UnknownKey(shown_kid()));
        }

        // An unknown key: the provider may have rotated its keys. Fetch again, unless someone
        // fetched while we waited for the lock or the last such fetch is too recent.
        let fetched_meanwhile = self.keys_generation.load(Ordering::Acquire) != generation_seen;
        let window = Duration::from_secs(self.settings.jwks_refresh_min_seconds);
        let too_soon = cache.last_unknown_key_refetch.is_some_and(|at| at.elapsed() < window);
        if fetched_meanwhile || too_soon {
            return Err(OidcError::UnknownKey(shown_kid()));
        }
        cache.last_unknown_key_refetch = Some(Instant::now());
        self.fetch_keys(&provider, &mut cache).await?;
        match select_key(&cache.keys, alg, kid) {
            KeyChoice::Found(k) => Ok((shown_kid(), k.clone())),
            KeyChoice::Unfit => Err(OidcError::KeyMismatch(shown_kid())),
            KeyChoice::Missing => Err(OidcError::UnknownKey(shown_kid())),
        }
    }
}

/// 32 random bytes, base64url without padding (43 characters).
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256: base64url(SHA-256(verifier)) (RFC 7636, section 4.2).
fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// At most `max` characters, controls replaced, for echoing provider-given text in messages.
fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn send_error_text(e: http::SendError) -> String {
    match e {
        http::SendError::NotSent(m) | http::SendError::Unknown(m) => m,
    }
}

/// The token endpoint's refusal, reduced to its status and OAuth error code: the description
/// could echo what we sent.
fn token_refusal(status: u16, body: &[u8]) -> String {
    let code = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .filter(|c| {
            !c.is_empty() && c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "_-.".contains(ch))
        });
    match code {
        Some(code) => format!("it answered HTTP {status} ({code})"),
        None => format!("it answered HTTP {status}"),
    }
}

/// An issuer or endpoint must be https, or http on a loopback address (for tests).
fn check_provider_url(value: &str) -> Result<(), String> {
    const WHY: &str = "must be an https URL (http only for loopback)";
    let url = url::Url::parse(value).map_err(|_| WHY.to_string())?;
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(WHY.to_string()),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// Reads the JOSE header ourselves, so that `none` or an unknown algorithm gets a clear refusal
/// rather than a parse error.
fn read_header(token: &str) -> Result<RawHeader, OidcError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(OidcError::Malformed("it is not three dot-separated parts".into()));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| OidcError::Malformed("its header is not base64url".into()))?;
    let header: RawHeader = serde_json::from_slice(&bytes)
        .map_err(|_| OidcError::Malformed("its header is not a JSON object with an alg".into()))?;
    if header.crit.is_some() {
        return Err(OidcError::Malformed(
            "it has critical header extensions we do not know".into(),
        ));
    }
    Ok(header)
}

enum KeyChoice<'a> {
    Found(&'a Jwk),
    /// Keys with this kid exist, but none can verify this algorithm.
    Unfit,
    Missing,
}

/// Whether a key may verify tokens signed with `alg`: a signing key of the right type (and curve),
/// whose own `alg`, if it states one, is `alg`.
fn key_fits(key: &Jwk, alg: Algorithm) -> bool {
    if matches!(&key.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    if let Some(own) = key.common.key_algorithm
        && own != KeyAlgorithm::from(alg)
    {
        return false;
    }
    match (&key.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == EllipticCurve::Ed25519,
        _ => false,
    }
}

fn select_key<'a>(keys: &'a [Jwk], alg: Algorithm, kid: Option<&str>) -> KeyChoice<'a> {
    match kid {
        Some(kid) => {
            let mut named = keys
                .iter()
                .filter(|k| k.common.key_id.as_deref() == Some(kid))
                .peekable();
            if named.peek().is_none() {
                return KeyChoice::Missing;
            }
            named
                .find(|k| key_fits(k, alg))
                .map_or(KeyChoice::Unfit, KeyChoice::Found)
        }
        None => {
            let mut fitting = keys.iter().filter(|k| key_fits(k, alg));
            match (fitting.next(), fitting.next()) {
                (Some(only), None) => KeyChoice::Found(only),
                _ => KeyChoice::Missing,
            }
        }
    }
}

/// What the claims must say.
struct Expected<'a> {
    issuer: &'a str,
    client_id: &'a str,
    nonce: &'a str,
    skew: u64,
}

fn numeric_claim(claims: &Value, name: &'static str) -> Result<Option<i64>, OidcError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(OidcError::MissingClaim(name)),
    }
}

/// The checks every ID token must pass (OpenID Connect Core, section 3.1.3.7), `now` in Unix
/// seconds. Gives the identity it names, before the e-mail and group rules.
fn check_claims(claims: &Value, want: &Expected<'_>, groups_claim: &str, now: i64) -> Result<OidcIdentity, OidcError> {
    if !claims.is_object() {
        return Err(OidcError::Malformed("its payload is not a JSON object".into()));
    }
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(OidcError::MissingClaim("iss"))?;
    if iss != want.issuer {
        return Err(OidcError::WrongIssuer);
    }

    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(OidcError::MissingClaim("aud")),
    };
    if !audiences.contains(&want.client_id) {
        return Err(OidcError::WrongAudience);
    }
    match claims.get("azp") {
        None | Some(Value::Null) if audiences.len() > 1 => return Err(OidcError::WrongAuthorizedParty),
        None | Some(Value::Null) => {}
        Some(azp) if azp.as_str() != Some(want.client_id) => return Err(OidcError::WrongAuthorizedParty),
        Some(_) => {}
    }

    let skew = i64::try_from(want.skew).unwrap_or(i64::MAX);
    let exp = numeric_claim(claims, "exp")?.ok_or(OidcError::MissingClaim("exp"))?;
    if now > exp.saturating_add(skew) {
        return Err(OidcError::Expired);
    }
    let iat = numeric_claim(claims, "iat")?.ok_or(OidcError::MissingClaim("iat"))?;
    if iat > now.saturating_add(skew) {
        return Err(OidcError::NotYetValid);
    }
    if let Some(nbf) = numeric_claim(claims, "nbf")?
        && nbf > now.saturating_add(skew)
    {
        return Err(OidcError::NotYetValid);
    }

    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if want.nonce.is_empty() || !bool::from(nonce.as_bytes().ct_eq(want.nonce.as_bytes())) {
        return Err(OidcError::NonceMismatch);
    }

    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(OidcError::MissingClaim("sub"))?;

    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .map(|e| e.trim().to_lowercase())
        .filter(|e| e.len() >= 3 && e.contains('@') && !e.starts_with('@') && !e.ends_with('@'))
        .ok_or(OidcError::MissingEmail)?;
    let name = ["name", "preferred_username"]
        .iter()
        .filter_map(|c| claims.get(*c).and_then(Value::as_str))
        .map(str::trim)
        .find(|n| !n.is_empty())
        .map_or_else(|| email.clone(), str::to_owned);
    let groups = match claims.get(groups_claim) {
        Some(Value::String(g)) if !g.is_empty() => vec![g.clone()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Ok(OidcIdentity {
        subject: subject.to_owned(),
        email,
        name,
        groups,
    })
}

/// The site's own rules: verified e-mail, allowed domains, allowed groups.
fn check_person(claims: &Value, identity: OidcIdentity, settings: &OidcSettings) -> Result<OidcIdentity, OidcError> {
    if settings.require_verified_email {
        // Some providers send the flag as a string.
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
            _ => true,
        };
        if !verified {
            return Err(OidcError::EmailNotVerified);
        }
    }
    if !settings.allowed_email_domains.is_empty() {
        let domain = identity.email.rsplit_once('@').map_or("", |(_, d)| d);
        let allowed = settings
            .allowed_email_domains
            .iter()
            .any(|d| d.trim_start_matches('@').eq_ignore_ascii_case(domain));
        if !allowed {
            return Err(OidcError::DomainNotAllowed(domain.to_owned()));
        }
    }
    if !settings.allowed_groups.is_empty() && !identity.groups.iter().any(|g| settings.allowed_groups.contains(g)) {
        return Err(OidcError::GroupNotAllowed);
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::JwkSet;
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn settings() -> OidcSettings {
        OidcSettings {
            issuer: "https://login.example.com/realms/acme".into(),
            client_id: "redbutton".into(),
            ..OidcSettings::default()
        }
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://login.example.com/realms/acme",
            client_id: "redbutton",
            nonce: "n-0S6_WzA2Mj",
            skew: 60,
        }
    }

    fn claims() -> Value {
        json!({
            "iss": "https://login.example.com/realms/acme",
            "aud": "redbutton",
            "sub": "248289761001",
            "exp": NOW + 300,
            "iat": NOW,
            "nonce": "n-0S6_WzA2Mj",
            "email": "Jane.Doe@Example.COM",
            "email_verified": true,
            "name": "Jane Doe",
            "groups": ["responders", "sre"],
        })
    }

    fn with(mut base: Value, key: &str, value: Value) -> Value {
        base[key] = value;
        base
    }

    fn without(mut base: Value, key: &str) -> Value {
        base.as_object_mut().expect("claims are an object").remove(key);
        base
    }

    fn check(c: &Value) -> Result<OidcIdentity, OidcError> {
        check_claims(c, &expected(), "groups", NOW)
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_32_bytes_of_base64url_and_differ() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).expect("base64url").len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn settings_validation_names_the_key() {
        assert_eq!(settings().validate(), Ok(()));
        let local = OidcSettings {
            issuer: "http://127.0.0.1:8080".into(),
            ..settings()
        };
        assert_eq!(local.validate(), Ok(()));

        let cases: Vec<(OidcSettings, &str)> = vec![
            (
                OidcSettings::default(),
                "auth.oidc.issuer: must be an https URL (http only for loopback)",
            ),
            (
                OidcSettings {
                    issuer: "http://login.example.com".into(),
                    ..settings()
                },
                "auth.oidc.issuer: must be an https URL (http only for loopback)",
            ),
            (
                OidcSettings {
                    client_id: " ".into(),
                    ..settings()
                },
                "auth.oidc.client_id",
            ),
            (
                OidcSettings {
                    algorithms: vec!["RS256".into(), "none".into()],
                    ..settings()
                },
                "auth.oidc.algorithms: \"none\"",
            ),
            (
                OidcSettings {
                    algorithms: vec!["HS256".into()],
                    ..settings()
                },
                "auth.oidc.algorithms: HS256",
            ),
            (
                OidcSettings {
                    algorithms: vec![],
                    ..settings()
                },
                "auth.oidc.algorithms",
            ),
            (
                OidcSettings {
                    jwks_refresh_min_seconds: 0,
                    ..settings()
                },
                "auth.oidc.jwks_refresh_min_seconds",
            ),
            (
                OidcSettings {
                    clock_skew_seconds: 301,
                    ..settings()
                },
                "auth.oidc.clock_skew_seconds",
            ),
            (
                OidcSettings {
                    scopes: vec!["openid email".into()],
                    ..settings()
                },
                "auth.oidc.scopes",
            ),
            (
                OidcSettings {
                    allowed_email_domains: vec!["a@b".into()],
                    ..settings()
                },
                "auth.oidc.allowed_email_domains",
            ),
        ];
        for (s, want) in cases {
            let got = s.validate().expect_err("should be refused");
            assert!(got.starts_with(want), "{got:?} should start with {want:?}");
        }
    }

    #[test]
    fn settings_read_from_toml_with_defaults() {
        let s: OidcSettings = toml::from_str("issuer = \"https://id.example.org\"\nclient_id = \"rb\"\n")
            .expect("minimal settings parse");
        assert_eq!(s.scopes, ["openid", "email", "profile"]);
        assert_eq!(s.algorithms, ["RS256", "ES256"]);
        assert_eq!(s.groups_claim, "groups");
        assert_eq!(s.clock_skew_seconds, 60);
        assert!(s.require_verified_email);
        assert!(
            toml::from_str::<OidcSettings>("isuer = \"x\"").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn good_claims_give_the_identity() {
        let id = check(&claims()).expect("accepted");
        assert_eq!(
            id,
            OidcIdentity {
                subject: "248289761001".into(),
                email: "jane.doe@example.com".into(),
                name: "Jane Doe".into(),
                groups: vec!["responders".into(), "sre".into()],
            }
        );
    }

    #[test]
    fn issuer_must_match_exactly() {
        let c = with(claims(), "iss", json!("https://login.example.com/realms/acme/"));
        assert_eq!(check(&c), Err(OidcError::WrongIssuer));
        assert_eq!(check(&without(claims(), "iss")), Err(OidcError::MissingClaim("iss")));
    }

    #[test]
    fn audience_and_authorized_party() {
        assert_eq!(
            check(&with(claims(), "aud", json!("other"))),
            Err(OidcError::WrongAudience)
        );
        assert_eq!(
            check(&with(claims(), "aud", json!(["other"]))),
            Err(OidcError::WrongAudience)
        );
        assert!(check(&with(claims(), "aud", json!(["redbutton"]))).is_ok());
        let two = with(claims(), "aud", json!(["redbutton", "other"]));
        assert_eq!(check(&two), Err(OidcError::WrongAuthorizedParty));
        assert!(check(&with(two.clone(), "azp", json!("redbutton"))).is_ok());
        assert_eq!(
            check(&with(two, "azp", json!("other"))),
            Err(OidcError::WrongAuthorizedParty)
        );
        assert_eq!(
            check(&with(claims(), "azp", json!("other"))),
            Err(OidcError::WrongAuthorizedParty)
        );
        assert_eq!(check(&without(claims(), "aud")), Err(OidcError::MissingClaim("aud")));
    }

    #[test]
    fn times_with_leeway() {
        assert!(check(&with(claims(), "exp", json!(NOW - 59))).is_ok(), "within skew");
        assert!(check(&with(claims(), "exp", json!(NOW - 60))).is_ok(), "at the skew");
        assert_eq!(check(&with(claims(), "exp", json!(NOW - 61))), Err(OidcError::Expired));
        assert!(check(&with(claims(), "iat", json!(NOW + 60))).is_ok());
        assert_eq!(
            check(&with(claims(), "iat", json!(NOW + 61))),
            Err(OidcError::NotYetValid)
        );
        assert!(check(&with(claims(), "nbf", json!(NOW + 30))).is_ok());
        assert_eq!(
            check(&with(claims(), "nbf", json!(NOW + 61))),
            Err(OidcError::NotYetValid)
        );
        assert_eq!(check(&without(claims(), "exp")), Err(OidcError::MissingClaim("exp")));
        assert_eq!(check(&without(claims(), "iat")), Err(OidcError::MissingClaim("iat")));
        assert_eq!(
            check(&with(claims(), "exp", json!("soon"))),
            Err(OidcError::MissingClaim("exp"))
        );
        assert!(check(&with(claims(), "exp", json!((NOW + 10) as f64 + 0.5))).is_ok());
    }

    #[test]
    fn nonce_must_be_the_one_sent() {
        assert_eq!(
            check(&with(claims(), "nonce", json!("n-0S6_WzA2Mk"))),
            Err(OidcError::NonceMismatch)
        );
        assert_eq!(
            check(&with(claims(), "nonce", json!("n-0S6"))),
            Err(OidcError::NonceMismatch)
        );
        assert_eq!(check(&without(claims(), "nonce")), Err(OidcError::NonceMismatch));
        let empty = Expected {
            nonce: "",
            ..expected()
        };
        assert_eq!(
            check_claims(&with(claims(), "nonce", json!("")), &empty, "groups", NOW),
            Err(OidcError::NonceMismatch),
            "an empty expected nonce never matches"
        );
    }

    #[test]
    fn subject_email_name_and_groups() {
        assert_eq!(check(&without(claims(), "sub")), Err(OidcError::MissingClaim("sub")));
        assert_eq!(check(&without(claims(), "email")), Err(OidcError::MissingEmail));
        assert_eq!(
            check(&with(claims(), "email", json!("nobody"))),
            Err(OidcError::MissingEmail)
        );

        let c = with(without(claims(), "name"), "preferred_username", json!("jdoe"));
        assert_eq!(check(&c).expect("accepted").name, "jdoe");
        let c = with(without(claims(), "name"), "preferred_username", json!(" "));
        assert_eq!(check(&c).expect("accepted").name, "jane.doe@example.com");

        assert_eq!(
            check(&with(claims(), "groups", json!("sre"))).expect("accepted").groups,
            ["sre"]
        );
        assert!(check(&without(claims(), "groups")).expect("accepted").groups.is_empty());
        assert_eq!(
            check(&with(claims(), "groups", json!(["a", 7, "b"])))
                .expect("accepted")
                .groups,
            ["a", "b"]
        );
        let roles = check_claims(&with(claims(), "roles", json!(["admin"])), &expected(), "roles", NOW);
        assert_eq!(roles.expect("accepted").groups, ["admin"]);
    }

    #[test]
    fn verified_email_domains_and_groups() {
        let person = |c: &Value, s: &OidcSettings| check(c).and_then(|id| check_person(c, id, s));
        let s = settings();
        assert!(person(&claims(), &s).is_ok());
        assert_eq!(
            person(&with(claims(), "email_verified", json!(false)), &s),
            Err(OidcError::EmailNotVerified)
        );
        assert_eq!(
            person(&with(claims(), "email_verified", json!("false")), &s),
            Err(OidcError::EmailNotVerified)
        );
        assert!(
            person(&without(claims(), "email_verified"), &s).is_ok(),
            "absent is accepted"
        );
        let lax = OidcSettings {
            require_verified_email: false,
            ..settings()
        };
        assert!(person(&with(claims(), "email_verified", json!(false)), &lax).is_ok());

        let domains = OidcSettings {
            allowed_email_domains: vec!["@EXAMPLE.com".into(), "example.org".into()],
            ..settings()
        };
        assert!(person(&claims(), &domains).is_ok());
        let c = with(claims(), "email", json!("mallory@example.com.evil.net"));
        assert_eq!(
            person(&c, &domains),
            Err(OidcError::DomainNotAllowed("example.com.evil.net".into()))
        );
        let c = with(claims(), "email", json!("mallory@sub.example.com"));
        assert_eq!(
            person(&c, &domains),
            Err(OidcError::DomainNotAllowed("sub.example.com".into()))
        );

        let groups = OidcSettings {
            allowed_groups: vec!["sre".into(), "ops".into()],
            ..settings()
        };
        assert!(person(&claims(), &groups).is_ok());
        assert_eq!(
            person(&with(claims(), "groups", json!(["SRE"])), &groups),
            Err(OidcError::GroupNotAllowed)
        );
        assert_eq!(
            person(&without(claims(), "groups"), &groups),
            Err(OidcError::GroupNotAllowed)
        );
    }

    fn key_set() -> JwkSet {
        serde_json::from_value(json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        ]}))
        .expect("a key set")
    }

    #[test]
    fn keys_are_chosen_by_kid_type_and_algorithm() {
        let keys = key_set().keys;
        assert!(
            matches!(select_key(&keys, Algorithm::RS256, Some("rsa")), KeyChoice::Found(k) if k.common.key_id.as_deref() == Some("rsa"))
        );
        assert!(
            matches!(select_key(&keys, Algorithm::ES256, Some("rsa")), KeyChoice::Unfit),
            "RSA key, EC alg"
        );
        assert!(
            matches!(select_key(&keys, Algorithm::RS384, Some("rsa")), KeyChoice::Unfit),
            "key says RS256"
        );
        assert!(
            matches!(select_key(&keys, Algorithm::RS256, Some("enc")), KeyChoice::Unfit),
            "encryption key"
        );
        assert!(matches!(
            select_key(&keys, Algorithm::ES256, Some("ec")),
            KeyChoice::Found(_)
        ));
        assert!(
            matches!(select_key(&keys, Algorithm::ES384, Some("ec")), KeyChoice::Unfit),
            "P-256 key"
        );
        assert!(matches!(
            select_key(&keys, Algorithm::RS256, Some("new")),
            KeyChoice::Missing
        ));
        // Without a kid: only when exactly one key fits.
        assert!(matches!(select_key(&keys, Algorithm::ES256, None), KeyChoice::Found(_)));
        assert!(matches!(select_key(&keys, Algorithm::RS256, None), KeyChoice::Found(_)));
        assert!(
            matches!(select_key(&keys, Algorithm::PS256, None), KeyChoice::Missing),
            "the one RSA signing key is for RS256 only"
        );
        let two_ec = serde_json::from_value::<JwkSet>(json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        ]}))
        .expect("a key set");
        assert!(
            matches!(select_key(&two_ec.keys, Algorithm::ES256, None), KeyChoice::Missing),
            "which one?"
        );
    }

    #[test]
    fn headers_are_read_before_any_key_is_touched() {
        let header = |h: &Value| format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(h.to_string()));
        let h = read_header(&header(&json!({"alg": "none"}))).expect("readable");
        assert_eq!(h.alg, "none");
        assert_eq!(
            read_header(&header(&json!({"alg": "RS256", "kid": "k"})))
                .expect("readable")
                .kid
                .as_deref(),
            Some("k")
        );
        assert!(matches!(read_header("a.b"), Err(OidcError::Malformed(_))));
        assert!(matches!(read_header("a.b.c.d"), Err(OidcError::Malformed(_))));
        assert!(matches!(read_header("!!!.e30.x"), Err(OidcError::Malformed(_))));
        assert!(matches!(
            read_header(&header(&json!({"alg": "RS256", "crit": ["exp"]}))),
            Err(OidcError::Malformed(_))
        ));

        let client = OidcClient::new(settings(), None, "https://rb.example.com/auth/callback".into()).expect("client");
        for refused in ["none", "None", "HS256", "hs512", "RS384", "ES384", "XYZ"] {
            assert_eq!(
                client.allowed_algorithm(refused),
                Err(OidcError::AlgorithmNotAllowed(refused.into()))
            );
        }
        assert_eq!(client.allowed_algorithm("ES256"), Ok(Algorithm::ES256));
    }

    #[test]
    fn scope_always_starts_with_openid() {
        let s = OidcSettings {
            scopes: vec!["email".into(), "groups".into(), "openid".into()],
            ..settings()
        };
        let client = OidcClient::new(s, None, "https://rb.example.com/cb".into()).expect("client");
        assert_eq!(client.scope(), "openid email groups");
    }

    #[test]
    fn nothing_secret_in_debug_or_refusals() {
        let client = OidcClient::new(
            settings(),
            Some("s3cr3t-value".into()),
            "https://rb.example.com/cb".into(),
        )
        .expect("client");
        assert!(!format!("{client:?}").contains("s3cr3t"));
        let body = br#"{"error":"invalid_grant","error_description":"code SplxlOBeZQQYbYS6WxSbIA is used"}"#;
        assert_eq!(token_refusal(400, body), "it answered HTTP 400 (invalid_grant)");
        assert_eq!(token_refusal(400, br#"{"error":"<script>"}"#), "it answered HTTP 400");
        assert_eq!(token_refusal(502, b"Bad gateway"), "it answered HTTP 502");
    }

    #[test]
    fn bad_client_arguments_are_refused_without_network() {
        assert!(matches!(
            OidcClient::new(settings(), None, "not a url".into()),
            Err(OidcError::Config(_))
        ));
        assert!(matches!(
            OidcClient::new(settings(), Some(String::new()), "https://rb.example.com/cb".into()),
            Err(OidcError::Config(_))
        ));
        assert!(matches!(
            OidcClient::new(OidcSettings::default(), None, "https://rb.example.com/cb".into()),
            Err(OidcError::Config(_))
        ));
    }
}
