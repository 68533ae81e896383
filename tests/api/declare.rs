//! Pressing the button: declare → 303 → incident page; idempotency; invalid input changes nothing.

use crate::helpers::*;

async fn app() -> (TestApp, TestDb) {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    let mut checkout = service("checkout", "Checkout", &[]);
    checkout.description = "Payments".into();
    spawn.settings.services = vec![checkout, service("search", "Search", &[])];
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    (app, db)
}

#[tokio::test]
async fn declare_redirects_to_the_incident_page_which_shows_it() {
    let (app, _db) = app().await;
    let resp = app
        .declare(&[
            ("title", "  Checkout returns 500s  "),
            ("severity", "SEV1"),
            ("services", "checkout"),
            (
                "summary",
                "Errors **since 10:02**. [graph](https://grafana.example.com/d/1)",
            ),
            ("lead_self", "on"),
        ])
        .await;
    assert_eq!(resp.status(), 303);
    let number = number_from_location(&resp);
    assert_eq!(number, 1);

    let html = app.get_html(&format!("/incidents/{number}")).await;
    assert_eq!(texts(&html, "h1"), vec!["Checkout returns 500s"]);
    assert!(html.contains("INC-1"));
    assert!(texts(&html, ".facts .sev")[0].contains("SEV1"));
    assert!(texts(&html, ".facts .status")[0].contains("Investigating"));
    assert!(texts(&html, ".facts")[0].contains("Lead: Ada Lovelace"));
    assert!(
        html.contains("<strong>since 10:02</strong>"),
        "summary rendered as Markdown"
    );
    assert!(html.contains("Services: checkout"));
    let timeline = texts(&html, ".timeline li");
    assert!(
        timeline
            .iter()
            .any(|t| t.contains("Ada Lovelace declared the incident")),
        "{timeline:?}"
    );
    assert!(
        timeline.iter().any(|t| t.contains("made Ada Lovelace the lead")),
        "{timeline:?}"
    );
    assert!(
        html.contains("No integrations are configured"),
        "says plainly that nothing is sent"
    );

    let dash = app.get_html("/").await;
    let live = texts(&dash, "#live tbody tr");
    assert_eq!(live.len(), 1);
    assert!(live[0].contains("INC-1") && live[0].contains("Checkout returns 500s") && live[0].contains("Ada Lovelace"));
}

#[tokio::test]
async fn only_a_title_is_required_and_severity_defaults_to_unknown() {
    let (app, _db) = app().await;
    let n = app.declare_ok("Something is off").await;
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(texts(&html, ".facts .sev")[0].contains("unknown"));
    assert!(texts(&html, ".facts")[0].contains("nobody yet"));
}

#[tokio::test]
async fn double_submit_with_one_idempotency_key_opens_one_incident() {
    let (app, _db) = app().await;
    let (csrf, key) = app.declare_form().await;
    let form = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("title", "Double click"),
    ];
    let first = app.post_form("/declare", &form).await;
    let second = app.post_form("/declare", &form).await;
    assert_eq!(first.status(), 303);
    assert_eq!(second.status(), 303);
    assert_eq!(first.headers()["location"], second.headers()["location"]);
    assert_eq!(app.incident_count().await, 1);

    // Concurrent repeats too.
    let (csrf, key) = app.declare_form().await;
    let form = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("title", "Impatient clicks"),
    ];
    let results = futures_util::future::join_all((0..8).map(|_| app.post_form("/declare", &form))).await;
    let locations: std::collections::HashSet<_> = results
        .iter()
        .map(|r| r.headers()["location"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(locations.len(), 1, "every repeat answers with the same incident");
    assert_eq!(app.incident_count().await, 2);
}

#[tokio::test]
async fn a_reused_key_with_different_content_is_refused() {
    let (app, _db) = app().await;
    let (csrf, key) = app.declare_form().await;
    let ok = app
        .post_form(
            "/declare",
            &[("csrf", &csrf), ("idempotency_key", &key), ("title", "First")],
        )
        .await;
    assert_eq!(ok.status(), 303);
    let resp = app
        .post_form(
            "/declare",
            &[("csrf", &csrf), ("idempotency_key", &key), ("title", "Second")],
        )
        .await;
    assert_eq!(resp.status(), 409);
    let html = resp.text().await.unwrap();
    assert!(html.contains("already used to declare INC-1"), "{html}");
    assert_eq!(app.incident_count().await, 1);
}

#[tokio::test]
async fn invalid_input_gets_the_form_back_with_a_message_and_writes_nothing() {
    let (app, _db) = app().await;
    let long = "x".repeat(201);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("title", "")], "Give the incident a title"),
        (vec![("title", "   ")], "Give the incident a title"),
        (vec![("title", &long)], "at most 200 characters"),
        (vec![("title", "ok"), ("severity", "SEV9")], "Unknown severity"),
        (vec![("title", "ok"), ("services", "billing")], "Unknown service"),
        (
            vec![("title", "ok"), ("impact_started", "last tuesday")],
            "YYYY-MM-DD HH:MM",
        ),
        (vec![("title", "two\nlines")], "single line"),
    ];
    for (fields, message) in cases {
        let resp = app.declare(&fields).await;
        assert_eq!(resp.status(), 422, "{fields:?}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("Nothing was saved"), "{fields:?}");
        assert!(html.contains(message), "{fields:?} should say {message}");
        assert!(html.contains("id=\"declare-form\""), "the form comes back");
    }
    assert_eq!(app.incident_count().await, 0);
    assert_eq!(app.timeline_count().await, 0);
    assert!(app.outbox_rows().await.is_empty());
}

