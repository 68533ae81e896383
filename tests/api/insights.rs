//! The insights page over a generated history of 3,000 incidents: a deterministic generator
//! (arithmetic patterns on the incident's index) writes incidents with severities, services, key
//! times, lead and role changes and pager deliveries at known moments, plus drills, declined and
//! merged incidents with pages of their own that must not count. The test then works out every
//! figure itself from the generator's plan, independently of `services::insights`, and compares:
//! incidents per week and severity, medians and 90th percentiles, pages in and out of working
//! hours in three time zones (across both clock changes of spring 2026, and one page either side
//! of New York's), responder hours, hot spots, the filters and the CSV.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use diesel::prelude::*;
use redbutton::config::Settings;
use redbutton::config::insights::{HoursSetting, ZoneSetting};
use redbutton::db::DbConnection;
use redbutton::db::models::{NewOutboxRow, NewTimelineEntry};
use redbutton::services::insights::{self, Filters, Metric};

use crate::helpers::*;

/// The services, in id order.
pub const SERVICES: [&str; 5] = ["auth", "checkout", "email", "payments", "search"];
/// The people who take roles.
pub const PEOPLE: [&str; 7] = [
    "Ada Lovelace",
    "Grace Hopper",
    "Linus Torvalds",
    "Margaret Hamilton",
    "Ken Thompson",
    "Barbara Liskov",
    "Dennis Ritchie",
];
const SEVERITIES: [&str; 11] = [
    "SEV0", "SEV1", "SEV1", "SEV2", "SEV2", "SEV2", "SEV3", "SEV3", "SEV3", "SEV3", "SEV4",
];

