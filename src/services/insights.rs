//! Insights: figures over the history of counted incidents (not drills, not declined, not merged),
//! for a date range and optionally one service.
//!
//! [`compute`] is pure: it takes plain facts ([`History`]) and the settings and returns every
//! aggregate the page draws, so tests check it with exact numbers. [`load`] is the thin read: five
//! queries ([`crate::db::models::insights::history`]) turned into facts. [`csv`] writes the
//! incident table.
//!
//! Definitions, also stated on the page:
//!
//! - **Range**: incidents declared from `from` 00:00 UTC up to the end of `to` (both dates
//!   included). Weeks start on Monday (UTC).
//! - **Percentiles** use linear interpolation between the two nearest ranks (the method of
//!   spreadsheets' `PERCENTILE.INC`): for p in [0, 1] over n sorted values, h = (n − 1)·p and the
//!   value is x⌊h⌋ + (h − ⌊h⌋)(x⌊h⌋+1 − x⌊h⌋). The median is p = 0.5, the same as the dashboard's.
//!   Durations are those of [`crate::domain::KeyTimes::durations`]; an incident without the end
//!   time of a duration is left out of that duration's figures.
//! - **Pages**: delivered (`done`) outbox rows to `pagerduty` or `opsgenie` that open an alert (a
//!   declaration at or above the pager's threshold, a raise to it, a reopening), not the ones that
//!   close it, of the incidents in range; timed when delivered. Each is classified in the working
//!   hours of the zone of the incident's first service in id order (`[insights]`).
//! - **Responder hours**: for each person (by the name on the timeline) and incident, the time
//!   they held the lead or another role while the incident was open (from taking it to handing it
//!   over, or to the resolution; until now for an incident still open), time holding two roles at
//!   once counted once.
//! - **Impact**: from impact started (or declared, when unknown) to mitigated (or resolved, when
//!   mitigation is unknown; until now while neither is known and the incident is open).

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use serde::Deserialize;

use super::ServiceError;
use crate::config::Settings;
use crate::config::insights::Calendar;
use crate::db::models::insights as rows;
use crate::domain::{FieldError, KeyTimes, Status, UNKNOWN_SEVERITY};
use crate::state::AppState;

/// The longest range the page computes, in days.
pub const MAX_RANGE_DAYS: i64 = 731;
/// The default range: the last 90 days, today included.
pub const DEFAULT_RANGE_DAYS: i64 = 90;
/// Up to this many weeks, figures over time are per week; beyond, per month.
pub const WEEKLY_UP_TO_WEEKS: i64 = 16;

/// What the figures are about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    /// First day, UTC, included.
    pub from: NaiveDate,
    /// Last day, UTC, included.
    pub to: NaiveDate,
    /// Only incidents affecting this service.
    pub service: Option<String>,
}

impl Filters {
    /// The first moment in range.
    pub fn start(&self) -> NaiveDateTime {
        self.from.and_time(chrono::NaiveTime::MIN)
    }

    /// The first moment after the range.
    pub fn end(&self) -> NaiveDateTime {
        (self.to + Duration::days(1)).and_time(chrono::NaiveTime::MIN)
    }

    /// The default filters on `today`: the last [`DEFAULT_RANGE_DAYS`] days, every service.
    pub fn default_on(today: NaiveDate) -> Self {
        Filters {
            from: today - Duration::days(DEFAULT_RANGE_DAYS - 1),
            to: today,
            service: None,
        }
    }

    /// Reads the filters from the query string's values (empty means "default"), checking them
    /// all and naming every bad one.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        service: Option<&str>,
        today: NaiveDate,
        settings: &Settings,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let shown = |raw: &str| raw.chars().filter(|c| !c.is_control()).take(40).collect::<String>();
        let mut date = |field: &'static str, label: &str, raw: Option<&str>| -> Option<NaiveDate> {
            let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
            match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                Ok(d) if raw.len() == 10 => Some(d),
                _ => {
                    errors.push(FieldError::new(
                        field,
                        format!(
                            "The {label} date \u{201c}{}\u{201d} is not a date like 2026-11-21.",
                            shown(raw)
                        ),
                    ));
                    None
                }
            }
        };
        let from_given = date("from", "from", from);
        let to_given = date("to", "to", to);
        let to_day = to_given.unwrap_or(today);
        let from_day = from_given.unwrap_or(to_day - Duration::days(DEFAULT_RANGE_DAYS - 1));
        if errors.is_empty() {
            if from_day > to_day {
                errors.push(FieldError::new(
                    "from",
                    format!("The range starts ({from_day}) after it ends ({to_day}); swap the dates."),
                ));
            } else if (to_day - from_day).num_days() + 1 > MAX_RANGE_DAYS {
                errors.push(FieldError::new(
                    "from",
                    format!(
                        "The range from {from_day} to {to_day} is longer than {MAX_RANGE_DAYS} days; choose a shorter one."
                    ),
                ));
            }
        }
        let service = service.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(s) = &service
            && !settings.services.iter().any(|l| &l.id == s)
        {
            errors.push(FieldError::new(
                "service",
                format!("There is no service \u{201c}{}\u{201d}.", shown(s)),
            ));
        }
        if errors.is_empty() {
            Ok(Filters {
                from: from_day,
                to: to_day,
                service,
            })
        } else {
            Err(errors)
        }
    }
}

