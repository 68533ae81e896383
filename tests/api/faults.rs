//! The fault drill: each test vendor in turn misbehaves (refuses connections, hangs past the
//! delivery timeout, answers 500, 429 with Retry-After, malformed JSON, Slack `ok:false`, an
//! answer trickled slower than the timeout, a 10 MB body) while people keep declaring through the
//! form. Every declaration is answered and stored; the other integrations deliver everything at
//! their first attempt, and exactly once; the failure shows on the incident page with a clear
//! message and no secret; once the vendor heals, what was pending is delivered, once per side
//! effect as the vendor counts it.
//!
//! Every vendor is its usual test fake (the stateful Slack and Jira fakes, the PagerDuty and
//! Opsgenie answers, a webhook receiver, the real SMTP server) behind a front door written here: a
//! small TCP proxy that can close its port, pass requests on and swallow the answers, or trickle
//! the answers a byte at a time. Wrong HTTP answers come from a wrapper around the fake's own
//! responder. One test per fault, each looping over the vendors the fault applies to. Declare
//! latencies are printed for information, never asserted: speed is the benchmark's business
//! (`cargo bench --bench redbutton-bench -- --faults`).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use redbutton::db::models::OutboxRow;
use redbutton::notifiers::opsgenie::{OpsgenieService, OpsgenieSettings};
use redbutton::notifiers::pagerduty::PagerDutySettings;
use redbutton::notifiers::webhook::WebhookSettings;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Match, Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::crash::FakeJira;
use crate::helpers::*;
use crate::jira::{TOKEN as JIRA_TOKEN, basic_auth, check_request};
use crate::pagers::{GENIE_KEY, PD_DEFAULT, assert_og_request, assert_pd_request, body, og_accepted, pd_accepted};
use crate::slack::{CENTRAL, SlackWorld, TOKEN as SLACK_TOKEN};
use crate::webhooks::{OPS_SECRET, checked_body};

/// The delivery time limit in the drill: short, so hangs are cut quickly, yet far above what a
/// healthy loopback vendor needs.
const TIMEOUT_MS: u64 = 2_000;
/// Deliveries in flight at once: small, so a handful of hung deliveries could fill the worker.
const CONCURRENCY: u32 = 2;
/// Declarations per phase: more than the worker's slots.
const DECLARATIONS: usize = 3;
/// How fast a trickled answer comes: a byte this often.
const TRICKLE: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// A front door for a vendor: a TCP proxy that can close its port, hang, or trickle.

/// What the front door does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    /// Passes everything both ways.
    Open,
    /// Nothing listens on the port: connections are refused.
    Closed,
    /// Passes the request on (the vendor acts) and never a byte of the answer.
    Hang,
    /// Passes the request on; the answer's HTTP head comes at once, then one byte every
    /// [`TRICKLE`] (for SMTP, every byte of every reply is trickled).
    Trickle,
}