/// What the generator writes for one incident, kept so the test can work the figures out.
#[derive(Debug, Clone)]
pub struct Plan {
    pub number: i64,
    pub title: String,
    pub severity: &'static str,
    pub status: &'static str,
    pub drill: bool,
    /// In id order.
    pub services: Vec<&'static str>,
    pub impact_started: Option<NaiveDateTime>,
    pub declared: NaiveDateTime,
    pub mustered: Option<NaiveDateTime>,
    pub mitigated: NaiveDateTime,
    pub resolved: NaiveDateTime,
    /// (at, role, holder) in time order.
    pub roles: Vec<(NaiveDateTime, &'static str, Option<&'static str>)>,
    pub lead: &'static str,
    /// (notifier, event, state, delivered at, payload).
    pub pages: Vec<(&'static str, &'static str, &'static str, NaiveDateTime, String)>,
}

impl Plan {
    pub fn counts(&self) -> bool {
        !self.drill && self.status == "resolved"
    }
}

/// The settings the history is read with: five services, New York hours for payments and
/// billing, Tokyo hours for search, London hours for the rest.
pub fn settings() -> Settings {
    let mut s = fast_settings();
    s.services = SERVICES
        .iter()
        .chain(["billing"].iter())
        .map(|id| service(id, &format!("{}{}", id[..1].to_uppercase(), &id[1..]), &[]))
        .collect();
    s.insights.working_hours = HoursSetting {
        time_zone: "Europe/London".into(),
        days: ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec(),
        start: "09:00".into(),
        end: "17:30".into(),
    };
    s.insights.zones = vec![
        ZoneSetting {
            name: "americas".into(),
            time_zone: "America/New_York".into(),
            services: vec!["payments".into(), "billing".into()],
            days: ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec(),
            start: "09:00".into(),
            end: "17:00".into(),
        },
        ZoneSetting {
            name: "apac".into(),
            time_zone: "Asia/Tokyo".into(),
            services: vec!["search".into()],
            days: ["mon", "tue", "wed", "thu", "fri"].map(String::from).to_vec(),
            start: "09:00".into(),
            end: "18:00".into(),
        },
    ];
    s
}

fn page_body(status: &str, old: &str, new: &str) -> String {
    serde_json::json!({"incident": {"status": status}, "change": {"field": "x", "old": old, "new": new}}).to_string()
}

/// The plan for incident `i` (0-based) of a history starting at `base`, one every 67 minutes.
pub fn plan(i: usize, base: NaiveDateTime) -> Plan {
    let m = Duration::minutes;
    let declared = base + m(i as i64 * 67);
    let (status, drill) = match i % 50 {
        7 => ("resolved", true),
        13 => ("declined", false),
        29 => ("merged", false),
        _ => ("resolved", false),
    };
    let severity = if i % 97 == 5 { "unknown" } else { SEVERITIES[i % 11] };
    let first = SERVICES[(i / 3) % 5];
    let mut services = vec![first];
    if i.is_multiple_of(4) {
        let other = SERVICES[(i / 3 + 2) % 5];
        services.push(other);
    }
    services.sort();
    let impact_started = (!i.is_multiple_of(3)).then(|| declared - m((i % 17) as i64 * 2 + 2));
    let mustered = (i % 5 != 4).then(|| declared + m((i % 13) as i64 + 1));
    let mitigated = declared + m((i % 29) as i64 * 4 + 24);
    let resolved = mitigated + m((i % 37) as i64 * 10 + 10);
    let mut roles = vec![(declared, "lead", Some(PEOPLE[i % 7]))];
    let mut lead = PEOPLE[i % 7];
    if i % 4 == 1 {
        roles.push((declared + m(5), "comms", Some(PEOPLE[(i + 1) % 7])));
        roles.push((declared + m(30), "comms", None));
    }
    if i % 12 == 3 {
        // The comms lead here is the person the lead is handed to: their two stretches overlap.
        roles.push((declared + m(5), "comms", Some(PEOPLE[(i + 3) % 7])));
    }
    if i.is_multiple_of(3) {
        lead = PEOPLE[(i + 3) % 7];
        roles.push((declared + m(20), "lead", Some(lead)));
    }
    roles.sort_by_key(|r| r.0);
    let mut pages = Vec::new();
    if matches!(severity, "SEV0" | "SEV1") {
        pages.push((
            "pagerduty",
            "declared",
            "done",
            declared + Duration::seconds(30),
            String::new(),
        ));
        if i % 10 == 3 {
            // Lowered below the threshold: closes the alert, is not a page.
            pages.push((
                "pagerduty",
                "severity_changed",
                "done",
                declared + m(40),
                page_body("identified", severity, "SEV3"),
            ));
        }
        if i % 6 == 1 {
            pages.push((
                "opsgenie",
                "declared",
                "done",
                declared + Duration::seconds(45),
                String::new(),
            ));
        }
        if i % 9 == 2 {
            // Never delivered: not a page that went out.
            pages.push(("opsgenie", "declared", "dead", declared + m(1), String::new()));
        }
        if i.is_multiple_of(8) {
            // Resolved then reopened: the reopening pages again; the resolve does not.
            pages.push((
                "pagerduty",
                "status_changed",
                "done",
                mitigated,
                page_body("resolved", "mitigated", "resolved"),
            ));
            pages.push((
                "pagerduty",
                "status_changed",
                "done",
                mitigated + m(3),
                page_body("investigating", "resolved", "investigating"),
            ));
        }
    } else if i % 7 == 2 && severity != "unknown" {
        // Raised to SEV1 later: pages then.
        pages.push((
            "pagerduty",
            "severity_changed",
            "done",
            declared + m(15),
            page_body("identified", severity, "SEV1"),
        ));
    }
    let title = if i.is_multiple_of(500) {
        format!("=HYPERLINK(\"http://evil.example\"), \"incident\" {i}")
    } else {
        format!("Generated incident {i}: elevated errors")
    };
    Plan {
        number: i as i64 + 1,
        title,
        severity,
        status,
        drill,
        services,
        impact_started,
        declared,
        mustered,
        mitigated,
        resolved,
        roles,
        lead,
        pages,
    }
}

/// Two incidents on `billing` (New York hours) paged either side of the spring clock change of
/// 2026 (8 March): both at 13:30 UTC, which is 08:30 EST on Friday 6 March (before work) and 09:30
/// EDT on Monday 9 March (working).
pub fn dst_edge(number: i64) -> Vec<Plan> {
    let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    ["2026-03-06 13:29", "2026-03-09 13:29"]
        .iter()
        .enumerate()
        .map(|(k, at)| {
            let declared = t(at);
            Plan {
                number: number + k as i64,
                title: format!("Billing clock change {k}"),
                severity: "SEV1",
                status: "resolved",
                drill: false,
                services: vec!["billing"],
                impact_started: None,
                declared,
                mustered: None,
                mitigated: declared + Duration::minutes(30),
                resolved: declared + Duration::minutes(60),
                roles: vec![],
                lead: "",
                pages: vec![(
                    "pagerduty",
                    "declared",
                    "done",
                    declared + Duration::minutes(1),
                    String::new(),
                )],
            }
        })
        .collect()
}

/// A whole incident row, key times included, so a batch is one statement.
#[derive(Insertable)]
#[diesel(table_name = redbutton::db::schema::incidents)]
struct GeneratedIncident<'a> {
    number: i64,
    title: &'a str,
    severity: &'a str,
    status: &'a str,
    summary: &'a str,
    declared_by_name: &'a str,
    declared_by_email: &'a str,
    lead_name: Option<&'a str>,
    drill: bool,
    impact_started_at: Option<NaiveDateTime>,
    declared_at: NaiveDateTime,
    mustered_at: Option<NaiveDateTime>,
    mitigated_at: Option<NaiveDateTime>,
    resolved_at: Option<NaiveDateTime>,
    updated_at: NaiveDateTime,
}

