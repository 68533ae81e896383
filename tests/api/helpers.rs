//! The test harness: a real app on port 0 with a fresh database (SQLite in a temp dir, or a new
//! PostgreSQL database when `TEST_DATABASE_URL` is set), a real SMTP server on loopback, and a
//! browser-like client that identifies itself and carries the session cookie and CSRF token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use futures_util::future::BoxFuture;
use redbutton::config::{EmailSettings, Settings, SmtpTls};
use redbutton::db::models::OutboxRow;
use redbutton::notifiers::{Delivered, Delivery, Notifier, NotifyError};
use redbutton::startup::{AppHandle, Application, Options};
use redbutton::state::AppState;

/// Whether the tests run against PostgreSQL.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

/// A fresh, empty database for one test. Dropped with the test (SQLite temp dir) or left for the
/// throwaway cluster (PostgreSQL).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn new() -> Self {
        match postgres_url() {
            Some(admin) => {
                let name = format!("rb_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = diesel::PgConnection::establish(&admin).expect("connect to TEST_DATABASE_URL");
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create test database");
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .expect("database URL has a path");
                TestDb {
                    url: format!("{base}/{name}"),
                    _dir: None,
                }
            }
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                TestDb { url, _dir: Some(dir) }
            }
        }
    }
}

/// Settings tuned for tests: fast polling, short backoff.
pub fn fast_settings() -> Settings {
    let mut s = Settings::default();
    s.outbox.poll_interval_ms = 50;
    s.outbox.backoff_base_ms = 100;
    s.outbox.backoff_max_ms = 400;
    s.outbox.delivery_timeout_ms = 3_000;
    s.outbox.lease_ms = 6_000;
    s.outbox.shutdown_grace_ms = 5_000;
    // Suites sign in and call the API far faster than people do; the limits have their own tests.
    s.auth.sign_in_per_minute = 1_000_000;
    s.auth.api_per_minute = 1_000_000;
    s
}

/// A configured service with an optional email list.
pub fn service(id: &str, name: &str, email_to: &[&str]) -> redbutton::config::Service {
    redbutton::config::Service {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        owners: vec![],
        email_to: email_to.iter().map(|e| e.to_string()).collect(),
        responders: vec![],
        conference_url: None,
    }
}

/// Email settings pointing at a sink.
pub fn email_to_sink(port: u16) -> EmailSettings {
    EmailSettings {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: SmtpTls::None,
        username: None,
        password_env: None,
        from: "Big Red Button <redbutton@example.com>".into(),
        always_to: vec!["incidents@example.com".into()],
    }
}

/// A running app.
pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub handle: AppHandle,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub client: reqwest::Client,
    pub cookies: Mutex<HashMap<String, String>>,
}

/// Options for spawning.
pub struct Spawn {
    pub settings: Settings,
    pub db_url: String,
    pub notifiers: Vec<Arc<dyn Notifier>>,
    pub worker: bool,
}

impl Spawn {
    pub fn new(db: &TestDb) -> Self {
        Spawn {
            settings: fast_settings(),
            db_url: db.url.clone(),
            notifiers: vec![],
            worker: true,
        }
    }
}