/// One incident, as the figures need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentFacts {
    pub id: i64,
    pub number: i64,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub drill: bool,
    /// The lead now.
    pub lead: Option<String>,
    /// Affected services, in id order.
    pub services: Vec<String>,
    pub times: KeyTimes,
    /// Last change (stands in for the resolution time of old rows resolved without one).
    pub updated_at: NaiveDateTime,
}

/// A change of who holds a role, from the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    pub incident_id: i64,
    pub at: NaiveDateTime,
    /// `lead`, or a role id.
    pub role: String,
    /// The new holder's name; `None` when the role was left.
    pub holder: Option<String>,
}

/// A page that went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageFact {
    pub incident_id: i64,
    /// When it was delivered (UTC).
    pub at: NaiveDateTime,
}

/// The facts the figures are computed from.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub incidents: Vec<IncidentFacts>,
    pub role_changes: Vec<RoleChange>,
    pub pages: Vec<PageFact>,
}

/// The durations the page spreads out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Muster,
    Mitigate,
    Resolve,
}

impl Metric {
    /// All three, in the order shown.
    pub const ALL: [Metric; 3] = [Metric::Muster, Metric::Mitigate, Metric::Resolve];

    /// `Time to muster`.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Muster => "Time to muster",
            Metric::Mitigate => "Time to mitigate",
            Metric::Resolve => "Time to resolve",
        }
    }

    /// `muster`, for ids and CSV headers.
    pub fn id(self) -> &'static str {
        match self {
            Metric::Muster => "muster",
            Metric::Mitigate => "mitigate",
            Metric::Resolve => "resolve",
        }
    }

    /// This duration of one incident.
    pub fn of(self, t: &KeyTimes) -> Option<Duration> {
        let d = t.durations();
        match self {
            Metric::Muster => d.to_muster,
            Metric::Mitigate => d.to_mitigate,
            Metric::Resolve => d.to_resolve,
        }
    }
}

/// The spread of some durations, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub min: f64,
    pub p25: f64,
    pub median: f64,
    pub p75: f64,
    pub p90: f64,
    pub max: f64,
}

/// The `p` percentile (0 ≤ p ≤ 1) of sorted values, by linear interpolation between the nearest
/// ranks (see the module documentation). `None` for no values.
pub fn percentile(sorted: &[i64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    Some(sorted[lo] as f64 + frac * (sorted[hi] - sorted[lo]) as f64)
}

impl Spread {
    /// The spread of durations; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = Duration>) -> Option<Spread> {
        let mut secs: Vec<i64> = values.into_iter().map(|d| d.num_seconds()).collect();
        secs.sort_unstable();
        let p = |q| percentile(&secs, q);
        Some(Spread {
            n: secs.len(),
            min: p(0.0)?,
            p25: p(0.25)?,
            median: p(0.5)?,
            p75: p(0.75)?,
            p90: p(0.9)?,
            max: p(1.0)?,
        })
    }
}

/// The three spreads of a group of incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct Spreads {
    /// Incidents in the group.
    pub incidents: usize,
    /// In [`Metric::ALL`] order.
    pub by_metric: [Option<Spread>; 3],
}

impl Spreads {
    fn of(group: &[&IncidentFacts]) -> Spreads {
        Spreads {
            incidents: group.len(),
            by_metric: Metric::ALL.map(|m| Spread::of(group.iter().filter_map(|i| m.of(&i.times)))),
        }
    }

    /// One metric's spread.
    pub fn get(&self, m: Metric) -> Option<Spread> {
        self.by_metric[Metric::ALL.iter().position(|x| *x == m).unwrap_or(0)]
    }
}

/// How figures over time are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Week,
    Month,
}

impl Period {
    /// The first day of the period holding `d`.
    pub fn start_of(self, d: NaiveDate) -> NaiveDate {
        match self {
            Period::Week => week_start(d),
            Period::Month => d.with_day(1).unwrap_or(d),
        }
    }

    /// The first day of the next period.
    pub fn next(self, d: NaiveDate) -> NaiveDate {
        match self {
            Period::Week => d + Duration::days(7),
            Period::Month => d
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(d + Duration::days(31)),
        }
    }

    /// `week`, `month`.
    pub fn noun(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// How a period is named: `Nov 16` (the week's Monday) or `Nov 2026`.
    pub fn label(self, d: NaiveDate) -> String {
        match self {
            Period::Week => d.format("%b %-d").to_string(),
            Period::Month => d.format("%b %Y").to_string(),
        }
    }
}

/// The Monday of the week holding `d`.
pub fn week_start(d: NaiveDate) -> NaiveDate {
    d - Duration::days(d.weekday().num_days_from_monday() as i64)
}

/// Incidents declared in one week, by severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekCount {
    /// The week's Monday.
    pub week: NaiveDate,
    /// Counts in [`Insights::severities`] order.
    pub counts: Vec<usize>,
}