/// The incident and the table it goes in, for [`insert_all`].
#[derive(Insertable)]
#[diesel(table_name = redbutton::db::schema::incident_services)]
struct ServiceRow<'a> {
    incident_id: i64,
    service: &'a str,
}

/// Inserts rows: one multi-row statement on PostgreSQL (round trips are what cost there), one
/// statement per row on SQLite (in-process, and diesel's SQLite batch insert does not take
/// optional columns).
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            DbConnection::Postgresql(c) => {
                if !$rows.is_empty() {
                    diesel::insert_into($table).values($rows).execute(c)?;
                }
            }
            DbConnection::Sqlite(c) => {
                for r in $rows.iter() {
                    diesel::insert_into($table).values(r).execute(c)?;
                }
            }
        }
    };
}

/// Writes plans with the db row types, 500 incidents per transaction.
pub async fn write(app: &TestApp, plans: &[Plan]) {
    for chunk in plans.chunks(500) {
        let chunk = chunk.to_vec();
        app.state
            .db
            .write(move |conn| -> Result<(), redbutton::db::DbError> {
                use redbutton::db::schema::{counters, incident_services, incidents, outbox as o, timeline_entries};
                let rows: Vec<GeneratedIncident> = chunk
                    .iter()
                    .map(|p| GeneratedIncident {
                        number: p.number,
                        title: &p.title,
                        severity: p.severity,
                        status: p.status,
                        summary: "Generated.",
                        declared_by_name: "Generator",
                        declared_by_email: "generator@example.com",
                        lead_name: (!p.lead.is_empty()).then_some(p.lead),
                        drill: p.drill,
                        impact_started_at: p.impact_started,
                        declared_at: p.declared,
                        mustered_at: p.mustered,
                        mitigated_at: Some(p.mitigated),
                        resolved_at: Some(p.resolved),
                        updated_at: p.resolved,
                    })
                    .collect();
                let ids: Vec<i64> = match &mut *conn {
                    DbConnection::Postgresql(c) => diesel::insert_into(incidents::table)
                        .values(&rows)
                        .returning(incidents::id)
                        .get_results(c)?,
                    DbConnection::Sqlite(c) => rows
                        .iter()
                        .map(|r| {
                            diesel::insert_into(incidents::table)
                                .values(r)
                                .returning(incidents::id)
                                .get_result(c)
                        })
                        .collect::<Result<_, _>>()?,
                };
                assert_eq!(ids.len(), chunk.len());
                let last = chunk.last().map(|p| p.number).unwrap_or(0);
                diesel::update(counters::table.filter(counters::name.eq("incident_number")))
                    .set(counters::value.eq(last))
                    .execute(conn)?;
                let services: Vec<ServiceRow> = chunk
                    .iter()
                    .zip(&ids)
                    .flat_map(|(p, id)| {
                        p.services.iter().map(move |s| ServiceRow {
                            incident_id: *id,
                            service: s,
                        })
                    })
                    .collect();
                insert_all!(&mut *conn, incident_services::table, &services);
                let entry = |id: i64, at, kind: &str| NewTimelineEntry {
                    incident_id: id,
                    at,
                    actor_name: "Generator".into(),
                    actor_email: "generator@example.com".into(),
                    kind: kind.into(),
                    field: None,
                    old_value: None,
                    new_value: None,
                    body: None,
                };
                let mut entries = Vec::new();
                let mut pages = Vec::new();
                for (p, id) in chunk.iter().zip(&ids) {
                    entries.push(entry(*id, p.declared, "declared"));
                    for (at, role, holder) in &p.roles {
                        let mut e = entry(
                            *id,
                            *at,
                            if *role == "lead" {
                                "lead_changed"
                            } else {
                                "role_changed"
                            },
                        );
                        e.field = Some(role.to_string());
                        e.new_value = holder.map(str::to_string);
                        entries.push(e);
                    }
                    for (k, (notifier, event, state, at, payload)) in p.pages.iter().enumerate() {
                        pages.push(NewOutboxRow {
                            incident_id: *id,
                            timeline_entry_id: None,
                            notifier: notifier.to_string(),
                            event: event.to_string(),
                            idempotency_key: format!("gen-{}-{k}", p.number),
                            payload: if payload.is_empty() {
                                "{}".into()
                            } else {
                                payload.clone()
                            },
                            state: state.to_string(),
                            attempts: 1,
                            next_attempt_at: *at,
                            created_at: *at - Duration::seconds(5),
                            updated_at: *at,
                            sequence_key: Some(format!("{id}:{notifier}")),
                            target: None,
                        });
                    }
                }
                insert_all!(&mut *conn, timeline_entries::table, &entries);
                insert_all!(&mut *conn, o::table, &pages);
                diesel::update(o::table.filter(o::state.eq("done")).filter(o::delivered_at.is_null()))
                    .set(o::delivered_at.eq(o::updated_at.nullable()))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .unwrap();
    }
}

/// The generated history: `n` incidents from `base`, then the two clock-change incidents.
pub async fn generate(app: &TestApp, base: NaiveDateTime, n: usize) -> Vec<Plan> {
    let mut plans: Vec<Plan> = (0..n).map(|i| plan(i, base)).collect();
    plans.extend(dst_edge(n as i64 + 1));
    write(app, &plans).await;
    plans
}

// ---------------------------------------------------------------------------------------------
// The figures, worked out from the plan.

fn percentile(sorted: &[i64], p: f64) -> f64 {
    // Rank p(n-1) between the values either side, by hand.
    let rank = p * (sorted.len() - 1) as f64;
    let below = rank as usize;
    if below + 1 >= sorted.len() {
        return sorted[below] as f64;
    }
    let weight = rank - below as f64;
    sorted[below] as f64 * (1.0 - weight) + sorted[below + 1] as f64 * weight
}

fn secs_between(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    (b - a).num_seconds()
}

fn is_working(zone: &str, utc: NaiveDateTime) -> bool {
    let (tz, start, end): (chrono_tz::Tz, u32, u32) = match zone {
        "americas" => (chrono_tz::America::New_York, 9 * 60, 17 * 60),
        "apac" => (chrono_tz::Asia::Tokyo, 9 * 60, 18 * 60),
        _ => (chrono_tz::Europe::London, 9 * 60, 17 * 60 + 30),
    };
    let local = tz.from_utc_datetime(&utc);
    let minute = local.hour() * 60 + local.minute();
    local.weekday().number_from_monday() <= 5 && minute >= start && minute < end
}

fn zone_of(service: &str) -> &'static str {
    match service {
        "payments" | "billing" => "americas",
        "search" => "apac",
        _ => "default",
    }
}

fn chosen<'a>(plans: &'a [Plan], from: NaiveDate, to: NaiveDate, service: Option<&str>) -> Vec<&'a Plan> {
    plans
        .iter()
        .filter(|p| p.counts())
        .filter(|p| p.declared.date() >= from && p.declared.date() <= to)
        .filter(|p| service.is_none_or(|s| p.services.contains(&s)))
        .collect()
}

