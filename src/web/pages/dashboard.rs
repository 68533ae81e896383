//! `/`: live incidents first, then past ones, filterable and paginated.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::{Declare, Read};
use crate::config::Settings;
use crate::db::models::IncidentFilter;
use crate::domain::declaration::now_utc;
use crate::domain::key_times::format_duration;
use crate::domain::update::next_update_due;
use crate::domain::{Status, UNKNOWN_SEVERITY};
use crate::services::metrics;
use crate::services::queries::{self, IncidentSummary};
use crate::state::AppState;
use crate::web::pages::Me;
use crate::web::session::Access;
use crate::web::{internal, render, view};

/// Past incidents per page.
pub const PER_PAGE: i64 = 25;

/// One incident row.
pub struct Row {
    pub number: i64,
    pub title: String,
    pub severity: String,
    pub severity_class: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub age: String,
    pub declared: String,
    pub declared_iso: String,
    pub lead: String,
    /// The other roles someone holds, as "Comms lead: Ada Lovelace".
    pub roles: Vec<String>,
    pub last_update: String,
    /// The latest status update's first words, if any.
    pub update_excerpt: Option<String>,
    /// When the next update is due (`14:35 UTC`), and whether that has passed.
    pub next_due: Option<(String, bool)>,
    pub services: String,
    pub drill: bool,
}

impl Row {
    /// Builds a row for display.
    pub fn from_summary(
        s: &IncidentSummary,
        now: &chrono::NaiveDateTime,
        settings: &Settings,
        roles: &[crate::config::Role],
    ) -> Self {
        let status = Status::parse(&s.row.status).unwrap_or(Status::Investigating);
        let latest = s.latest_update.as_ref();
        let next_due = next_update_due(
            status,
            s.row.declared_at,
            latest.map(|u| (u.at, u.next_update_at)),
            settings.cadence(&s.row.severity).update_minutes,
        )
        .map(|at| (at.format("%H:%M UTC").to_string(), at < *now));
        let update_excerpt = latest.map(|u| {
            let mut short: String = u.known.chars().take(140).collect();
            if u.known.chars().count() > 140 {
                short.push('\u{2026}');
            }
            short
        });
        // A declined or merged incident has no resolution time; it ended when it was closed.
        let end = match s.row.resolved_at {
            Some(t) => t,
            None if status.is_closed() => s.row.updated_at,
            None => *now,
        };
        Row {
            number: s.row.number,
            title: s.row.title.clone(),
            severity: s.row.severity.clone(),
            severity_class: view::severity_class(&s.row.severity),
            status: status.as_str(),
            status_label: status.label(),
            age: view::age(&s.row.declared_at, &end),
            declared: view::time(&s.row.declared_at),
            declared_iso: view::iso(&s.row.declared_at),
            lead: s.row.lead_name.clone().unwrap_or_default(),
            roles: crate::services::roles::held_roles(roles, &s.row, &s.roles)
                .into_iter()
                .filter(|h| !h.role.is_lead())
                .filter_map(|h| h.holder.map(|a| format!("{}: {}", h.role.name, a.name)))
                .collect(),
            last_update: format!("{} ago", view::age(&s.row.updated_at, now)),
            update_excerpt,
            next_due,
            services: s.services.join(", "),
            drill: s.row.drill,
        }
    }
}

/// An overdue follow-up, with its incident.
pub struct OverdueView {
    pub number: i64,
    pub incident_title: String,
    pub id: i64,
    pub title: String,
    pub owner: String,
    pub due_on: String,
    /// Whole days past due.
    pub days_late: i64,
    pub jira_key: Option<String>,
    pub jira_url: Option<String>,
}

impl OverdueView {
    fn new(r: &crate::db::models::follow_up::OverdueRow, today: chrono::NaiveDate) -> Self {
        let f = &r.follow_up;
        let due = chrono::NaiveDate::parse_from_str(&f.due_on, "%Y-%m-%d").unwrap_or(today);
        OverdueView {
            number: r.incident_number,
            incident_title: r.incident_title.clone(),
            id: f.id,
            title: f.title.clone(),
            owner: f.owner_name.clone(),
            due_on: f.due_on.clone(),
            days_late: (today - due).num_days(),
            jira_key: f.jira_key.clone(),
            jira_url: f
                .jira_url
                .clone()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        }
    }
}

/// An option of a filter select.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The dashboard.
#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    me: Option<super::Me>,
    live: Vec<Row>,
    past: Vec<Row>,
    past_total: i64,
    page: i64,
    pages: i64,
    statuses: Vec<Choice>,
    severities: Vec<Choice>,
    services: Vec<Choice>,
    q: String,
    filtered: bool,
    notice: Option<String>,
    prev_link: Option<String>,
    next_link: Option<String>,
    /// Open follow-ups due before today, across incidents.
    overdue: Vec<OverdueView>,
    /// The last 30 days, counted incidents only.
    figures: FiguresView,
    /// Drill scenarios the "Start a drill" form offers, as (id, title); empty hides it.
    drill_scenarios: Vec<(String, String)>,
    /// Whether the viewer may declare (and so start a drill).
    can_declare: bool,
    /// CSRF token for the drill form.
    csrf: String,
    /// A fresh idempotency key for the drill form, so a double press starts one drill.
    drill_key: String,
}

