//! Nudges: no lead after N minutes, no status update when one is due, mitigated but not resolved
//! for K hours. The clock is a parameter of `nudges::run_once`, so these tests look at any moment
//! of an incident's life without waiting; the background loop is tested by moving an incident
//! into the past. Each nudge is posted to the incident channel (and emailed to the lead), once
//! per period, across restarts and with two processes looking at the same moment.

use std::time::{Duration, Instant};

use chrono::{Duration as Span, NaiveDateTime};
use diesel::prelude::*;
use redbutton::domain::update::NudgeKind;
use redbutton::services::nudges::{Sent, run_once};

use crate::helpers::*;
use crate::slack::SlackWorld;

async fn row(app: &TestApp, n: i64) -> redbutton::db::models::IncidentRow {
    app.state
        .db
        .run(move |c| redbutton::db::models::incident::find_by_number(c, n))
        .await
        .unwrap()
        .unwrap()
}

async fn at(app: &TestApp, now: NaiveDateTime) -> Vec<NudgeKind> {
    run_once(&app.state, now)
        .await
        .unwrap()
        .into_iter()
        .map(|Sent { kind, .. }| kind)
        .collect()
}

async fn nudge_entries(app: &TestApp) -> Vec<(String, String, String)> {
    use redbutton::db::schema::timeline_entries::dsl as t;
    app.state
        .db
        .run(|c| {
            t::timeline_entries
                .filter(t::kind.eq("nudge"))
                .order(t::id.asc())
                .select((t::actor_name, t::field.assume_not_null(), t::body.assume_not_null()))
                .load::<(String, String, String)>(c)
        })
        .await
        .unwrap()
}

