//! `[insights]`: what the insights page needs to know that the incidents do not say: when people
//! work (so a page can be called off-hours) and which severities count as high.
//!
//! ```toml
//! [insights]
//! high_severity = "SEV1"              # this level and the more severe ones are "high"
//!
//! [insights.working_hours]            # for services no zone lists; default UTC, Mon-Fri 09:00-17:00
//! time_zone = "Europe/London"
//! days = ["mon", "tue", "wed", "thu", "fri"]
//! start = "09:00"
//! end = "17:30"
//!
//! [[insights.zones]]                  # a team elsewhere: its services page in its hours
//! name = "americas"
//! time_zone = "America/New_York"
//! services = ["checkout", "payments"]
//! start = "08:00"                     # days, start and end default as above
//! end = "18:00"
//! ```
//!
//! A page is classified in the zone of the paged incident's first service (in id order); an
//! incident with no service, or whose first service no zone lists, uses `working_hours`.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDateTime, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use super::{ConfigError, Settings, bad, check_id};

/// The name the page gives to the default working hours.
pub const DEFAULT_ZONE: &str = "default";

/// `[insights]`
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct InsightsSettings {
    /// The least severe level counted as high severity; default: the second configured level
    /// (the first when only one is configured).
    pub high_severity: Option<String>,
    /// Working hours for services no zone lists.
    pub working_hours: HoursSetting,
    /// Named zones with their own hours, and the services in them.
    pub zones: Vec<ZoneSetting>,
}

/// `[insights.working_hours]`: a time zone, the working days, and the hours of those days.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HoursSetting {
    /// An IANA time zone name, such as `Europe/Paris`.
    pub time_zone: String,
    /// Working days: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<String>,
    /// When the working day starts, `HH:MM` local time.
    pub start: String,
    /// When it ends, `HH:MM` local time (`24:00` for midnight); after `start`.
    pub end: String,
}

impl Default for HoursSetting {
    fn default() -> Self {
        HoursSetting {
            time_zone: "UTC".into(),
            days: default_days(),
            start: default_start(),
            end: default_end(),
        }
    }
}

fn default_days() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| d.to_string())
        .collect()
}

fn default_start() -> String {
    "09:00".into()
}

fn default_end() -> String {
    "17:00".into()
}

/// One `[[insights.zones]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZoneSetting {
    /// A short id shown on the page, such as `americas`.
    pub name: String,
    /// An IANA time zone name.
    pub time_zone: String,
    /// The services (ids) whose pages are read in this zone's hours; each in one zone at most.
    #[serde(default)]
    pub services: Vec<String>,
    /// Working days; default Monday to Friday.
    #[serde(default = "default_days")]
    pub days: Vec<String>,
    /// Start of the working day; default `09:00`.
    #[serde(default = "default_start")]
    pub start: String,
    /// End of the working day; default `17:00`.
    #[serde(default = "default_end")]
    pub end: String,
}

/// Working hours, read: a zone, the days, and the minutes of the day they span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    /// The time zone the hours are in.
    pub tz: Tz,
    /// Working days, Monday first.
    pub days: [bool; 7],
    /// First working minute of the day (local).
    pub start_minute: u32,
    /// First minute after work (local), at most 24 × 60.
    pub end_minute: u32,
}

impl WorkingHours {
    /// Whether a UTC moment falls inside working hours, in the local time of the zone (so a
    /// clock change moves the hours with the clocks).
    pub fn contains(&self, utc: NaiveDateTime) -> bool {
        let local = self.tz.from_utc_datetime(&utc);
        let day = local.weekday().num_days_from_monday() as usize;
        let minute = local.hour() * 60 + local.minute();
        self.days[day] && minute >= self.start_minute && minute < self.end_minute
    }

    /// `Mon–Fri 09:00–17:00 Europe/London`, for the page.
    pub fn describe(&self) -> String {
        const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let on: Vec<usize> = (0..7).filter(|&i| self.days[i]).collect();
        let contiguous = on.windows(2).all(|w| w[1] == w[0] + 1);
        let days = match (on.first(), on.last()) {
            (Some(&a), Some(&b)) if contiguous && b > a + 1 => format!("{}\u{2013}{}", NAMES[a], NAMES[b]),
            _ => on.iter().map(|&i| NAMES[i]).collect::<Vec<_>>().join(", "),
        };
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        format!(
            "{days} {}\u{2013}{} {}",
            hm(self.start_minute),
            hm(self.end_minute),
            self.tz.name()
        )
    }
}

/// The working calendar in force: the default hours and the zones services belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// For services no zone lists.
    pub default: WorkingHours,
    /// The named zones, in file order.
    pub zones: Vec<(String, WorkingHours)>,
    /// Service id → index into `zones`.
    pub by_service: HashMap<String, usize>,
}

