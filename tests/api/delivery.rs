//! Durable fan-out: real SMTP delivery, retries with backoff, dead letters and the retry button,
//! isolation from failing notifiers, and exactly-once across a restart.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;

fn with_email(db: &TestDb, sink_port: u16) -> Spawn {
    let mut spawn = Spawn::new(db);
    spawn.settings.integrations.email = Some(email_to_sink(sink_port));
    spawn.settings.services = vec![service("checkout", "Checkout", &["payments@example.com"])];
    spawn
}

#[tokio::test]
async fn declaring_emails_the_routed_lists_through_a_real_smtp_server() {
    let sink = SmtpSink::start();
    let db = TestDb::new();
    let app = TestApp::spawn(with_email(&db, sink.port)).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let r = app
        .declare(&[
            ("title", "Card payments failing"),
            ("severity", "SEV1"),
            ("services", "checkout"),
            ("summary", "Declines at **40%**."),
        ])
        .await;
    assert_eq!(r.status(), 303);
    let n = number_from_location(&r);

    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.mail_from, "redbutton@example.com");
    let mut to = m.rcpt_tos.clone();
    to.sort();
    assert_eq!(to, vec!["incidents@example.com", "payments@example.com"]);
    assert_eq!(
        m.header("Subject").unwrap(),
        format!("[SEV1] INC-{n} declared: Card payments failing")
    );
    assert_eq!(m.header("Message-ID").unwrap(), format!("<inc-{n}-t1-email@redbutton>"));
    assert!(m.data.contains("multipart/alternative"));
    assert!(m.data.contains("Ada Lovelace declared INC-"));
    assert!(
        m.data.contains(&format!("{}/incidents/{n}", app.address)),
        "links back to the incident"
    );
    assert!(
        m.decoded().contains("<strong>40%</strong>"),
        "HTML part renders the Markdown summary"
    );

    let rows = app.wait_outbox(&["done"], Duration::from_secs(10)).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts, 1);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let d = texts(&html, "#deliveries tbody tr");
    assert!(d[0].contains("email") && d[0].contains("Delivered"), "{d:?}");
    assert!(
        d[0].contains("to incidents@example.com, payments@example.com"),
        "who got it is shown: {d:?}"
    );
    assert!(d[0].contains(&format!("<inc-{n}-t")), "and the message id: {d:?}");

    // A status change is routed too, and says what changed.
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/status"),
            &[("csrf", &csrf), ("expected", "investigating"), ("status", "resolved")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let mails = sink.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(
        mails[1].header("Subject").unwrap(),
        format!("[SEV1] INC-{n} resolved: Card payments failing")
    );
    assert!(
        mails[1]
            .data
            .contains("changed the status from investigating to resolved")
    );
}

