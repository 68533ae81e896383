//! `cargo bench --bench redbutton-bench -- [--postgres URL] [--json FILE] [--sizes 1000,10000,100000] [--faults]`
//!
//! Starts the release server (the real binary, a separate process) on loopback with a fresh
//! database and measures what the product promises: that pressing the button is instant, that
//! pages stay fast with a long history, that a declaration reaches every integration in about the
//! time of the slowest one, and that the server is small and starts at once. Prints a table and
//! can write the figures as JSON. Timings are measured here and printed; nothing is asserted.
//!
//! `--faults` measures only the fault table instead: declare latency at concurrency 8 with every
//! integration on and healthy, then with each vendor in turn hanging past the delivery time limit
//! and refusing connections, each as a ratio to the healthy figure (the target is at most 2x).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redbutton::db::models::{NewIncident, NewTimelineEntry, incident, timeline};
use redbutton::db::{Db, DbUrl};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Arguments and results

struct Args {
    /// Run by `cargo test` (no `--bench` flag): a small smoke run that keeps the harness working;
    /// its figures mean nothing.
    smoke: bool,
    postgres: Option<String>,
    json: Option<PathBuf>,
    sizes: Vec<usize>,
    declares: usize,
    /// `--faults`: only the fault table (declare latency while one vendor hangs or refuses).
    faults: bool,
}

fn args() -> Args {
    let mut a = Args {
        smoke: !std::env::args().any(|a| a == "--bench"),
        postgres: None,
        json: None,
        sizes: vec![1_000, 10_000, 100_000],
        declares: 2_000,
        faults: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--postgres" => a.postgres = it.next(),
            "--json" => a.json = it.next().map(PathBuf::from),
            "--sizes" => {
                a.sizes = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect()
            }
            "--declares" => a.declares = it.next().and_then(|s| s.parse().ok()).unwrap_or(a.declares),
            "--faults" => a.faults = true,
            // cargo bench passes --bench to harness-less benchmarks.
            _ => {}
        }
    }
    if a.smoke {
        a.sizes = vec![300];
        a.declares = 80;
        a.postgres = None;
    }
    a
}

#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String)>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn add(&mut self, backend: &str, what: &str, figure: String, value: Value) {
        println!("{backend:<11} {what:<58} {figure}");
        self.rows.push((backend.into(), what.into(), figure));
        self.json.insert(format!("{backend}/{what}"), value);
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        max: *samples.last().unwrap_or(&Duration::ZERO),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------
// The server process

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the release binary and waits for `/readyz`; returns it and the time that took.
    async fn start(dir: &Path, db_url: &str, extra_config: &str, env: &[(&str, &str)]) -> (Server, Duration) {
        let port = free_port();
        let config = dir.join(format!("bench-{port}.toml"));
        std::fs::write(
            &config,
            format!("[server]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{db_url}\"\n{extra_config}"),
        )
        .expect("config written");
        let log = std::fs::File::create(dir.join(format!("server-{port}.log"))).expect("log file");
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_redbutton"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .env_remove("DATABASE_URL")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the release server starts");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "server did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ready = started.elapsed();
        (server, ready)
    }

    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// A browser-like session: cookies, CSRF token, form posts

#[derive(Clone)]
struct Session {
    client: reqwest::Client,
    base: String,
    cookies: Arc<std::sync::Mutex<HashMap<String, String>>>,
}

fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).map(|i| i + needle.len()).expect("hidden field");
    html[start..].split('"').next().unwrap_or_default().to_string()
}

impl Session {
    fn new(base: &str) -> Self {
        redbutton::notifiers::http::install_crypto_provider();
        Session {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(64)
                .build()
                .expect("client"),
            base: base.to_string(),
            cookies: Arc::default(),
        }
    }