impl WeekCount {
    /// All incidents of the week.
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// Pages in one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZonePages {
    /// `default` or a zone's name.
    pub name: String,
    /// The hours, in words.
    pub hours: String,
    pub working: usize,
    pub off_hours: usize,
}

/// The pages of the incidents in range.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pages {
    pub working: usize,
    pub off_hours: usize,
    /// Every zone (default first), with or without pages.
    pub by_zone: Vec<ZonePages>,
    /// By hour of the day in the page's zone: (working, off hours) for hours 0 to 23.
    pub by_local_hour: Vec<(usize, usize)>,
}

impl Pages {
    /// All pages.
    pub fn total(&self) -> usize {
        self.working + self.off_hours
    }
}

/// One person's load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    pub name: String,
    /// Incidents in which they held the lead or a role.
    pub incidents: usize,
    /// Incidents they led (at some point).
    pub led: usize,
    /// Seconds holding a role (see the module documentation).
    pub seconds: i64,
}

/// One service's share of trouble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotSpot {
    pub service: String,
    pub incidents: usize,
    /// Seconds of impact (see the module documentation).
    pub impact_seconds: i64,
    /// Incidents at or above the high severity.
    pub high: usize,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Insights {
    pub filters: Filters,
    /// The incidents counted.
    pub incidents: usize,
    /// Severities in the order shown: configured ones, then `unknown` and any other stored one
    /// that appears.
    pub severities: Vec<String>,
    /// Every week of the range, oldest first.
    pub weeks: Vec<WeekCount>,
    /// Over all incidents in range.
    pub overall: Spreads,
    /// How `over_time` is grouped.
    pub period: Period,
    /// Every period of the range, oldest first, with the first day of each.
    pub over_time: Vec<(NaiveDate, Spreads)>,
    /// Per service with incidents (configured order, then others by id); an incident on two
    /// services counts in both.
    pub by_service: Vec<(String, Spreads)>,
    pub pages: Pages,
    /// Most hours first.
    pub responders: Vec<Load>,
    /// Most incidents first, then most impact.
    pub hot_spots: Vec<HotSpot>,
    /// The least severe level counted as high.
    pub high_severity: String,
}

/// Whether an incident counts: not a drill, neither declined nor merged.
pub fn counts(i: &IncidentFacts) -> bool {
    !i.drill && !Status::UNCOUNTED.iter().any(|s| s.as_str() == i.status)
}

/// When an incident stopped being open: its resolution, or now while it is open.
fn open_until(i: &IncidentFacts, now: NaiveDateTime) -> NaiveDateTime {
    if Status::is_closed_str(&i.status) {
        i.times.resolved.unwrap_or(i.updated_at)
    } else {
        now
    }
}

/// Seconds of impact of one incident.
pub fn impact_seconds(i: &IncidentFacts, now: NaiveDateTime) -> i64 {
    let start = i.times.impact_started.unwrap_or(i.times.declared);
    let end = i
        .times
        .mitigated
        .or(i.times.resolved)
        .unwrap_or_else(|| open_until(i, now));
    (end - start).num_seconds().max(0)
}

/// The incidents `compute` looks at: counted, declared in range, on the service if one is chosen.
pub fn selected<'a>(h: &'a History, f: &Filters) -> Vec<&'a IncidentFacts> {
    let (start, end) = (f.start(), f.end());
    let mut out: Vec<&IncidentFacts> = h
        .incidents
        .iter()
        .filter(|i| counts(i) && i.times.declared >= start && i.times.declared < end)
        .filter(|i| f.service.as_ref().is_none_or(|s| i.services.contains(s)))
        .collect();
    out.sort_by_key(|i| (i.times.declared, i.number));
    out
}

