//! Key times of an incident and the durations between them.
//!
//! Six moments: impact started, detected, declared, responders mustered, mitigated, resolved.
//! Declared is always known (it is when the incident was made); the others may be unknown.
//!
//! Order rules, checked only between times that are both known:
//!
//! - impact started ≤ detected ≤ declared (and impact started ≤ declared when detection is unknown):
//!   nobody declares what they have not noticed, and nothing is noticed before it happens;
//! - declared ≤ mustered: responders muster for a declared incident;
//! - impact started ≤ mitigated ≤ resolved, and impact started ≤ resolved. Mitigation may come
//!   before the declaration (someone rolled back, then told everyone), so it is only held to
//!   the start of impact;
//! - no time may be more than [`FUTURE_SKEW_MINUTES`] minutes after now (clocks disagree a little).
//!
//! Durations (each unknown when one of its ends is):
//!
//! - time to detect = detected − impact started;
//! - time to declare = declared − detected, or declared − impact started when detection is unknown;
//! - time to muster = mustered − declared;
//! - time to mitigate = mitigated − impact started, or mitigated − declared when the start is unknown;
//! - time to resolve = resolved − impact started, or resolved − declared when the start is unknown.

use chrono::{Duration, NaiveDateTime};

use super::FieldError;

/// How far into the future a key time may be, for clocks that disagree.
pub const FUTURE_SKEW_MINUTES: i64 = 5;

/// One of the key times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyTime {
    /// Impact started.
    ImpactStarted,
    /// Someone or something noticed.
    Detected,
    /// The incident was declared.
    Declared,
    /// Responders mustered.
    Mustered,
    /// Impact stopped.
    Mitigated,
    /// Over.
    Resolved,
}

impl KeyTime {
    /// Every key time, in the order they usually happen.
    pub const ALL: [KeyTime; 6] = [
        KeyTime::ImpactStarted,
        KeyTime::Detected,
        KeyTime::Declared,
        KeyTime::Mustered,
        KeyTime::Mitigated,
        KeyTime::Resolved,
    ];

    /// The ones people may set by hand (declared is fixed).
    pub const EDITABLE: [KeyTime; 5] = [
        KeyTime::ImpactStarted,
        KeyTime::Detected,
        KeyTime::Mustered,
        KeyTime::Mitigated,
        KeyTime::Resolved,
    ];

    /// The form field and the column's stem (`impact_started` → `impact_started_at`).
    pub fn field(self) -> &'static str {
        match self {
            KeyTime::ImpactStarted => "impact_started",
            KeyTime::Detected => "detected",
            KeyTime::Declared => "declared",
            KeyTime::Mustered => "mustered",
            KeyTime::Mitigated => "mitigated",
            KeyTime::Resolved => "resolved",
        }
    }

    /// The label at the start of a sentence.
    pub fn label(self) -> &'static str {
        match self {
            KeyTime::ImpactStarted => "Impact started",
            KeyTime::Detected => "Detected",
            KeyTime::Declared => "Declared",
            KeyTime::Mustered => "Responders mustered",
            KeyTime::Mitigated => "Mitigated",
            KeyTime::Resolved => "Resolved",
        }
    }

    /// The label inside a sentence.
    pub fn phrase(self) -> &'static str {
        match self {
            KeyTime::ImpactStarted => "impact started",
            KeyTime::Detected => "detected",
            KeyTime::Declared => "declared",
            KeyTime::Mustered => "responders mustered",
            KeyTime::Mitigated => "mitigated",
            KeyTime::Resolved => "resolved",
        }
    }

    /// Parses [`KeyTime::field`].
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.field() == raw)
    }

    /// The phrase for a timeline entry's stored field name, or "a key time" when it names none.
    pub fn phrase_of_field(field: Option<&str>) -> &'static str {
        field.and_then(Self::parse).map(Self::phrase).unwrap_or("a key time")
    }
}

