//! Working an incident through its forms: allowed and refused moves, stale forms, notes, lead.

use crate::helpers::*;

async fn app_with_incident() -> (TestApp, TestDb, i64, String) {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Grace Hopper", "grace@example.com").await;
    let n = app.declare_ok("Queue backlog growing").await;
    let csrf = app.csrf().await;
    (app, db, n, csrf)
}

#[tokio::test]
async fn allowed_status_moves_are_recorded_on_the_timeline() {
    let (app, _db, n, csrf) = app_with_incident().await;
    let path = format!("/incidents/{n}/status");
    for (expected, to) in [
        ("investigating", "identified"),
        ("identified", "mitigated"),
        ("mitigated", "resolved"),
        ("resolved", "investigating"),
    ] {
        let resp = app
            .post_form(&path, &[("csrf", &csrf), ("expected", expected), ("status", to)])
            .await;
        assert_eq!(resp.status(), 303, "{expected} -> {to}");
    }
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let timeline = texts(&html, ".timeline li");
    for (from, to) in [
        ("investigating", "identified"),
        ("identified", "mitigated"),
        ("mitigated", "resolved"),
        ("resolved", "investigating"),
    ] {
        assert!(
            timeline
                .iter()
                .any(|t| t.contains(&format!("changed the status from {from} to {to}"))),
            "{from}->{to} missing from {timeline:?}"
        );
    }
    assert!(texts(&html, ".facts .status")[0].contains("Investigating"), "reopened");
}

