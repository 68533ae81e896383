//! The receiver with the real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) on
//! loopback: alerts pushed with `amtool` open one incident per group, a new alert of a group lands
//! on its incident's timeline, and resolving every alert of a group mitigates its incident.
//! Without the binaries the test says it was skipped, unless `REDBUTTON_REQUIRE_ALERTMANAGER=1`
//! (set by `.ci/run`) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use super::alertmanager::{am_app, am_settings, incident, kinds};
use crate::helpers::*;

/// The two binaries, if installed (`REDBUTTON_ALERTMANAGER_BIN` / `REDBUTTON_AMTOOL_BIN` override).
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let am = std::env::var("REDBUTTON_ALERTMANAGER_BIN").unwrap_or_else(|_| "/usr/bin/prometheus-alertmanager".into());
    let amtool = std::env::var("REDBUTTON_AMTOOL_BIN").unwrap_or_else(|_| "/usr/bin/amtool".into());
    let (am, amtool) = (PathBuf::from(am), PathBuf::from(amtool));
    (am.is_file() && amtool.is_file()).then_some((am, amtool))
}

/// A running Alertmanager, killed when dropped (also when the test panics).
struct Alertmanager {
    child: Child,
    url: String,
    amtool: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    /// Starts it with one webhook receiver pointing at `webhook` with the bearer token, grouping
    /// by alert name and service with one-second waits, clustering off.
    async fn start(bin: &Path, amtool: &Path, webhook: &str, token: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: redbutton\n  group_by: ['alertname', 'service']\n  group_wait: 1s\n  \
                 group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: redbutton\n    webhook_configs:\n      \
                 - url: '{webhook}'\n        send_resolved: true\n        http_config:\n          authorization:\n            \
                 type: Bearer\n            credentials_file: '{}'\n",
                token_file.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.external-url=http://127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("alertmanager starts");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            amtool: amtool.to_path_buf(),
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{}/-/ready", am.url)).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "alertmanager did not get ready: {}",
                am.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        am
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    /// `amtool alert add` with these labels and flags.
    fn add(&self, labels: &[&str], flags: &[String]) {
        let out = Command::new(&self.amtool)
            .arg("alert")
            .arg("add")
            .arg(format!("--alertmanager.url={}", self.url))
            .args(flags)
            .args(labels)
            .output()
            .expect("amtool runs");
        assert!(
            out.status.success(),
            "amtool alert add {labels:?} {flags:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Polls `check` until it holds or `within` passes.
async fn until<F, Fut>(what: &str, within: Duration, am: &Alertmanager, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}\n{}", am.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The incident numbers by title.
async fn numbers_by_title(app: &TestApp) -> Vec<(String, i64)> {
    use diesel::prelude::*;
    use redbutton::db::schema::incidents::dsl as i;
    app.state
        .db
        .run(|c| {
            i::incidents
                .order(i::number.asc())
                .select((i::title, i::number))
                .load::<(String, i64)>(c)
        })
        .await
        .unwrap()
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test]
async fn the_real_alertmanager_opens_one_incident_per_group_and_mitigates_when_all_resolve() {
    let Some((bin, amtool)) = binaries() else {
        assert!(
            std::env::var("REDBUTTON_REQUIRE_ALERTMANAGER").as_deref() != Ok("1"),
            "REDBUTTON_REQUIRE_ALERTMANAGER=1 but prometheus-alertmanager or amtool is missing \
             (apt-get install prometheus-alertmanager)"
        );
        eprintln!("SKIPPED: prometheus-alertmanager and amtool are not installed");
        return;
    };
    let db = TestDb::new();
    let (app, secret, _) = am_app(&db, Some(am_settings(true)), &["incidents:declare"]).await;
    let am = Alertmanager::start(&bin, &amtool, &format!("{}/api/v1/alertmanager", app.address), &secret).await;

    let start = rfc3339(Utc::now() - chrono::Duration::minutes(2));
    let since = format!("--start={start}");
    let summary = "--annotation=summary=Checkout is down".to_string();
    let checkout_a = [
        "alertname=CheckoutDown",
        "service=checkout",
        "severity=critical",
        "instance=web-a",
    ];
    let checkout_b = [
        "alertname=CheckoutDown",
        "service=checkout",
        "severity=critical",
        "instance=web-b",
    ];
    let backlog = [
        "alertname=QueueBacklog",
        "service=checkout",
        "severity=warning",
        "queue=invoices",
    ];
    let generator = "--generator-url=http://prometheus.test:9090/graph?g0.expr=up".to_string();

    // Two groups: two incidents.
    am.add(&checkout_a, &[since.clone(), summary.clone(), generator.clone()]);
    am.add(&backlog, std::slice::from_ref(&since));
    until("two incidents", Duration::from_secs(30), &am, || async {
        numbers_by_title(&app).await.len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let found = numbers_by_title(&app).await;
    assert_eq!(found.len(), 2, "one incident per group: {found:?}");
    let down = found
        .iter()
        .find(|(t, _)| t == "Checkout is down")
        .expect("titled by the summary")
        .1;
    let queue = found
        .iter()
        .find(|(t, _)| t == "QueueBacklog: service=checkout")
        .expect("titled by the group labels")
        .1;
    let (_, severity, status, summary_md, _, services) = incident(&app, down).await;
    assert_eq!((severity.as_str(), status.as_str()), ("SEV1", "investigating"));
    assert_eq!(services, vec!["checkout"]);
    assert!(
        summary_md.contains(&format!("[Open in Alertmanager]({})", am.url)),
        "{summary_md}"
    );
    assert_eq!(incident(&app, queue).await.1, "SEV3");
    assert_eq!(kinds(&app, down).await, vec!["declared", "alert_firing"]);

    // A new alert in the first group: on that incident's timeline, no third incident.
    am.add(&checkout_b, &[since.clone(), summary.clone()]);
    until("the second alert recorded", Duration::from_secs(30), &am, || async {
        kinds(&app, down).await.len() >= 3
    })
    .await;
    assert_eq!(
        kinds(&app, down).await,
        vec!["declared", "alert_firing", "alert_firing"]
    );
    assert_eq!(app.incident_count().await, 2);

    // Resolve the first group's alerts (an end time in the past): recorded, then mitigated.
    let end = format!("--end={}", rfc3339(Utc::now() - chrono::Duration::seconds(5)));
    am.add(&checkout_a, &[since.clone(), end.clone(), summary.clone()]);
    am.add(&checkout_b, &[since.clone(), end.clone(), summary.clone()]);
    until("the first group mitigated", Duration::from_secs(30), &am, || async {
        incident(&app, down).await.2 == "mitigated"
    })
    .await;
    assert_eq!(
        kinds(&app, down).await,
        vec![
            "declared",
            "alert_firing",
            "alert_firing",
            "alert_resolved",
            "alert_resolved",
            "status_changed"
        ]
    );
    assert_eq!(
        incident(&app, queue).await.2,
        "investigating",
        "the other group still fires"
    );
    assert_eq!(app.incident_count().await, 2);
    drop(am);
    app.stop().await;
}