/// The pairs that must be in order when both are known: (earlier, later).
const ORDER: [(KeyTime, KeyTime); 7] = [
    (KeyTime::ImpactStarted, KeyTime::Detected),
    (KeyTime::Detected, KeyTime::Declared),
    (KeyTime::ImpactStarted, KeyTime::Declared),
    (KeyTime::Declared, KeyTime::Mustered),
    (KeyTime::ImpactStarted, KeyTime::Mitigated),
    (KeyTime::Mitigated, KeyTime::Resolved),
    (KeyTime::ImpactStarted, KeyTime::Resolved),
];

/// The key times of one incident, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTimes {
    /// When impact started.
    pub impact_started: Option<NaiveDateTime>,
    /// When the problem was noticed.
    pub detected: Option<NaiveDateTime>,
    /// When it was declared (always known).
    pub declared: NaiveDateTime,
    /// When responders mustered.
    pub mustered: Option<NaiveDateTime>,
    /// When impact stopped.
    pub mitigated: Option<NaiveDateTime>,
    /// When it was resolved.
    pub resolved: Option<NaiveDateTime>,
}

/// The durations of [`KeyTimes::durations`]; see the module documentation for the definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Durations {
    /// Impact started → detected.
    pub to_detect: Option<Duration>,
    /// Detected (or impact started) → declared.
    pub to_declare: Option<Duration>,
    /// Declared → mustered.
    pub to_muster: Option<Duration>,
    /// Impact started (or declared) → mitigated.
    pub to_mitigate: Option<Duration>,
    /// Impact started (or declared) → resolved.
    pub to_resolve: Option<Duration>,
}

impl Durations {
    /// Each duration with its label, in order.
    pub fn labelled(&self) -> [(&'static str, Option<Duration>); 5] {
        [
            ("Time to detect", self.to_detect),
            ("Time to declare", self.to_declare),
            ("Time to muster", self.to_muster),
            ("Time to mitigate", self.to_mitigate),
            ("Time to resolve", self.to_resolve),
        ]
    }
}

/// A time in messages: `14:05 UTC`, with the date when the two times compared fall on different
/// days, and the seconds when they fall in the same minute.
fn shown(t: NaiveDateTime, other: NaiveDateTime) -> String {
    let fmt = if t.date() != other.date() {
        "%Y-%m-%d %H:%M UTC"
    } else if t.format("%H:%M").to_string() == other.format("%H:%M").to_string() {
        "%H:%M:%S UTC"
    } else {
        "%H:%M UTC"
    };
    t.format(fmt).to_string()
}

impl KeyTimes {
    /// One time by name.
    pub fn get(&self, k: KeyTime) -> Option<NaiveDateTime> {
        match k {
            KeyTime::ImpactStarted => self.impact_started,
            KeyTime::Detected => self.detected,
            KeyTime::Declared => Some(self.declared),
            KeyTime::Mustered => self.mustered,
            KeyTime::Mitigated => self.mitigated,
            KeyTime::Resolved => self.resolved,
        }
    }

    /// Sets one time by name (declared cannot be cleared: `None` leaves it as it is).
    pub fn set(&mut self, k: KeyTime, t: Option<NaiveDateTime>) {
        match k {
            KeyTime::ImpactStarted => self.impact_started = t,
            KeyTime::Detected => self.detected = t,
            KeyTime::Declared => {
                if let Some(t) = t {
                    self.declared = t;
                }
            }
            KeyTime::Mustered => self.mustered = t,
            KeyTime::Mitigated => self.mitigated = t,
            KeyTime::Resolved => self.resolved = t,
        }
    }

