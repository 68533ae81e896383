//! Metrics for the people who run Big Red Button, in the Prometheus text exposition format
//! (version 0.0.4), served at `/metrics`.
//!
//! Two kinds of figure, kept apart on purpose:
//!
//! - **This process's counters** ([`Metrics`]): declarations made here, delivery attempts and
//!   their outcomes, and the delivery latency histogram. They start at zero when the process
//!   starts, as Prometheus expects of counters; with several replicas, `sum()` them.
//! - **The database's gauges** ([`Gauges`], read at scrape time): deliveries by integration and
//!   state, the outbox depth, the age of the oldest delivery still to make, and incidents by
//!   status. Every replica reports the same values, so aggregate them with `max()`.
//!
//! Nothing here holds a secret: the labels are integration names, severities, states and
//! outcomes, all from a closed set.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds (seconds) of the delivery latency histogram: from a change being committed to
/// the vendor accepting it. Most deliveries land in the first few; the long tail is retries.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
];

/// How a delivery attempt ended, as counted in `redbutton_delivery_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// The vendor accepted it.
    Delivered,
    /// It failed and will be tried again.
    Retry,
    /// It is waiting on another delivery (no attempt spent).
    Waiting,
    /// It failed for good (dead letter).
    Dead,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Waiting => "waiting",
            Outcome::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is +Inf.
    counts: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let seconds = if seconds.is_finite() { seconds.max(0.0) } else { 0.0 };
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[slot] += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
struct Inner {
    declarations: BTreeMap<String, u64>,
    attempts: BTreeMap<(String, Outcome), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// This process's counters. Cheap to update (one uncontended mutex); shared through `AppState`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An incident was declared here (not a replayed idempotent request).
    pub fn declared(&self, severity: &str) {
        *self.lock().declarations.entry(severity.to_string()).or_default() += 1;
    }

    /// A delivery attempt of `notifier` ended with `outcome`.
    pub fn attempt(&self, notifier: &str, outcome: Outcome) {
        *self.lock().attempts.entry((notifier.to_string(), outcome)).or_default() += 1;
    }

    /// A delivery of `notifier` was accepted `seconds` after its change was committed.
    pub fn delivered_after(&self, notifier: &str, seconds: f64) {
        self.lock()
            .latency
            .entry(notifier.to_string())
            .or_default()
            .observe(seconds);
    }
}

/// Figures read from the database when scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    /// (notifier, state) → deliveries in that state.
    pub deliveries: Vec<(String, String, i64)>,
    /// Seconds since the oldest pending or in-flight delivery was enqueued (0 when none).
    pub oldest_pending_seconds: f64,
    /// (status, drill) → incidents.
    pub incidents: Vec<(String, bool, i64)>,
}