struct Front {
    port: u16,
    upstream: SocketAddr,
    /// HTTP: in `Trickle`, the head is sent at once and only the body trickles.
    http: bool,
    door: watch::Sender<Door>,
    accepting: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Front {
    async fn start(upstream: SocketAddr, http: bool) -> Arc<Front> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = Arc::new(Front {
            port: listener.local_addr().unwrap().port(),
            upstream,
            http,
            door: watch::channel(Door::Open).0,
            accepting: Mutex::new(None),
        });
        front.accept(listener);
        front
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn accept(&self, listener: TcpListener) {
        let (upstream, http, door) = (self.upstream, self.http, self.door.subscribe());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut changed = door.clone();
                let now = *changed.borrow_and_update();
                tokio::spawn(async move {
                    // A connection lives in the mode it was opened in; a change of mode cuts it,
                    // so no pooled connection carries one mode's behaviour into the next.
                    tokio::select! {
                        _ = serve(client, upstream, http, now) => {}
                        _ = changed.changed() => {}
                    }
                });
            }
        });
        *self.accepting.lock().unwrap() = Some(task);
    }

    async fn set(&self, door: Door) {
        let was = *self.door.borrow();
        if was == door {
            return;
        }
        self.door.send_replace(door);
        if door == Door::Closed {
            let task = self.accepting.lock().unwrap().take();
            if let Some(task) = task {
                task.abort();
                let _ = task.await;
            }
        } else if was == Door::Closed {
            // The vendor comes back on the same port.
            let deadline = Instant::now() + Duration::from_secs(5);
            let listener = loop {
                match TcpListener::bind(("127.0.0.1", self.port)).await {
                    Ok(l) => break l,
                    Err(e) => assert!(Instant::now() < deadline, "port {} not free again: {e}", self.port),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            self.accept(listener);
        }
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, http: bool, door: Door) {
    let Ok(mut vendor) = TcpStream::connect(upstream).await else {
        return;
    };
    if door == Door::Open {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut vendor).await;
        return;
    }
    let (mut from_vendor, mut to_vendor) = vendor.split();
    let (mut from_client, mut to_client) = client.split();
    let ask = tokio::io::copy(&mut from_client, &mut to_vendor);
    let answer = async {
        let mut head = Vec::new();
        let mut in_body = !http;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from_vendor.read(&mut buf).await {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            if door == Door::Hang {
                continue;
            }
            let slow: Vec<u8> = if in_body {
                buf[..n].to_vec()
            } else {
                head.extend_from_slice(&buf[..n]);
                let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                if to_client.write_all(&head[..end + 4]).await.is_err() {
                    return;
                }
                in_body = true;
                head.split_off(end + 4)
            };
            for byte in slow {
                if to_client.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(TRICKLE).await;
            }
        }
    };
    tokio::select! {
        _ = ask => {}
        _ = answer => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Wrong HTTP answers, in front of a fake's own responder.

/// A wrong answer a vendor can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoil {
    ServerError,
    RateLimited,
    /// The vendor acted; its answer is not JSON.
    Malformed,
    /// Slack's `{ok: false, error}`; nothing was done.
    OkFalse(&'static str),
    /// The vendor acted; its answer is 10 MB.
    Huge,
}

type SpoilSwitch = Arc<Mutex<Option<Spoil>>>;

struct Spoiled {
    inner: Box<dyn Respond>,
    spoil: SpoilSwitch,
}

fn huge_body() -> Vec<u8> {
    static HUGE: OnceLock<Vec<u8>> = OnceLock::new();
    HUGE.get_or_init(|| {
        let mut body = b"{\"ok\":true,\"padding\":\"".to_vec();
        body.resize(10 * 1024 * 1024 - 2, b'x');
        body.extend_from_slice(b"\"}");
        body
    })
    .clone()
}

impl Respond for Spoiled {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let spoil = *self.spoil.lock().unwrap();
        match spoil {
            None => self.inner.respond(req),
            Some(Spoil::ServerError) => {
                ResponseTemplate::new(500).set_body_string("upstream connect error or disconnect/reset before headers")
            }
            Some(Spoil::RateLimited) => ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_string("Too Many Requests"),
            Some(Spoil::OkFalse(code)) => ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": code})),
            Some(Spoil::Malformed) => {
                let _ = self.inner.respond(req);
                ResponseTemplate::new(200).set_body_string("{\"ok\": tru<html>Gateway says hi")
            }
            Some(Spoil::Huge) => {
                let _ = self.inner.respond(req);
                ResponseTemplate::new(200).set_body_bytes(huge_body())
            }
        }
    }
}

/// Mounts `inner` behind a spoil switch, ahead of anything else on the server.
async fn spoilable(server: &MockServer, matcher: impl Match + 'static, inner: impl Respond + 'static) -> SpoilSwitch {
    let spoil = SpoilSwitch::default();
    Mock::given(matcher)
        .respond_with(Spoiled {
            inner: Box::new(inner),
            spoil: spoil.clone(),
        })
        .with_priority(1)
        .mount(server)
        .await;
    spoil
}

// ---------------------------------------------------------------------------------------------
// Vendors and faults.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Vendor {
    Jira,
    Slack,
    PagerDuty,
    Opsgenie,
    Webhook,
    Email,
}

/// Jira first: a create whose outcome is unknown and that made nothing waits out Jira's search
/// lag (30 s) before creating again, so its recovery overlaps the other vendors' turns.
const VENDORS: [Vendor; 6] = [
    Vendor::Jira,
    Vendor::Slack,
    Vendor::PagerDuty,
    Vendor::Opsgenie,
    Vendor::Webhook,
    Vendor::Email,
];

impl Vendor {
    fn notifier(self) -> &'static str {
        match self {
            Vendor::Jira => "jira",
            Vendor::Slack => "slack",
            Vendor::PagerDuty => "pagerduty",
            Vendor::Opsgenie => "opsgenie",
            Vendor::Webhook => "webhook:ops",
            Vendor::Email => "email",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Refused,
    Hang,
    /// HTTP 500; for SMTP, a temporary failure (451) on DATA.
    ServerError,
    RateLimited,
    Malformed,
    OkFalse(&'static str),
    SlowBody,
    Huge,
}

impl Fault {
    fn applies(self, v: Vendor) -> bool {
        match self {
            Fault::OkFalse(_) => v == Vendor::Slack,
            // SMTP has no JSON, no Retry-After and no bodies to answer with.
            Fault::RateLimited | Fault::Malformed | Fault::Huge => v != Vendor::Email,
            Fault::Refused | Fault::Hang | Fault::ServerError | Fault::SlowBody => true,
        }
    }

    /// A webhook receiver's 2xx is a success whatever its body says, however long or slow
    /// (docs/webhooks.md: any 2xx means the receiver has it).
    fn accepted(self, v: Vendor) -> bool {
        v == Vendor::Webhook && matches!(self, Fault::Malformed | Fault::Huge | Fault::SlowBody)
    }

    /// A delivery attempt holds a worker slot for the whole time limit.
    fn holds_the_worker(self) -> bool {
        matches!(self, Fault::Hang | Fault::SlowBody)
    }

    /// Dead at once; recovered with the page's Retry button.
    fn permanent(self) -> bool {
        matches!(self, Fault::OkFalse("invalid_auth"))
    }

    /// What the incident page says (one of these).
    fn shows(self, v: Vendor) -> Vec<String> {
        let timed_out = vec![
            format!("timed out after {TIMEOUT_MS} ms"),
            "did not answer in time".to_string(),
        ];
        match (self, v) {
            (Fault::Refused, Vendor::Email) => vec!["Connection refused".into()],
            (Fault::Refused, _) => vec!["unreachable".into()],
            (Fault::Hang, _) => timed_out,
            (Fault::ServerError, Vendor::Email) => vec!["transient error (451)".into()],
            (Fault::ServerError, _) => vec!["HTTP 500".into()],
            (Fault::RateLimited, _) => vec!["rate limiting (HTTP 429); retrying after 1 s".into()],
            (Fault::Malformed, _) => vec!["not the JSON expected".into()],
            (Fault::OkFalse("invalid_auth"), _) => vec!["invalid_auth: the bot token is not valid".into()],
            (Fault::OkFalse(code), _) => vec![format!("{code} (a problem on Slack's side)")],
            (Fault::SlowBody, _) => [timed_out, vec!["reading the answer failed".into()]].concat(),
            (Fault::Huge, _) => vec!["body over 1024 KiB; not read".into()],
        }
    }
}

/// What must never reach the page: the credentials, and the webhook URL's token.
const SECRETS: [&str; 6] = [SLACK_TOKEN, JIRA_TOKEN, PD_DEFAULT, GENIE_KEY, OPS_SECRET, "abc123"];

// ---------------------------------------------------------------------------------------------
// The drill.

struct Phase {
    vendor: Option<Vendor>,
    numbers: Vec<i64>,
    latencies: Vec<Duration>,
    healed_at: Option<NaiveDateTime>,
    /// The error the incident page showed.
    shown: String,
}

struct Drill {
    fault: Fault,
    slack: SlackWorld,
    jira: FakeJira,
    jira_server: MockServer,
    pagerduty: MockServer,
    opsgenie: MockServer,
    hooks: MockServer,
    sink: SmtpSink,
    fronts: BTreeMap<Vendor, Arc<Front>>,
    spoils: BTreeMap<Vendor, SpoilSwitch>,
    app: TestApp,
    _db: TestDb,
}

impl Drill {
    async fn start(fault: Fault) -> Drill {
        let slack = SlackWorld::start().await;
        let jira_server = MockServer::start().await;
        let jira = FakeJira::default();
        let pagerduty = MockServer::start().await;
        let opsgenie = MockServer::start().await;
        let hooks = MockServer::start().await;
        let sink = SmtpSink::start();
        let spoils = BTreeMap::from([
            (
                Vendor::Slack,
                spoilable(&slack.server, path_regex("^/api/.+"), slack.fake.clone()).await,
            ),
            (
                Vendor::Jira,
                spoilable(&jira_server, path_regex("^/rest/api/3/.*"), jira.clone()).await,
            ),
            (
                Vendor::PagerDuty,
                spoilable(&pagerduty, path("/v2/enqueue"), pd_accepted("redbutton-drill")).await,
            ),
            (
                Vendor::Opsgenie,
                spoilable(&opsgenie, method("POST"), og_accepted()).await,
            ),
            (
                Vendor::Webhook,
                spoilable(
                    &hooks,
                    path("/hooks/ops"),
                    ResponseTemplate::new(200).set_body_string("ok"),
                )
                .await,
            ),
        ]);
        let mut fronts = BTreeMap::new();
        for (v, server) in [
            (Vendor::Slack, &slack.server),
            (Vendor::Jira, &jira_server),
            (Vendor::PagerDuty, &pagerduty),
            (Vendor::Opsgenie, &opsgenie),
            (Vendor::Webhook, &hooks),
        ] {
            fronts.insert(v, Front::start(*server.address(), true).await);
        }
        let smtp: SocketAddr = ([127, 0, 0, 1], sink.port).into();
        fronts.insert(Vendor::Email, Front::start(smtp, false).await);

        let db = TestDb::new();
        let mut spawn = slack.spawn(&db);
        let s = &mut spawn.settings;
        s.outbox.delivery_timeout_ms = TIMEOUT_MS;
        s.outbox.lease_ms = 2 * TIMEOUT_MS;
        s.outbox.concurrency = CONCURRENCY;
        // Nothing runs out of attempts during the drill; only a permanent answer is dead.
        s.outbox.max_attempts = 1_000;
        let url = |v: Vendor| fronts[&v].url();
        if let Some(slack) = s.integrations.slack.as_mut() {
            slack.base_url = format!("{}/api", url(Vendor::Slack));
        }
        s.integrations.jira = Some(
            toml::from_str(&format!(
                "base_url = \"{}\"\nemail = \"bot@example.com\"\ntoken_env = \"JIRA_TOKEN\"\nproject = \"OPS\"\n",
                url(Vendor::Jira)
            ))
            .unwrap(),
        );
        s.integrations.pagerduty = Some(PagerDutySettings {
            base_url: url(Vendor::PagerDuty),
            routing_key_env: Some("PD_DEFAULT".into()),
            page_at_or_above: "SEV1".into(),
            severity_map: BTreeMap::new(),
            services: BTreeMap::new(),
        });
        s.integrations.opsgenie = Some(OpsgenieSettings {
            base_url: url(Vendor::Opsgenie),
            api_key_env: "GENIE_KEY".into(),
            page_at_or_above: "SEV1".into(),
            priorities: BTreeMap::new(),
            services: BTreeMap::from([(
                "checkout".to_string(),
                OpsgenieService {
                    teams: vec!["payments-oncall".into()],
                },
            )]),
        });
        s.integrations.webhooks = vec![WebhookSettings {
            name: "ops".into(),
            url: format!("{}/hooks/ops?token=abc123", url(Vendor::Webhook)),
            secret_env: "OPS_HOOK_SECRET".into(),
            events: vec![],
            drills: true,
        }];
        s.integrations.email = Some(email_to_sink(fronts[&Vendor::Email].port));
        for (var, value) in [
            ("JIRA_TOKEN", JIRA_TOKEN),
            ("PD_DEFAULT", PD_DEFAULT),
            ("GENIE_KEY", GENIE_KEY),
            ("OPS_HOOK_SECRET", OPS_SECRET),
        ] {
            s.secret_values.insert(var.into(), value.into());
        }
        let app = TestApp::spawn(spawn).await;
        app.identify("Ada Lovelace", "ada@example.com").await;
        Drill {
            fault,
            slack,
            jira,
            jira_server,
            pagerduty,
            opsgenie,
            hooks,
            sink,
            fronts,
            spoils,
            app,
            _db: db,
        }
    }

    fn fail_marker(&self) -> std::path::PathBuf {
        self.sink.dir.path().join("fail")
    }

    async fn break_vendor(&self, v: Vendor) {
        let front = &self.fronts[&v];
        let spoil = |s: Spoil| *self.spoils[&v].lock().unwrap() = Some(s);
        match self.fault {
            Fault::Refused => front.set(Door::Closed).await,
            Fault::Hang => front.set(Door::Hang).await,
            Fault::SlowBody => front.set(Door::Trickle).await,
            Fault::ServerError if v == Vendor::Email => std::fs::write(self.fail_marker(), "").unwrap(),
            Fault::ServerError => spoil(Spoil::ServerError),
            Fault::RateLimited => spoil(Spoil::RateLimited),
            Fault::Malformed => spoil(Spoil::Malformed),
            Fault::OkFalse(code) => spoil(Spoil::OkFalse(code)),
            Fault::Huge => spoil(Spoil::Huge),
        }
    }

    async fn heal(&self, v: Vendor) {
        self.fronts[&v].set(Door::Open).await;
        if let Some(spoil) = self.spoils.get(&v) {
            *spoil.lock().unwrap() = None;
        }
        let _ = std::fs::remove_file(self.fail_marker());
    }

    /// Declares through the real form, timing each form post.
    async fn declare(&self, vendor: Option<Vendor>) -> Phase {
        let label = vendor.map_or("healthy".to_string(), |v| format!("{v:?} {:?}", self.fault));
        let mut phase = Phase {
            vendor,
            numbers: Vec::new(),
            latencies: Vec::new(),
            healed_at: None,
            shown: String::new(),
        };
        for i in 0..DECLARATIONS {
            let (csrf, key) = self.app.declare_form().await;
            let title = format!("Drill {label} {i}");
            let started = Instant::now();
            let r = self
                .app
                .post_form(
                    "/declare",
                    &[
                        ("csrf", &csrf),
                        ("idempotency_key", &key),
                        ("title", &title),
                        ("severity", "SEV1"),
                        ("services", "checkout"),
                    ],
                )
                .await;
            phase.latencies.push(started.elapsed());
            assert_eq!(r.status(), 303, "{label}: declaration {i} answered");
            phase.numbers.push(number_from_location(&r));
        }
        phase
    }

    /// The outbox rows of these incidents, by incident number.
    async fn rows_of(&self, numbers: &[i64]) -> Vec<(i64, OutboxRow)> {
        let mut ids = BTreeMap::new();
        for &n in numbers {
            let row = self
                .app
                .state
                .db
                .run(move |conn| redbutton::db::models::incident::find_by_number(conn, n))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("INC-{n} was answered but not stored"));
            ids.insert(row.id, n);
        }
        self.app
            .outbox_rows()
            .await
            .into_iter()
            .filter_map(|r| ids.get(&r.incident_id).map(|n| (*n, r)))
            .collect()
    }

    /// While `v` misbehaves, everything else for the phase's incidents is delivered, each at its
    /// first attempt. When the fault holds a worker slot for the whole time limit, the others
    /// must not wait for that limit either.
    async fn others_delivered(&self, v: Vendor, phase: &Phase) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let rows = self.rows_of(&phase.numbers).await;
            let (mine, others): (Vec<_>, Vec<_>) = rows.iter().partition(|(_, r)| held_by(r, v));
            if others.iter().all(|(_, r)| r.state == "done") {
                for (n, r) in &others {
                    assert_eq!(
                        r.attempts, 1,
                        "{v:?} {:?}: INC-{n} {} needed a retry: {r:?}",
                        self.fault, r.notifier
                    );
                }
                return;
            }
            if self.fault.holds_the_worker() {
                let cut = mine.iter().find(|(_, r)| !is_ticket_step(r) && r.last_error.is_some());
                assert!(
                    cut.is_none(),
                    "{v:?} {:?}: the other integrations waited for the stuck vendor's time limit: {:?}",
                    self.fault,
                    others
                        .iter()
                        .filter(|(_, r)| r.state != "done")
                        .map(|(n, r)| (n, &r.notifier, &r.state))
                        .collect::<Vec<_>>()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{v:?} {:?}: the others were not delivered: {:?}",
                self.fault,
                others
                    .iter()
                    .map(|(n, r)| (n, &r.notifier, &r.state, &r.last_error))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The failing deliveries show the vendor's trouble on the incident page, and no secret (the
    /// error is returned). A webhook receiver's odd 2xx body is a success instead.
    async fn failure_shown(&self, v: Vendor, phase: &Phase) -> String {
        let main = |r: &OutboxRow| r.notifier == v.notifier() && !is_ticket_step(r);
        let deadline = Instant::now() + Duration::from_secs(20);
        if self.fault.accepted(v) {
            loop {
                let rows = self.rows_of(&phase.numbers).await;
                let mine: Vec<_> = rows
                    .iter()
                    .filter(|(_, r)| main(r))
                    .map(|(n, r)| (n, &r.state, r.attempts, &r.last_error))
                    .collect();
                if mine.iter().all(|(_, state, _, _)| *state == "done") {
                    assert!(
                        mine.iter().all(|(_, _, attempts, _)| *attempts == 1),
                        "{v:?} {:?}: a success answer was retried: {mine:?}",
                        self.fault
                    );
                    return "none: accepted as delivered".into();
                }
                assert!(
                    Instant::now() < deadline,
                    "{v:?} {:?}: not accepted: {mine:?}",
                    self.fault
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let needles = self.fault.shows(v);
        let says = |e: &str| needles.iter().any(|n| e.contains(n.as_str()));
        let shown = loop {
            let rows = self.rows_of(&phase.numbers).await;
            for (n, r) in rows.iter().filter(|(_, r)| main(r)) {
                assert_ne!(
                    r.state, "done",
                    "{v:?} {:?}: INC-{n} delivered while broken",
                    self.fault
                );
            }
            let failed: Vec<(i64, String)> = rows
                .iter()
                .filter(|(_, r)| main(r))
                .filter_map(|(n, r)| r.last_error.clone().filter(|e| says(e)).map(|e| (*n, e)))
                .collect();
            if !failed.is_empty() {
                break failed;
            }
            assert!(
                Instant::now() < deadline,
                "{v:?} {:?}: no error saying {needles:?}: {:?}",
                self.fault,
                rows.iter()
                    .filter(|(_, r)| main(r))
                    .map(|(n, r)| (n, &r.state, &r.last_error))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        for (n, _) in &shown {
            let html = self.app.get_html(&format!("/incidents/{n}")).await;
            let lines = texts(&html, "#deliveries tbody tr");
            let line = lines
                .iter()
                .find(|l| l.starts_with(v.notifier()) && !l.contains("bookmark the Jira ticket"))
                .unwrap_or_else(|| panic!("INC-{n}: no {} delivery on the page: {lines:?}", v.notifier()));
            assert!(says(line), "{v:?} {:?}: INC-{n} shows {line:?}", self.fault);
            for secret in SECRETS {
                assert!(!html.contains(secret), "INC-{n}'s page shows a secret ({secret})");
            }
        }
        shown[0].1.clone()
    }

    /// Waits until every delivery is done, pressing Retry on the ones a permanent fault
    /// dead-lettered (as a person would, once the vendor is healthy again).
    async fn settle(&self, phases: &[Phase]) -> Vec<(i64, OutboxRow)> {
        let numbers: Vec<i64> = phases.iter().flat_map(|p| p.numbers.clone()).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        let csrf = self.app.csrf().await;
        loop {
            let rows = self.rows_of(&numbers).await;
            if rows.iter().all(|(_, r)| r.state == "done") {
                return rows;
            }
            for (n, r) in rows.iter().filter(|(_, r)| r.state == "dead") {
                assert!(self.fault.permanent(), "INC-{n} {} dead: {r:?}", r.notifier);
                let retry = format!("/incidents/{n}/deliveries/{}/retry", r.id);
                let resp = self.app.post_form(&retry, &[("csrf", &csrf)]).await;
                assert_eq!(resp.status(), 303, "retry {retry}");
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: not recovered: {:?}",
                self.fault,
                rows.iter()
                    .filter(|(_, r)| r.state != "done")
                    .map(|(n, r)| (n, &r.notifier, &r.state, r.attempts, &r.last_error))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Each vendor saw each side effect once (by its own deduplication key), and the vendors
    /// that were healthy when an incident was declared got exactly one request for it.
    async fn check_once(&self, phases: &[Phase]) {
        let channels = self.slack.channels();
        let creates = self.slack.seen("conversations.create");
        let central = self.slack.messages(CENTRAL);
        for s in self.slack.fake.0.lock().unwrap().seen.iter() {
            assert_eq!(s.auth.as_deref(), Some(&*format!("Bearer {SLACK_TOKEN}")), "{}", s.api);
        }
        let issues = self.jira.0.lock().unwrap().clone();
        let jira_sent = self.jira_server.received_requests().await.unwrap();
        for r in &jira_sent {
            let p = r.url.path().to_string();
            check_request(r, "POST", &p, &basic_auth());
        }
        let pd_sent = self.pagerduty.received_requests().await.unwrap();
        let og_sent = self.opsgenie.received_requests().await.unwrap();
        let hook_sent = self.hooks.received_requests().await.unwrap();
        let mails = self.sink.messages();
        for phase in phases {
            for &n in &phase.numbers {
                let healthy = |v: Vendor| phase.vendor != Some(v);
                let key = format!("redbutton-{}", self.app.external_key(n).await);

                let mine: Vec<_> = channels
                    .iter()
                    .filter(|c| c.1.starts_with(&format!("inc-{n}-")))
                    .collect();
                assert_eq!(mine.len(), 1, "INC-{n}: one Slack channel: {mine:?}");
                let (cid, _, _, _, pins, bookmarks, _) = mine[0];
                assert_eq!(self.slack.messages(cid).len(), 1, "INC-{n}: one summary");
                assert_eq!(*pins, 1, "INC-{n}: one pin");
                assert_eq!(*bookmarks, 3, "INC-{n}: incident page, call and ticket bookmarked once");
                let announced = central
                    .iter()
                    .filter(|m| m.text.starts_with(&format!("INC-{n}:")))
                    .count();
                assert_eq!(announced, 1, "INC-{n}: one announcement");
                if healthy(Vendor::Slack) {
                    let asked = creates
                        .iter()
                        .filter(|s| {
                            s.body["name"]
                                .as_str()
                                .is_some_and(|c| c.starts_with(&format!("inc-{n}-")))
                        })
                        .count();
                    assert_eq!(asked, 1, "INC-{n}: Slack was asked once for the channel");
                }

                let tickets = issues.iter().filter(|(_, labels)| labels.contains(&key)).count();
                assert_eq!(tickets, 1, "INC-{n}: one Jira ticket");
                if healthy(Vendor::Jira) {
                    let asked = jira_sent
                        .iter()
                        .filter(|r| r.url.path() == "/rest/api/3/issue")
                        .filter(|r| body(r)["fields"]["labels"].as_array().unwrap().contains(&json!(key)))
                        .count();
                    assert_eq!(asked, 1, "INC-{n}: Jira was asked once for the ticket");
                }

                let pages: Vec<Value> = pd_sent
                    .iter()
                    .inspect(|r| assert_pd_request(r))
                    .map(body)
                    .filter(|b| b["dedup_key"] == json!(key))
                    .collect();
                assert!(!pages.is_empty(), "INC-{n}: paged on PagerDuty");
                for b in &pages {
                    assert_eq!(b["routing_key"], PD_DEFAULT);
                    assert_eq!(b["event_action"], "trigger");
                }
                if healthy(Vendor::PagerDuty) {
                    assert_eq!(pages.len(), 1, "INC-{n}: one PagerDuty trigger");
                }

                let alerts: Vec<Value> = og_sent
                    .iter()
                    .inspect(|r| assert_og_request(r, "/v2/alerts", None))
                    .map(body)
                    .filter(|b| b["alias"] == json!(key))
                    .collect();
                assert!(!alerts.is_empty(), "INC-{n}: an Opsgenie alert");
                if healthy(Vendor::Opsgenie) {
                    assert_eq!(alerts.len(), 1, "INC-{n}: one Opsgenie create");
                }

                let events: Vec<&Request> = hook_sent
                    .iter()
                    .filter(|r| checked_body(r, "ops", OPS_SECRET)["incident"]["number"] == json!(n))
                    .collect();
                let ids: HashSet<&str> = events
                    .iter()
                    .map(|r| r.headers.get("webhook-id").unwrap().to_str().unwrap())
                    .collect();
                assert_eq!(ids.len(), 1, "INC-{n}: one webhook event");
                if healthy(Vendor::Webhook) {
                    assert_eq!(events.len(), 1, "INC-{n}: one webhook request");
                }

                let subject = format!("INC-{n} declared: ");
                let sent: Vec<&Mail> = mails
                    .iter()
                    .filter(|m| m.header("Subject").is_some_and(|s| s.contains(&subject)))
                    .collect();
                let ids: HashSet<String> = sent.iter().filter_map(|m| m.header("Message-ID")).collect();
                assert_eq!(ids.len(), 1, "INC-{n}: one email");
                if healthy(Vendor::Email) {
                    assert_eq!(sent.len(), 1, "INC-{n}: one message sent");
                }
            }
        }
    }

    async fn stop(self) {
        for front in self.fronts.values() {
            front.set(Door::Open).await;
        }
        self.app.stop().await;
    }
}

fn is_ticket_step(r: &OutboxRow) -> bool {
    r.sequence_key.as_deref().is_some_and(|k| k.ends_with(":slack:ticket"))
}

/// The rows a fault of `v` holds up: its own, and Slack's bookmark of the Jira ticket, which
/// needs both Slack's channel and Jira's ticket.
fn held_by(r: &OutboxRow, v: Vendor) -> bool {
    if is_ticket_step(r) {
        matches!(v, Vendor::Slack | Vendor::Jira)
    } else {
        r.notifier == v.notifier()
    }
}

fn median(lat: &[Duration]) -> Duration {
    let mut v = lat.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs one fault against every vendor it applies to, one vendor at a time.
async fn drill(fault: Fault) {
    let d = Drill::start(fault).await;
    let mut phases = vec![d.declare(None).await];
    let rows = d.settle(&phases).await;
    assert!(rows.iter().all(|(_, r)| r.attempts == 1), "healthy: {rows:?}");
    for v in VENDORS.into_iter().filter(|v| fault.applies(*v)) {
        d.break_vendor(v).await;
        let mut phase = d.declare(Some(v)).await;
        d.others_delivered(v, &phase).await;
        phase.shown = d.failure_shown(v, &phase).await;
        d.heal(v).await;
        phase.healed_at = Some(chrono::Utc::now().naive_utc());
        phases.push(phase);
    }
    let rows = d.settle(&phases).await;
    let total: usize = phases.iter().map(|p| p.numbers.len()).sum();
    assert_eq!(
        d.app.incident_count().await,
        total as i64,
        "every answered declaration is stored, once"
    );
    d.check_once(&phases).await;

    let healthy = median(&phases[0].latencies);
    println!(
        "fault drill, {fault:?}: declare (form post) median {:.1} ms with every vendor healthy",
        ms(healthy)
    );
    for p in &phases[1..] {
        let v = p.vendor.unwrap();
        let delivered = rows
            .iter()
            .filter(|(n, r)| p.numbers.contains(n) && held_by(r, v))
            .filter_map(|(_, r)| r.delivered_at)
            .max()
            .unwrap();
        let recovered = match fault.accepted(v) {
            true => "accepted as delivered".to_string(),
            false => format!(
                "pending deliveries done {} ms after the vendor healed",
                (delivered - p.healed_at.unwrap()).num_milliseconds()
            ),
        };
        println!(
            "fault drill, {fault:?} at {v:?}: declare median {:.1} ms (max {:.1} ms, {:.2}x healthy); {recovered}; \
             the page said: {}",
            ms(median(&p.latencies)),
            ms(*p.latencies.iter().max().unwrap()),
            median(&p.latencies).as_secs_f64() / healthy.as_secs_f64(),
            p.shown,
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn refused_connections() {
    drill(Fault::Refused).await;
}

#[tokio::test]
async fn hangs_past_the_timeout() {
    drill(Fault::Hang).await;
}

#[tokio::test]
async fn server_errors() {
    drill(Fault::ServerError).await;
}

#[tokio::test]
async fn rate_limits_with_retry_after() {
    drill(Fault::RateLimited).await;
}

#[tokio::test]
async fn malformed_json() {
    drill(Fault::Malformed).await;
}

#[tokio::test]
async fn slack_ok_false_transient() {
    drill(Fault::OkFalse("fatal_error")).await;
}

#[tokio::test]
async fn slack_ok_false_permanent_then_the_retry_button() {
    drill(Fault::OkFalse("invalid_auth")).await;
}

#[tokio::test]
async fn very_slow_bodies() {
    drill(Fault::SlowBody).await;
}

#[tokio::test]
async fn ten_megabyte_bodies() {
    drill(Fault::Huge).await;
}
