//! The crash drill: the real server binary, every integration pointed at local test vendors, 100
//! declarations while the process is killed with SIGKILL at random moments and started again.
//! At the end every declaration that got an answer exists, and each vendor saw each side effect
//! once: one channel, one summary and one announcement per incident, one ticket, one page, one
//! email (by Message-ID) and one webhook id per event. It runs on SQLite, and on PostgreSQL when
//! TEST_DATABASE_URL is set.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;
use crate::slack::{CENTRAL, SlackWorld};

/// A Jira that remembers the issues it created and answers label searches from them.
#[derive(Clone, Default)]
pub struct FakeJira(pub Arc<Mutex<Vec<Issue>>>);

/// A created issue: its key and labels.
pub type Issue = (String, Vec<String>);

impl Respond for FakeJira {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let mut issues = self.0.lock().unwrap();
        match req.url.path() {
            "/rest/api/3/issue" => {
                let key = format!("OPS-{}", issues.len() + 1);
                let labels = body["fields"]["labels"]
                    .as_array()
                    .map(|l| l.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                issues.push((key.clone(), labels));
                ResponseTemplate::new(201)
                    .set_body_json(json!({"id": "1", "key": key}))
                    .set_delay(Duration::from_millis(30))
            }
            "/rest/api/3/search/jql" => {
                let jql = body["jql"].as_str().unwrap_or_default();
                let label = jql.split('"').nth(1).unwrap_or_default();
                let found: Vec<Value> = issues
                    .iter()
                    .filter(|(_, labels)| labels.iter().any(|l| l == label))
                    .map(|(k, _)| json!({"key": k}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"issues": found}))
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

struct Process {
    child: Option<Child>,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Process {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_redbutton"))
            .arg("--config")
            .arg(&self.config)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .env("DRILL_SLACK", "xoxb-test-token-1")
            .env("DRILL_JIRA", "jira-token")
            .env("DRILL_PD", "pd-key")
            .env("DRILL_HOOK", "a-drill-webhook-secret-long-enough")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no grace period, leases left behind.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A browser's session that keeps pressing until it gets an answer, with the same form.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: Mutex<HashMap<String, String>>,
}

impl Browser {
    async fn send(&self, post: Option<&[(&str, &str)]>, path: &str) -> Option<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let req = match post {
            Some(form) => self.client.post(url).header("origin", &self.base).form(form),
            None => self.client.get(url),
        };
        let r = req.header("cookie", cookie_header(&self.cookies)).send().await.ok()?;
        keep_cookies(&self.cookies, &r);
        Some(r)
    }

    /// Retries through restarts until the server answers (with a bound).
    async fn until_answered(&self, post: Option<&[(&str, &str)]>, path: &str) -> reqwest::Response {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(r) = self.send(post, path).await
                && r.status().as_u16() != 503
            {
                return r;
            }
            assert!(Instant::now() < deadline, "the server never came back");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test]
async fn declarations_survive_sigkill_and_every_side_effect_happens_once() {
    let slack = SlackWorld::start().await;
    slack.fake.0.lock().unwrap().delay = Duration::from_millis(15);
    let jira_server = MockServer::start().await;
    let jira = FakeJira::default();
    Mock::given(path_regex("^/rest/api/3/.*"))
        .respond_with(jira.clone())
        .mount(&jira_server)
        .await;
    let pagerduty = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(json!({"status": "success", "dedup_key": "k"}))
                .set_delay(Duration::from_millis(20)),
        )
        .mount(&pagerduty)
        .await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204).set_delay(Duration::from_millis(20)))
        .mount(&hooks)
        .await;
    let sink = SmtpSink::start();

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // SQLite in a temp dir, or a fresh PostgreSQL database when TEST_DATABASE_URL is set.
    let test_db = TestDb::new();
    let config = dir.path().join("drill.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
[database]
url = "{db}"
[outbox]
delivery_timeout_ms = 3000
lease_ms = 6000
poll_interval_ms = 100
backoff_base_ms = 100
backoff_max_ms = 1000
[[services]]
id = "checkout"
email_to = ["payments@example.com"]
[integrations.email]
host = "127.0.0.1"
port = {smtp}
tls = "none"
[integrations.slack]
base_url = "{slack}/api"
token_env = "DRILL_SLACK"
announce_channel = "{CENTRAL}"
[integrations.jira]
base_url = "{jira}"
email = "bot@example.com"
token_env = "DRILL_JIRA"
project = "OPS"
[integrations.pagerduty]
base_url = "{pd}"
routing_key_env = "DRILL_PD"
page_at_or_above = "SEV2"
[[integrations.webhooks]]
name = "audit"
url = "{hooks}/hook"
secret_env = "DRILL_HOOK"
"#,
            db = test_db.url,
            smtp = sink.port,
            slack = slack.server.uri(),
            jira = jira_server.uri(),
            pd = pagerduty.uri(),
            hooks = hooks.uri(),
        ),
    )
    .unwrap();
    let mut server = Process {
        child: None,
        config,
        log: dir.path().join("server.log"),
    };
    server.start();

