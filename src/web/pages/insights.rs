//! `/insights`: figures over past incidents for a date range and a service, drawn as server-side
//! SVG (no script), with every number also in a table; `/insights/incidents.csv`: the incident
//! table under the same filters. The figures come from `services::insights` (pure, tested there).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::Read;
use crate::domain::declaration::now_utc;
use crate::domain::{FieldError, UNKNOWN_SEVERITY};
use crate::services::insights::{self, Filters, Insights, Metric, Spread};
use crate::state::AppState;
use crate::web::charts::{self, BoxStats, Columns, Rows, Scale, Series, Width, short_duration};
use crate::web::pages::Me;
use crate::web::pages::dashboard::Choice;
use crate::web::session::Access;
use crate::web::{internal, render};

/// The query string: `?from=2026-08-24&to=2026-11-21&service=checkout`, each optional.
#[derive(Debug, Deserialize, Default)]
pub struct InsightsQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub service: Option<String>,
}

/// One row of a spread table, formatted.
pub struct SpreadRow {
    pub label: String,
    pub n: usize,
    pub cells: [String; 6],
}

impl SpreadRow {
    fn new(label: &str, s: Option<Spread>) -> Self {
        let d = |v: f64| short_duration(v);
        SpreadRow {
            label: label.into(),
            n: s.map(|s| s.n).unwrap_or(0),
            cells: match s {
                Some(s) => [d(s.min), d(s.p25), d(s.median), d(s.p75), d(s.p90), d(s.max)],
                None => Default::default(),
            },
        }
    }
}

/// A box chart with its numbers.
pub struct BoxBlock {
    pub chart: Rows,
    pub rows: Vec<SpreadRow>,
}

/// A table of one number per label.
pub struct Tally {
    pub label: String,
    pub cells: Vec<String>,
}

/// The figures, drawn.
pub struct View {
    pub incidents: usize,
    pub range: String,
    pub period: &'static str,
    pub weekly: Columns,
    pub severities: Vec<String>,
    pub weekly_rows: Vec<Tally>,
    pub overall: Vec<SpreadRow>,
    pub over_time: Vec<BoxBlock>,
    pub by_service: Vec<BoxBlock>,
    pub pages_total: usize,
    pub pages_working: usize,
    pub pages_off: usize,
    pub pages_off_share: String,
    pub pages_by_hour: Columns,
    pub zones: Vec<Tally>,
    pub responders: Rows,
    pub responder_rows: Vec<Tally>,
    pub hot_incidents: Rows,
    pub hot_impact: Rows,
    pub hot_high: Rows,
    pub hot_rows: Vec<Tally>,
    pub high_severity: String,
    pub has_services: bool,
}

/// The page.
#[derive(Template)]
#[template(path = "insights.html")]
pub struct InsightsPage {
    me: Option<Me>,
    from: String,
    to: String,
    services: Vec<Choice>,
    errors: Vec<String>,
    csv_link: String,
    view: Option<View>,
}

/// How many people and services the bar charts show (the tables list all).
const TOP: usize = 12;

