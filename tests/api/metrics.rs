//! `/metrics`: the Prometheus exposition for operators. The figures are checked against what the
//! test made happen (declarations, deliveries that land, fail for good, or wait an hour), and the
//! whole text is read by a strict reader of the exposition format written here from the format's
//! rules; who may scrape is checked too.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use redbutton::domain::Actor;
use redbutton::notifiers::webhook::WebhookSettings;
use redbutton::services::tokens::{TokenRequest, create};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

async fn token(app: &TestApp, scopes: &[&str]) -> String {
    create(
        &app.state,
        &Actor {
            name: "Ada Admin".into(),
            email: "ada@example.com".into(),
        },
        &TokenRequest {
            name: format!("scraper {}", scopes.join(" ")),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap()
    .secret
}

fn hook(name: &str, server: &MockServer) -> WebhookSettings {
    WebhookSettings {
        name: name.into(),
        url: format!("{}/{name}", server.uri()),
        secret_env: "METRICS_TEST_HOOK_SECRET".into(),
        events: vec![],
        drills: true,
    }
}

async fn scrape(app: &TestApp, bearer: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(format!("{}/metrics", app.address));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// One sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);
/// A histogram's buckets (upper bound, cumulative count) per set of labels other than `le`.
type Buckets = BTreeMap<Vec<(String, String)>, Vec<(f64, f64)>>;

/// Reads Prometheus text format 0.0.4 strictly: every line is a HELP, a TYPE or a sample; names
/// and label names are valid; label values are quoted with only `\\`, `\"` and `\n` escapes; each
/// family has one TYPE, before its samples, and its samples are together; histograms are
/// cumulative and end with `+Inf` equal to `_count`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
    };
    let mut types: HashMap<String, String> = HashMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, what) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(valid_name(name), "family name {name:?}");
            match kind {
                "HELP" => assert!(!what.is_empty(), "help text for {name}"),
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&what),
                        "type {what:?}"
                    );
                    assert!(
                        types.insert(name.to_string(), what.to_string()).is_none(),
                        "one TYPE for {name}"
                    );
                }
                other => panic!("unknown comment {other:?}"),
            }
            continue;
        }
        let (name_labels, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
        };
        let (name, labels) = match name_labels.split_once('{') {
            None => (name_labels.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("labels in {line:?}"));
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert!(valid_name(&key) && !key.contains(':'), "label name {key:?} in {line:?}");
                    assert_eq!(chars.next(), Some('"'), "quoted label value in {line:?}");
                    let mut val = String::new();
                    loop {
                        match chars.next().unwrap_or_else(|| panic!("unterminated value in {line:?}")) {
                            '"' => break,
                            '\\' => match chars.next() {
                                Some('\\') => val.push('\\'),
                                Some('"') => val.push('"'),
                                Some('n') => val.push('\n'),
                                other => panic!("bad escape {other:?} in {line:?}"),
                            },
                            c => val.push(c),
                        }
                    }
                    assert!(
                        labels.insert(key.clone(), val).is_none(),
                        "label {key} twice in {line:?}"
                    );
                    match chars.next() {
                        None => break,
                        Some(',') => {}
                        other => panic!("expected , after a label, got {other:?} in {line:?}"),
                    }
                }
                (name.to_string(), labels)
            }
        };
        assert!(valid_name(&name), "metric name {name:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(&name)
            .to_string();
        assert!(types.contains_key(&family), "{name}: TYPE comes before the samples");
        if current.as_deref() != Some(family.as_str()) {
            assert!(!finished.contains(&family), "{family}: its samples are together");
            if let Some(c) = current.take() {
                finished.push(c);
            }
            current = Some(family.clone());
        }
        samples.push((name, labels, value));
    }
    // Histograms: cumulative buckets ending at +Inf, which equals _count.
    for (family, _) in types.iter().filter(|(_, t)| *t == "histogram") {
        let mut series = Buckets::new();
        for (name, labels, value) in &samples {
            if *name == format!("{family}_bucket") {
                let le = labels["le"].as_str();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                let rest = labels
                    .iter()
                    .filter(|(k, _)| *k != "le")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                series.entry(rest).or_default().push((le, *value));
            }
        }
        for (labels, buckets) in series {
            assert!(
                buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{family} {labels:?} cumulative"
            );
            let last = buckets.last().unwrap();
            assert!(last.0.is_infinite(), "{family} ends with +Inf");
            let count = samples
                .iter()
                .find(|(n, l, _)| {
                    *n == format!("{family}_count")
                        && l.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>() == labels
                })
                .map(|s| s.2);
            assert_eq!(count, Some(last.1), "{family} {labels:?}: +Inf bucket equals _count");
        }
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.2)
}