/// Whether someone led, and their stretches holding roles.
type Spans = (bool, Vec<(NaiveDateTime, NaiveDateTime)>);

/// Seconds per person, and (incidents, led), worked out from the plan's stretches.
fn expected_load(plans: &[&Plan]) -> BTreeMap<String, (usize, usize, i64)> {
    let mut out: BTreeMap<String, (usize, usize, i64)> = BTreeMap::new();
    for p in plans {
        let mut spans: HashMap<&str, Spans> = HashMap::new();
        for (k, (at, role, holder)) in p.roles.iter().enumerate() {
            let Some(who) = holder else { continue };
            let until = p.roles[k + 1..]
                .iter()
                .find(|r| r.1 == *role)
                .map(|r| r.0)
                .unwrap_or(p.resolved);
            let e = spans.entry(who).or_default();
            e.0 |= *role == "lead";
            e.1.push((*at, until));
        }
        for (who, (led, mut s)) in spans {
            s.sort();
            // The time covered by at least one stretch.
            let mut total = 0;
            let (mut a, mut b) = s[0];
            for &(x, y) in &s[1..] {
                if x > b {
                    total += secs_between(a, b);
                    (a, b) = (x, y);
                } else if y > b {
                    b = y;
                }
            }
            total += secs_between(a, b);
            let e = out.entry(who.to_string()).or_default();
            e.0 += 1;
            e.1 += usize::from(led);
            e.2 += total;
        }
    }
    out
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn monday(d: NaiveDate) -> NaiveDate {
    d - Duration::days(d.weekday().num_days_from_monday() as i64)
}

const N: usize = 3000;

fn base() -> NaiveDateTime {
    date("2026-01-05").and_hms_opt(0, 7, 0).unwrap()
}

async fn spawn_with_history() -> (TestApp, TestDb, Vec<Plan>) {
    let db = TestDb::new();
    let mut spec = Spawn::new(&db);
    spec.settings = settings();
    spec.worker = false;
    let app = TestApp::spawn(spec).await;
    let started = Instant::now();
    let plans = generate(&app, base(), N).await;
    println!("generated {} incidents in {:?}", plans.len(), started.elapsed());
    (app, db, plans)
}

async fn figures(app: &TestApp, f: &Filters) -> insights::Insights {
    let history = insights::load(&app.state, f).await.unwrap();
    insights::compute(&history, f, &app.state.settings, base() + Duration::days(400))
}

#[tokio::test]
async fn insights_over_a_generated_history_match_an_independent_count() {
    let (app, _db, plans) = spawn_with_history().await;
    let (from, to) = (date("2026-01-05"), date("2026-05-03"));
    let f = Filters {
        from,
        to,
        service: None,
    };
    let started = Instant::now();
    let ins = figures(&app, &f).await;
    println!("computed in {:?}", started.elapsed());
    let mine = chosen(&plans, from, to, None);
    assert!(mine.len() > 2000, "{} counted", mine.len());
    assert_eq!(ins.incidents, mine.len());
    let excluded = plans.iter().filter(|p| !p.counts() && p.declared.date() <= to).count();
    assert!(
        excluded > 150,
        "the history holds drills, declined and merged ones: {excluded}"
    );

    // Incidents per week and severity.
    let mut weeks: BTreeMap<(NaiveDate, &str), usize> = BTreeMap::new();
    for p in &mine {
        *weeks.entry((monday(p.declared.date()), p.severity)).or_default() += 1;
    }
    assert_eq!(ins.weeks.len(), 17);
    assert_eq!(ins.severities.last().map(String::as_str), Some("unknown"));
    for w in &ins.weeks {
        for (k, sev) in ins.severities.iter().enumerate() {
            assert_eq!(
                w.counts[k],
                weeks.get(&(w.week, sev.as_str())).copied().unwrap_or(0),
                "week of {} {sev}",
                w.week
            );
        }
    }
    assert_eq!(ins.weeks.iter().map(|w| w.total()).sum::<usize>(), mine.len());

    // Medians and 90th percentiles, overall, per month and per service.
    let durations = |ps: &[&Plan], m: Metric| -> Vec<i64> {
        let mut v: Vec<i64> = ps
            .iter()
            .filter_map(|p| match m {
                Metric::Muster => p.mustered.map(|t| secs_between(p.declared, t)),
                Metric::Mitigate => Some(secs_between(p.impact_started.unwrap_or(p.declared), p.mitigated)),
                Metric::Resolve => Some(secs_between(p.impact_started.unwrap_or(p.declared), p.resolved)),
            })
            .collect();
        v.sort();
        v
    };
    let check = |what: &str, ps: &[&Plan], got: &insights::Spreads| {
        for m in Metric::ALL {
            let v = durations(ps, m);
            if v.is_empty() {
                assert_eq!(got.get(m), None, "{what} {}", m.label());
                continue;
            }
            let s = got.get(m).unwrap_or_else(|| panic!("{what} {}: no spread", m.label()));
            assert_eq!(s.n, v.len(), "{what} {}", m.label());
            for (name, p, value) in [
                ("min", 0.0, s.min),
                ("p25", 0.25, s.p25),
                ("median", 0.5, s.median),
                ("p75", 0.75, s.p75),
                ("p90", 0.9, s.p90),
                ("max", 1.0, s.max),
            ] {
                let want = percentile(&v, p);
                assert!(
                    (value - want).abs() < 1e-6,
                    "{what} {} {name}: {value} != {want}",
                    m.label()
                );
            }
        }
    };
    check("all", &mine, &ins.overall);
    assert_eq!(ins.period, insights::Period::Month, "17 weeks are shown by month");
    assert_eq!(ins.over_time.len(), 5);
    for (start, spreads) in &ins.over_time {
        let month: Vec<&Plan> = mine
            .iter()
            .copied()
            .filter(|p| p.declared.date().month() == start.month())
            .collect();
        check(&format!("month {start}"), &month, spreads);
    }
    assert_eq!(ins.by_service.len(), 6, "five services and billing's two");
    for (service, spreads) in &ins.by_service {
        let theirs: Vec<&Plan> = mine
            .iter()
            .copied()
            .filter(|p| p.services.contains(&service.as_str()))
            .collect();
        check(service, &theirs, spreads);
    }

    // Pages in and out of working hours, in the zone of each incident's first service.
    let mut by_zone: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut total = 0;
    for p in &mine {
        let zone = zone_of(p.services[0]);
        for (_, event, state, at, payload) in &p.pages {
            let opens = *event == "declared"
                || (!payload.contains("\"status\":\"resolved\"")
                    && (*event == "status_changed" || payload.contains("\"new\":\"SEV1\"")));
            if *state != "done" || !opens {
                continue;
            }
            total += 1;
            let e = by_zone.entry(zone).or_default();
            if is_working(zone, *at) {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
    }
    let got: BTreeMap<&str, (usize, usize)> = ins
        .pages
        .by_zone
        .iter()
        .map(|z| (z.name.as_str(), (z.working, z.off_hours)))
        .collect();
    assert_eq!(got, by_zone);
    assert_eq!(ins.pages.total(), total);
    assert!(ins.pages.working > 100 && ins.pages.off_hours > 100, "{:?}", ins.pages);

    // Responder hours.
    let load = expected_load(&mine);
    let got: BTreeMap<String, (usize, usize, i64)> = ins
        .responders
        .iter()
        .map(|l| (l.name.clone(), (l.incidents, l.led, l.seconds)))
        .collect();
    assert_eq!(got, load);
    assert_eq!(got.len(), 7);
    assert!(
        ins.responders.windows(2).all(|w| w[0].seconds >= w[1].seconds),
        "most hours first"
    );

    // Hot spots.
    for h in &ins.hot_spots {
        let theirs: Vec<&Plan> = mine
            .iter()
            .copied()
            .filter(|p| p.services.contains(&h.service.as_str()))
            .collect();
        assert_eq!(h.incidents, theirs.len(), "{}", h.service);
        let impact: i64 = theirs
            .iter()
            .map(|p| secs_between(p.impact_started.unwrap_or(p.declared), p.mitigated))
            .sum();
        assert_eq!(h.impact_seconds, impact, "{}", h.service);
        let high = theirs.iter().filter(|p| matches!(p.severity, "SEV0" | "SEV1")).count();
        assert_eq!(h.high, high, "{}", h.service);
    }
    assert!(ins.hot_spots.windows(2).all(|w| w[0].incidents >= w[1].incidents));

    // The service filter narrows every figure to that service's incidents.
    let f = Filters {
        service: Some("search".into()),
        ..f
    };
    let narrow = figures(&app, &f).await;
    let theirs = chosen(&plans, from, to, Some("search"));
    assert_eq!(narrow.incidents, theirs.len());
    check("search only", &theirs, &narrow.overall);
    assert_eq!(
        narrow.responders.iter().map(|l| l.seconds).sum::<i64>(),
        expected_load(&theirs).values().map(|v| v.2).sum::<i64>()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_page_is_read_in_its_zone_across_the_clock_change() {
    let db = TestDb::new();
    let mut spec = Spawn::new(&db);
    spec.settings = settings();
    spec.worker = false;
    let app = TestApp::spawn(spec).await;
    write(&app, &dst_edge(1)).await;
    let f = Filters {
        from: date("2026-03-01"),
        to: date("2026-03-31"),
        service: Some("billing".into()),
    };
    let ins = figures(&app, &f).await;
    assert_eq!(ins.incidents, 2);
    let americas = ins.pages.by_zone.iter().find(|z| z.name == "americas").unwrap();
    // 13:30 UTC: 08:30 EST on Friday 6 March (off hours), 09:30 EDT on Monday 9 March (working).
    assert_eq!((americas.working, americas.off_hours), (1, 1));
    assert_eq!(ins.pages.by_local_hour[8], (0, 1));
    assert_eq!(ins.pages.by_local_hour[9], (1, 0));
    assert_eq!(americas.hours, "Mon\u{2013}Fri 09:00\u{2013}17:00 America/New_York");
    app.stop().await;
}

#[tokio::test]
async fn the_page_and_the_csv_show_the_generated_history() {
    let (app, _db, plans) = spawn_with_history().await;
    app.identify("Vera Viewer", "vera@example.com").await;
    let (from, to) = ("2026-02-02", "2026-03-01");
    let mine = chosen(&plans, date(from), date(to), None);

    let started = Instant::now();
    let html = app.get_html(&format!("/insights?from={from}&to={to}")).await;
    println!("/insights over four weeks of the history in {:?}", started.elapsed());
    let started = Instant::now();
    app.get_html("/insights?from=2026-01-05&to=2026-05-24").await;
    let all = started.elapsed();
    println!("/insights over all {} incidents in {all:?}", plans.len());
    assert!(all < std::time::Duration::from_secs(10), "{all:?}");

    assert!(
        html.contains(&format!("{} incidents declared from {from} to {to}", mine.len())),
        "{html}"
    );
    let weekly = texts(&html, "#chart-weekly rect.bar title");
    let bars_total: usize = weekly
        .iter()
        .map(|t| {
            t.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(bars_total, mine.len(), "the stacked bars add up to the incidents");
    assert_eq!(
        texts(&html, "#chart-weekly .x-labels text"),
        ["Feb 2", "Feb 9", "Feb 16", "Feb 23"]
    );
    assert_eq!(
        texts(&html, "#chart-weekly title#chart-weekly-title"),
        ["Incidents per week, by severity"]
    );
    assert_eq!(texts(&html, "#chart-service-resolve .row-label").len(), 5);
    assert_eq!(
        texts(&html, "#chart-time-muster .row-label"),
        ["Feb 2", "Feb 9", "Feb 16", "Feb 23"]
    );
    let ins = figures(
        &app,
        &Filters {
            from: date(from),
            to: date(to),
            service: None,
        },
    )
    .await;
    assert_eq!(texts(&html, "#pages-total"), [ins.pages.total().to_string()]);
    assert_eq!(texts(&html, "#pages-off"), [ins.pages.off_hours.to_string()]);
    assert_eq!(texts(&html, "#chart-responders .row-label").len(), 7);
    assert!(texts(&html, "nav a").contains(&"Insights".to_string()));

    // The CSV: same filters, one row per incident, oldest first, text defused and quoted.
    let resp = app.get(&format!("/insights/incidents.csv?from={from}&to={to}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("incidents-2026-02-02-to-2026-03-01.csv")
    );
    let body = resp.text().await.unwrap();
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), mine.len() + 1);
    assert_eq!(lines[0], insights::CSV_HEADER.join(","));
    let first = mine[0];
    let iso = |t: Option<NaiveDateTime>| {
        t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    let minutes = |secs: i64| format!("{:.1}", secs as f64 / 60.0);
    let start = first.impact_started.unwrap_or(first.declared);
    let expect = [
        first.number.to_string(),
        first.title.clone(),
        first.severity.to_string(),
        "resolved".to_string(),
        first.services.join(" "),
        iso(first.impact_started),
        iso(Some(first.declared)),
        iso(first.mustered),
        iso(Some(first.mitigated)),
        iso(Some(first.resolved)),
        first
            .mustered
            .map(|t| minutes(secs_between(first.declared, t)))
            .unwrap_or_default(),
        minutes(secs_between(start, first.mitigated)),
        minutes(secs_between(start, first.resolved)),
        first.lead.to_string(),
    ]
    .join(",");
    assert_eq!(lines[1], expect);
    // Incident 501 (index 500) has a formula for a title.
    let evil = plans
        .iter()
        .find(|p| p.title.starts_with('=') && p.declared.date() >= date(from) && p.declared.date() <= date(to));
    if let Some(p) = evil {
        let row = lines.iter().find(|l| l.starts_with(&format!("{},", p.number))).unwrap();
        assert!(
            row.contains("\"'=HYPERLINK(\"\"http://evil.example\"\"), \"\"incident\"\""),
            "{row}"
        );
    }
    let all_csv = app
        .get("/insights/incidents.csv?from=2026-01-05&to=2026-05-24")
        .await
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = all_csv.split("\r\n").filter(|l| !l.is_empty()).skip(1).collect();
    assert_eq!(rows.len(), plans.iter().filter(|p| p.counts()).count());
    let defused = rows.iter().filter(|l| l.contains(",\"'=HYPERLINK(")).count();
    assert_eq!(
        defused,
        plans.iter().filter(|p| p.counts() && p.title.starts_with('=')).count()
    );
    assert!(defused >= 4, "{defused}");
    assert!(
        !rows.iter().any(|l| l.contains(",=")),
        "no cell starts with a bare formula"
    );

    // The service filter on the CSV.
    let payments = app
        .get("/insights/incidents.csv?from=2026-01-05&to=2026-05-24&service=payments")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        payments.split("\r\n").filter(|l| !l.is_empty()).count() - 1,
        plans
            .iter()
            .filter(|p| p.counts() && p.services.contains(&"payments"))
            .count()
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_filters_get_clear_errors() {
    let db = TestDb::new();
    let mut spec = Spawn::new(&db);
    spec.settings = settings();
    let app = TestApp::spawn(spec).await;
    app.identify("Vera Viewer", "vera@example.com").await;
    for (query, says) in [
        ("from=2026-02-30", "is not a date like 2026-11-21"),
        (
            "from=yesterday&to=2026-01-01",
            "\u{201c}yesterday\u{201d} is not a date",
        ),
        ("from=2026-03-01&to=2026-02-01", "swap the dates"),
        ("from=2020-01-01&to=2026-01-01", "longer than 731 days"),
        ("service=nope", "There is no service \u{201c}nope\u{201d}"),
        (
            "service=%3Cscript%3E",
            "There is no service \u{201c}&#60;script&#62;\u{201d}",
        ),
    ] {
        let resp = app.get(&format!("/insights?{query}")).await;
        assert_eq!(resp.status(), 400, "{query}");
        let html = resp.text().await.unwrap();
        assert!(html.contains(says), "{query}: {html}");
        assert!(texts(&html, "svg").is_empty(), "{query}: no charts for bad filters");
        let csv = app.get(&format!("/insights/incidents.csv?{query}")).await;
        assert_eq!(csv.status(), 400, "{query}");
        assert!(
            csv.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
    }
    // The default: the last 90 days, today included, with nothing to show on an empty database.
    let html = app.get_html("/insights").await;
    let today = chrono::Utc::now().date_naive();
    assert!(
        html.contains(&format!("value=\"{}\"", today - Duration::days(89))),
        "{html}"
    );
    assert!(html.contains("0 incidents declared from"));
    assert!(html.contains("Nobody held a role"));
    app.stop().await;
}