    redbutton::notifiers::http::install_crypto_provider();
    let browser = Browser {
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
        base: format!("http://127.0.0.1:{port}"),
        cookies: Mutex::new(HashMap::new()),
    };
    let html = browser.until_answered(None, "/identify").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    let r = browser
        .until_answered(
            Some(&[
                ("csrf", &csrf),
                ("next", "/"),
                ("name", "Drill Person"),
                ("email", "drill@example.com"),
            ]),
            "/identify",
        )
        .await;
    assert_eq!(r.status(), 303);
    let html = browser.until_answered(None, "/declare").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf");

    // The killer: SIGKILL at random moments, start again after a short outage.
    let server = Arc::new(tokio::sync::Mutex::new(server));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kills = {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let mut kills = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(rand::random_range(250..700))).await;
                let mut s = server.lock().await;
                s.kill();
                kills += 1;
                tokio::time::sleep(Duration::from_millis(rand::random_range(20..200))).await;
                s.start();
            }
            kills
        })
    };

    let mut answered: BTreeMap<i64, String> = BTreeMap::new();
    for i in 0..100 {
        let key = uuid::Uuid::new_v4().to_string();
        let title = format!("Drill {i}: checkout errors");
        let form = [
            ("csrf", csrf.as_str()),
            ("idempotency_key", key.as_str()),
            ("title", title.as_str()),
            ("severity", "SEV1"),
            ("services", "checkout"),
        ];
        let r = browser.until_answered(Some(&form), "/declare").await;
        assert_eq!(r.status(), 303, "declaration {i}");
        let n = number_from_location(&r);
        assert!(answered.insert(n, title).is_none(), "one incident per pressed form");
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let kills = kills.await.unwrap();

    // Let the last process finish everything.
    let url = redbutton::db::DbUrl::parse(&test_db.url).unwrap();
    let db = redbutton::db::Db::connect(&url, 2, 5_000).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows: Vec<(String, String, String, Option<String>)> = db
            .run(|conn| {
                use diesel::prelude::*;
                use redbutton::db::schema::outbox;
                outbox::table
                    .select((
                        outbox::state,
                        outbox::notifier,
                        outbox::idempotency_key,
                        outbox::last_error,
                    ))
                    .load(conn)
            })
            .await
            .unwrap();
        if rows.len() >= 100 * 6 && rows.iter().all(|r| r.0 == "done") {
            break;
        }
        let open: Vec<_> = rows.iter().filter(|r| r.0 != "done").collect();
        assert!(
            Instant::now() < deadline && !open.iter().any(|r| r.0 == "dead"),
            "deliveries did not settle ({} rows): {open:?}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.lock().await.kill();

    // Every answered declaration exists, once.
    let stored: Vec<(i64, String)> = db
        .run(|conn| {
            use diesel::prelude::*;
            use redbutton::db::schema::incidents;
            incidents::table
                .select((incidents::number, incidents::title))
                .load(conn)
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 100, "no extra incidents");
    for (n, title) in &stored {
        assert_eq!(answered.get(n), Some(title), "INC-{n}");
    }

    // Slack: one channel, one summary, one pin per incident; one announcement each.
    let channels = slack.channels();
    assert_eq!(channels.len(), 100, "one channel per incident");
    for c in &channels {
        assert_eq!(slack.messages(&c.0).len(), 1, "one summary in {}", c.1);
        assert_eq!(c.4, 1, "one pin in {}", c.1);
        assert_eq!(c.5, 2, "two bookmarks (incident, ticket) in {}", c.1);
    }
    assert_eq!(slack.messages(CENTRAL).len(), 100, "one announcement per incident");

    // Jira: one ticket per incident.
    let issues = jira.0.lock().unwrap().clone();
    assert_eq!(issues.len(), 100, "one ticket per incident");

    // PagerDuty: one incident key per incident (PagerDuty merges repeats of a key into one page).
    let triggers: Vec<Value> = pagerduty
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let keys: HashSet<String> = triggers
        .iter()
        .map(|t| t["dedup_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 100, "one page per incident");

    // Webhooks: one id per event (receivers deduplicate repeats by id).
    let hook_ids: HashSet<String> = hooks
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.headers.get("webhook-id").unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(hook_ids.len(), 100, "one webhook id per event");

    // Email: one Message-ID per event.
    let mails = sink.wait_for(100, Duration::from_secs(10)).await;
    let ids: HashSet<String> = mails.iter().filter_map(|m| m.header("Message-ID")).collect();
    assert_eq!(ids.len(), 100, "one email per event");

    let repeats = (
        triggers.len() - keys.len(),
        hooks.received_requests().await.unwrap().len() - hook_ids.len(),
        mails.len() - ids.len(),
    );
    println!(
        "crash drill: {kills} SIGKILLs during 100 declarations; 100 incidents, 100 channels, 100 tickets, \
         100 pages, 100 webhook ids, 100 emails; repeated requests that the vendor deduplicates \
         (PagerDuty dedup_key, webhook-id, Message-ID): {repeats:?}"
    );
    assert!(kills >= 3, "the drill killed the server only {kills} times");
}