#[tokio::test]
async fn metrics_count_declarations_deliveries_and_what_is_still_to_do() {
    let vendor = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/good"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&vendor)
        .await;
    Mock::given(method("POST"))
        .and(path("/broken"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&vendor)
        .await;
    // The vendor asks for an hour's pause: these stay pending, and are the oldest still to do.
    Mock::given(method("POST"))
        .and(path("/busy"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .mount(&vendor)
        .await;

    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.services = vec![service("checkout", "Checkout", &[])];
    spawn.settings.outbox.max_attempts = 2;
    spawn.settings.integrations.webhooks = vec![hook("good", &vendor), hook("broken", &vendor), hook("busy", &vendor)];
    spawn.settings.secret_values.insert(
        "METRICS_TEST_HOOK_SECRET".into(),
        "whsec_bWV0cmljcy10ZXN0LXNpZ25pbmctc2VjcmV0LTMyYnl0ZXM=".into(),
    );
    let app = TestApp::spawn(spawn).await;
    let scraper = token(&app, &["metrics:read"]).await;

    // Before anything happened: the families are there, the counters have no samples yet.
    let empty = scrape(&app, Some(&scraper)).await;
    assert_eq!(empty.status(), 200);
    let samples = parse_exposition(&empty.text().await.unwrap());
    assert_eq!(value(&samples, "redbutton_outbox_depth", &[]), Some(0.0));
    assert_eq!(
        value(&samples, "redbutton_outbox_oldest_pending_age_seconds", &[]),
        Some(0.0)
    );

    app.identify("Dee Clarer", "dee@example.com").await;
    for (title, severity) in [
        ("Checkout down", "SEV1"),
        ("Search slow", "SEV3"),
        ("Cart errors", "SEV1"),
    ] {
        let r = app
            .declare(&[("title", title), ("severity", severity), ("services", "checkout")])
            .await;
        assert_eq!(r.status(), 303);
    }

    // Wait for: 3 good done, 3 broken dead after two attempts, 3 busy pending after one.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = app.outbox_rows().await;
        let count = |n: &str, s: &str, a: i32| {
            rows.iter()
                .filter(|r| r.notifier == n && r.state == s && r.attempts == a)
                .count()
        };
        if count("webhook:good", "done", 1) == 3
            && count("webhook:broken", "dead", 2) == 3
            && count("webhook:busy", "pending", 1) == 3
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "outbox did not settle: {:?}",
            rows.iter()
                .map(|r| (&r.notifier, &r.state, r.attempts))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let resp = scrape(&app, Some(&scraper)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let text = resp.text().await.unwrap();
    let samples = parse_exposition(&text);
    let v = |name: &str, labels: &[(&str, &str)]| value(&samples, name, labels);

    assert_eq!(
        v("redbutton_declarations_total", &[("severity", "SEV1")]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(v("redbutton_declarations_total", &[("severity", "SEV3")]), Some(1.0));
    for (integration, outcome, n) in [
        ("webhook:good", "delivered", 3.0),
        ("webhook:broken", "retry", 3.0),
        ("webhook:broken", "dead", 3.0),
        ("webhook:busy", "retry", 3.0),
    ] {
        assert_eq!(
            v(
                "redbutton_delivery_attempts_total",
                &[("integration", integration), ("outcome", outcome)]
            ),
            Some(n),
            "{integration} {outcome}\n{text}"
        );
    }
    assert_eq!(
        v(
            "redbutton_delivery_attempts_total",
            &[("integration", "webhook:good"), ("outcome", "retry")]
        ),
        None
    );
    for (integration, state, n) in [
        ("webhook:good", "done", 3.0),
        ("webhook:broken", "dead", 3.0),
        ("webhook:busy", "pending", 3.0),
    ] {
        assert_eq!(
            v(
                "redbutton_deliveries",
                &[("integration", integration), ("state", state)]
            ),
            Some(n),
            "{integration} {state}"
        );
    }
    assert_eq!(v("redbutton_outbox_depth", &[]), Some(3.0));
    let age = v("redbutton_outbox_oldest_pending_age_seconds", &[]).unwrap();
    assert!(age > 0.0 && age < 60.0, "oldest pending age {age}");
    // Only deliveries that landed are in the latency histogram: three, each well under 20 s.
    assert_eq!(
        v(
            "redbutton_delivery_latency_seconds_count",
            &[("integration", "webhook:good")]
        ),
        Some(3.0)
    );
    assert_eq!(
        v(
            "redbutton_delivery_latency_seconds_bucket",
            &[("integration", "webhook:good"), ("le", "30")]
        ),
        Some(3.0)
    );
    assert_eq!(
        v(
            "redbutton_delivery_latency_seconds_count",
            &[("integration", "webhook:broken")]
        ),
        None
    );
    assert_eq!(
        v(
            "redbutton_incidents",
            &[("status", "investigating"), ("drill", "false")]
        ),
        Some(3.0)
    );
    assert_eq!(
        v("redbutton_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        Some(1.0)
    );
    assert!(
        !text.contains(&vendor.uri()),
        "no integration address (they can hold secrets) in the metrics"
    );

    // The age grows while nothing is done.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = parse_exposition(&scrape(&app, Some(&scraper)).await.text().await.unwrap());
    let later_age = value(&later, "redbutton_outbox_oldest_pending_age_seconds", &[]).unwrap();
    assert!(later_age >= age + 1.0, "{later_age} after {age}");
    app.stop().await;
}

#[tokio::test]
async fn metrics_need_the_scope_or_an_allowed_network() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;

    let anonymous = scrape(&app, None).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    assert_eq!(anonymous.headers()["content-type"], "application/problem+json");
    assert!(anonymous.text().await.unwrap().contains("metrics:read"));

    let reader = token(&app, &["incidents:read"]).await;
    let wrong_scope = scrape(&app, Some(&reader)).await;
    assert_eq!(wrong_scope.status(), 403);
    assert!(wrong_scope.text().await.unwrap().contains("metrics:read"));

    let made_up = scrape(&app, Some("rbt_nothing_here")).await;
    assert_eq!(made_up.status(), 401);

    // A signed-in person's cookie is not a scraper's token.
    app.identify("Ada Admin", "ada@example.com").await;
    let cookie = app
        .client
        .get(format!("{}/metrics", app.address))
        .header("cookie", app.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(cookie.status(), 401);
    assert_eq!(
        scrape(&app, Some(&token(&app, &["metrics:read"]).await)).await.status(),
        200
    );
    app.stop().await;

    // A scraper on a listed network needs no token; one elsewhere still does.
    let mut spawn = Spawn::new(&db);
    spawn.settings.metrics.allow_from = vec!["127.0.0.0/8".into()];
    let open = TestApp::spawn(spawn).await;
    let resp = scrape(&open, None).await;
    assert_eq!(resp.status(), 200);
    parse_exposition(&resp.text().await.unwrap());
    open.stop().await;

    let mut spawn = Spawn::new(&db);
    spawn.settings.metrics.allow_from = vec!["10.0.0.0/8".into()];
    let elsewhere = TestApp::spawn(spawn).await;
    assert_eq!(scrape(&elsewhere, None).await.status(), 401);
    elsewhere.stop().await;
}