/// Computes every figure. `now` closes what is still open.
pub fn compute(h: &History, f: &Filters, settings: &Settings, now: NaiveDateTime) -> Insights {
    let chosen = selected(h, f);

    // Severities: configured ones always (a stable legend), others when they appear.
    let mut severities: Vec<String> = settings.severities.iter().map(|s| s.id.clone()).collect();
    let mut extra: Vec<String> = chosen
        .iter()
        .map(|i| i.severity.clone())
        .filter(|s| !severities.contains(s))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some(p) = extra.iter().position(|s| s == UNKNOWN_SEVERITY) {
        let u = extra.remove(p);
        extra.insert(0, u);
    }
    severities.extend(extra);

    // Incidents per week and severity.
    let mut weeks = Vec::new();
    let mut w = week_start(f.from);
    while w <= f.to {
        weeks.push(WeekCount {
            week: w,
            counts: vec![0; severities.len()],
        });
        w += Duration::days(7);
    }
    let first_week = week_start(f.from);
    for i in &chosen {
        let idx = ((week_start(i.times.declared.date()) - first_week).num_days() / 7) as usize;
        let sev = severities.iter().position(|s| *s == i.severity).unwrap_or(0);
        if let Some(week) = weeks.get_mut(idx) {
            week.counts[sev] += 1;
        }
    }

    // Spreads overall, over time, per service.
    let period = if (f.to - f.from).num_days() < WEEKLY_UP_TO_WEEKS * 7 {
        Period::Week
    } else {
        Period::Month
    };
    let mut over_time = Vec::new();
    let mut p = period.start_of(f.from);
    while p <= f.to {
        let next = period.next(p);
        let group: Vec<&IncidentFacts> = chosen
            .iter()
            .copied()
            .filter(|i| i.times.declared.date() >= p && i.times.declared.date() < next)
            .collect();
        over_time.push((p, Spreads::of(&group)));
        p = next;
    }
    let mut service_ids: Vec<String> = settings.services.iter().map(|s| s.id.clone()).collect();
    let mut others: Vec<String> = chosen
        .iter()
        .flat_map(|i| i.services.iter().cloned())
        .filter(|s| !service_ids.contains(s))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    service_ids.append(&mut others);
    let mut by_service = Vec::new();
    let mut hot_spots = Vec::new();
    let high = settings.insights.high_severity(settings).to_string();
    let high_index = settings.severities.iter().position(|s| s.id == high);
    let is_high = |sev: &str| match (settings.severities.iter().position(|s| s.id == sev), high_index) {
        (Some(i), Some(limit)) => i <= limit,
        _ => false,
    };
    for s in &service_ids {
        let group: Vec<&IncidentFacts> = chosen.iter().copied().filter(|i| i.services.contains(s)).collect();
        if group.is_empty() {
            continue;
        }
        by_service.push((s.clone(), Spreads::of(&group)));
        hot_spots.push(HotSpot {
            service: s.clone(),
            incidents: group.len(),
            impact_seconds: group.iter().map(|i| impact_seconds(i, now)).sum(),
            high: group.iter().filter(|i| is_high(&i.severity)).count(),
        });
    }
    hot_spots.sort_by(|a, b| {
        b.incidents
            .cmp(&a.incidents)
            .then(b.impact_seconds.cmp(&a.impact_seconds))
            .then(a.service.cmp(&b.service))
    });

    let by_id: HashMap<i64, &IncidentFacts> = chosen.iter().map(|i| (i.id, *i)).collect();
    let calendar = settings
        .insights
        .calendar(settings)
        .unwrap_or_else(|_| fallback_calendar());
    let pages = count_pages(&h.pages, &by_id, &calendar);
    let responders = responder_load(&h.role_changes, &chosen, now);

    Insights {
        filters: f.clone(),
        incidents: chosen.len(),
        severities,
        weeks,
        overall: Spreads::of(&chosen),
        period,
        over_time,
        by_service,
        pages,
        responders,
        hot_spots,
        high_severity: high,
    }
}

/// Monday to Friday, 09:00 to 17:00 UTC, no zones: the default `[insights]`. Settings are checked
/// at start, so this only stands in for hand-built settings whose hours do not read.
fn fallback_calendar() -> Calendar {
    Calendar {
        default: crate::config::insights::WorkingHours {
            tz: chrono_tz::Tz::UTC,
            days: [true, true, true, true, true, false, false],
            start_minute: 9 * 60,
            end_minute: 17 * 60,
        },
        zones: Vec::new(),
        by_service: HashMap::new(),
    }
}

/// Classifies the pages of the chosen incidents.
fn count_pages(pages: &[PageFact], by_id: &HashMap<i64, &IncidentFacts>, calendar: &Calendar) -> Pages {
    let mut out = Pages {
        by_local_hour: vec![(0, 0); 24],
        ..Pages::default()
    };
    let mut zones: Vec<ZonePages> = std::iter::once((crate::config::insights::DEFAULT_ZONE, &calendar.default))
        .chain(calendar.zones.iter().map(|(n, h)| (n.as_str(), h)))
        .map(|(name, hours)| ZonePages {
            name: name.to_string(),
            hours: hours.describe(),
            working: 0,
            off_hours: 0,
        })
        .collect();
    for p in pages {
        let Some(i) = by_id.get(&p.incident_id) else {
            continue;
        };
        let (zone, hours) = calendar.zone_of(i.services.first().map(String::as_str));
        let working = hours.contains(p.at);
        let hour = {
            use chrono::TimeZone;
            hours.tz.from_utc_datetime(&p.at).hour() as usize
        };
        let z = zones.iter_mut().find(|z| z.name == zone);
        if working {
            out.working += 1;
            out.by_local_hour[hour].0 += 1;
            if let Some(z) = z {
                z.working += 1;
            }
        } else {
            out.off_hours += 1;
            out.by_local_hour[hour].1 += 1;
            if let Some(z) = z {
                z.off_hours += 1;
            }
        }
    }
    out.by_zone = zones;
    out
}

