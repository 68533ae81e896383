//! The incident page's follow-ups card and its forms: add one, close or reopen it, change its
//! owner or due date. The card is drawn by the incident page; these handlers answer its forms
//! through the incident page's shared form handling (CSRF, errors shown on the page).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::Work;
use crate::db::models::FollowUpRow;
use crate::domain::follow_up::{FollowUpStatus, is_overdue};
use crate::services::follow_ups;
use crate::state::AppState;
use crate::web::error_page;
use crate::web::pages::incident::handle;
use crate::web::session::Access;

/// One follow-up, for display.
pub struct FollowUpView {
    pub id: i64,
    pub title: String,
    pub owner: String,
    /// The owner's address when it is not already what `owner` shows.
    pub owner_email: Option<String>,
    /// `YYYY-MM-DD`.
    pub due_on: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub closed: bool,
    pub overdue: bool,
    pub jira_key: Option<String>,
    /// Only http(s) links are shown.
    pub jira_url: Option<String>,
}

impl FollowUpView {
    /// Builds the view of a stored follow-up on `today`.
    pub fn new(row: &FollowUpRow, today: chrono::NaiveDate) -> Self {
        let status = FollowUpStatus::parse(&row.status).unwrap_or(FollowUpStatus::Open);
        FollowUpView {
            id: row.id,
            title: row.title.clone(),
            owner: row.owner_name.clone(),
            owner_email: row
                .owner_email
                .clone()
                .filter(|e| !e.eq_ignore_ascii_case(&row.owner_name)),
            due_on: row.due_on.clone(),
            status: status.as_str(),
            status_label: status.label(),
            closed: status.is_closed(),
            overdue: is_overdue(status, &row.due_on, today),
            jira_key: row.jira_key.clone(),
            jira_url: row
                .jira_url
                .clone()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        }
    }
}

/// What the incident page's follow-ups card shows.
pub struct FollowUpsCard {
    pub items: Vec<FollowUpView>,
    /// Today (UTC), the earliest date the add form suggests.
    pub today: String,
    /// Whether new follow-ups get a Jira issue.
    pub jira: bool,
    /// How many are open.
    pub open: usize,
    /// How many of those are overdue.
    pub overdue: usize,
}

impl FollowUpsCard {
    /// The card for an incident's follow-ups.
    pub fn new(state: &AppState, rows: &[FollowUpRow]) -> Self {
        let today = follow_ups::today();
        let items: Vec<FollowUpView> = rows.iter().map(|r| FollowUpView::new(r, today)).collect();
        FollowUpsCard {
            open: items.iter().filter(|i| !i.closed).count(),
            overdue: items.iter().filter(|i| i.overdue).count(),
            items,
            today: crate::domain::follow_up::due_text(today),
            jira: follow_ups::jira_enabled(state),
        }
    }
}

fn follow_up_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

/// `POST /incidents/{n}/follow-ups`: `title`, `owner` (an email or a name), `due_on` (YYYY-MM-DD).
pub async fn add(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    handle(req, body, user, state, &path, |st, n, u, form| async move {
        follow_ups::add(
            &st,
            n,
            u.actor,
            form.get("title"),
            form.get("owner"),
            form.get("due_on"),
        )
        .await
        .map(|_| ())
    })
    .await
}

/// `POST /incidents/{n}/follow-ups/{id}/status`: `action` = `done`, `wont_do` or `reopen`;
/// `expected` = the status the form showed.
pub async fn status(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (raw, id) = path.into_inner();
    let Some(id) = follow_up_id(&id) else {
        return error_page(StatusCode::NOT_FOUND, "There is no such follow-up.");
    };
    handle(req, body, user, state, &raw, move |st, n, u, form| async move {
        follow_ups::change_status(&st, n, u.actor, id, form.get("action"), Some(form.get("expected"))).await
    })
    .await
}

/// `POST /incidents/{n}/follow-ups/{id}`: a new `owner` and/or `due_on` (an empty one is kept).
pub async fn edit(
    req: HttpRequest,
    body: web::Bytes,
    user: Access<Work>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (raw, id) = path.into_inner();
    let Some(id) = follow_up_id(&id) else {
        return error_page(StatusCode::NOT_FOUND, "There is no such follow-up.");
    };
    handle(req, body, user, state, &raw, move |st, n, u, form| async move {
        follow_ups::edit(&st, n, u.actor, id, form.get("owner"), form.get("due_on"))
            .await
            .map(|_| ())
    })
    .await
}