fn enc(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn stats(s: Option<Spread>) -> Option<BoxStats> {
    s.map(|s| BoxStats {
        n: s.n,
        min: s.min,
        p25: s.p25,
        median: s.median,
        p75: s.p75,
        p90: s.p90,
        max: s.max,
    })
}

fn hours(secs: i64) -> String {
    format!("{:.1} h", secs as f64 / 3600.0)
}

/// The colour class of a severity: by position among the configured levels (most severe first).
fn severity_series(i: usize, id: &str, configured: usize) -> String {
    if id == UNKNOWN_SEVERITY || i >= configured {
        "series-unknown".into()
    } else {
        format!("series-{}", i.min(6))
    }
}

fn draw(ins: &Insights, state: &AppState) -> View {
    let settings = &state.settings;
    let name_of = |id: &str| {
        settings
            .services
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.display_name().to_string())
            .unwrap_or_else(|| id.to_string())
    };
    let configured = settings.severities.len();
    let f = &ins.filters;
    let range = format!("{} to {}", f.from, f.to);

    // Incidents per week, stacked by severity.
    let labels: Vec<String> = ins.weeks.iter().map(|w| w.week.format("%b %-d").to_string()).collect();
    let series: Vec<Series> = ins
        .severities
        .iter()
        .enumerate()
        .map(|(i, s)| Series {
            label: s.clone(),
            class: severity_series(i, s, configured),
        })
        .collect();
    let values: Vec<Vec<usize>> = ins.weeks.iter().map(|w| w.counts.clone()).collect();
    let weekly = charts::columns(
        "chart-weekly",
        "Incidents per week, by severity",
        &format!(
            "Stacked columns: for each week from {range} (weeks start on Monday, UTC), the incidents declared, one colour per severity. {} incidents in all.",
            ins.incidents
        ),
        &labels,
        &series,
        &values,
        "Week starting (Monday, UTC)",
        "Incidents",
    );
    let weekly_rows = ins
        .weeks
        .iter()
        .map(|w| Tally {
            label: w.week.to_string(),
            cells: w
                .counts
                .iter()
                .map(|c| c.to_string())
                .chain([w.total().to_string()])
                .collect(),
        })
        .collect();

    let overall = Metric::ALL
        .iter()
        .map(|m| SpreadRow::new(m.label(), ins.overall.get(*m)))
        .collect();
    let over_time = Metric::ALL
        .iter()
        .map(|m| {
            let items: Vec<(String, Option<BoxStats>)> = ins
                .over_time
                .iter()
                .map(|(d, s)| (ins.period.label(*d), stats(s.get(*m))))
                .collect();
            BoxBlock {
                chart: charts::boxes(
                    &format!("chart-time-{}", m.id()),
                    &format!("{} per {}", m.label(), ins.period.noun()),
                    &format!(
                        "Box plots, one row per {}: whisker from the shortest to the 90th percentile, box from the 25th to the 75th percentile, a line at the median, a dot at the longest.",
                        ins.period.noun()
                    ),
                    &items,
                    m.label(),
                ),
                rows: ins
                    .over_time
                    .iter()
                    .map(|(d, s)| SpreadRow::new(&ins.period.label(*d), s.get(*m)))
                    .collect(),
            }
        })
        .collect();
    let by_service = Metric::ALL
        .iter()
        .map(|m| {
            let items: Vec<(String, Option<BoxStats>)> = ins
                .by_service
                .iter()
                .map(|(s, sp)| (name_of(s), stats(sp.get(*m))))
                .collect();
            BoxBlock {
                chart: charts::boxes(
                    &format!("chart-service-{}", m.id()),
                    &format!("{} by service", m.label()),
                    "Box plots, one row per service: whisker from the shortest to the 90th percentile, box from the 25th to the 75th percentile, a line at the median, a dot at the longest.",
                    &items,
                    m.label(),
                ),
                rows: ins
                    .by_service
                    .iter()
                    .map(|(s, sp)| SpreadRow::new(&name_of(s), sp.get(*m)))
                    .collect(),
            }
        })
        .collect();

    // Pages by local hour.
    let p = &ins.pages;
    let hours_labels: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let hour_values: Vec<Vec<usize>> = p.by_local_hour.iter().map(|(w, o)| vec![*w, *o]).collect();
    let pages_by_hour = charts::columns(
        "chart-pages",
        "Pages by hour of the day",
        &format!(
            "Stacked columns: pages that went out, by the hour of the day in the paged service's zone; {} in working hours, {} off hours.",
            p.working, p.off_hours
        ),
        &hours_labels,
        &[
            Series {
                label: "in working hours".into(),
                class: "series-working".into(),
            },
            Series {
                label: "off hours".into(),
                class: "series-off".into(),
            },
        ],
        &hour_values,
        "Hour of the day (zone's local time)",
        "Pages",
    );
    let zones = p
        .by_zone
        .iter()
        .map(|z| Tally {
            label: z.name.clone(),
            cells: vec![
                z.hours.clone(),
                z.working.to_string(),
                z.off_hours.to_string(),
                (z.working + z.off_hours).to_string(),
            ],
        })
        .collect();

    // Responders.
    let top: Vec<(String, f64, String)> = ins
        .responders
        .iter()
        .take(TOP)
        .map(|l| (l.name.clone(), l.seconds as f64, hours(l.seconds)))
        .collect();
    let responders = charts::bars(
        "chart-responders",
        "Hours holding the lead or a role, per person",
        &format!(
            "Horizontal bars: the {} people with the most hours holding the lead or another role while incidents were open.",
            top.len()
        ),
        &top,
        "series-people",
        "Hours",
        Scale::Hours,
        Width::Wide,
    );
    let responder_rows = ins
        .responders
        .iter()
        .map(|l| Tally {
            label: l.name.clone(),
            cells: vec![l.incidents.to_string(), l.led.to_string(), hours(l.seconds)],
        })
        .collect();

    // Hot spots.
    let pick = |key: &dyn Fn(&insights::HotSpot) -> i64| {
        let mut v: Vec<&insights::HotSpot> = ins.hot_spots.iter().collect();
        v.sort_by(|a, b| key(b).cmp(&key(a)).then(a.service.cmp(&b.service)));
        v.into_iter().take(TOP).collect::<Vec<_>>()
    };
    let hot_incidents = charts::bars(
        "chart-hot-incidents",
        "Incidents per service",
        "Horizontal bars: the services with the most incidents in the range.",
        &pick(&|h| h.incidents as i64)
            .iter()
            .map(|h| (name_of(&h.service), h.incidents as f64, h.incidents.to_string()))
            .collect::<Vec<_>>(),
        "series-hot",
        "Incidents",
        Scale::Count,
        Width::Narrow,
    );
    let hot_impact = charts::bars(
        "chart-hot-impact",
        "Impact hours per service",
        "Horizontal bars: the services with the most hours of impact in the range.",
        &pick(&|h| h.impact_seconds)
            .iter()
            .map(|h| (name_of(&h.service), h.impact_seconds as f64, hours(h.impact_seconds)))
            .collect::<Vec<_>>(),
        "series-impact",
        "Impact",
        Scale::Hours,
        Width::Narrow,
    );
    let hot_high = charts::bars(
        "chart-hot-high",
        &format!("{} and above per service", ins.high_severity),
        &format!(
            "Horizontal bars: the services with the most incidents at {} or more severe.",
            ins.high_severity
        ),
        &pick(&|h| h.high as i64)
            .iter()
            .map(|h| (name_of(&h.service), h.high as f64, h.high.to_string()))
            .collect::<Vec<_>>(),
        "series-0",
        "Incidents",
        Scale::Count,
        Width::Narrow,
    );
    let hot_rows = ins
        .hot_spots
        .iter()
        .map(|h| Tally {
            label: name_of(&h.service),
            cells: vec![h.incidents.to_string(), hours(h.impact_seconds), h.high.to_string()],
        })
        .collect();

    View {
        incidents: ins.incidents,
        range,
        period: ins.period.noun(),
        weekly,
        severities: ins.severities.clone(),
        weekly_rows,
        overall,
        over_time,
        by_service,
        pages_total: p.total(),
        pages_working: p.working,
        pages_off: p.off_hours,
        pages_off_share: if p.total() == 0 {
            "\u{2014}".into()
        } else {
            format!("{:.0}%", 100.0 * p.off_hours as f64 / p.total() as f64)
        },
        pages_by_hour,
        zones,
        responders,
        responder_rows,
        hot_incidents,
        hot_impact,
        hot_high,
        hot_rows,
        high_severity: ins.high_severity.clone(),
        has_services: !ins.hot_spots.is_empty(),
    }
}