    fn cookie(&self) -> String {
        let c = self.cookies.lock().expect("cookies");
        c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&self, r: &reqwest::Response) {
        for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some((kv, _)) = v.to_str().unwrap_or_default().split_once(';')
                && let Some((k, v)) = kv.split_once('=')
            {
                self.cookies.lock().expect("cookies").insert(k.into(), v.into());
            }
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie())
            .send()
            .await
            .expect("GET");
        self.keep(&r);
        r
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie())
            .header(reqwest::header::ORIGIN, &self.base)
            .form(form)
            .send()
            .await
            .expect("POST");
        self.keep(&r);
        r
    }

    async fn sign_in(&self) -> String {
        let html = self.get("/identify").await.text().await.expect("page");
        let csrf = hidden(&html, "csrf");
        let r = self
            .post(
                "/identify",
                &[
                    ("csrf", &csrf),
                    ("next", "/"),
                    ("name", "Bench Mark"),
                    ("email", "bench@example.com"),
                ],
            )
            .await;
        assert_eq!(r.status(), 303, "sign-in");
        let html = self.get("/declare").await.text().await.expect("form");
        hidden(&html, "csrf")
    }

    /// One declaration through the real form post; returns its latency.
    async fn declare(&self, csrf: &str, title: &str) -> Duration {
        let key = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let r = self
            .post(
                "/declare",
                &[
                    ("csrf", csrf),
                    ("idempotency_key", &key),
                    ("title", title),
                    ("severity", "SEV2"),
                    ("services", "checkout"),
                    ("summary", "Bench **load**"),
                ],
            )
            .await;
        let took = started.elapsed();
        assert_eq!(r.status(), 303, "declare answered {}", r.status());
        took
    }
}

// ---------------------------------------------------------------------------------------------
// Seeding history through the library

async fn seed(db: &Db, from: usize, to: usize) {
    let mut next = from;
    while next < to {
        let end = (next + 2_000).min(to);
        let (a, b) = (next, end);
        db.write(move |conn| -> Result<(), redbutton::db::DbError> {
            let base = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .unwrap_or_default();
            for i in a..b {
                let number = incident::allocate_number(conn)?;
                let at = base + chrono::Duration::minutes(i as i64 * 7);
                let title = format!("Past incident {i}: elevated errors on checkout");
                let id = incident::insert(
                    conn,
                    &NewIncident {
                        number,
                        title: &title,
                        severity: ["SEV1", "SEV2", "SEV3"][i % 3],
                        status: "resolved",
                        summary: "Something broke and was fixed.",
                        declared_by_name: "Seed",
                        declared_by_email: "seed@example.com",
                        lead_name: Some("Seed"),
                        lead_email: Some("seed@example.com"),
                        drill: false,
                        impact_started_at: None,
                        declared_at: at,
                        updated_at: at + chrono::Duration::minutes(42),
                    },
                )?;
                incident::insert_services(conn, id, &["checkout".to_string()])?;
                timeline::insert(
                    conn,
                    &NewTimelineEntry {
                        incident_id: id,
                        at,
                        actor_name: "Seed".into(),
                        actor_email: "seed@example.com".into(),
                        kind: "declared".into(),
                        field: None,
                        old_value: None,
                        new_value: None,
                        body: None,
                    },
                )?;
            }
            Ok(())
        })
        .await
        .expect("seeding");
        next = end;
    }
}

// ---------------------------------------------------------------------------------------------
// Test vendors for the fan-out

async fn vendor(delay: Duration, status: u16, body: Value) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(status)
                .set_body_json(body)
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

/// A minimal SMTP server that accepts everything, answering each command after `delay`.
fn smtp_sink(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("smtp port");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut out = stream.try_clone().expect("stream");
                let mut reader = BufReader::new(stream);
                let _ = out.write_all(b"220 bench ESMTP\r\n");
                let mut line = String::new();
                let mut in_data = false;
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            std::thread::sleep(delay);
                            let _ = out.write_all(b"250 queued\r\n");
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-bench\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = out.write_all(b"221 bye\r\n");
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    let _ = out.write_all(reply);
                }
            });
        }
    });
    port
}

// ---------------------------------------------------------------------------------------------
// The measurements