/// The "last 30 days" strip.
pub struct FiguresView {
    pub days: i64,
    pub counted: usize,
    pub to_mitigate: String,
    pub to_resolve: String,
}

/// How far back the dashboard's figures look.
pub const FIGURES_DAYS: i64 = 30;

/// Query string.
#[derive(Deserialize, Default)]
pub struct DashboardQuery {
    status: Option<String>,
    severity: Option<String>,
    service: Option<String>,
    q: Option<String>,
    page: Option<String>,
}

fn choices(options: Vec<(String, String)>, selected: &Option<String>) -> Vec<Choice> {
    options
        .into_iter()
        .map(|(value, label)| Choice {
            selected: selected.as_deref() == Some(value.as_str()),
            value,
            label,
        })
        .collect()
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Shows the dashboard.
pub async fn show(user: Access<Read>, state: web::Data<AppState>, query: web::Query<DashboardQuery>) -> HttpResponse {
    let settings = &state.settings;
    let mut notices = Vec::new();
    let mut status = non_empty(&query.status);
    if let Some(s) = &status
        && Status::parse(s).is_none()
    {
        notices.push("Unknown status filter ignored.");
        status = None;
    }
    let mut severity = non_empty(&query.severity);
    if let Some(s) = &severity
        && s != UNKNOWN_SEVERITY
        && !settings.severities.iter().any(|l| &l.id == s)
    {
        notices.push("Unknown severity filter ignored.");
        severity = None;
    }
    let mut service = non_empty(&query.service);
    if let Some(s) = &service
        && !settings.services.iter().any(|l| &l.id == s)
    {
        notices.push("Unknown service filter ignored.");
        service = None;
    }
    let q: String = non_empty(&query.q)
        .map(|s| s.chars().filter(|c| !c.is_control()).take(200).collect())
        .unwrap_or_default();
    let page = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p >= 1 && *p <= 100_000)
        .unwrap_or(1);

    let filter = IncidentFilter {
        status: status.clone(),
        severity: severity.clone(),
        service: service.clone(),
        text: (!q.is_empty()).then(|| q.clone()),
        live: None,
        drill: None,
    };
    let d = match queries::dashboard(&state, filter, page, PER_PAGE).await {
        Ok(d) => d,
        Err(e) => return internal(&e),
    };
    let overdue = match crate::services::follow_ups::overdue(&state).await {
        Ok(rows) => {
            let today = crate::services::follow_ups::today();
            rows.iter().map(|r| OverdueView::new(r, today)).collect()
        }
        Err(e) => return internal(&e),
    };
    let now = now_utc();
    let figures = match metrics::last_days(&state, FIGURES_DAYS, now).await {
        Ok(f) => f,
        Err(e) => return internal(&e),
    };
    let shown = |d: Option<chrono::Duration>| d.map(format_duration).unwrap_or_else(|| "\u{2014}".into());
    let pages = ((d.past_total + PER_PAGE - 1) / PER_PAGE).max(1);
    let link = |p: i64| {
        let mut parts = vec![format!("page={p}")];
        for (k, v) in [("status", &status), ("severity", &severity), ("service", &service)] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", enc(v)));
            }
        }
        if !q.is_empty() {
            parts.push(format!("q={}", enc(&q)));
        }
        format!("/?{}", parts.join("&"))
    };
    let roles = state.settings.roles();
    let page_view = DashboardPage {
        me: Some(Me::new(&user, state.settings.auth.mode)),
        live: d
            .live
            .iter()
            .map(|s| Row::from_summary(s, &now, settings, &roles))
            .collect(),
        past: d
            .past
            .iter()
            .map(|s| Row::from_summary(s, &now, settings, &roles))
            .collect(),
        past_total: d.past_total,
        page,
        pages,
        statuses: choices(
            Status::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), s.label().to_string()))
                .collect(),
            &status,
        ),
        severities: choices(
            settings
                .severities
                .iter()
                .map(|s| (s.id.clone(), s.id.clone()))
                .chain([(UNKNOWN_SEVERITY.to_string(), "Unknown".to_string())])
                .collect(),
            &severity,
        ),
        services: choices(
            settings
                .services
                .iter()
                .map(|s| (s.id.clone(), s.display_name().to_string()))
                .collect(),
            &service,
        ),
        filtered: status.is_some() || severity.is_some() || service.is_some() || !q.is_empty(),
        q: q.clone(),
        notice: (!notices.is_empty()).then(|| notices.join(" ")),
        prev_link: (page > 1).then(|| link((page - 1).min(pages))),
        next_link: (page < pages).then(|| link(page + 1)),
        overdue,
        drill_scenarios: super::drills::choices(&state),
        can_declare: user.holds(<Declare as crate::auth::Permission>::NEED),
        csrf: user.csrf().to_string(),
        drill_key: uuid::Uuid::new_v4().to_string(),
        figures: FiguresView {
            days: figures.days,
            counted: figures.counted,
            to_mitigate: shown(figures.median_to_mitigate),
            to_resolve: shown(figures.median_to_resolve),
        },
    };
    render(StatusCode::OK, &page_view)
}

fn enc(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}