impl Calendar {
    /// The zone (name and hours) a service's pages are read in.
    pub fn zone_of(&self, service: Option<&str>) -> (&str, &WorkingHours) {
        match service.and_then(|s| self.by_service.get(s)) {
            Some(&i) => (self.zones[i].0.as_str(), &self.zones[i].1),
            None => (DEFAULT_ZONE, &self.default),
        }
    }
}

fn parse_hours(
    key: &str,
    time_zone: &str,
    days: &[String],
    start: &str,
    end: &str,
) -> Result<WorkingHours, ConfigError> {
    let tz: Tz = time_zone.trim().parse().map_err(|_| {
        bad(
            format!("{key}.time_zone"),
            format!("\u{201c}{time_zone}\u{201d} is not an IANA time zone name such as Europe/Paris or UTC"),
        )
    })?;
    if days.is_empty() {
        return Err(bad(
            format!("{key}.days"),
            "name at least one working day, e.g. [\"mon\"]",
        ));
    }
    let mut on = [false; 7];
    for d in days {
        let day: Weekday = match d.as_str() {
            "mon" => Weekday::Mon,
            "tue" => Weekday::Tue,
            "wed" => Weekday::Wed,
            "thu" => Weekday::Thu,
            "fri" => Weekday::Fri,
            "sat" => Weekday::Sat,
            "sun" => Weekday::Sun,
            _ => {
                return Err(bad(
                    format!("{key}.days"),
                    format!("\u{201c}{d}\u{201d} is not a day; use mon, tue, wed, thu, fri, sat, sun"),
                ));
            }
        };
        let i = day.num_days_from_monday() as usize;
        if on[i] {
            return Err(bad(format!("{key}.days"), format!("{d} is listed twice")));
        }
        on[i] = true;
    }
    let start_minute = parse_clock(&format!("{key}.start"), start)?;
    let end_minute = parse_clock(&format!("{key}.end"), end)?;
    if end_minute <= start_minute {
        return Err(bad(
            format!("{key}.end"),
            format!("{end} is not after start ({start}); working hours that cross midnight are not supported"),
        ));
    }
    Ok(WorkingHours {
        tz,
        days: on,
        start_minute,
        end_minute,
    })
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
fn parse_clock(key: &str, raw: &str) -> Result<u32, ConfigError> {
    let err = || {
        bad(
            key,
            format!("\u{201c}{raw}\u{201d} is not a time of day like 09:00 (00:00 to 24:00)"),
        )
    };
    let (h, m) = raw.split_once(':').ok_or_else(err)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(err());
    }
    let h: u32 = h.parse().map_err(|_| err())?;
    let m: u32 = m.parse().map_err(|_| err())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(err());
    }
    Ok(h * 60 + m)
}

impl InsightsSettings {
    /// Reads the working hours and zones, naming the key of the first problem.
    pub fn calendar(&self, settings: &Settings) -> Result<Calendar, ConfigError> {
        let w = &self.working_hours;
        let default = parse_hours("insights.working_hours", &w.time_zone, &w.days, &w.start, &w.end)?;
        let mut zones = Vec::new();
        let mut by_service = HashMap::new();
        let mut names = HashSet::new();
        for (i, z) in self.zones.iter().enumerate() {
            let key = format!("insights.zones[{i}]");
            check_id(&format!("{key}.name"), &z.name)?;
            if z.name == DEFAULT_ZONE || !names.insert(z.name.as_str()) {
                return Err(bad(
                    format!("{key}.name"),
                    format!("\u{201c}{}\u{201d} is already taken", z.name),
                ));
            }
            let hours = parse_hours(&key, &z.time_zone, &z.days, &z.start, &z.end)?;
            for s in &z.services {
                if !settings.services.iter().any(|l| &l.id == s) {
                    return Err(bad(
                        format!("{key}.services"),
                        format!("unknown service \u{201c}{s}\u{201d}"),
                    ));
                }
                if by_service.insert(s.clone(), zones.len()).is_some() {
                    return Err(bad(
                        format!("{key}.services"),
                        format!("service \u{201c}{s}\u{201d} is already in another zone"),
                    ));
                }
            }
            zones.push((z.name.clone(), hours));
        }
        Ok(Calendar {
            default,
            zones,
            by_service,
        })
    }

    /// The least severe level that counts as high (see [`InsightsSettings::high_severity`]).
    pub fn high_severity<'a>(&'a self, settings: &'a Settings) -> &'a str {
        match &self.high_severity {
            Some(s) => s,
            None => {
                let ids = settings.severity_ids();
                ids.get(1).or(ids.first()).copied().unwrap_or("")
            }
        }
    }
}