fn messages(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(|e| e.message.clone()).collect()
}

fn parse(query: &InsightsQuery, state: &AppState) -> Result<Filters, Vec<FieldError>> {
    Filters::parse(
        query.from.as_deref(),
        query.to.as_deref(),
        query.service.as_deref(),
        now_utc().date(),
        &state.settings,
    )
}

/// `GET /insights`
pub async fn show(user: Access<Read>, state: web::Data<AppState>, query: web::Query<InsightsQuery>) -> HttpResponse {
    let parsed = parse(&query, &state);
    let selected = match &parsed {
        Ok(f) => f.service.clone(),
        Err(_) => query.service.clone(),
    };
    let services = state
        .settings
        .services
        .iter()
        .map(|s| Choice {
            value: s.id.clone(),
            label: s.display_name().to_string(),
            selected: selected.as_deref() == Some(s.id.as_str()),
        })
        .collect();
    let me = Some(Me::new(&user, state.settings.auth.mode));
    let f = match parsed {
        Ok(f) => f,
        Err(errors) => {
            let clip = |v: &Option<String>| {
                v.as_deref()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(40)
                    .collect()
            };
            let page = InsightsPage {
                me,
                from: clip(&query.from),
                to: clip(&query.to),
                services,
                errors: messages(&errors),
                csv_link: String::new(),
                view: None,
            };
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let history = match insights::load(&state, &f).await {
        Ok(h) => h,
        Err(e) => return internal(&e),
    };
    let ins = insights::compute(&history, &f, &state.settings, now_utc());
    let mut csv_link = format!("/insights/incidents.csv?from={}&to={}", f.from, f.to);
    if let Some(s) = &f.service {
        csv_link.push_str(&format!("&service={}", enc(s)));
    }
    let page = InsightsPage {
        me,
        from: f.from.to_string(),
        to: f.to.to_string(),
        services,
        errors: Vec::new(),
        csv_link,
        view: Some(draw(&ins, &state)),
    };
    render(StatusCode::OK, &page)
}

/// `GET /insights/incidents.csv`
pub async fn csv(_user: Access<Read>, state: web::Data<AppState>, query: web::Query<InsightsQuery>) -> HttpResponse {
    let f = match parse(&query, &state) {
        Ok(f) => f,
        Err(errors) => {
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(messages(&errors).join("\n"));
        }
    };
    let history = match insights::load(&state, &f).await {
        Ok(h) => h,
        Err(e) => return internal(&e),
    };
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"incidents-{}-to-{}.csv\"", f.from, f.to),
        ))
        .body(insights::csv(&history, &f))
}