/// `concurrency` sessions declaring `per` incidents each, one after another; every latency.
async fn declare_concurrently(session: &Session, csrf: &str, concurrency: usize, per: usize) -> Vec<Duration> {
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (s, csrf) = (session.clone(), csrf.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                lat.push(s.declare(&csrf, &format!("Load {w}-{i}: checkout errors")).await);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    all
}

async fn declare_load(report: &mut Report, backend: &str, server: &Server, total: usize) {
    let session = Session::new(&server.base);
    let csrf = session.sign_in().await;
    for _ in 0..50 {
        session.declare(&csrf, "warm-up").await;
    }
    let idle_rss = server.rss_kib();
    for concurrency in [1usize, 8] {
        let per = total / concurrency;
        let started = Instant::now();
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let pid = server.child.id();
        let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let watcher = {
            let (peak, watching) = (peak.clone(), watching.clone());
            std::thread::spawn(move || {
                while watching.load(std::sync::atomic::Ordering::Relaxed) {
                    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                        .ok()
                        .and_then(|s| {
                            s.lines()
                                .find(|l| l.starts_with("VmRSS:"))
                                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
                        })
                        .unwrap_or(0);
                    peak.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let all = declare_concurrently(&session, &csrf, concurrency, per).await;
        let wall = started.elapsed();
        watching.store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = watcher.join();
        let s = stats(all.clone());
        let rate = all.len() as f64 / wall.as_secs_f64();
        report.add(
            backend,
            &format!("declare (form post) at concurrency {concurrency}: p50 / p99"),
            format!("{:.2} ms / {:.2} ms (max {:.1} ms)", ms(s.p50), ms(s.p99), ms(s.max)),
            json!({"p50_ms": ms(s.p50), "p99_ms": ms(s.p99), "max_ms": ms(s.max), "n": all.len()}),
        );
        report.add(
            backend,
            &format!("declare throughput at concurrency {concurrency}"),
            format!("{rate:.0} declarations/s"),
            json!(rate),
        );
        if concurrency == 8 {
            let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
            report.add(
                backend,
                "server RSS idle / peak under declare load",
                format!("{:.1} MiB / {:.1} MiB", idle_rss as f64 / 1024.0, peak as f64 / 1024.0),
                json!({"idle_mib": idle_rss as f64 / 1024.0, "peak_mib": peak as f64 / 1024.0}),
            );
        }
    }
}

async fn page_latency(session: &Session, path: &str, n: usize) -> Stats {
    for _ in 0..20 {
        assert!(session.get(path).await.status().is_success(), "{path}");
    }
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let r = session.get(path).await;
        let _ = r.bytes().await;
        lat.push(started.elapsed());
    }
    stats(lat)
}

async fn pages(report: &mut Report, backend: &str, dir: &Path, db_url: &str, sizes: &[usize]) {
    let url = DbUrl::parse(db_url).expect("db url");
    let db = Db::connect(&url, 2, 5_000).expect("db");
    let mut have = db
        .run(|conn| incident::count(conn, &Default::default()))
        .await
        .expect("count") as usize;
    for &size in sizes {
        if have < size {
            let started = Instant::now();
            seed(&db, have, size).await;
            // A database that grew this much would have been analysed by autovacuum by now.
            if db.backend() == redbutton::db::Backend::Postgres {
                db.run(|conn| {
                    use diesel::connection::SimpleConnection;
                    conn.batch_execute("ANALYZE")
                })
                .await
                .expect("analyze");
            }
            println!(
                "{backend:<11} (seeded {} past incidents in {:.1} s)",
                size - have,
                started.elapsed().as_secs_f64()
            );
            have = size;
        }
        let (server, _) = Server::start(dir, db_url, SERVICES, &[]).await;
        let session = Session::new(&server.base);
        session.sign_in().await;
        let dash = page_latency(&session, "/", 200).await;
        let past = page_latency(&session, "/?status=resolved&page=3", 200).await;
        let incident = page_latency(&session, &format!("/incidents/{}", size / 2), 200).await;
        // The seeded history starts on 2024-01-01 at one incident every 7 minutes, so this range
        // (the longest the page allows) holds every one of them up to about 150,000.
        let insights = page_latency(&session, "/insights?from=2024-01-01&to=2025-12-30", 50).await;
        for (what, s) in [
            ("dashboard", dash),
            ("dashboard, past page 3", past),
            ("incident page", incident),
            ("insights over all of them", insights),
        ] {
            report.add(
                backend,
                &format!("{what} with {size} past incidents: p50 / p99"),
                format!("{:.2} ms / {:.2} ms", ms(s.p50), ms(s.p99)),
                json!({"p50_ms": ms(s.p50), "p99_ms": ms(s.p99), "size": size}),
            );
        }
    }
}

const SERVICES: &str = "[[services]]\nid = \"checkout\"\nname = \"Checkout\"\nemail_to = [\"payments@example.com\"]\n";

async fn fan_out(report: &mut Report, backend: &str, dir: &Path, db_url: &str, rounds: usize) {
    let delays = [
        ("slack", 50u64),
        ("jira", 400),
        ("pagerduty", 200),
        ("email", 100),
        ("webhook", 300),
    ];
    let d = |name: &str| Duration::from_millis(delays.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap_or(0));
    let slack = vendor(
        d("slack"),
        200,
        json!({"ok": true, "channel": {"id": "C0BENCH01"}, "ts": "1700000000.000100",
               "bookmark": {"id": "Bk1"}, "user": {"id": "U0BENCH01"}, "user_id": "U0BENCH01"}),
    )
    .await;
    let jira = vendor(d("jira"), 201, json!({"id": "10001", "key": "OPS-1", "self": "x"})).await;
    let pagerduty = vendor(d("pagerduty"), 202, json!({"status": "success", "dedup_key": "k"})).await;
    let hook = vendor(d("webhook"), 200, json!({})).await;
    let smtp = smtp_sink(d("email"));
    let config = format!(
        "{SERVICES}\n[outbox]\nbackoff_base_ms = 2000\n\
         [integrations.email]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\n\
         [integrations.slack]\nbase_url = \"{}/api\"\ntoken_env = \"BENCH_SLACK\"\nannounce_channel = \"C0CENTRAL1\"\n\
         [integrations.jira]\nbase_url = \"{}\"\nemail = \"b@example.com\"\ntoken_env = \"BENCH_JIRA\"\nproject = \"OPS\"\n\
         [integrations.pagerduty]\nbase_url = \"{}\"\nrouting_key_env = \"BENCH_PD\"\npage_at_or_above = \"SEV2\"\n\
         [[integrations.webhooks]]\nname = \"audit\"\nurl = \"{}/hook\"\nsecret_env = \"BENCH_HOOK\"\n",
        slack.uri(),
        jira.uri(),
        pagerduty.uri(),
        hook.uri()
    );
    let env = [
        ("BENCH_SLACK", "xoxb-bench"),
        ("BENCH_JIRA", "jira-bench"),
        ("BENCH_PD", "pd-bench"),
        ("BENCH_HOOK", "a-bench-webhook-secret-long-enough"),
    ];
    let (server, _) = Server::start(dir, db_url, &config, &env).await;
    let session = Session::new(&server.base);
    let csrf = session.sign_in().await;
    let url = DbUrl::parse(db_url).expect("db url");
    let db = Db::connect(&url, 2, 5_000).expect("db");
    let slowest = delays.iter().map(|(_, v)| *v).max().unwrap_or(1);
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let before: i64 = db
            .run(|conn| {
                use diesel::prelude::*;
                redbutton::db::schema::outbox::table.count().get_result(conn)
            })
            .await
            .expect("count");
        let answered_at = {
            session.declare(&csrf, &format!("Fan-out round {round}")).await;
            Instant::now()
        };
        loop {
            let rows: Vec<(String, i64)> = db
                .run(move |conn| {
                    use diesel::prelude::*;
                    use redbutton::db::schema::outbox;
                    outbox::table
                        .filter(outbox::id.gt(before))
                        .select((outbox::state, outbox::id))
                        .load(conn)
                })
                .await
                .expect("rows");
            if !rows.is_empty() && rows.iter().all(|(s, _)| s == "done") {
                break;
            }
            assert!(
                answered_at.elapsed() < Duration::from_secs(30),
                "fan-out did not finish: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let took = answered_at.elapsed();
        ratios.push(took.as_secs_f64() * 1000.0 / slowest as f64);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    report.add(
        backend,
        "fan-out, 7 deliveries (vendors answer in 50-400 ms): ratio to slowest",
        format!("{median:.2} (range {:.2}-{:.2})", ratios[0], ratios[ratios.len() - 1]),
        json!({"median_ratio": median, "ratios": ratios, "slowest_ms": slowest}),
    );
}

// ---------------------------------------------------------------------------------------------
// Declaring while one vendor misbehaves

/// A vendor that takes the connection and the request and never answers.
fn hanging_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("hang port");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while std::io::Read::read(&mut stream, &mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    port
}

/// The integrations of the fault table, in the order of its rows.
const FAULT_VENDORS: [&str; 6] = ["slack", "jira", "pagerduty", "opsgenie", "email", "webhook"];

/// The server's config with every integration, `broken` pointed at `broken_port` instead of its
/// test vendor.
fn faults_config(vendors: &HashMap<&str, String>, smtp: u16, broken: Option<(&str, u16)>) -> String {
    let url = |name: &str| match broken {
        Some((b, port)) if b == name => format!("http://127.0.0.1:{port}"),
        _ => vendors[name].clone(),
    };
    let smtp = match broken {
        Some(("email", port)) => port,
        _ => smtp,
    };
    format!(
        "{SERVICES}\n[outbox]\ndelivery_timeout_ms = {FAULT_TIMEOUT_MS}\nlease_ms = {}\n\
         [integrations.email]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\n\
         [integrations.slack]\nbase_url = \"{}/api\"\ntoken_env = \"BENCH_SLACK\"\nannounce_channel = \"C0CENTRAL1\"\n\
         [integrations.jira]\nbase_url = \"{}\"\nemail = \"b@example.com\"\ntoken_env = \"BENCH_JIRA\"\nproject = \"OPS\"\n\
         [integrations.pagerduty]\nbase_url = \"{}\"\nrouting_key_env = \"BENCH_PD\"\npage_at_or_above = \"SEV2\"\n\
         [integrations.opsgenie]\nbase_url = \"{}\"\napi_key_env = \"BENCH_GENIE\"\npage_at_or_above = \"SEV2\"\n\
         [[integrations.webhooks]]\nname = \"audit\"\nurl = \"{}/hook\"\nsecret_env = \"BENCH_HOOK\"\n",
        2 * FAULT_TIMEOUT_MS,
        url("slack"),
        url("jira"),
        url("pagerduty"),
        url("opsgenie"),
        url("webhook"),
    )
}

/// The delivery time limit in the fault table: short, so hung deliveries are cut, retried and
/// cut again while the declarations go on.
const FAULT_TIMEOUT_MS: u64 = 1_000;

/// Declare latency at concurrency 8 with every vendor healthy, then with each vendor in turn
/// hanging past the delivery time limit and refusing connections (a fresh database each).
async fn faults(report: &mut Report, dir: &Path, declares: usize, warm_up: usize) {
    let vendors_up = [
        (
            "slack",
            vendor(
                Duration::from_millis(20),
                200,
                json!({"ok": true, "channel": {"id": "C0BENCH01"},
            "ts": "1700000000.000100", "bookmark": {"id": "Bk1"}, "user": {"id": "U0BENCH01"}, "user_id": "U0BENCH01"}),
            )
            .await,
        ),
        (
            "jira",
            vendor(
                Duration::from_millis(40),
                201,
                json!({"id": "10001", "key": "OPS-1", "self": "x"}),
            )
            .await,
        ),
        (
            "pagerduty",
            vendor(
                Duration::from_millis(30),
                202,
                json!({"status": "success", "dedup_key": "k"}),
            )
            .await,
        ),
        (
            "opsgenie",
            vendor(
                Duration::from_millis(30),
                202,
                json!({"result": "Request will be processed", "requestId": "r"}),
            )
            .await,
        ),
        ("webhook", vendor(Duration::from_millis(30), 200, json!({})).await),
    ];
    let vendors: HashMap<&str, String> = vendors_up.iter().map(|(n, s)| (*n, s.uri())).collect();
    let smtp = smtp_sink(Duration::from_millis(20));
    let hang = hanging_server();
    let env = [
        ("BENCH_SLACK", "xoxb-bench"),
        ("BENCH_JIRA", "jira-bench"),
        ("BENCH_PD", "pd-bench"),
        ("BENCH_GENIE", "genie-bench"),
        ("BENCH_HOOK", "a-bench-webhook-secret-long-enough"),
    ];
    println!(
        "faults: declare (form post) at concurrency 8, {declares} declarations per row after {warm_up} to warm up, \
         a fresh SQLite database each; every integration on, delivery_timeout_ms = {FAULT_TIMEOUT_MS}"
    );
    let mut scenarios: Vec<(String, Option<(&str, u16)>)> = vec![("every vendor healthy".into(), None)];
    for name in FAULT_VENDORS {
        scenarios.push((format!("{name} hangs past the timeout"), Some((name, hang))));
    }
    for name in FAULT_VENDORS {
        // A port nothing listens on.
        scenarios.push((format!("{name} refuses connections"), Some((name, free_port()))));
    }
    let mut healthy: Option<Stats> = None;
    for (n, (what, broken)) in scenarios.into_iter().enumerate() {
        let db_url = format!("sqlite://{}", dir.join(format!("faults-{n}.db")).display());
        let config = faults_config(&vendors, smtp, broken);
        let (server, _) = Server::start(dir, &db_url, &config, &env).await;
        let session = Session::new(&server.base);
        let csrf = session.sign_in().await;
        for _ in 0..warm_up {
            session.declare(&csrf, "warm-up").await;
        }
        let s = stats(declare_concurrently(&session, &csrf, 8, declares / 8).await);
        drop(server);
        let base = healthy.get_or_insert(Stats { ..s });
        let (r50, r99) = (ms(s.p50) / ms(base.p50), ms(s.p99) / ms(base.p99));
        report.add(
            "sqlite",
            &format!("declare c8, {what}: p50 / p99"),
            format!(
                "{:.2} ms / {:.2} ms ({r50:.2}x / {r99:.2}x healthy)",
                ms(s.p50),
                ms(s.p99)
            ),
            json!({"p50_ms": ms(s.p50), "p99_ms": ms(s.p99), "max_ms": ms(s.max),
                   "p50_ratio": r50, "p99_ratio": r99, "n": declares / 8 * 8}),
        );
    }
}

/// The Alertmanager receiver: a notification for a group never seen (declares an incident) and the
/// same notification again (a repeat, which must add nothing), as Alertmanager sends them.
async fn alertmanager(report: &mut Report, backend: &str, dir: &Path, db_url: &str, n: usize) {
    // The per-token API limit (600 a minute by default) would otherwise throttle the run.
    let config = format!(
        "{SERVICES}[auth]\napi_per_minute = 1000000\n[alertmanager]\n[alertmanager.severities]\ncritical = \"SEV1\"\n"
    );
    let (server, _) = Server::start(dir, db_url, &config, &[]).await;
    let session = Session::new(&server.base);
    session.sign_in().await;
    let html = session.get("/admin/tokens").await.text().await.expect("tokens page");
    let csrf = hidden(&html, "csrf");
    let made = session
        .post(
            "/admin/tokens",
            &[
                ("csrf", &csrf),
                ("name", "alertmanager"),
                ("scopes", "incidents:declare"),
                ("expires_in_days", ""),
            ],
        )
        .await
        .text()
        .await
        .expect("token made");
    // The page also shows "rbt_…" in its help text; the new token is the long one.
    let token = made
        .match_indices("rbt_")
        .map(|(at, _)| {
            made[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect::<String>()
        })
        .max_by_key(String::len)
        .filter(|t| t.len() > 20)
        .unwrap_or_else(|| panic!("the new token is shown once: {made}"));
    let client = reqwest::Client::new();
    let body = |group: usize| {
        json!({
            "version": "4",
            "groupKey": format!("{{}}:{{alertname=\"HighErrorRate\", service=\"checkout\", shard=\"{group}\"}}"),
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "redbutton",
            "groupLabels": {"alertname": "HighErrorRate", "service": "checkout"},
            "commonLabels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"},
            "commonAnnotations": {"summary": "Checkout error rate above 5%"},
            "externalURL": "http://alertmanager.example:9093",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical", "shard": group.to_string()},
                "annotations": {"summary": "Checkout error rate above 5%"},
                "startsAt": "2026-11-21T10:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph",
                "fingerprint": format!("{group:016x}")
            }]
        })
    };
    let send = |group: usize| {
        let (client, token, url) = (
            client.clone(),
            token.clone(),
            format!("{}/api/v1/alertmanager", server.base),
        );
        let body = body(group);
        async move {
            let started = Instant::now();
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("POST");
            let took = started.elapsed();
            let status = r.status();
            assert!(
                status.is_success(),
                "the receiver answered {status}: {}",
                r.text().await.unwrap_or_default()
            );
            took
        }
    };
    let mut first = Vec::with_capacity(n);
    for g in 0..n {
        first.push(send(g).await);
    }
    let mut repeat = Vec::with_capacity(n);
    for g in 0..n {
        repeat.push(send(g).await);
    }
    for (what, lat) in [("new group (declares)", first), ("repeat of a known group", repeat)] {
        let s = stats(lat);
        report.add(
            backend,
            &format!("Alertmanager notification, {what}: p50 / p99"),
            format!("{:.2} ms / {:.2} ms", ms(s.p50), ms(s.p99)),
            json!({"p50_ms": ms(s.p50), "p99_ms": ms(s.p99), "n": n}),
        );
    }
}

async fn run_backend(report: &mut Report, backend: &str, db_url: &str, pages_url: &str, dir: &Path, args: &Args) {
    let (server, ready) = Server::start(dir, db_url, SERVICES, &[]).await;
    report.add(
        backend,
        "start to /readyz (fresh database, migrations included)",
        format!("{:.0} ms", ms(ready)),
        json!(ms(ready)),
    );
    drop(server);
    let (server, ready) = Server::start(dir, db_url, SERVICES, &[]).await;
    report.add(
        backend,
        "start to /readyz (existing database)",
        format!("{:.0} ms", ms(ready)),
        json!(ms(ready)),
    );
    declare_load(report, backend, &server, args.declares).await;
    drop(server);
    alertmanager(report, backend, dir, db_url, if args.smoke { 20 } else { 500 }).await;
    fan_out(report, backend, dir, db_url, if args.smoke { 2 } else { 7 }).await;
    // History on its own database, so the load test's live incidents do not crowd the dashboard.
    pages(report, backend, dir, pages_url, &args.sizes).await;
}

/// A fresh PostgreSQL database next to the one the URL names.
fn fresh_postgres(url: &str, what: &str) -> String {
    use diesel::Connection;
    let name = format!("redbutton_bench_{what}_{}", std::process::id());
    let mut admin = diesel::PgConnection::establish(url).expect("postgres reachable");
    diesel::RunQueryDsl::execute(diesel::sql_query(format!("CREATE DATABASE {name}")), &mut admin)
        .expect("create database");
    match url.rfind('/') {
        Some(i) => format!("{}/{name}", &url[..i]),
        None => panic!("postgres URL without a database"),
    }
}

#[tokio::main]
async fn main() {
    redbutton::notifiers::http::install_crypto_provider();
    let args = args();
    let mut report = Report::default();
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "redbutton-bench: {} cores, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l
                .split(':')
                .nth(1)
                .unwrap_or("")
                .trim()
                .to_string()))
            .unwrap_or_default()
    );
    if args.smoke {
        println!("smoke run (cargo test, debug build): checks the harness works; the figures mean nothing");
    }
    println!("{:<11} {:<58} figure", "backend", "what");
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite_pages = format!("sqlite://{}", dir.path().join("bench-pages.db").display());
    if args.faults && !args.smoke {
        faults(&mut report, dir.path(), 1_600, 50).await;
    } else {
        run_backend(&mut report, "sqlite", &sqlite, &sqlite_pages, dir.path(), &args).await;
        if let Some(pg) = &args.postgres {
            let (url, pages_url) = (fresh_postgres(pg, "load"), fresh_postgres(pg, "pages"));
            run_backend(&mut report, "postgresql", &url, &pages_url, dir.path(), &args).await;
        }
        if args.smoke {
            faults(&mut report, dir.path(), 8, 1).await;
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&Value::Object(report.json)).expect("json"),
        )
        .expect("json written");
        println!("figures written to {}", path.display());
    }
}