/// Hours per person from the lead and role changes (see the module documentation).
fn responder_load(changes: &[RoleChange], chosen: &[&IncidentFacts], now: NaiveDateTime) -> Vec<Load> {
    let mut by_incident: HashMap<i64, Vec<&RoleChange>> = HashMap::new();
    for c in changes {
        by_incident.entry(c.incident_id).or_default().push(c);
    }
    struct Acc {
        incidents: usize,
        led: usize,
        seconds: i64,
    }
    let mut people: BTreeMap<String, Acc> = BTreeMap::new();
    for i in chosen {
        let until = open_until(i, now).max(i.times.declared);
        let mine = by_incident.get(&i.id).map(Vec::as_slice).unwrap_or(&[]);
        // (role, holder, from, to) for every stretch.
        let mut stretches: Vec<(&str, String, NaiveDateTime, NaiveDateTime)> = Vec::new();
        let mut open: HashMap<&str, (String, NaiveDateTime)> = HashMap::new();
        for c in mine {
            if let Some((who, from)) = open.remove(c.role.as_str()) {
                stretches.push((c.role.as_str(), who, from, c.at));
            }
            if let Some(who) = &c.holder {
                open.insert(c.role.as_str(), (who.clone(), c.at));
            }
        }
        for (role, (who, from)) in open {
            stretches.push((role, who, from, until));
        }
        if !mine.iter().any(|c| c.role == crate::config::roles::LEAD)
            && let Some(lead) = &i.lead
        {
            // A lead recorded on the incident with no timeline entry (older data): since declared.
            stretches.push((crate::config::roles::LEAD, lead.clone(), i.times.declared, until));
        }
        let mut per_person: BTreeMap<String, (bool, Vec<(NaiveDateTime, NaiveDateTime)>)> = BTreeMap::new();
        for (role, who, from, to) in stretches {
            let from = from.clamp(i.times.declared, until);
            let to = to.clamp(from, until);
            let e = per_person.entry(who).or_default();
            e.0 |= role == crate::config::roles::LEAD;
            e.1.push((from, to));
        }
        for (who, (led, mut spans)) in per_person {
            spans.sort();
            let mut seconds = 0;
            let mut current: Option<(NaiveDateTime, NaiveDateTime)> = None;
            for (a, b) in spans {
                current = match current {
                    Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
                    Some((ca, cb)) => {
                        seconds += (cb - ca).num_seconds();
                        Some((a, b))
                    }
                    None => Some((a, b)),
                };
            }
            if let Some((ca, cb)) = current {
                seconds += (cb - ca).num_seconds();
            }
            let acc = people.entry(who).or_insert(Acc {
                incidents: 0,
                led: 0,
                seconds: 0,
            });
            acc.incidents += 1;
            acc.led += usize::from(led);
            acc.seconds += seconds;
        }
    }
    let mut out: Vec<Load> = people
        .into_iter()
        .map(|(name, a)| Load {
            name,
            incidents: a.incidents,
            led: a.led,
            seconds: a.seconds,
        })
        .collect();
    out.sort_by(|a, b| b.seconds.cmp(&a.seconds).then(a.name.cmp(&b.name)));
    out
}

/// The part of a pager payload that says whether a row opened a page.
#[derive(Deserialize)]
struct PagerPayload {
    incident: PagerIncident,
    change: Option<PagerChange>,
}

#[derive(Deserialize)]
struct PagerIncident {
    status: String,
}

#[derive(Deserialize)]
struct PagerChange {
    old: Option<String>,
    new: Option<String>,
}

/// Whether a pager delivery opened an alert (rather than closing one). Pagers only take events
/// that change whether an incident pages (`notifiers::pagerduty::page_action`), so: a
/// declaration opens; a status change opens when the new status is open (a reopening); a
/// severity change opens when the new level is more severe than the old. An unreadable payload
/// is not counted.
pub fn opens_page(event: &str, payload: Option<&str>, settings: &Settings) -> bool {
    if event == "declared" {
        return true;
    }
    let Some(p) = payload.and_then(|p| serde_json::from_str::<PagerPayload>(p).ok()) else {
        return false;
    };
    if Status::is_closed_str(&p.incident.status) {
        return false;
    }
    match event {
        "status_changed" => true,
        "severity_changed" => match p.change {
            Some(PagerChange {
                old: Some(old),
                new: Some(new),
            }) => settings.severity_rank(&new) < settings.severity_rank(&old),
            _ => false,
        },
        _ => false,
    }
}