    /// Checks the order rules and that nothing is in the future. The error names the field at
    /// fault (the later of the two times, which is the one set too early) and both times.
    pub fn validate(&self, now: NaiveDateTime) -> Result<(), FieldError> {
        let limit = now + Duration::minutes(FUTURE_SKEW_MINUTES);
        for k in KeyTime::ALL {
            if let Some(t) = self.get(k)
                && t > limit
            {
                return Err(FieldError::new(
                    k.field(),
                    format!(
                        "{} ({}) is in the future; it is now {}.",
                        k.label(),
                        shown(t, now),
                        shown(now, t)
                    ),
                ));
            }
        }
        for (earlier, later) in ORDER {
            if let (Some(a), Some(b)) = (self.get(earlier), self.get(later))
                && b < a
            {
                return Err(FieldError::new(
                    later.field(),
                    format!(
                        "{} ({}) cannot be before {} ({}).",
                        later.label(),
                        shown(b, a),
                        earlier.phrase(),
                        shown(a, b)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The durations between the key times.
    pub fn durations(&self) -> Durations {
        let between = |from: Option<NaiveDateTime>, to: Option<NaiveDateTime>| match (from, to) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let start_or_declared = self.impact_started.or(Some(self.declared));
        Durations {
            to_detect: between(self.impact_started, self.detected),
            to_declare: between(self.detected.or(self.impact_started), Some(self.declared)),
            to_muster: between(Some(self.declared), self.mustered),
            to_mitigate: between(start_or_declared, self.mitigated),
            to_resolve: between(start_or_declared, self.resolved),
        }
    }
}

/// A duration for people: `45s`, `12m`, `2h 5m`, `3d 4h`; negative ones (an unordered pair
/// stored before the rules existed) show as `-12m`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.num_seconds();
    let sign = if secs < 0 { "-" } else { "" };
    let secs = secs.abs();
    let (days, h, m, s) = (secs / 86_400, (secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    if days > 0 {
        format!("{sign}{days}d {h}h")
    } else if h > 0 {
        format!("{sign}{h}h {m}m")
    } else if m > 0 {
        format!("{sign}{m}m")
    } else {
        format!("{sign}{s}s")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(hm: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(&format!("2026-11-21 {hm}:00"), "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn times() -> KeyTimes {
        KeyTimes {
            impact_started: Some(at("14:00")),
            detected: Some(at("14:12")),
            declared: at("14:20"),
            mustered: Some(at("14:23")),
            mitigated: Some(at("15:05")),
            resolved: Some(at("17:30")),
        }
    }

    fn now() -> NaiveDateTime {
        at("23:00")
    }

    #[test]
    fn a_well_ordered_set_passes() {
        assert_eq!(times().validate(now()), Ok(()));
        let only_declared = KeyTimes {
            impact_started: None,
            detected: None,
            declared: at("14:20"),
            mustered: None,
            mitigated: None,
            resolved: None,
        };
        assert_eq!(only_declared.validate(now()), Ok(()));
    }

    #[test]
    fn mitigation_may_precede_the_declaration_but_not_the_impact() {
        let mut t = times();
        t.mitigated = Some(at("14:15"));
        assert_eq!(t.validate(now()), Ok(()), "rolled back, then declared");
        t.mitigated = Some(at("13:50"));
        let e = t.validate(now()).unwrap_err();
        assert_eq!(e.field, "mitigated");
        assert_eq!(
            e.message,
            "Mitigated (13:50 UTC) cannot be before impact started (14:00 UTC)."
        );
    }

    #[test]
    fn every_bad_order_is_named_precisely() {
        let cases: [(KeyTime, &str, &str, &str); 6] = [
            (
                KeyTime::Detected,
                "13:55",
                "detected",
                "Detected (13:55 UTC) cannot be before impact started (14:00 UTC).",
            ),
            (
                KeyTime::Detected,
                "14:25",
                "declared",
                "Declared (14:20 UTC) cannot be before detected (14:25 UTC).",
            ),
            (
                KeyTime::ImpactStarted,
                "14:30",
                "detected",
                "Detected (14:12 UTC) cannot be before impact started (14:30 UTC).",
            ),
            (
                KeyTime::Mustered,
                "14:19",
                "mustered",
                "Responders mustered (14:19 UTC) cannot be before declared (14:20 UTC).",
            ),
            (
                KeyTime::Resolved,
                "15:00",
                "resolved",
                "Resolved (15:00 UTC) cannot be before mitigated (15:05 UTC).",
            ),
            (
                KeyTime::Mitigated,
                "17:31",
                "resolved",
                "Resolved (17:30 UTC) cannot be before mitigated (17:31 UTC).",
            ),
        ];
        for (key, value, field, message) in cases {
            let mut t = times();
            t.set(key, Some(at(value)));
            let e = t.validate(now()).unwrap_err();
            assert_eq!((e.field, e.message.as_str()), (field, message), "{key:?} = {value}");
        }
    }

    #[test]
    fn unknown_detection_still_holds_start_before_declaration_and_resolution() {
        let mut t = times();
        t.detected = None;
        t.mitigated = None;
        t.impact_started = Some(at("14:21"));
        t.mustered = None;
        let e = t.validate(now()).unwrap_err();
        assert_eq!(
            e.message,
            "Declared (14:20 UTC) cannot be before impact started (14:21 UTC)."
        );
        let mut t = times();
        t.mitigated = None;
        t.detected = None;
        t.resolved = Some(at("13:00"));
        t.impact_started = Some(at("13:30"));
        let e = t.validate(now()).unwrap_err();
        assert_eq!(
            (e.field, e.message.as_str()),
            (
                "resolved",
                "Resolved (13:00 UTC) cannot be before impact started (13:30 UTC)."
            )
        );
    }

    #[test]
    fn messages_show_the_date_or_the_seconds_when_they_are_needed() {
        let mut t = times();
        t.mitigated = Some(at("14:00") - Duration::days(1));
        assert_eq!(
            t.validate(now()).unwrap_err().message,
            "Mitigated (2026-11-20 14:00 UTC) cannot be before impact started (2026-11-21 14:00 UTC)."
        );
        t.mitigated = Some(at("14:00") + Duration::seconds(5));
        t.impact_started = Some(at("14:00") + Duration::seconds(10));
        assert_eq!(
            t.validate(now()).unwrap_err().message,
            "Mitigated (14:00:05 UTC) cannot be before impact started (14:00:10 UTC)."
        );
    }

    #[test]
    fn the_future_is_refused_beyond_a_small_skew() {
        let mut t = times();
        t.resolved = Some(now() + Duration::minutes(5));
        assert_eq!(t.validate(now()), Ok(()), "five minutes of clock skew");
        t.resolved = Some(now() + Duration::minutes(6));
        let e = t.validate(now()).unwrap_err();
        assert_eq!(e.field, "resolved");
        assert_eq!(e.message, "Resolved (23:06 UTC) is in the future; it is now 23:00 UTC.");
    }

    #[test]
    fn durations_with_every_time_known() {
        let d = times().durations();
        assert_eq!(d.to_detect, Some(Duration::minutes(12)));
        assert_eq!(d.to_declare, Some(Duration::minutes(8)));
        assert_eq!(d.to_muster, Some(Duration::minutes(3)));
        assert_eq!(d.to_mitigate, Some(Duration::minutes(65)));
        assert_eq!(d.to_resolve, Some(Duration::minutes(210)));
    }

    #[test]
    fn durations_fall_back_or_stay_unknown() {
        let mut t = times();
        t.detected = None;
        let d = t.durations();
        assert_eq!(d.to_detect, None);
        assert_eq!(d.to_declare, Some(Duration::minutes(20)), "from impact start");

        t.impact_started = None;
        let d = t.durations();
        assert_eq!(d.to_declare, None, "neither detection nor start known");
        assert_eq!(d.to_mitigate, Some(Duration::minutes(45)), "from the declaration");
        assert_eq!(d.to_resolve, Some(Duration::minutes(190)), "from the declaration");

        t.mustered = None;
        t.mitigated = None;
        t.resolved = None;
        assert_eq!(
            t.durations(),
            Durations::default(),
            "only the declaration known: nothing to measure"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::seconds(45)), "45s");
        assert_eq!(format_duration(Duration::minutes(12)), "12m");
        assert_eq!(format_duration(Duration::minutes(125)), "2h 5m");
        assert_eq!(format_duration(Duration::hours(76)), "3d 4h");
        assert_eq!(format_duration(Duration::minutes(-12)), "-12m");
    }
}
