//! The postmortem draft: an incident scripted through the real forms, then its draft checked
//! section by section in Paris time; the page, the download, an unknown zone, and the API.

use chrono::{Duration, NaiveDateTime, TimeZone};
use redbutton::db::models::{IncidentRow, TimelineEntryRow};
use redbutton::domain::Actor;
use redbutton::domain::key_times::format_duration;
use redbutton::services::tokens::{TokenRequest, create};

use crate::helpers::*;

const HOSTILE: &str = "# Not a heading\n| a | b |\n|---|---|\n```\nx\n```\n<script>alert(1)</script>";

fn paris(t: &NaiveDateTime) -> String {
    chrono_tz::Europe::Paris
        .from_utc_datetime(t)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

async fn row(app: &TestApp, n: i64) -> IncidentRow {
    app.state
        .db
        .run(move |c| redbutton::db::models::incident::find_by_number(c, n))
        .await
        .unwrap()
        .unwrap()
}

async fn entries(app: &TestApp, id: i64) -> Vec<TimelineEntryRow> {
    app.state
        .db
        .run(move |c| redbutton::db::models::timeline::list_for(c, id))
        .await
        .unwrap()
}

/// The body of section `heading` (up to the next `## `).
fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let start = md
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no {heading}"))
        + heading.len()
        + 2;
    let rest = &md[start..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// Declares, hands over, adds notes, mitigates, resolves and corrects a key time, as two people.
async fn scripted(app: &TestApp) -> i64 {
    app.identify("Grace Hopper", "grace@example.com").await;
    let impact = chrono::Utc::now().naive_utc() - Duration::minutes(40);
    let impact = impact.format("%Y-%m-%dT%H:%M").to_string();
    let resp = app
        .declare(&[
            ("title", "Checkout | card payments failing"),
            ("severity", "SEV2"),
            ("services", "checkout"),
            ("summary", "Card payments failed for some customers."),
            ("impact_started", &impact),
        ])
        .await;
    assert_eq!(resp.status(), 303);
    let n = number_from_location(&resp);

    app.identify("Ada Lovelace", "ada@example.com").await;
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/lead"),
            &[("csrf", &csrf), ("expected", ""), ("action", "take")],
        )
        .await;
    assert_eq!(r.status(), 303);
    // Ada takes the comms lead and hands it to Grace.
    for (expected, action, email) in [("", "take", ""), ("ada@example.com", "assign", "grace@example.com")] {
        let r = app
            .post_form(
                &format!("/incidents/{n}/roles/comms"),
                &[
                    ("csrf", &csrf),
                    ("expected", expected),
                    ("action", action),
                    ("email", email),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
    }
    for note in ["Rolled back the 14:02 deploy.", HOSTILE] {
        let r = app
            .post_form(&format!("/incidents/{n}/notes"), &[("csrf", &csrf), ("note", note)])
            .await;
        assert_eq!(r.status(), 303);
    }
    let r = app
        .post_form(
            &format!("/incidents/{n}/updates"),
            &[
                ("csrf", &csrf),
                (
                    "known",
                    "Card payments fail for some customers.\n# Not a heading either",
                ),
                ("doing", "Rolling back the 14:02 deploy."),
                ("next_update", "30"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    app.change_status(n, "investigating", "mitigated").await;
    app.change_status(n, "mitigated", "resolved").await;

    // Detection, set by hand: ten minutes after impact (times in Ada's zone, UTC).
    let detected = NaiveDateTime::parse_from_str(&impact, "%Y-%m-%dT%H:%M").unwrap() + Duration::minutes(10);
    let html = app.get_html(&format!("/incidents/{n}")).await;
    let expected = {
        let doc = scraper::Html::parse_document(&html);
        let sel = scraper::Selector::parse("form[action$=\"/key-times\"] input[name=\"expected\"]").unwrap();
        doc.select(&sel)
            .next()
            .unwrap()
            .value()
            .attr("value")
            .unwrap()
            .to_string()
    };
    let r = app
        .post_form(
            &format!("/incidents/{n}/key-times"),
            &[
                ("csrf", &csrf),
                ("expected", &expected),
                ("detected", &detected.format("%Y-%m-%dT%H:%M").to_string()),
            ],
        )
        .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    n
}

async fn spawn(db: &TestDb) -> TestApp {
    let mut spawn = Spawn::new(db);
    spawn.settings.services = vec![service("checkout", "Checkout", &[])];
    TestApp::spawn(spawn).await
}

#[tokio::test]
async fn postmortem_draft_of_a_scripted_incident_section_by_section() {
    let db = TestDb::new();
    let app = spawn(&db).await;
    let n = scripted(&app).await;
    let inc = row(&app, n).await;
    let timeline = entries(&app, inc.id).await;
    let when = |kind: &str, k: usize| paris(&timeline.iter().filter(|e| e.kind == kind).nth(k).unwrap().at);

    let resp = app.get(&format!("/incidents/{n}/postmortem.md?tz=Europe/Paris")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/markdown; charset=utf-8");
    assert_eq!(
        resp.headers()["content-disposition"],
        format!("attachment; filename=\"INC-{n}-postmortem.md\"").as_str()
    );
    let md = resp.text().await.unwrap();
    if std::env::var_os("REDBUTTON_PRINT_POSTMORTEM").is_some() {
        eprintln!("{md}");
    }

    // Every heading, in order, and no others (the hostile note added none).
    let headings: Vec<&str> = md.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headings,
        [
            format!("# INC-{n} postmortem: Checkout \\| card payments failing").as_str(),
            "## Summary",
            "## Impact",
            "## Key times",
            "## Durations",
            "## Roles",
            "## Timeline",
            "## Status updates",
            format!("### {}, Ada Lovelace", when("status_update", 0)).as_str(),
            "## Contributing factors",
            "## Follow-ups",
            "## Integrations",
        ],
        "{md}"
    );
    assert!(md.contains("(Europe/Paris); edit freely"), "{md}");
    assert_eq!(
        section(&md, "## Summary").trim(),
        "> Card payments failed for some customers."
    );

    let impact = section(&md, "## Impact");
    let (start, mitigated, resolved) = (
        inc.impact_started_at.unwrap(),
        inc.mitigated_at.unwrap(),
        inc.resolved_at.unwrap(),
    );
    for line in [
        "- **Severity:** SEV2 (Significant): A feature is degraded or broken for some customers; a workaround may exist.".to_string(),
        "- **Services affected:** Checkout (checkout)".into(),
        "- **Status:** Resolved".into(),
        "- **Drill:** no".into(),
        format!(
            "- **Impact window:** {} to {} ({})",
            paris(&start),
            paris(&mitigated),
            format_duration(mitigated - start)
        ),
    ] {
        assert!(impact.contains(&line), "{line:?} in {impact}");
    }

    // Key times in Paris time, one row each.
    let detected = start + Duration::minutes(10);
    let rows: Vec<&str> = section(&md, "## Key times")
        .lines()
        .filter(|l| l.starts_with('|'))
        .collect();
    assert_eq!(
        rows,
        [
            "| Moment | Time (Europe/Paris) |".to_string(),
            "|---|---|".into(),
            format!("| Impact started | {} |", paris(&start)),
            format!("| Detected | {} |", paris(&detected)),
            format!("| Declared | {} |", paris(&inc.declared_at)),
            format!("| Responders mustered | {} |", paris(&inc.mustered_at.unwrap())),
            format!("| Mitigated | {} |", paris(&mitigated)),
            format!("| Resolved | {} |", paris(&resolved)),
        ]
    );
    let durations = section(&md, "## Durations");
    assert!(durations.contains("| Time to detect | 10m |"), "{durations}");
    for (label, d) in [
        ("Time to declare", inc.declared_at - detected),
        ("Time to muster", inc.mustered_at.unwrap() - inc.declared_at),
        ("Time to mitigate", mitigated - start),
        ("Time to resolve", resolved - start),
    ] {
        let line = format!("| {label} | {} |", format_duration(d));
        assert!(durations.contains(&line), "{line} in {durations}");
    }

    let roles = section(&md, "## Roles");
    assert!(roles.contains(&format!(
        "- Grace Hopper declared the incident at {}.",
        paris(&inc.declared_at)
    )));
    assert!(
        roles.contains(&format!(
            "- Ada Lovelace led the response from {} to {} (resolution).",
            when("lead_changed", 0),
            paris(&resolved)
        )),
        "{roles}"
    );
    assert!(
        roles.contains(&format!(
            "- Ada Lovelace was comms lead from {} to {}.\n- Grace Hopper was comms lead from {} to {} (resolution).\n- No scribe was recorded.\n",
            when("role_changed", 0),
            when("role_changed", 1),
            when("role_changed", 1),
            paris(&resolved)
        )),
        "{roles}"
    );

    // The timeline, in order, in Paris time.
    let tl = section(&md, "## Timeline");
    let expected = [
        format!(
            "- **{}**: Grace Hopper declared the incident (SEV2 · investigating).",
            when("declared", 0)
        ),
        format!("- **{}**: Ada Lovelace took the lead.", when("lead_changed", 0)),
        format!(
            "- **{}**: Responders mustered (Ada Lovelace was the first to join).",
            when("mustered", 0)
        ),
        format!(
            "- **{}**: Ada Lovelace took the comms lead role.",
            when("role_changed", 0)
        ),
        format!(
            "- **{}**: Ada Lovelace handed the comms lead role from Ada Lovelace to Grace Hopper.",
            when("role_changed", 1)
        ),
        format!("- **{}**: Ada Lovelace added a note:", when("note", 0)),
        "  > Rolled back the 14:02 deploy.".into(),
        format!("- **{}**: Ada Lovelace added a note:", when("note", 1)),
        "  > \\# Not a heading".into(),
        "  > \\| a \\| b \\|".into(),
        "  > \\|---\\|---\\|".into(),
        "  > \\`\\`\\`".into(),
        "  > \\<script\\>alert(1)\\</script\\>".into(),
        format!(
            "- **{}**: Ada Lovelace changed the status from investigating to mitigated.",
            when("status_changed", 0)
        ),
        format!(
            "- **{}**: Ada Lovelace changed the status from mitigated to resolved.",
            when("status_changed", 1)
        ),
        format!(
            "- **{}**: Ada Lovelace set detected to {} (was not recorded).",
            when("key_time_changed", 0),
            paris(&detected)
        ),
    ];
    let mut from = 0;
    for line in &expected {
        let Some(i) = tl[from..].find(line.as_str()) else {
            panic!("{line:?} not found (in order) in:\n{tl}");
        };
        from += i + line.len();
    }

    // The hostile note renders as quoted text: no heading, no table, no script.
    let html = redbutton::web::markdown::render(&md);
    assert!(!html.contains("<h1>Not a heading") && !html.contains("<h2>Not a heading"));
    assert_eq!(html.matches("<table>").count(), 2, "key times and durations only");
    assert!(!html.contains("<script"));

    let updates = section(&md, "## Status updates");
    let posted = timeline.iter().find(|e| e.kind == "status_update").unwrap().at;
    assert!(
        updates.contains("What stakeholders were told (1 update), as posted."),
        "{updates}"
    );
    assert!(
        updates.contains(&format!(
            "### {}, Ada Lovelace\n\n**What we know**\n\n> Card payments fail for some customers.\n> \\# Not a heading either\n\n\
             **What we are doing**\n\n> Rolling back the 14:02 deploy.\n\nNext update promised by {}.\n",
            paris(&posted),
            paris(&(posted + Duration::minutes(30)))
        )),
        "{updates}"
    );
    // The timeline points to it rather than repeating it.
    assert!(section(&md, "## Timeline").contains("Ada Lovelace posted a status update (under Status updates below)."));

    let factors = section(&md, "## Contributing factors");
    assert!(factors.contains("- What made this possible?"));
    assert!(factors.contains("- What would have helped us notice sooner?"));
    let follow = section(&md, "## Follow-ups");
    assert!(follow.contains("- [ ] What would help us detect it sooner next time?"));
    assert!(section(&md, "## Integrations").contains("Nothing was sent to other systems"));

    let lower = md.to_lowercase();
    for word in ["fault", "blame", "caused by", "mistake", "human error", "who caused"] {
        assert!(!lower.contains(word), "{word:?} in the draft");
    }
    app.stop().await;
}

#[tokio::test]
async fn postmortem_page_download_zone_and_api() {
    let db = TestDb::new();
    let app = spawn(&db).await;
    let n = scripted(&app).await;

    // The incident page links to the draft.
    assert!(
        app.get_html(&format!("/incidents/{n}"))
            .await
            .contains(&format!("/incidents/{n}/postmortem\""))
    );

    let page = app
        .get_html(&format!("/incidents/{n}/postmortem?tz=Europe/Paris"))
        .await;
    assert_eq!(texts(&page, "#draft h2").len(), 10, "{page}");
    assert!(texts(&page, "#draft script").is_empty());
    assert!(!page.contains("<script>alert"), "the hostile note is escaped");
    assert!(texts(&page, "#source")[0].contains("## Timeline"));
    assert!(page.contains("<option value=\"Europe/Paris\" selected>"));
    assert!(page.contains(&format!("/incidents/{n}/postmortem.md?tz=Europe%2FParis")));
    // The viewer's own zone (UTC here) when none is asked for.
    assert!(
        app.get_html(&format!("/incidents/{n}/postmortem"))
            .await
            .contains("(UTC); edit freely")
    );

    for path in [
        format!("/incidents/{n}/postmortem?tz=Mars/Olympus"),
        format!("/incidents/{n}/postmortem.md?tz=Mars/Olympus"),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status(), 400, "{path}");
        assert!(r.text().await.unwrap().contains("not a time zone"));
    }
    assert_eq!(app.get("/incidents/999/postmortem.md").await.status(), 404);

    // Regenerated from the record: a new note shows at once.
    let csrf = app.csrf().await;
    app.post_form(
        &format!("/incidents/{n}/notes"),
        &[("csrf", &csrf), ("note", "Customers refunded.")],
    )
    .await;
    let md = app
        .get(&format!("/incidents/{n}/postmortem.md?tz=Europe/Paris"))
        .await
        .text()
        .await
        .unwrap();
    assert!(md.contains("> Customers refunded."));

    // The API gives the same Markdown for a read token (up to the generation minute).
    let token = create(
        &app.state,
        &Actor {
            name: "Ada".into(),
            email: "ada@example.com".into(),
        },
        &TokenRequest {
            name: "postmortem".into(),
            scopes: vec!["incidents:read".into()],
            expires_in_days: String::new(),
        },
    )
    .await
    .unwrap()
    .secret;
    let r = app
        .client
        .get(format!(
            "{}/api/v1/incidents/{n}/postmortem?tz=Europe/Paris",
            app.address
        ))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/markdown; charset=utf-8");
    let api_md = r.text().await.unwrap();
    let body = |s: &str| s.split_once("\n## Summary").unwrap().1.to_string();
    assert_eq!(body(&api_md), body(&md));
    let r = app
        .client
        .get(format!("{}/api/v1/incidents/{n}/postmortem?tz=Nowhere", app.address))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    app.stop().await;
}