/// Turns stored rows into facts.
pub fn facts(r: rows::HistoryRows, settings: &Settings) -> History {
    let mut services: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, s) in r.services {
        services.entry(id).or_default().push(s);
    }
    let incidents = r
        .incidents
        .into_iter()
        .map(|row| IncidentFacts {
            id: row.id,
            number: row.number,
            services: services.remove(&row.id).unwrap_or_default(),
            times: super::lifecycle::key_times_of(&row),
            title: row.title,
            severity: row.severity,
            status: row.status,
            drill: row.drill,
            lead: row.lead_name,
            updated_at: row.updated_at,
        })
        .collect();
    let role_changes = r
        .role_changes
        .into_iter()
        .filter_map(|(incident_id, at, kind, field, holder)| {
            let role = if kind == "lead_changed" {
                crate::config::roles::LEAD.to_string()
            } else {
                field?
            };
            Some(RoleChange {
                incident_id,
                at,
                role,
                holder,
            })
        })
        .collect();
    let pages = r
        .pages
        .into_iter()
        .filter(|(_, event, _, _, payload)| opens_page(event, payload.as_deref(), settings))
        .map(|(incident_id, _, created, delivered, _)| PageFact {
            incident_id,
            at: delivered.unwrap_or(created),
        })
        .collect();
    History {
        incidents,
        role_changes,
        pages,
    }
}

/// Reads the history the filters select (five queries).
pub async fn load(state: &AppState, f: &Filters) -> Result<History, ServiceError> {
    let (start, end, service) = (f.start(), f.end(), f.service.clone());
    let raw = state
        .db
        .run(move |conn| rows::history(conn, start, end, service.as_deref()))
        .await?;
    Ok(facts(raw, &state.settings))
}

// ---------------------------------------------------------------------------------------------
// CSV

/// A cell a spreadsheet must not read as a formula: one starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading apostrophe.
pub fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// A field as RFC 4180 writes it: quoted (inner quotes doubled) when it holds a comma, a quote
/// or a line break.
pub fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// The CSV header.
pub const CSV_HEADER: [&str; 14] = [
    "number",
    "title",
    "severity",
    "status",
    "services",
    "impact_started_at",
    "declared_at",
    "mustered_at",
    "mitigated_at",
    "resolved_at",
    "minutes_to_muster",
    "minutes_to_mitigate",
    "minutes_to_resolve",
    "lead",
];

fn iso(t: Option<NaiveDateTime>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn minutes(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1}", d.num_seconds() as f64 / 60.0))
        .unwrap_or_default()
}