#[tokio::test]
async fn smtp_down_is_retried_with_backoff_and_delivered_once_it_is_back() {
    let mut sink = SmtpSink::stopped();
    let db = TestDb::new();
    let app = TestApp::spawn(with_email(&db, sink.port)).await;
    app.identify("Ada", "ada@example.com").await;
    let n = app.declare_ok("Mail outage test").await;

    // Failing attempts pile up, with the error visible and the next attempt scheduled.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = app.outbox_rows().await;
        if rows[0].attempts >= 2 && rows[0].state == "pending" {
            assert!(
                rows[0].last_error.as_deref().unwrap().contains("SMTP 127.0.0.1"),
                "{:?}",
                rows[0].last_error
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no retries seen: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let d = texts(&html, "#deliveries tbody tr");
    assert!(d[0].contains("Retrying") || d[0].contains("Sending"), "{d:?}");
    assert!(html.contains("SMTP 127.0.0.1"), "the error is shown");

    sink.restart();
    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    assert!(rows[0].attempts >= 2);
    let mails = sink.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1, "delivered exactly once: {mails:?}");
}

#[tokio::test]
async fn exhausted_retries_are_dead_lettered_shown_and_the_retry_button_works() {
    let mut sink = SmtpSink::stopped();
    let db = TestDb::new();
    let mut spawn = with_email(&db, sink.port);
    spawn.settings.outbox.max_attempts = 3;
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada", "ada@example.com").await;
    let n = app.declare_ok("Dead letter test").await;

    let rows = app.wait_outbox(&["dead"], Duration::from_secs(15)).await;
    assert_eq!(rows[0].attempts, 3);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let d = texts(&html, "#deliveries tbody tr");
    assert!(d[0].contains("Failed") && d[0].contains("Retry"), "{d:?}");
    let csrf = app.csrf().await;
    let retry_path = format!("/incidents/{n}/deliveries/{}/retry", rows[0].id);

    sink.restart();
    let r = app.post_form(&retry_path, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    let rows = app.wait_outbox(&["done"], Duration::from_secs(15)).await;
    assert_eq!(rows[0].attempts, 1, "a fresh attempt budget");
    assert_eq!(sink.wait_for(1, Duration::from_secs(5)).await.len(), 1);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(
        texts(&html, ".timeline li")
            .iter()
            .any(|t| t.contains("asked to retry a failed delivery"))
    );

    // Retrying something that is not failed changes nothing.
    let r = app.post_form(&retry_path, &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 409);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_panicking_or_hanging_notifier_does_not_stop_the_others() {
    let sink = SmtpSink::start();
    let db = TestDb::new();
    let mut spawn = with_email(&db, sink.port);
    let counter = CountingNotifier {
        name: "counter",
        ..Default::default()
    };
    spawn.notifiers = vec![
        Arc::new(PanickingNotifier),
        Arc::new(HangingNotifier),
        Arc::new(counter.clone()),
    ];
    spawn.settings.outbox.max_attempts = 2;
    spawn.settings.outbox.delivery_timeout_ms = 500;
    route_all_to(&mut spawn.settings, &["panicky", "hangs", "counter", "email"]);
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada", "ada@example.com").await;
    let n = app.declare_ok("Isolation test").await;

    let rows = app.wait_outbox(&["done", "dead"], Duration::from_secs(20)).await;
    let by = |name: &str| rows.iter().find(|r| r.notifier == name).unwrap().clone();
    assert_eq!(by("panicky").state, "dead");
    assert!(
        by("panicky")
            .last_error
            .unwrap()
            .contains("notifier panicked: integration bug")
    );
    assert_eq!(by("hangs").state, "dead");
    assert!(by("hangs").last_error.unwrap().contains("timed out after 500 ms"));
    assert_eq!(by("counter").state, "done");
    assert_eq!(by("email").state, "done");
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(counter.seen.lock().unwrap().len(), 1);

    // The web server is unaffected, and the failures are on the page.
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(html.contains("notifier panicked"));
    assert!(html.contains("timed out"));
    assert_eq!(app.declare_ok("Still works").await, n + 1);
}

#[tokio::test]
async fn stopping_mid_delivery_and_starting_again_delivers_each_exactly_once() {
    let sink = SmtpSink::start();
    sink.set_delay(1.5);
    let db = TestDb::new();
    let app = TestApp::spawn(with_email(&db, sink.port)).await;
    app.identify("Ada", "ada@example.com").await;
    for i in 0..6 {
        app.declare_ok(&format!("Restart test {i}")).await;
    }
    // Wait until deliveries are in flight, then stop the server (SIGTERM-like).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !app.outbox_rows().await.iter().any(|r| r.state == "leased") {
        assert!(std::time::Instant::now() < deadline, "nothing went in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = app.state.clone();
    app.stop().await;
    let counts: std::collections::HashMap<String, i64> = state
        .db
        .run(redbutton::db::models::outbox::count_by_state)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        counts.get("leased"),
        None,
        "in-flight deliveries finished within the grace period: {counts:?}"
    );

    sink.clear_delay();
    let app = TestApp::spawn(with_email(&db, sink.port)).await;
    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 6);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = sink.messages();
    let mut ids: Vec<String> = mails.iter().map(|m| m.header("Message-ID").unwrap()).collect();
    ids.sort();
    let total = ids.len();
    ids.dedup();
    assert_eq!(total, 6, "each message exactly once");
    assert_eq!(ids.len(), 6);
}

#[tokio::test]
async fn after_a_crash_leased_deliveries_are_retried_once_their_lease_expires() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    // First life: the integration hangs, and the process dies without any grace.
    spawn.notifiers = vec![Arc::new(HangingNotifierNamed("counter"))];
    spawn.settings.outbox.shutdown_grace_ms = 0;
    spawn.settings.outbox.delivery_timeout_ms = 1_000;
    spawn.settings.outbox.lease_ms = 2_000;
    route_all_to(&mut spawn.settings, &["counter"]);
    let settings = spawn.settings.clone();
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada", "ada@example.com").await;
    for i in 0..4 {
        app.declare_ok(&format!("Crash test {i}")).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.outbox_rows().await.iter().filter(|r| r.state == "leased").count() < 4 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;

    // Second life: the integration works; leases expire and every row is delivered once.
    let counter = CountingNotifier {
        name: "counter",
        ..Default::default()
    };
    let mut spawn = Spawn::new(&db);
    spawn.settings = settings;
    spawn.notifiers = vec![Arc::new(counter.clone())];
    let app = TestApp::spawn(spawn).await;
    let rows = app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().all(|r| r.attempts == 2),
        "the lost attempt counts: {rows:?}"
    );
    let seen = counter.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert!(seen.values().all(|c| *c == 1));
    assert!(
        rows.iter()
            .all(|r| { r.external_url.as_deref().unwrap().starts_with("https://example.com/") })
    );
}

struct HangingNotifierNamed(&'static str);

impl redbutton::notifiers::Notifier for HangingNotifierNamed {
    fn name(&self) -> &str {
        self.0
    }

    fn deliver<'a>(
        &'a self,
        _d: &'a redbutton::notifiers::Delivery,
    ) -> futures_util::future::BoxFuture<'a, Result<redbutton::notifiers::Delivered, redbutton::notifiers::NotifyError>>
    {
        Box::pin(std::future::pending())
    }
}