/// Checks `[insights]`.
pub fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let i = &settings.insights;
    if let Some(s) = &i.high_severity
        && !settings.severities.iter().any(|l| &l.id == s)
    {
        return Err(bad(
            "insights.high_severity",
            format!(
                "unknown severity \u{201c}{s}\u{201d}; known: {}",
                settings.severity_ids().join(", ")
            ),
        ));
    }
    i.calendar(settings).map(|_| ())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn key_of(toml: &str) -> String {
        let s: Settings = toml::from_str(toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
        validate(&s).unwrap_err().key
    }

    #[test]
    fn defaults_are_weekdays_nine_to_five_utc() {
        let s = Settings::default();
        let c = s.insights.calendar(&s).unwrap();
        assert_eq!(c.default.describe(), "Mon\u{2013}Fri 09:00\u{2013}17:00 UTC");
        assert!(c.default.contains(at("2026-11-20 09:00")), "Friday 09:00");
        assert!(!c.default.contains(at("2026-11-20 17:00")), "the end is not inside");
        assert!(!c.default.contains(at("2026-11-21 12:00")), "Saturday");
        assert_eq!(s.insights.high_severity(&s), "SEV1");
    }

    #[test]
    fn hours_follow_the_clock_change() {
        let s = Settings::parse(
            "[[services]]\nid = \"checkout\"\n\n[[insights.zones]]\nname = \"ny\"\ntime_zone = \"America/New_York\"\nservices = [\"checkout\"]\n",
        )
        .unwrap();
        validate(&s).unwrap();
        let c = s.insights.calendar(&s).unwrap();
        let (name, ny) = c.zone_of(Some("checkout"));
        assert_eq!(name, "ny");
        assert_eq!(c.zone_of(Some("search")).0, DEFAULT_ZONE);
        // Friday 30 October 2026, 13:30 UTC: 09:30 in New York (EDT, UTC-4): working.
        assert!(ny.contains(at("2026-10-30 13:30")));
        // Monday 2 November 2026 (EST since 1 November, UTC-5): 13:30 UTC is 08:30, before work.
        assert!(!ny.contains(at("2026-11-02 13:30")));
        assert!(ny.contains(at("2026-11-02 14:00")));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (toml, key) in [
            ("[insights]\nhigh_severity = \"SEV9\"", "insights.high_severity"),
            (
                "[insights.working_hours]\ntime_zone = \"Mars/Base\"",
                "insights.working_hours.time_zone",
            ),
            ("[insights.working_hours]\ndays = []", "insights.working_hours.days"),
            (
                "[insights.working_hours]\ndays = [\"monday\"]",
                "insights.working_hours.days",
            ),
            (
                "[insights.working_hours]\ndays = [\"mon\", \"mon\"]",
                "insights.working_hours.days",
            ),
            (
                "[insights.working_hours]\nstart = \"9am\"",
                "insights.working_hours.start",
            ),
            (
                "[insights.working_hours]\nend = \"24:30\"",
                "insights.working_hours.end",
            ),
            (
                "[insights.working_hours]\nstart = \"18:00\"\nend = \"09:00\"",
                "insights.working_hours.end",
            ),
            (
                "[[insights.zones]]\nname = \"eu\"\ntime_zone = \"Europe/Paris\"\nservices = [\"nope\"]",
                "insights.zones[0].services",
            ),
            (
                "[[services]]\nid = \"a\"\n[[insights.zones]]\nname = \"eu\"\ntime_zone = \"Europe/Paris\"\nservices = [\"a\"]\n[[insights.zones]]\nname = \"us\"\ntime_zone = \"America/Chicago\"\nservices = [\"a\"]",
                "insights.zones[1].services",
            ),
            (
                "[[insights.zones]]\nname = \"eu\"\ntime_zone = \"Europe/Paris\"\n[[insights.zones]]\nname = \"eu\"\ntime_zone = \"Europe/Berlin\"",
                "insights.zones[1].name",
            ),
            (
                "[[insights.zones]]\nname = \"x y\"\ntime_zone = \"UTC\"",
                "insights.zones[0].name",
            ),
            (
                "[[insights.zones]]\nname = \"eu\"\ntime_zone = \"Paris\"",
                "insights.zones[0].time_zone",
            ),
        ] {
            assert_eq!(key_of(toml), key, "{toml}");
        }
        let e = Settings::parse("[insights.working_hours]\ntimezone = \"UTC\"").unwrap_err();
        assert!(e.to_string().contains("timezone"), "{e}");
    }
}