async fn assign_lead(app: &TestApp, n: i64, email: &str) {
    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/lead"),
            &[
                ("csrf", &csrf),
                ("expected", ""),
                ("action", "assign"),
                ("email", email),
                ("name", "Grace Hopper"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn each_nudge_comes_due_by_the_clock_once_per_period_in_the_channel_and_the_leads_inbox() {
    let slack = SlackWorld::start().await;
    let sink = SmtpSink::start();
    let db = TestDb::new();
    let mut spawn = slack.spawn(&db);
    spawn.settings.integrations.email = Some(email_to_sink(sink.port));
    spawn.settings.nudges.enabled = false; // this test is the clock
    spawn.settings.nudges.email_lead = true;
    let app = TestApp::spawn(spawn).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let r = app
        .declare(&[
            ("title", "Card payments failing"),
            ("severity", "SEV1"),
            ("services", "checkout"),
        ])
        .await;
    let n = number_from_location(&r);
    app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    let t0 = row(&app, n).await.declared_at;
    let m = |minutes: i64| t0 + Span::minutes(minutes);

    // SEV1 defaults: a lead within 10 minutes, an update every 30, resolved within 4 hours of
    // mitigation.
    assert!(at(&app, m(9)).await.is_empty());
    assert_eq!(at(&app, m(10)).await, [NudgeKind::NoLead]);
    assert!(at(&app, m(10)).await.is_empty(), "asked twice at once");
    assert!(at(&app, m(19)).await.is_empty(), "same period");
    assert_eq!(at(&app, m(20)).await, [NudgeKind::NoLead], "the next period");

    assign_lead(&app, n, "grace@example.com").await;
    assert!(
        at(&app, m(29)).await.is_empty(),
        "led now; the first update is due at 30"
    );
    assert_eq!(at(&app, m(30)).await, [NudgeKind::NoUpdate]);
    assert!(at(&app, m(45)).await.is_empty());

    let csrf = app.csrf().await;
    let r = app
        .post_form(
            &format!("/incidents/{n}/updates"),
            &[
                ("csrf", &csrf),
                ("known", "Declines at 20%."),
                ("doing", "Rolling back."),
                ("next_update", "60"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(
        at(&app, m(59)).await.is_empty(),
        "the update promised the next one in an hour"
    );
    assert_eq!(at(&app, m(61)).await, [NudgeKind::NoUpdate]);

    app.change_status(n, "investigating", "mitigated").await;
    let mitigated = row(&app, n).await.mitigated_at.unwrap();
    assert!(
        at(&app, mitigated + Span::minutes(239)).await.is_empty(),
        "no update nudges once mitigated"
    );
    assert_eq!(at(&app, mitigated + Span::minutes(240)).await, [NudgeKind::Unresolved]);
    app.change_status(n, "mitigated", "resolved").await;
    assert!(at(&app, mitigated + Span::hours(48)).await.is_empty(), "resolved");

    // The timeline has each, by the tool, in words.
    let url = app.state.incident_url(n);
    let entries = nudge_entries(&app).await;
    let kinds: Vec<&str> = entries.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(kinds, ["no_lead", "no_lead", "no_update", "no_update", "unresolved"]);
    assert!(entries.iter().all(|e| e.0 == "Big Red Button"));
    assert_eq!(
        entries[0].2,
        format!("Nobody is leading INC-{n}, declared 10 min ago. Someone please take the lead: {url}")
    );
    assert_eq!(
        entries[2].2,
        format!(
            "INC-{n} owes its stakeholders a status update: one was due at {} (0 min ago). Post what we know and what we are doing: {url}",
            m(30).format("%H:%M UTC")
        )
    );
    assert_eq!(
        entries[4].2,
        format!(
            "INC-{n} has been mitigated for 4 h without being resolved. Resolve it if the impact is over, or note what is left: {url}"
        )
    );

    // Slack: each one posted in the incident channel.
    app.wait_outbox(&["done"], Duration::from_secs(20)).await;
    let cid = slack.channels()[0].0.clone();
    let posted: Vec<String> = slack
        .messages(&cid)
        .iter()
        .map(|m| m.blocks[0]["text"]["text"].as_str().unwrap().to_string())
        .filter(|t| t.starts_with(":alarm_clock: "))
        .collect();
    assert_eq!(posted.len(), 5, "{posted:?}");
    assert_eq!(posted[0], format!(":alarm_clock: {}", entries[0].2));
    assert_eq!(posted[4], format!(":alarm_clock: {}", entries[4].2));

    // Email: to the lead, once there was one (the no-lead nudges had nobody to write to).
    let mails: Vec<Mail> = sink
        .messages()
        .into_iter()
        .filter(|m| m.header("Subject").unwrap().contains("reminder"))
        .collect();
    assert_eq!(mails.len(), 3);
    assert!(mails.iter().all(|m| m.rcpt_tos == ["grace@example.com"]));
    assert_eq!(
        mails[0].header("Subject").unwrap(),
        format!("[SEV1] INC-{n} reminder: Card payments failing")
    );
    assert!(mails[2].decoded().contains("has been mitigated for 4 h"));
    app.stop().await;
}

#[tokio::test]
async fn two_processes_at_the_same_moment_and_a_restart_send_each_nudge_once() {
    let db = TestDb::new();
    let quiet = || {
        let mut s = Spawn::new(&db);
        s.settings.nudges.enabled = false;
        s
    };
    let a = TestApp::spawn(quiet()).await;
    let b = TestApp::spawn(quiet()).await;
    a.identify("Ada Lovelace", "ada@example.com").await;
    let mut numbers = Vec::new();
    for i in 0..4 {
        numbers.push(a.declare_ok(&format!("Outage {i}")).await);
    }
    let t0 = row(&a, numbers[3]).await.declared_at;
    // The unknown severity uses the [nudges] defaults: a lead within 15 minutes, an update
    // within 60. At +61 both are due for all four incidents.
    let now = t0 + Span::minutes(61);
    let (x, y) = tokio::join!(run_once(&a.state, now), run_once(&b.state, now));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 8, "a: {x:?}, b: {y:?}");
    assert_eq!(nudge_entries(&a).await.len(), 8);

    // A process started later finds them sent.
    a.stop().await;
    let c = TestApp::spawn(quiet()).await;
    assert!(run_once(&c.state, now).await.unwrap().is_empty());
    assert!(run_once(&b.state, now + Span::minutes(5)).await.unwrap().is_empty());
    assert_eq!(nudge_entries(&c).await.len(), 8);
    b.stop().await;
    c.stop().await;
}

/// Moves an incident `minutes` into the past, the way the clock would have.
async fn age_incident(app: &TestApp, n: i64, minutes: i64) {
    use redbutton::db::schema::incidents::dsl as i;
    let t = row(app, n).await.declared_at - Span::minutes(minutes);
    app.state
        .db
        .run(move |c| {
            diesel::update(i::incidents.filter(i::number.eq(n)))
                .set(i::declared_at.eq(t))
                .execute(c)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_background_loop_nudges_an_overdue_incident_shows_it_and_does_not_repeat_after_a_restart() {
    let db = TestDb::new();
    let live = || {
        let mut s = Spawn::new(&db);
        s.settings.nudges.check_every_seconds = 1;
        s
    };
    let app = TestApp::spawn(live()).await;
    app.identify("Ada Lovelace", "ada@example.com").await;
    let r = app.declare(&[("title", "Queue backlog"), ("severity", "SEV2")]).await;
    let n = number_from_location(&r);
    // SEV2: a lead within 15 minutes. Declared 20 minutes ago, as far as anyone can tell.
    age_incident(&app, n, 20).await;
    let page = app.get_html(&format!("/incidents/{n}")).await;
    let reminders = texts(&page, ".reminder");
    assert_eq!(reminders, [format!("Nobody is leading INC-{n}, declared 20 min ago.")]);

    let deadline = Instant::now() + Duration::from_secs(15);
    while nudge_entries(&app).await.is_empty() {
        assert!(Instant::now() < deadline, "the loop did not nudge");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
    let again = TestApp::spawn(live()).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await; // two more passes of the loop
    let entries = nudge_entries(&again).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].1, "no_lead");
    again.identify("Ada Lovelace", "ada@example.com").await;
    let page = again.get_html(&format!("/incidents/{n}")).await;
    assert_eq!(texts(&page, ".entry-nudge").len(), 1);
    again.stop().await;
}