/// The incident table under the filters as CSV (CRLF line ends, a header row), oldest first.
/// Times are UTC ISO 8601; durations in minutes with one decimal; text cells are defused.
pub fn csv(h: &History, f: &Filters) -> String {
    let mut out = String::new();
    out.push_str(&CSV_HEADER.join(","));
    out.push_str("\r\n");
    for i in selected(h, f) {
        let t = &i.times;
        let text = |s: &str| quote(&defuse(s));
        let cells = [
            i.number.to_string(),
            text(&i.title),
            text(&i.severity),
            text(&i.status),
            text(&i.services.join(" ")),
            iso(t.impact_started),
            iso(Some(t.declared)),
            iso(t.mustered),
            iso(t.mitigated),
            iso(t.resolved),
            minutes(Metric::Muster.of(t)),
            minutes(Metric::Mitigate.of(t)),
            minutes(Metric::Resolve.of(t)),
            text(i.lead.as_deref().unwrap_or("")),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn settings() -> Settings {
        Settings::parse(
            "[[services]]\nid = \"a\"\n[[services]]\nid = \"b\"\n\n[[insights.zones]]\nname = \"ny\"\ntime_zone = \"America/New_York\"\nservices = [\"b\"]\n",
        )
        .unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    fn incident(
        id: i64,
        severity: &str,
        status: &str,
        services: &[&str],
        declared: &str,
        impact: Option<&str>,
        mustered: Option<&str>,
        mitigated: Option<&str>,
        resolved: Option<&str>,
    ) -> IncidentFacts {
        IncidentFacts {
            id,
            number: id,
            title: format!("Incident {id}"),
            severity: severity.into(),
            status: status.into(),
            drill: false,
            lead: None,
            services: services.iter().map(|s| s.to_string()).collect(),
            times: KeyTimes {
                impact_started: impact.map(at),
                detected: None,
                declared: at(declared),
                mustered: mustered.map(at),
                mitigated: mitigated.map(at),
                resolved: resolved.map(at),
            },
            updated_at: at(declared),
        }
    }

    fn role(incident_id: i64, when: &str, role: &str, holder: Option<&str>) -> RoleChange {
        RoleChange {
            incident_id,
            at: at(when),
            role: role.into(),
            holder: holder.map(str::to_string),
        }
    }

    fn page(incident_id: i64, when: &str) -> PageFact {
        PageFact {
            incident_id,
            at: at(when),
        }
    }

    fn history() -> History {
        let mut second = incident(
            2,
            "SEV2",
            "resolved",
            &["a", "b"],
            "2026-11-04 22:00",
            None,
            Some("2026-11-04 22:10"),
            Some("2026-11-04 23:30"),
            Some("2026-11-05 01:00"),
        );
        second.lead = Some("Ada".into());
        let mut drill = incident(
            4,
            "SEV1",
            "resolved",
            &["a"],
            "2026-11-03 10:00",
            None,
            None,
            None,
            None,
        );
        drill.drill = true;
        History {
            incidents: vec![
                incident(
                    1,
                    "SEV1",
                    "resolved",
                    &["a"],
                    "2026-11-02 10:00",
                    Some("2026-11-02 09:50"),
                    Some("2026-11-02 10:05"),
                    Some("2026-11-02 10:50"),
                    Some("2026-11-02 12:00"),
                ),
                second,
                incident(
                    3,
                    "SEV1",
                    "investigating",
                    &["b"],
                    "2026-11-10 14:00",
                    None,
                    None,
                    None,
                    None,
                ),
                drill,
                incident(
                    5,
                    "SEV0",
                    "declined",
                    &["a"],
                    "2026-11-03 10:00",
                    None,
                    None,
                    None,
                    None,
                ),
                incident(6, "SEV0", "merged", &["a"], "2026-11-03 11:00", None, None, None, None),
                incident(
                    7,
                    "SEV0",
                    "resolved",
                    &["a"],
                    "2026-10-31 23:59",
                    None,
                    None,
                    None,
                    None,
                ),
            ],
            role_changes: vec![
                role(1, "2026-11-02 10:00", "lead", Some("Ada")),
                role(1, "2026-11-02 10:10", "comms", Some("Grace")),
                role(1, "2026-11-02 11:00", "lead", Some("Grace")),
                role(1, "2026-11-02 11:30", "comms", None),
                role(3, "2026-11-10 14:30", "lead", Some("Linus")),
                role(4, "2026-11-03 10:00", "lead", Some("Drill Person")),
            ],
            pages: vec![
                page(1, "2026-11-02 10:00"),
                page(2, "2026-11-04 22:00"),
                // New York is on EST (UTC-5) since 1 November: 14:00 UTC is 09:00, 13:30 is 08:30.
                page(3, "2026-11-10 14:00"),
                page(3, "2026-11-10 13:30"),
                page(4, "2026-11-03 10:00"),
                page(5, "2026-11-03 10:00"),
            ],
        }
    }

    fn filters() -> Filters {
        Filters {
            from: day("2026-11-01"),
            to: day("2026-11-14"),
            service: None,
        }
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.9), Some(7.0));
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), Some(2.5));
        assert_eq!(percentile(&[1, 2, 3, 4], 0.9), Some(3.7));
        assert_eq!(percentile(&[1, 2, 3, 4], 0.25), Some(1.75));
        assert_eq!(percentile(&[10, 20, 30, 40, 50], 0.9), Some(46.0));
        assert_eq!(percentile(&[10, 20, 30, 40, 50], 1.0), Some(50.0));
    }

    #[test]
    fn every_figure_over_a_small_history() {
        let s = settings();
        let now = at("2026-11-10 18:00");
        let ins = compute(&history(), &filters(), &s, now);
        assert_eq!(ins.incidents, 3, "drills, declined, merged and out-of-range left out");
        assert_eq!(ins.severities, ["SEV0", "SEV1", "SEV2", "SEV3", "SEV4"]);
        let weeks: Vec<(String, Vec<usize>)> = ins
            .weeks
            .iter()
            .map(|w| (w.week.to_string(), w.counts.clone()))
            .collect();
        assert_eq!(
            weeks,
            [
                ("2026-10-26".to_string(), vec![0, 0, 0, 0, 0]),
                ("2026-11-02".to_string(), vec![0, 1, 1, 0, 0]),
                ("2026-11-09".to_string(), vec![0, 1, 0, 0, 0]),
            ]
        );
        let muster = ins.overall.get(Metric::Muster).unwrap();
        assert_eq!(
            (
                muster.n,
                muster.min,
                muster.p25,
                muster.median,
                muster.p75,
                muster.p90,
                muster.max
            ),
            (2, 300.0, 375.0, 450.0, 525.0, 570.0, 600.0)
        );
        assert_eq!(ins.overall.get(Metric::Mitigate).unwrap().median, 4500.0);
        let resolve = ins.overall.get(Metric::Resolve).unwrap();
        assert_eq!((resolve.min, resolve.p90, resolve.max), (7800.0, 10500.0, 10800.0));

        assert_eq!(ins.period, Period::Week);
        assert_eq!(ins.over_time.len(), 3);
        assert_eq!(ins.over_time[0].1.incidents, 0);
        assert_eq!(ins.over_time[1].1.incidents, 2);
        assert_eq!(ins.over_time[2].1.get(Metric::Resolve), None, "still open");

        let services: Vec<(&str, usize)> = ins
            .by_service
            .iter()
            .map(|(s, sp)| (s.as_str(), sp.incidents))
            .collect();
        assert_eq!(services, [("a", 2), ("b", 2)]);
        assert_eq!(
            ins.hot_spots,
            [
                HotSpot {
                    service: "b".into(),
                    incidents: 2,
                    impact_seconds: 5400 + 4 * 3600,
                    high: 1
                },
                HotSpot {
                    service: "a".into(),
                    incidents: 2,
                    impact_seconds: 3600 + 5400,
                    high: 1
                },
            ]
        );

        let p = &ins.pages;
        assert_eq!((p.working, p.off_hours), (2, 2));
        let zones: Vec<(&str, usize, usize)> = p
            .by_zone
            .iter()
            .map(|z| (z.name.as_str(), z.working, z.off_hours))
            .collect();
        assert_eq!(zones, [("default", 1, 1), ("ny", 1, 1)]);
        assert_eq!(p.by_local_hour[10], (1, 0));
        assert_eq!(p.by_local_hour[22], (0, 1));
        assert_eq!(p.by_local_hour[9], (1, 0));
        assert_eq!(p.by_local_hour[8], (0, 1));

        assert_eq!(
            ins.responders,
            [
                Load {
                    name: "Ada".into(),
                    incidents: 2,
                    led: 2,
                    seconds: 3600 + 3 * 3600
                },
                Load {
                    name: "Linus".into(),
                    incidents: 1,
                    led: 1,
                    seconds: 3 * 3600 + 1800
                },
                Load {
                    name: "Grace".into(),
                    incidents: 1,
                    led: 1,
                    seconds: 6600
                },
            ]
        );
    }

    #[test]
    fn the_service_filter_narrows_everything() {
        let s = settings();
        let f = Filters {
            service: Some("b".into()),
            ..filters()
        };
        let ins = compute(&history(), &f, &s, at("2026-11-10 18:00"));
        assert_eq!(ins.incidents, 2);
        assert_eq!(ins.pages.total(), 3, "the pages of incidents 2 and 3");
        assert!(ins.responders.iter().all(|l| l.name != "Grace"));
    }

    #[test]
    fn filters_are_checked_and_named() {
        let s = settings();
        let today = day("2026-11-21");
        let f = Filters::parse(None, None, None, today, &s).unwrap();
        assert_eq!((f.from, f.to), (day("2026-08-24"), today), "the last 90 days");
        let f = Filters::parse(Some(""), Some("2026-01-31"), Some(" "), today, &s).unwrap();
        assert_eq!((f.from, f.to, f.service), (day("2025-11-03"), day("2026-01-31"), None));
        let fields = |r: Result<Filters, Vec<FieldError>>| r.unwrap_err().iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(
            fields(Filters::parse(Some("2026-13-01"), None, None, today, &s)),
            ["from"]
        );
        assert_eq!(
            fields(Filters::parse(Some("26-1-1"), Some("x"), Some("nope"), today, &s)),
            ["from", "to", "service"]
        );
        assert_eq!(
            fields(Filters::parse(Some("2026-11-02"), Some("2026-11-01"), None, today, &s)),
            ["from"]
        );
        assert_eq!(
            fields(Filters::parse(Some("2020-01-01"), Some("2026-01-01"), None, today, &s)),
            ["from"]
        );
        let e = Filters::parse(Some("2026-11-02"), Some("2026-11-01"), None, today, &s).unwrap_err();
        assert!(e[0].message.contains("swap"), "{}", e[0].message);
    }

    #[test]
    fn pager_rows_that_close_are_not_pages() {
        let s = settings();
        let body = |status: &str, old: &str, new: &str| {
            format!(r#"{{"incident":{{"status":"{status}"}},"change":{{"field":"x","old":"{old}","new":"{new}"}}}}"#)
        };
        assert!(opens_page("declared", None, &s));
        assert!(opens_page(
            "status_changed",
            Some(&body("investigating", "resolved", "investigating")),
            &s
        ));
        assert!(!opens_page(
            "status_changed",
            Some(&body("resolved", "mitigated", "resolved")),
            &s
        ));
        assert!(!opens_page(
            "status_changed",
            Some(&body("declined", "investigating", "declined")),
            &s
        ));
        assert!(opens_page(
            "severity_changed",
            Some(&body("identified", "SEV3", "SEV1")),
            &s
        ));
        assert!(!opens_page(
            "severity_changed",
            Some(&body("identified", "SEV1", "SEV3")),
            &s
        ));
        assert!(!opens_page("severity_changed", Some("not json"), &s));
    }

    #[test]
    fn csv_quotes_and_defuses() {
        assert_eq!(defuse("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(defuse("+1"), "'+1");
        assert_eq!(defuse("-1"), "'-1");
        assert_eq!(defuse("@me"), "'@me");
        assert_eq!(defuse("\tx"), "'\tx");
        assert_eq!(defuse("\rx"), "'\rx");
        assert_eq!(defuse("a=b"), "a=b");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        let mut h = history();
        h.incidents[0].title = "=HYPERLINK(\"x\"), \"quoted\"".into();
        h.incidents[0].lead = Some("Grace".into());
        let out = csv(&h, &filters());
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert_eq!(
            lines[1],
            "1,\"'=HYPERLINK(\"\"x\"\"), \"\"quoted\"\"\",SEV1,resolved,a,2026-11-02T09:50:00Z,2026-11-02T10:00:00Z,2026-11-02T10:05:00Z,2026-11-02T10:50:00Z,2026-11-02T12:00:00Z,5.0,60.0,130.0,Grace"
        );
        assert_eq!(lines.len(), 5, "three incidents, a header and the final line end");
        assert_eq!(lines[4], "");
    }
}
