//! Figures about incidents. Only incidents that count go into them: real incidents, not drills,
//! and not those declined as not an incident or merged into another (the survivor counts once).
//! That rule lives in one query, [`incident::counted_since`]; every figure is computed from its
//! rows, so a later insights page inherits it.

use chrono::{Duration, NaiveDateTime};

use super::ServiceError;
use super::lifecycle::key_times_of;
use crate::db::models::{IncidentRow, incident};
use crate::state::AppState;

/// The dashboard's strip: how many incidents counted in a window, and the median times to
/// mitigate and to resolve of those that got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// Window length, in days.
    pub days: i64,
    /// Incidents that count, declared in the window.
    pub counted: usize,
    /// Median time to mitigate, over the counted incidents that were mitigated.
    pub median_to_mitigate: Option<Duration>,
    /// Median time to resolve, over the counted incidents that were resolved.
    pub median_to_resolve: Option<Duration>,
}

/// The median of some durations (the mean of the two middle ones for an even count).
pub fn median(mut values: Vec<Duration>) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2
    })
}

/// The figures of counted incidents (as [`incident::counted_since`] returns them), using the
/// key-time durations ([`crate::domain::KeyTimes::durations`]).
pub fn figures(days: i64, counted: &[IncidentRow]) -> Figures {
    let durations: Vec<_> = counted.iter().map(|r| key_times_of(r).durations()).collect();
    Figures {
        days,
        counted: counted.len(),
        median_to_mitigate: median(durations.iter().filter_map(|d| d.to_mitigate).collect()),
        median_to_resolve: median(durations.iter().filter_map(|d| d.to_resolve).collect()),
    }
}

/// The figures for incidents declared in the `days` days before `now`.
pub async fn last_days(state: &AppState, days: i64, now: NaiveDateTime) -> Result<Figures, ServiceError> {
    let since = now - Duration::days(days);
    let rows = state.db.run(move |conn| incident::counted_since(conn, since)).await?;
    Ok(figures(days, &rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        let m = Duration::minutes;
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![m(5)]), Some(m(5)));
        assert_eq!(median(vec![m(30), m(5), m(10)]), Some(m(10)));
        assert_eq!(median(vec![m(40), m(10), m(20), m(30)]), Some(m(25)));
    }
}