#[tokio::test]
async fn what_was_typed_is_kept_and_escaped_when_the_form_comes_back() {
    let (app, _db) = app().await;
    let resp = app
        .declare(&[("title", ""), ("summary", "<script>alert(1)</script>")])
        .await;
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("&#60;script&#62;alert(1)"), "shown back as text");
}

#[tokio::test]
async fn forged_or_missing_csrf_is_refused_and_writes_nothing() {
    let (app, _db) = app().await;
    let (_csrf, key) = app.declare_form().await;
    for token in ["", "forged-token"] {
        let resp = app
            .post_form(
                "/declare",
                &[("csrf", token), ("idempotency_key", &key), ("title", "x")],
            )
            .await;
        assert_eq!(resp.status(), 403);
        assert!(resp.text().await.unwrap().contains("did not come from this site"));
    }
    // A cross-site post carrying a valid token is refused by its Origin.
    let csrf = app.csrf().await;
    let resp = app
        .client
        .post(format!("{}/declare", app.address))
        .header("cookie", app.cookie_header())
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&idempotency_key={key}&title=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(app.incident_count().await, 0);
}

#[tokio::test]
async fn bad_bodies_get_clear_4xx_answers() {
    let (app, _db) = app().await;
    let csrf = app.csrf().await;
    let resp = app
        .post_raw("/declare", "application/json", br#"{"title":"x"}"#.to_vec())
        .await;
    assert_eq!(resp.status(), 415);
    let body = format!("csrf={csrf}&title=%FF%FE").into_bytes();
    let resp = app
        .post_raw("/declare", "application/x-www-form-urlencoded", body)
        .await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("not valid UTF-8"));
    let resp = app
        .post_raw(
            "/declare",
            "application/x-www-form-urlencoded",
            vec![b'a'; 2 * 1024 * 1024],
        )
        .await;
    assert_eq!(resp.status(), 413);
    assert_eq!(app.incident_count().await, 0);
}

#[tokio::test]
async fn declare_page_offers_to_join_live_incidents() {
    let (app, _db) = app().await;
    let resp = app
        .declare(&[("title", "Search is slow"), ("services", "search")])
        .await;
    assert_eq!(resp.status(), 303);
    let html = app.get_html("/declare?service=search").await;
    let join = texts(&html, "#join li.match");
    assert_eq!(join.len(), 1);
    assert!(join[0].contains("Search is slow"));
    // Every level shows its criterion beside it.
    let sevs = texts(&html, ".severity-option");
    assert_eq!(sevs.len(), 6);
    assert!(sevs[1].contains("SEV1") && sevs[1].contains("core feature"));
    assert!(sevs[5].contains("unknown"));
}

#[tokio::test]
async fn numbers_are_unique_under_50_concurrent_declarations() {
    let (app, _db) = app().await;
    let (csrf, _) = app.declare_form().await;
    let keys: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let titles: Vec<String> = (0..50).map(|i| format!("Concurrent {i}")).collect();
    let forms: Vec<[(&str, &str); 3]> = keys
        .iter()
        .zip(&titles)
        .map(|(k, t)| {
            [
                ("csrf", csrf.as_str()),
                ("idempotency_key", k.as_str()),
                ("title", t.as_str()),
            ]
        })
        .collect();
    let posts = forms.iter().map(|f| app.post_form("/declare", f));
    let results = futures_util::future::join_all(posts).await;
    let mut numbers: Vec<i64> = results
        .iter()
        .map(|r| {
            assert_eq!(r.status(), 303);
            number_from_location(r)
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=50).collect::<Vec<_>>(), "50 distinct, gap-free numbers");
    assert_eq!(app.incident_count().await, 50);
}

/// Another process holding SQLite's write lock for seconds: the declaration waits, then says
/// plainly that nothing was saved and to press again; pressing again once the lock is gone opens
/// the incident exactly once.
#[tokio::test]
async fn a_locked_sqlite_file_gives_a_clear_retry_not_a_lost_declaration() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let db = TestDb::new();
    if !db.url.starts_with("sqlite://") {
        return; // a SQLite file lock; PostgreSQL has no such thing
    }
    let mut spawn = Spawn::new(&db);
    spawn.settings.database.sqlite_busy_timeout_ms = 200;
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let (csrf, key) = app.declare_form().await;

    // Someone else (a backup job, a second process) takes the write lock and keeps it.
    let path = db.url.trim_start_matches("sqlite://").to_string();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut other = diesel::SqliteConnection::establish(&path).unwrap();
        other.batch_execute("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
        other.batch_execute("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();

    let form = [
        ("csrf", csrf.as_str()),
        ("idempotency_key", key.as_str()),
        ("title", "Declared while the file was locked"),
    ];
    let r = app.post_form("/declare", &form).await;
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("nothing was saved") && body.contains("Press the button again"),
        "{body}"
    );
    holder.join().unwrap();
    assert_eq!(app.incident_count().await, 0, "nothing half-written");

    // Pressing again with the same form works, once.
    let r = app.post_form("/declare", &form).await;
    assert_eq!(r.status(), 303);
    let r = app.post_form("/declare", &form).await;
    assert_eq!(r.status(), 303, "a third press is the same declaration");
    assert_eq!(app.incident_count().await, 1);
    app.stop().await;
}
