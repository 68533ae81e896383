//! Real-browser tests: Debian's headless Chromium, driven through chromedriver, walks the path a
//! person takes in an incident — dashboard, the big red button, a title and nothing else, the
//! incident page with its delivery going out, mitigated, resolved, and the dashboard's past list.
//!
//! It runs twice: at desktop width with JavaScript (the live refresh must show the delivery finish
//! without a reload), and at phone width with JavaScript switched off (every step must work with
//! plain forms and links). Each step fails the test on a console error or a Content-Security-Policy
//! violation, and screenshots of the declare form, the incident page and the dashboard at both
//! widths are written to `target/browser-screenshots/` and their paths printed.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`).
//! Without them the tests say so and pass, unless `REDBUTTON_REQUIRE_BROWSER=1` (set by `.ci/run`),
//! where a missing browser fails them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::*;

/// Where the browser and its driver are, or why the test cannot run here.
fn browser_paths() -> Option<(PathBuf, PathBuf)> {
    let find = |var: &str, names: &[&str]| -> Option<PathBuf> {
        if let Ok(p) = std::env::var(var) {
            return Some(PathBuf::from(p));
        }
        names
            .iter()
            .map(|n| PathBuf::from("/usr/bin").join(n))
            .find(|p| p.exists())
    };
    let browser = find("REDBUTTON_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"]);
    let driver = find("REDBUTTON_CHROMEDRIVER", &["chromedriver"]);
    match (browser, driver) {
        (Some(b), Some(d)) => Some((b, d)),
        _ => {
            let required = std::env::var("REDBUTTON_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "REDBUTTON_REQUIRE_BROWSER=1 but chromium or chromedriver is missing \
                 (apt-get install chromium chromium-driver, or set REDBUTTON_CHROMIUM / REDBUTTON_CHROMEDRIVER)"
            );
            eprintln!(
                "browser tests skipped: chromium and chromedriver not found (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

/// Where screenshots go: `target/browser-screenshots/`.
fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A chromedriver process on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(path: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a session looks at the app.
#[derive(Clone, Copy, Debug)]
enum Device {
    /// 1280 px wide, JavaScript on.
    Desktop,
    /// A 390 px phone screen (device pixel ratio 2), JavaScript off.
    PhoneWithoutJs,
}

impl Device {
    fn name(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::PhoneWithoutJs => "phone-nojs",
        }
    }

    fn javascript(self) -> bool {
        matches!(self, Device::Desktop)
    }
}

async fn open_browser(driver: &Driver, browser: &Path, device: Device) -> Client {
    let mut options = json!({
        "binary": browser.display().to_string(),
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-extensions", "--window-size=1280,1000"],
    });
    if let Device::PhoneWithoutJs = device {
        // A phone's screen: mobile viewport rules at 390 CSS pixels, device pixel ratio 2. (Touch
        // emulation is left off: chromedriver then waits long after every tap.)
        options["mobileEmulation"] = json!({
            "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": false, "mobile": true },
        });
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("open a Chromium session through chromedriver");
    if let Device::PhoneWithoutJs = device {
        // No scripts at all (the phone's screen is set in the capabilities).
        for (cmd, params) in [("Emulation.setScriptExecutionDisabled", json!({ "value": true }))] {
            c.issue_cmd(ChromeCommand {
                path: "goog/cdp/execute",
                body: json!({ "cmd": cmd, "params": params }),
            })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        }
    }
    c
}

/// A chromedriver command outside the W3C set: the browser console log and Chrome DevTools calls.
#[derive(Debug)]
struct ChromeCommand {
    path: &'static str,
    body: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for ChromeCommand {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// One walk through the app in one browser, with the checks every page gets.
struct Walk {
    c: Client,
    base: String,
    device: Device,
    shots: Vec<PathBuf>,
}

impl Walk {
    /// Fails on anything the browser console reported since the last call: script errors, CSP
    /// violations, failed loads.
    async fn console_is_clean(&self, step: &str) {
        let log = self
            .c
            .issue_cmd(ChromeCommand {
                path: "se/log",
                body: json!({ "type": "browser" }),
            })
            .await
            .expect("read the browser console");
        let problems: Vec<String> = log
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            // Chromium asks for /favicon.ico on its own; the app has none to serve.
            .filter(|m| !m.contains("favicon.ico"))
            .collect();
        assert!(
            problems.is_empty(),
            "[{}] {step}: browser console: {problems:#?}",
            self.device.name()
        );
    }

    async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.expect("navigate");
        self.console_is_clean(&format!("open {path}")).await;
    }

    async fn path(&self) -> String {
        let url = self.c.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn text(&self, css: &str) -> String {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("[{}] no {css} on {}: {e}", self.device.name(), self.base))
            .text()
            .await
            .unwrap()
    }

    /// Clicks a link or a submit button and waits for the next page to replace this one.
    async fn click(&self, css: &str) {
        let page = self.c.find(Locator::Css("html")).await.unwrap();
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("[{}] nothing to click at {css}: {e}", self.device.name()))
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        // The old document's root goes stale once the browser has moved on.
        while page.tag_name().await.is_ok() {
            if Instant::now() >= deadline {
                let shot = shots_dir().join(format!("failed-click-{}.png", self.device.name()));
                std::fs::write(&shot, self.c.screenshot().await.unwrap()).unwrap();
                panic!(
                    "[{}] clicking {css} did not lead anywhere; the window is in {}",
                    self.device.name(),
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.c.wait().for_element(Locator::Css("body")).await.unwrap();
        self.console_is_clean(&format!("click {css}")).await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.c.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn choose(&self, css: &str, value: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap()
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("[{}] cannot choose {value} in {css}: {e}", self.device.name()));
    }

    /// A screenshot of the whole page (not only the window), saved under target/. The page must
    /// fit the screen's width: nobody should scroll sideways to read an incident.
    async fn screenshot(&mut self, name: &str) {
        let metrics = self
            .c
            .issue_cmd(ChromeCommand {
                path: "goog/cdp/execute",
                body: json!({ "cmd": "Page.getLayoutMetrics", "params": {} }),
            })
            .await
            .expect("layout metrics");
        let content = metrics["cssContentSize"]["width"].as_f64().unwrap();
        let screen = metrics["cssLayoutViewport"]["clientWidth"].as_f64().unwrap();
        assert!(
            content <= screen + 0.5,
            "[{}] the {name} page is {content} px wide on a {screen} px screen",
            self.device.name()
        );
        let shot = self
            .c
            .issue_cmd(ChromeCommand {
                path: "goog/cdp/execute",
                body: json!({
                    "cmd": "Page.captureScreenshot",
                    "params": { "format": "png", "captureBeyondViewport": true },
                }),
            })
            .await
            .expect("capture a screenshot");
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = shots_dir().join(format!("{name}-{}.png", self.device.name()));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        self.shots.push(path);
    }

    /// Waits until `css` matches something, reloading between looks when the page cannot
    /// refresh itself (JavaScript off).
    async fn wait_for(&self, css: &str, within: Duration, reload: bool) {
        let deadline = Instant::now() + within;
        loop {
            if self.c.find(Locator::Css(css)).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] {css} did not appear on {} within {within:?}; page: {}",
                self.device.name(),
                self.path().await,
                self.c.source().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            if reload {
                self.c.refresh().await.unwrap();
            }
        }
    }
}

/// The whole walk, from the empty dashboard to the resolved incident in the past list.
async fn walk(device: Device) {
    let Some((browser, driver_path)) = browser_paths() else {
        return;
    };
    let db = TestDb::new();
    let sink = SmtpSink::start();
    // The first mail takes a while, so the incident page first shows the delivery on its way.
    sink.set_delay(2.5);
    let mut spec = Spawn::new(&db);
    spec.settings.integrations.email = Some(email_to_sink(sink.port));
    let app = TestApp::spawn(spec).await;
    let driver = Driver::start(&driver_path).await;
    let c = open_browser(&driver, &browser, device).await;
    let mut w = Walk {
        c,
        base: app.address.clone(),
        device,
        shots: vec![],
    };

    // Name yourself once; the app brings you back where you were going.
    w.goto("/").await;
    assert!(w.path().await.starts_with("/identify"), "{}", w.path().await);
    w.type_into("input[name=name]", "Grace Hopper").await;
    w.type_into("input[name=email]", "grace@example.com").await;
    w.click("form[action='/identify'] button[type=submit]").await;
    assert_eq!(w.path().await, "/");
    assert!(w.text("#live").await.contains("No live incidents"));

    // The big red button, a title, nothing else.
    w.click("a.big-red-button").await;
    assert_eq!(w.path().await, "/declare");
    w.screenshot("declare").await;
    w.type_into(
        "#declare-form input[name=title]",
        "Checkout <b>errors</b> for EU customers",
    )
    .await;
    w.click("#declare-form button[type=submit]").await;
    let incident = w.path().await;
    assert!(
        incident.starts_with("/incidents/"),
        "declare led to {incident}: {}",
        w.c.source().await.unwrap_or_default()
    );
    // Typed markup is shown as text, never as markup.
    assert!(w.text("h1").await.contains("Checkout <b>errors</b> for EU customers"));
    assert!(
        w.c.find(Locator::Css("h1 b")).await.is_err(),
        "the title rendered as HTML"
    );
    let mails_now = sink.messages().len();
    assert_eq!(mails_now, 0, "the mail server was told to take its time");
    assert!(
        w.c.find(Locator::Css("#deliveries .dstate-done")).await.is_err(),
        "the delivery is not done yet when the page first shows"
    );

    // The delivery finishes: with JavaScript the page refreshes itself; without, a reload shows it.
    w.wait_for(
        "#deliveries .dstate-done",
        Duration::from_secs(25),
        !device.javascript(),
    )
    .await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(w.path().await, incident, "the live refresh must not navigate away");
    w.screenshot("incident").await;

    // Mitigated, then resolved, through the status form.
    w.choose("form[action$='/status'] select[name=status]", "mitigated")
        .await;
    w.click("form[action$='/status'] button[type=submit]").await;
    assert!(w.path().await.starts_with(&incident), "{}", w.path().await);
    let status = w.text(".status").await.to_lowercase();
    assert!(
        status.contains("mitigated"),
        "{status} at {}: {}",
        w.path().await,
        w.c.source().await.unwrap_or_default()
    );
    w.choose("form[action$='/status'] select[name=status]", "resolved")
        .await;
    w.click("form[action$='/status'] button[type=submit]").await;
    assert!(w.text(".status").await.to_lowercase().contains("resolved"));
    let timeline = w.text("#timeline").await.to_lowercase();
    assert!(
        timeline.contains("mitigated") && timeline.contains("resolved"),
        "{timeline}"
    );

    // The dashboard lists it among the past incidents, not the live ones.
    w.goto("/").await;
    assert!(w.text("#live").await.contains("No live incidents"));
    let past = w.text("#past").await;
    assert!(past.contains("Checkout <b>errors</b> for EU customers"), "{past}");
    w.screenshot("dashboard").await;

    // Back to the incident through the past list.
    w.click(&format!("#past a[href='{incident}']")).await;
    assert_eq!(w.path().await, incident);

    assert_eq!(w.shots.len(), 3);
    w.c.close().await.unwrap();
    drop(driver);
    app.stop().await;
}

#[tokio::test]
async fn a_person_declares_and_resolves_in_a_desktop_browser_with_live_refresh() {
    walk(Device::Desktop).await;
}

#[tokio::test]
async fn a_person_declares_and_resolves_on_a_phone_with_javascript_off() {
    walk(Device::PhoneWithoutJs).await;
}

/// Someone else, on another replica, changes the incident while a responder watches its page:
/// the status, the lead, the latest status update and the timeline change in place, without a
/// reload, and the page's forms follow (the next change from the browser is not refused as stale).
#[tokio::test]
async fn the_incident_page_follows_another_sessions_changes_live() {
    let Some((browser, driver_path)) = browser_paths() else {
        return;
    };
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    // The other session: Ada, through plain HTTP, on a second server process sharing the
    // database (another replica): the page learns of her changes from the database alone.
    let other = TestApp::spawn(Spawn::new(&db)).await;
    other.identify("Ada Lovelace", "ada@example.com").await;
    let n = other.declare_ok("Search results empty").await;
    let incident = format!("/incidents/{n}");

    let driver = Driver::start(&driver_path).await;
    let c = open_browser(&driver, &browser, Device::Desktop).await;
    let mut w = Walk {
        c,
        base: app.address.clone(),
        device: Device::Desktop,
        shots: vec![],
    };
    w.goto(&incident).await;
    assert!(w.path().await.starts_with("/identify"));
    w.type_into("input[name=name]", "Grace Hopper").await;
    w.type_into("input[name=email]", "grace@example.com").await;
    w.click("form[action='/identify'] button[type=submit]").await;
    assert_eq!(w.path().await, incident);
    assert!(w.text("#facts .status").await.contains("Investigating"));
    // A mark that a reload would wipe.
    w.c.execute("window.__watching = 'since before the change'; return true;", vec![])
        .await
        .unwrap();

    other.change_status(n, "investigating", "identified").await;
    let csrf = other.csrf().await;
    let r = other
        .post_form(
            &format!("{incident}/updates"),
            &[
                ("csrf", &csrf),
                ("known", "Search returns nothing for every query since 10:02."),
                ("doing", "Reindexing from the last snapshot."),
                ("next_update", "30"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = other
        .post_form(
            &format!("{incident}/lead"),
            &[("csrf", &csrf), ("expected", ""), ("action", "take")],
        )
        .await;
    assert_eq!(r.status(), 303);

    w.wait_for("#facts .status-identified", Duration::from_secs(15), false)
        .await;
    w.wait_for("#roles", Duration::from_secs(1), false).await;
    let deadline = Instant::now() + Duration::from_secs(12);
    while !w.text("#facts").await.contains("Lead: Ada Lovelace") {
        assert!(Instant::now() < deadline, "lead not shown: {}", w.text("#facts").await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        w.text("#latest-update")
            .await
            .contains("Search returns nothing for every query since 10:02."),
        "{}",
        w.text("#latest-update").await
    );
    let timeline = w.text("#timeline").await.to_lowercase();
    assert!(
        timeline.contains("changed the status from investigating to identified"),
        "{timeline}"
    );
    assert!(timeline.contains("posted a status update"), "{timeline}");
    let mark = w.c.execute("return window.__watching || null;", vec![]).await.unwrap();
    assert_eq!(mark, json!("since before the change"), "the page was reloaded");
    assert_eq!(w.path().await, incident);
    w.console_is_clean("live changes").await;
    w.screenshot("incident-live").await;

    // The refreshed status form carries the new state, so acting on it is not refused as stale.
    w.choose("form[action$='/status'] select[name=status]", "mitigated")
        .await;
    w.click("form[action$='/status'] button[type=submit]").await;
    assert!(
        w.text("#facts .status").await.contains("Mitigated"),
        "{}",
        w.c.source().await.unwrap_or_default()
    );
    w.c.close().await.unwrap();
    drop(driver);
    other.stop().await;
    app.stop().await;
}

/// The insights page over the generated history of 3,000 incidents (`tests/api/insights.rs`),
/// ending today so the default range (the last 90 days) shows most of it: every chart is there
/// with its bars, boxes and labels, the browser reports no CSP violation (the charts use no
/// inline style or script), and a screenshot of the whole page is saved.
#[tokio::test]
async fn the_insights_page_draws_its_charts_in_a_browser() {
    let Some((browser, driver_path)) = browser_paths() else {
        return;
    };
    let db = TestDb::new();
    let mut spec = Spawn::new(&db);
    spec.settings = crate::insights::settings();
    spec.worker = false;
    let app = TestApp::spawn(spec).await;
    let n = 3000;
    let now = chrono::Utc::now().naive_utc();
    let base = now - chrono::Duration::minutes(67 * n as i64) - chrono::Duration::hours(6);
    let plans = crate::insights::generate(&app, base, n).await;
    let today = now.date();
    let from = today - chrono::Duration::days(89);
    let monday = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        d - chrono::Duration::days(d.weekday().num_days_from_monday() as i64)
    };
    let weeks = ((monday(today) - monday(from)).num_days() / 7 + 1) as usize;
    let shown = plans
        .iter()
        .filter(|p| p.counts() && p.declared.date() >= from && p.declared.date() <= today)
        .count();

    let driver = Driver::start(&driver_path).await;
    let c = open_browser(&driver, &browser, Device::Desktop).await;
    let mut w = Walk {
        c,
        base: app.address.clone(),
        device: Device::Desktop,
        shots: vec![],
    };
    w.goto("/insights").await;
    w.type_into("input[name=name]", "Sam Reliability").await;
    w.type_into("input[name=email]", "sam@example.com").await;
    w.click("form[action='/identify'] button[type=submit]").await;
    assert_eq!(w.path().await, "/insights");
    assert!(
        w.text("h1 + p")
            .await
            .contains(&format!("{shown} incidents declared from {from} to {today}")),
        "{}",
        w.text("h1 + p").await
    );

    let count = |css: &'static str| {
        let c = w.c.clone();
        async move { c.find_all(Locator::Css(css)).await.unwrap().len() }
    };
    assert_eq!(count("svg.chart-svg[role=img]").await, 12, "every chart is drawn");
    assert_eq!(count("#chart-weekly .x-labels text").await, weeks, "one label per week");
    assert!(count("#chart-weekly rect.bar").await >= weeks * 3, "stacked bars");
    assert_eq!(
        count("#chart-time-resolve .row rect.box").await,
        weeks,
        "a box per week"
    );
    assert_eq!(
        count("#chart-service-mitigate .row rect.box").await,
        5,
        "a box per service"
    );
    assert_eq!(count("#chart-responders .row rect.bar").await, 7, "a bar per person");
    assert_eq!(count("#chart-hot-incidents .row rect.bar").await, 5);
    assert!(count("#chart-pages rect.bar").await >= 24, "pages at every hour");
    assert!(w.text("#chart-weekly").await.contains("Incidents"), "axis title");
    let total: usize = w.text("#pages-total").await.parse().unwrap();
    let working: usize = w.text("#pages-working").await.parse().unwrap();
    let off: usize = w.text("#pages-off").await.parse().unwrap();
    assert!(total > 100 && working + off == total, "{working} + {off} = {total}");
    w.console_is_clean("insights").await;
    w.screenshot("insights").await;

    // The numbers are in tables too, behind a click.
    w.c.find(Locator::Css("#weekly details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(w.text("#weekly details table").await.contains("SEV1"));
    w.c.close().await.unwrap();
    drop(driver);
    app.stop().await;
}