/// Escapes a label value as the text format requires (backslash, double quote, newline).
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float as Prometheus writes one (`+Inf`, integers without a fraction).
fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole exposition: this process's counters, then the database's gauges.
pub fn render(metrics: &Metrics, gauges: &Gauges, version: &str, started_unix: f64) -> String {
    let inner = metrics.lock();
    let mut out = String::with_capacity(4096);

    header(
        &mut out,
        "redbutton_build_info",
        "gauge",
        "The running version (always 1).",
    );
    let _ = writeln!(out, "redbutton_build_info{{version=\"{}\"}} 1", label(version));
    header(
        &mut out,
        "redbutton_process_start_time_seconds",
        "gauge",
        "When this process started, in seconds since the Unix epoch.",
    );
    let _ = writeln!(
        out,
        "redbutton_process_start_time_seconds {}",
        number(started_unix.floor())
    );

    header(
        &mut out,
        "redbutton_declarations_total",
        "counter",
        "Incidents declared through this process, by severity (idempotent replays not counted).",
    );
    for (severity, n) in &inner.declarations {
        let _ = writeln!(
            out,
            "redbutton_declarations_total{{severity=\"{}\"}} {n}",
            label(severity)
        );
    }

    header(
        &mut out,
        "redbutton_delivery_attempts_total",
        "counter",
        "Delivery attempts made by this process's worker, by integration and how they ended.",
    );
    for ((notifier, outcome), n) in &inner.attempts {
        let _ = writeln!(
            out,
            "redbutton_delivery_attempts_total{{integration=\"{}\",outcome=\"{}\"}} {n}",
            label(notifier),
            outcome.as_str()
        );
    }

    header(
        &mut out,
        "redbutton_delivery_latency_seconds",
        "histogram",
        "Time from a change being committed to the integration accepting its delivery, retries included.",
    );
    for (notifier, h) in &inner.latency {
        let notifier = label(notifier);
        let mut cumulative = 0u64;
        for (i, le) in LATENCY_BUCKETS
            .iter()
            .chain(std::iter::once(&f64::INFINITY))
            .enumerate()
        {
            cumulative += h.counts[i];
            let _ = writeln!(
                out,
                "redbutton_delivery_latency_seconds_bucket{{integration=\"{notifier}\",le=\"{}\"}} {cumulative}",
                number(*le)
            );
        }
        let _ = writeln!(
            out,
            "redbutton_delivery_latency_seconds_sum{{integration=\"{notifier}\"}} {}",
            number(h.sum)
        );
        let _ = writeln!(
            out,
            "redbutton_delivery_latency_seconds_count{{integration=\"{notifier}\"}} {cumulative}"
        );
    }
    drop(inner);

    header(
        &mut out,
        "redbutton_deliveries",
        "gauge",
        "Deliveries in the outbox (all replicas), by integration and state (pending, leased, done, dead).",
    );
    for (notifier, state, n) in &gauges.deliveries {
        let _ = writeln!(
            out,
            "redbutton_deliveries{{integration=\"{}\",state=\"{}\"}} {n}",
            label(notifier),
            label(state)
        );
    }
    header(
        &mut out,
        "redbutton_outbox_depth",
        "gauge",
        "Deliveries still to make (pending or in flight), all integrations and replicas.",
    );
    let depth: i64 = gauges
        .deliveries
        .iter()
        .filter(|(_, state, _)| state == "pending" || state == "leased")
        .map(|(_, _, n)| n)
        .sum();
    let _ = writeln!(out, "redbutton_outbox_depth {depth}");
    header(
        &mut out,
        "redbutton_outbox_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest delivery still to make (0 when there is none).",
    );
    let _ = writeln!(
        out,
        "redbutton_outbox_oldest_pending_age_seconds {}",
        number((gauges.oldest_pending_seconds * 1000.0).round() / 1000.0)
    );
    header(
        &mut out,
        "redbutton_incidents",
        "gauge",
        "Incidents in the database, by status and whether they are drills.",
    );
    for (status, drill, n) in &gauges.incidents {
        let _ = writeln!(
            out,
            "redbutton_incidents{{status=\"{}\",drill=\"{drill}\"}} {n}",
            label(status)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_lines(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_observation() {
        let m = Metrics::default();
        for s in [0.01, 0.05, 0.3, 2.0, 2.0, 40.0, 99_999.0] {
            m.delivered_after("slack", s);
        }
        let text = render(&m, &Gauges::default(), "0.1.0", 1.0);
        let buckets = sample_lines(&text, "redbutton_delivery_latency_seconds_bucket{integration=\"slack\"");
        assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert!(buckets[0].ends_with("le=\"0.05\"} 2"), "{}", buckets[0]);
        assert!(buckets[3].ends_with("le=\"0.5\"} 3"), "{}", buckets[3]);
        assert!(buckets[5].ends_with("le=\"2.5\"} 5"), "{}", buckets[5]);
        assert!(buckets[9].ends_with("le=\"60\"} 6"), "{}", buckets[9]);
        assert!(buckets[13].ends_with("le=\"21600\"} 6"), "{}", buckets[13]);
        assert!(buckets[14].ends_with("le=\"+Inf\"} 7"), "{}", buckets[14]);
        assert!(text.contains("redbutton_delivery_latency_seconds_count{integration=\"slack\"} 7\n"));
        assert!(text.contains("redbutton_delivery_latency_seconds_sum{integration=\"slack\"} 100043.36\n"));
    }

    #[test]
    fn counters_are_labelled_and_depth_adds_pending_and_leased() {
        let m = Metrics::default();
        m.declared("SEV1");
        m.declared("SEV1");
        m.declared("SEV3");
        m.attempt("jira", Outcome::Retry);
        m.attempt("jira", Outcome::Delivered);
        let gauges = Gauges {
            deliveries: vec![
                ("email".into(), "done".into(), 4),
                ("jira".into(), "leased".into(), 1),
                ("jira".into(), "pending".into(), 2),
                ("slack".into(), "dead".into(), 1),
            ],
            oldest_pending_seconds: 12.3456,
            incidents: vec![("investigating".into(), false, 3)],
        };
        let text = render(&m, &gauges, "0.1.0", 1_700_000_000.7);
        for line in [
            "redbutton_declarations_total{severity=\"SEV1\"} 2",
            "redbutton_declarations_total{severity=\"SEV3\"} 1",
            "redbutton_delivery_attempts_total{integration=\"jira\",outcome=\"delivered\"} 1",
            "redbutton_delivery_attempts_total{integration=\"jira\",outcome=\"retry\"} 1",
            "redbutton_deliveries{integration=\"jira\",state=\"pending\"} 2",
            "redbutton_outbox_depth 3",
            "redbutton_outbox_oldest_pending_age_seconds 12.346",
            "redbutton_incidents{status=\"investigating\",drill=\"false\"} 3",
            "redbutton_process_start_time_seconds 1700000000",
            "redbutton_build_info{version=\"0.1.0\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every family has its HELP and TYPE before its samples.
        for family in [
            "redbutton_declarations_total",
            "redbutton_delivery_attempts_total",
            "redbutton_outbox_depth",
        ] {
            let help = text.find(&format!("# HELP {family} ")).expect("help");
            let sample = text.find(&format!("\n{family}")).expect("sample or bucket");
            assert!(help < sample, "{family}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