impl TestApp {
    pub async fn spawn(spec: Spawn) -> TestApp {
        let mut settings = spec.settings;
        settings.server.listen = Some("127.0.0.1:0".into());
        let app = Application::build(
            settings,
            Options {
                listen: None,
                database_url: Some(spec.db_url),
                extra_notifiers: spec.notifiers,
                run_worker: spec.worker,
                handle_signals: false,
            },
        )
        .await
        .expect("app builds");
        let port = app.port();
        let state = app.state().clone();
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        redbutton::notifiers::http::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            state,
            handle,
            task: Some(task),
            client,
            cookies: Mutex::new(HashMap::new()),
        }
    }

    /// Stops the server and the worker (the worker gets its grace period).
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    }

    /// The `Cookie` header this client sends.
    pub fn cookie_header(&self) -> String {
        cookie_header(&self.cookies)
    }

    fn keep_cookies(&self, resp: &reqwest::Response) {
        keep_cookies(&self.cookies, resp);
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let resp = self
            .client
            .get(format!("{}{path}", self.address))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep_cookies(&resp);
        resp
    }

    pub async fn get_html(&self, path: &str) -> String {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.text().await.unwrap()
    }

    /// Posts a form given as (key, value) pairs (keys may repeat).
    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        let body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.post_raw(path, "application/x-www-form-urlencoded", body.into_bytes())
            .await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        let resp = self
            .client
            .post(format!("{}{path}", self.address))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        self.keep_cookies(&resp);
        resp
    }

    /// Names the person (dev sign-in) and returns the app for chaining.
    pub async fn identify(&self, name: &str, email: &str) {
        let html = self.get_html("/identify").await;
        let csrf = hidden(&html, "csrf");
        let resp = self
            .post_form(
                "/identify",
                &[("csrf", &csrf), ("next", "/"), ("name", name), ("email", email)],
            )
            .await;
        assert_eq!(resp.status(), 303, "identify should redirect");
    }

    /// The CSRF token and a fresh idempotency key from the declare form.
    pub async fn declare_form(&self) -> (String, String) {
        let html = self.get_html("/declare").await;
        (hidden(&html, "csrf"), hidden(&html, "idempotency_key"))
    }

    /// Declares through the real form; returns the response.
    pub async fn declare(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        let (csrf, key) = self.declare_form().await;
        let mut pairs: Vec<(&str, &str)> = vec![("csrf", &csrf), ("idempotency_key", &key)];
        pairs.extend_from_slice(fields);
        self.post_form("/declare", &pairs).await
    }

    /// Declares and returns the new incident number.
    pub async fn declare_ok(&self, title: &str) -> i64 {
        let resp = self.declare(&[("title", title)]).await;
        assert_eq!(resp.status(), 303, "declare should redirect");
        number_from_location(&resp)
    }

    /// The CSRF token of the signed-in session (read from any page).
    /// Moves incident `n`'s status with the page's form; must be accepted.
    pub async fn change_status(&self, n: i64, from: &str, to: &str) {
        let csrf = self.csrf().await;
        let r = self
            .post_form(
                &format!("/incidents/{n}/status"),
                &[("csrf", &csrf), ("expected", from), ("status", to)],
            )
            .await;
        assert_eq!(r.status(), 303, "status {from} -> {to}");
    }

    /// Changes incident `n`'s severity with the page's form; must be accepted.
    pub async fn change_severity(&self, n: i64, from: &str, to: &str) {
        let csrf = self.csrf().await;
        let r = self
            .post_form(
                &format!("/incidents/{n}/severity"),
                &[("csrf", &csrf), ("expected", from), ("severity", to)],
            )
            .await;
        assert_eq!(r.status(), 303, "severity {from} -> {to}");
    }

    /// What integrations call incident `n` outside (`inc-<n>-<hash>`).
    pub async fn external_key(&self, n: i64) -> String {
        let row = self
            .state
            .db
            .run(move |conn| redbutton::db::models::incident::find_by_number(conn, n))
            .await
            .unwrap()
            .unwrap();
        let snap = redbutton::services::lifecycle::snapshot(&self.state, &row, vec![]);
        snap.external_key()
    }

    pub async fn csrf(&self) -> String {
        hidden(&self.get_html("/declare").await, "csrf")
    }

    pub async fn incident_count(&self) -> i64 {
        use redbutton::db::schema::incidents::dsl::*;
        self.state
            .db
            .run(|c| incidents.count().get_result::<i64>(c))
            .await
            .unwrap()
    }

    pub async fn timeline_count(&self) -> i64 {
        use redbutton::db::schema::timeline_entries::dsl::*;
        self.state
            .db
            .run(|c| timeline_entries.count().get_result::<i64>(c))
            .await
            .unwrap()
    }

    pub async fn outbox_rows(&self) -> Vec<OutboxRow> {
        use redbutton::db::schema::outbox::dsl as o;
        self.state
            .db
            .run(|c| o::outbox.order(o::id.asc()).select(OutboxRow::as_select()).load(c))
            .await
            .unwrap()
    }

    /// Waits until every outbox row is in one of `states`.
    pub async fn wait_outbox(&self, states: &[&str], within: Duration) -> Vec<OutboxRow> {
        let deadline = Instant::now() + within;
        loop {
            let rows = self.outbox_rows().await;
            if !rows.is_empty() && rows.iter().all(|r| states.contains(&r.state.as_str())) {
                return rows;
            }
            if Instant::now() > deadline {
                panic!(
                    "outbox did not settle in {within:?}: {:?}",
                    rows.iter()
                        .map(|r| (&r.notifier, &r.state, r.attempts, &r.last_error))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The `Cookie` header a client with this jar sends.
pub fn cookie_header(jar: &Mutex<HashMap<String, String>>) -> String {
    jar.lock()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Keeps the cookies an answer sets, as a browser would.
pub fn keep_cookies(jar: &Mutex<HashMap<String, String>>, resp: &reqwest::Response) {
    for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
        let pair = v.to_str().unwrap_or_default().split(';').next().unwrap_or_default();
        if let Some((k, val)) = pair.split_once('=') {
            jar.lock().unwrap().insert(k.trim().to_string(), val.trim().to_string());
        }
    }
}

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The value of a hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("input[name=\"{name}\"]")).unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_else(|| panic!("no input {name} in page"))
        .to_string()
}

/// Text of the elements matching a CSS selector.
pub fn texts(html: &str, selector: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).unwrap();
    doc.select(&sel)
        .map(|e| {
            e.text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

pub fn number_from_location(resp: &reqwest::Response) -> i64 {
    let loc = resp.headers().get("location").expect("location").to_str().unwrap();
    loc.strip_prefix("/incidents/")
        .expect("incident location")
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// A real SMTP server (aiosmtpd, see tests/support/smtp_sink.py) on a loopback port.

/// A received message.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub data: String,
}

impl Mail {
    /// The message with quoted-printable soft line breaks and `=3D` undone (enough to read
    /// the HTML part in assertions).
    pub fn decoded(&self) -> String {
        self.data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        for l in self.data.lines() {
            if l.is_empty() {
                break;
            }
            if l.to_ascii_lowercase().starts_with(&prefix) {
                return Some(l[prefix.len()..].trim().to_string());
            }
        }
        None
    }
}

pub struct SmtpSink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

fn python() -> String {
    std::env::var("REDBUTTON_TEST_PYTHON").unwrap_or_else(|_| {
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
        if venv.exists() {
            venv.display().to_string()
        } else {
            "python3".into()
        }
    })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = SmtpSink {
            port: free_port(),
            dir,
            child: None,
        };
        sink.restart();
        sink
    }

    /// A sink whose port is reserved but which is not running (SMTP down).
    pub fn stopped() -> SmtpSink {
        SmtpSink {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    pub fn restart(&mut self) {
        use std::io::BufRead;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink (is aiosmtpd installed? run bash scripts/test.sh)");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
        assert!(line.starts_with("READY"), "SMTP sink did not start: {line:?}");
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn set_delay(&self, secs: f64) {
        std::fs::write(self.dir.path().join("delay"), secs.to_string()).unwrap();
    }

    pub fn clear_delay(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("delay"));
    }

    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().map(|x| x == "json").unwrap_or(false))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + within;
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Notifiers for tests of the worker itself.

/// Counts deliveries per idempotency key; can be shared between app instances.
#[derive(Clone, Default)]
pub struct CountingNotifier {
    pub name: &'static str,
    pub seen: Arc<Mutex<HashMap<String, usize>>>,
    pub delay: Duration,
}

impl Notifier for CountingNotifier {
    fn name(&self) -> &str {
        self.name
    }

    fn deliver<'a>(&'a self, d: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            *self.seen.lock().unwrap().entry(d.idempotency_key.clone()).or_default() += 1;
            Ok(Delivered {
                external_id: Some(format!("count-{}", d.id)),
                external_url: Some(format!("https://example.com/{}", d.id)),
            })
        })
    }
}

/// Panics on every delivery.
pub struct PanickingNotifier;

impl Notifier for PanickingNotifier {
    fn name(&self) -> &str {
        "panicky"
    }

    fn deliver<'a>(&'a self, _d: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(async move { panic!("integration bug") })
    }
}

/// Never answers (until the worker's timeout cuts it off).
pub struct HangingNotifier;

impl Notifier for HangingNotifier {
    fn name(&self) -> &str {
        "hangs"
    }

    fn deliver<'a>(&'a self, _d: &'a Delivery) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(std::future::pending())
    }
}

/// A routing rule sending everything (notes too) to `notifiers`.
pub fn route_all_to(settings: &mut Settings, notifiers: &[&str]) {
    settings.routing.push(redbutton::config::RoutingRule {
        name: "test".into(),
        events: redbutton::domain::EventKind::ALL
            .iter()
            .filter(|k| **k != redbutton::domain::EventKind::Nudge)
            .map(|k| k.as_str().to_string())
            .collect(),
        severities: vec![],
        services: vec![],
        drills: true,
        notifiers: notifiers.iter().map(|s| s.to_string()).collect(),
        email_to: vec![],
        service_lists: true,
    });
}
