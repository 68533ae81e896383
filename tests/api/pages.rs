//! Dashboard, identity, health and headers.

use crate::helpers::*;

#[tokio::test]
async fn health_checks_need_no_sign_in_and_pages_do() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    for path in ["/", "/declare", "/incidents/1"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 303, "{path}");
        assert!(r.headers()["location"].to_str().unwrap().starts_with("/identify?next="));
    }
    let r = app.get("/").await;
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn identify_validates_and_sets_an_httponly_session() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    let html = app.get_html("/identify").await;
    let csrf = hidden(&html, "csrf");
    let r = app
        .post_form(
            "/identify",
            &[("csrf", &csrf), ("next", "/"), ("name", "Ada"), ("email", "nope")],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Enter an email address"));
    let r = app
        .post_form(
            "/identify",
            &[
                ("csrf", "wrong"),
                ("next", "/"),
                ("name", "Ada"),
                ("email", "ada@example.com"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post_form(
            "/identify",
            &[
                ("csrf", &csrf),
                ("next", "//evil.example/"),
                ("name", "Ada"),
                ("email", "ada@example.com"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/", "no open redirect");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("rb_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(app.get("/").await.status(), 200);

    // A forged session cookie is not accepted.
    app.cookies
        .lock()
        .unwrap()
        .insert("rb_session".into(), "eyJhbGciOiJub25lIn0.eyJzdWIiOiJldmlsIn0.".into());
    assert_eq!(app.get("/").await.status(), 303);
}

#[tokio::test]
async fn dashboard_filters_searches_and_paginates() {
    let db = TestDb::new();
    let mut spawn = Spawn::new(&db);
    spawn.settings.services = vec![service("checkout", "Checkout", &[])];
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada", "ada@example.com").await;
    let r = app
        .declare(&[
            ("title", "Checkout DOWN"),
            ("severity", "SEV0"),
            ("services", "checkout"),
        ])
        .await;
    assert_eq!(r.status(), 303);
    app.declare_ok("Search slow").await;
    // 30 resolved incidents for pagination.
    let csrf = app.csrf().await;
    for i in 0..30 {
        let n = app.declare_ok(&format!("Old thing {i}")).await;
        let r = app
            .post_form(
                &format!("/incidents/{n}/status"),
                &[("csrf", &csrf), ("expected", "investigating"), ("status", "resolved")],
            )
            .await;
        assert_eq!(r.status(), 303);
    }

    let html = app.get_html("/").await;
    let live = texts(&html, "#live tbody tr");
    assert_eq!(live.len(), 2);
    assert!(live[0].contains("Checkout DOWN"), "most severe first: {live:?}");
    assert_eq!(texts(&html, "#past tbody tr").len(), 25);
    assert!(html.contains("Page 1 of 2"));
    let page2 = app.get_html("/?page=2").await;
    assert_eq!(texts(&page2, "#past tbody tr").len(), 5);

    let html = app.get_html("/?q=checkout").await;
    assert_eq!(texts(&html, "#live tbody tr").len(), 1, "search is case-insensitive");
    assert!(texts(&html, "#past tbody tr").is_empty());
    let html = app.get_html("/?service=checkout").await;
    assert_eq!(texts(&html, "#live tbody tr").len(), 1);
    let html = app.get_html("/?severity=unknown&status=investigating").await;
    let live = texts(&html, "#live tbody tr");
    assert_eq!(live.len(), 1);
    assert!(live[0].contains("Search slow"));
    let html = app.get_html("/?q=old+thing+1").await;
    assert_eq!(texts(&html, "#past tbody tr").len(), 11, "1 and 10-19");
    let html = app.get_html("/?q=100%25").await;
    assert!(texts(&html, "#past tbody tr").is_empty(), "% is literal");
    let html = app.get_html("/?status=bogus").await;
    assert!(html.contains("Unknown status filter ignored"));
}
