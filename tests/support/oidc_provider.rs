//! Starts the real OpenID Connect provider in tests/oidc-provider (`node provider.mjs`) for a test,
//! and stops it when dropped. Include it with
//! `#[path = "support/oidc_provider.rs"] mod oidc_provider;`.
//!
//! It needs Node.js and `npm ci` run in tests/oidc-provider (scripts/test.sh does that). Without
//! them [`start`] says why on stderr and gives `None`, so the test can return early, unless
//! `REDBUTTON_REQUIRE_OIDC=1` (set by .ci/run), which makes it panic instead.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the provider may take to print its issuer line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the provider is started with.
#[derive(Debug, Clone)]
pub struct ProviderOptions<'a> {
    /// Secret of the confidential client `redbutton`.
    pub client_secret: &'a str,
    /// The client's registered redirect URI (any port matches on loopback).
    pub redirect_uri: &'a str,
    /// The test user's claims.
    pub email: &'a str,
    pub name: &'a str,
    pub groups: &'a [&'a str],
}

/// A running provider; killed on drop.
pub struct OidcProvider {
    /// Its issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
    child: Child,
    /// Held open: the provider exits when its standard input closes, so it also goes away if this
    /// test process dies without running `Drop`.
    _stdin: Option<ChildStdin>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("oidc-provider")
}

/// `None` (after saying why) when the provider cannot run here and it is not required.
fn skip(why: &str) -> Option<OidcProvider> {
    if std::env::var("REDBUTTON_REQUIRE_OIDC").is_ok_and(|v| v == "1") {
        panic!("REDBUTTON_REQUIRE_OIDC=1 but the test OpenID Connect provider cannot run: {why}");
    }
    eprintln!("skipped: {why} (run `npm ci` in tests/oidc-provider, or scripts/test.sh, to run this test)");
    None
}

/// Starts the provider on a free loopback port and waits for its issuer line.
pub fn start(options: &ProviderOptions<'_>) -> Option<OidcProvider> {
    let dir = provider_dir();
    if !dir.join("node_modules").join("oidc-provider").is_dir() {
        return skip("tests/oidc-provider/node_modules is missing");
    }
    let mut command = Command::new("node");
    command
        .current_dir(&dir)
        .arg("provider.mjs")
        .args(["--port", "0"])
        .args(["--client-secret", options.client_secret])
        .args(["--redirect-uri", options.redirect_uri])
        .env("OIDC_TEST_EMAIL", options.email)
        .env("OIDC_TEST_NAME", options.name)
        .env("OIDC_TEST_GROUPS", options.groups.join(","))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return skip("node is not installed"),
        Err(e) => panic!("could not start node: {e}"),
    };
    let stdin = child.stdin.take();

    // Keep what it says on stderr, to show if it fails to start.
    let said = Arc::new(Mutex::new(String::new()));
    if let Some(mut stderr) = child.stderr.take() {
        let said = said.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = said.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
    }

    // The issuer line, read on a thread so that a provider that never prints it cannot hang us.
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(issuer) = v.get("issuer").and_then(|i| i.as_str())
            {
                let _ = tx.send(issuer.to_string());
            }
        }
    });
    let mut provider = OidcProvider {
        issuer: String::new(),
        child,
        _stdin: stdin,
    };
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(issuer) => {
            provider.issuer = issuer;
            Some(provider)
        }
        Err(_) => {
            let status = provider.child.try_wait().ok().flatten();
            drop(provider);
            std::thread::sleep(Duration::from_millis(100));
            let said = said.lock().map(|s| s.clone()).unwrap_or_default();
            panic!("the test OpenID Connect provider did not start (exit status {status:?}); it said:\n{said}");
        }
    }
}

/// Cookies by hand: name to value, dropping those the server expires.
#[derive(Default)]
pub struct Jar(pub HashMap<String, String>);

impl Jar {
    pub fn keep(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let set = set.to_str().unwrap_or_default();
            let mut parts = set.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let expired = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("expires=thu, 01 jan 1970")
            });
            if expired || value.trim().is_empty() {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The one form on a page: its absolute action and its inputs' values.
pub fn read_form(page_url: &url::Url, html: &str) -> (url::Url, Vec<(String, String)>) {
    let doc = scraper::Html::parse_document(html);
    let form_sel = scraper::Selector::parse("form").unwrap();
    let input_sel = scraper::Selector::parse("input[name]").unwrap();
    let form = doc
        .select(&form_sel)
        .next()
        .unwrap_or_else(|| panic!("no form in page:\n{html}"));
    let action = page_url
        .join(form.value().attr("action").unwrap_or(""))
        .expect("form action");
    let fields = form
        .select(&input_sel)
        .map(|i| {
            let name = i.value().attr("name").unwrap_or_default().to_owned();
            let value = match name.as_str() {
                "login" => "ada".to_owned(),
                "password" => "any password works here".to_owned(),
                _ => i.value().attr("value").unwrap_or_default().to_owned(),
            };
            (name, value)
        })
        .collect();
    (action, fields)
}

/// Plays the browser from the authorize URL through the login and consent forms, and returns
/// where the provider finally sends it back to us (not followed).
pub async fn sign_in_as_a_browser(authorize_url: &str, redirect_uri: &str) -> url::Url {
    redbutton::notifiers::http::install_crypto_provider();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut jar = Jar::default();
    let mut next = url::Url::parse(authorize_url).expect("authorize URL");
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..12 {
        let request = match form.take() {
            Some(fields) => browser.post(next.clone()).form(&fields),
            None => browser.get(next.clone()),
        };
        let response = request
            .header(reqwest::header::COOKIE, jar.header())
            .send()
            .await
            .expect("request to the provider");
        jar.keep(&response);
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers()[reqwest::header::LOCATION]
                .to_str()
                .expect("Location");
            let target = next.join(location).expect("a redirect URL");
            if target.as_str().starts_with(redirect_uri) {
                return target;
            }
            next = target;
            continue;
        }
        let html = response.text().await.expect("page");
        assert!(status.is_success(), "{status} at {next}:\n{html}");
        let (action, fields) = read_form(&next, &html);
        next = action;
        form = Some(fields);
    }
    panic!("the provider did not send the browser back within 12 steps");
}