#[tokio::test]
async fn resolving_sets_key_times_and_moves_it_to_past() {
    let (app, _db, n, csrf) = app_with_incident().await;
    let resp = app
        .post_form(
            &format!("/incidents/{n}/status"),
            &[("csrf", &csrf), ("expected", "investigating"), ("status", "resolved")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let times = texts(&html, ".times");
    assert!(
        times[0].contains("Mitigated") && times[0].contains("Resolved"),
        "{times:?}"
    );
    let dash = app.get_html("/").await;
    assert!(texts(&dash, "#live tbody tr").is_empty());
    assert_eq!(texts(&dash, "#past tbody tr").len(), 1);
}

#[tokio::test]
async fn refused_moves_and_stale_forms_change_nothing() {
    let (app, _db, n, csrf) = app_with_incident().await;
    let path = format!("/incidents/{n}/status");
    let before = app.timeline_count().await;

    // Same status.
    let resp = app
        .post_form(
            &path,
            &[
                ("csrf", &csrf),
                ("expected", "investigating"),
                ("status", "investigating"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 409);
    assert!(resp.text().await.unwrap().contains("already investigating"));
    // Unknown status.
    let resp = app
        .post_form(
            &path,
            &[("csrf", &csrf), ("expected", "investigating"), ("status", "exploded")],
        )
        .await;
    assert_eq!(resp.status(), 422);
    assert!(resp.text().await.unwrap().contains("Choose a status"));
    // Resolve, then try a move only reopen allows.
    let resp = app
        .post_form(
            &path,
            &[("csrf", &csrf), ("expected", "investigating"), ("status", "resolved")],
        )
        .await;
    assert_eq!(resp.status(), 303);
    let after_resolve = app.timeline_count().await;
    let resp = app
        .post_form(
            &path,
            &[("csrf", &csrf), ("expected", "resolved"), ("status", "mitigated")],
        )
        .await;
    assert_eq!(resp.status(), 409);
    let html = resp.text().await.unwrap();
    assert!(html.contains("cannot go from resolved to mitigated"), "{html}");
    // A stale form: it still thinks the incident is investigating.
    let resp = app
        .post_form(
            &path,
            &[("csrf", &csrf), ("expected", "investigating"), ("status", "identified")],
        )
        .await;
    assert_eq!(resp.status(), 409);
    assert!(resp.text().await.unwrap().contains("status is now resolved"));
    // Forged CSRF.
    let resp = app
        .post_form(
            &path,
            &[("csrf", "nope"), ("expected", "resolved"), ("status", "investigating")],
        )
        .await;
    assert_eq!(resp.status(), 403);

    assert_eq!(app.timeline_count().await, after_resolve);
    assert_eq!(after_resolve, before + 1);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    assert!(texts(&html, ".facts .status")[0].contains("Resolved"));
}

#[tokio::test]
async fn severity_lead_and_notes() {
    let (app, _db, n, csrf) = app_with_incident().await;
    let base = format!("/incidents/{n}");
    let r = app
        .post_form(
            &format!("{base}/severity"),
            &[("csrf", &csrf), ("expected", "unknown"), ("severity", "")],
        )
        .await;
    assert_eq!(r.status(), 422, "nothing chosen is not \"unknown\"");
    assert!(r.text().await.unwrap().contains("Choose the new severity"));
    let r = app
        .post_form(
            &format!("{base}/severity"),
            &[("csrf", &csrf), ("expected", "unknown"), ("severity", "SEV2")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .post_form(
            &format!("{base}/severity"),
            &[("csrf", &csrf), ("expected", "unknown"), ("severity", "SEV1")],
        )
        .await;
    assert_eq!(r.status(), 409, "stale severity form");
    let r = app
        .post_form(
            &format!("{base}/severity"),
            &[("csrf", &csrf), ("expected", "SEV2"), ("severity", "SEV7")],
        )
        .await;
    assert_eq!(r.status(), 422);

    let r = app
        .post_form(
            &format!("{base}/lead"),
            &[("csrf", &csrf), ("expected", ""), ("action", "take")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = app
        .post_form(
            &format!("{base}/lead"),
            &[
                ("csrf", &csrf),
                ("expected", "grace@example.com"),
                ("action", "assign"),
                ("name", "Alan"),
                ("email", "not-an-email"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = app
        .post_form(
            &format!("{base}/lead"),
            &[
                ("csrf", &csrf),
                ("expected", "grace@example.com"),
                ("action", "assign"),
                ("name", "Alan Turing"),
                ("email", "alan@example.com"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);

    let r = app
        .post_form(&format!("{base}/notes"), &[("csrf", &csrf), ("note", "   ")])
        .await;
    assert_eq!(r.status(), 422);
    let r = app
        .post_form(
            &format!("{base}/notes"),
            &[("csrf", &csrf), ("note", "Rolled back <b>deploy</b> 4412")],
        )
        .await;
    assert_eq!(r.status(), 303);

    let html = app.get_html(&base).await;
    let timeline = texts(&html, ".timeline li");
    assert!(
        timeline
            .iter()
            .any(|t| t.contains("changed the severity from unknown to SEV2"))
    );
    assert!(timeline.iter().any(|t| t.contains("made Grace Hopper the lead")));
    assert!(
        timeline
            .iter()
            .any(|t| t.contains("handed the lead from Grace Hopper to Alan Turing"))
    );
    assert!(
        timeline.iter().any(|t| t.contains("Rolled back <b>deploy</b> 4412")),
        "notes are shown as text"
    );
    assert!(!html.contains("<b>deploy</b>"), "and escaped");
    assert!(texts(&html, ".facts")[0].contains("Lead: Alan Turing"));
}

#[tokio::test]
async fn unknown_incidents_are_404() {
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Grace Hopper", "grace@example.com").await;
    assert_eq!(app.get("/incidents/999").await.status(), 404);
    assert_eq!(app.get("/incidents/abc").await.status(), 404);
    let csrf = app.csrf().await;
    let r = app
        .post_form("/incidents/999/notes", &[("csrf", &csrf), ("note", "x")])
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn simultaneous_changes_to_one_incident_do_not_overwrite_each_other() {
    use redbutton::services::lifecycle;
    let db = TestDb::new();
    let app = TestApp::spawn(Spawn::new(&db)).await;
    app.identify("Grace Hopper", "grace@example.com").await;
    let a = redbutton::domain::Actor {
        name: "A".into(),
        email: "a@example.com".into(),
    };
    let b = redbutton::domain::Actor {
        name: "B".into(),
        email: "b@example.com".into(),
    };
    let mut numbers = Vec::new();
    for i in 0..10 {
        numbers.push(app.declare_ok(&format!("Race {i}")).await);
    }
    let work = numbers.iter().map(|n| {
        let (st, a, b, n) = (app.state.clone(), a.clone(), b.clone(), *n);
        async move {
            let (s, v, l) = tokio::join!(
                lifecycle::change_status(&st, n, a.clone(), "mitigated", "investigating"),
                lifecycle::change_severity(&st, n, b.clone(), "SEV1", "unknown"),
                lifecycle::change_lead(&st, n, a.clone(), Some(b.clone()), ""),
            );
            s.unwrap();
            v.unwrap();
            l.unwrap();
        }
    });
    futures_util::future::join_all(work).await;
    for n in numbers {
        let html = app.get_html(&format!("/incidents/{n}")).await;
        let facts = texts(&html, ".facts")[0].clone();
        assert!(
            facts.contains("SEV1") && facts.contains("Mitigated") && facts.contains("Lead: B"),
            "INC-{n}: every change kept: {facts}"
        );
    }
}
