//! Routing: which notifiers an event reaches, and for email, who receives it. A pure function of
//! the configuration and the event, so it is unit-tested without any server or database.

use std::collections::BTreeMap;

use crate::config::{DrillSettings, RoutingRule, Settings};
use crate::domain::EventKind;

/// One side effect to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Notifier name.
    pub notifier: String,
    /// Email recipients (email only), sorted and deduplicated.
    pub email_to: Vec<String>,
}

/// What routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteQuery<'a> {
    /// The event.
    pub event: EventKind,
    /// The incident's severity.
    pub severity: &'a str,
    /// The incident's services.
    pub services: &'a [String],
    /// Whether it is a drill.
    pub drill: bool,
}

fn rule_matches(rule: &RoutingRule, q: &RouteQuery<'_>) -> bool {
    rule.events.iter().any(|e| e == q.event.as_str())
        && (rule.severities.is_empty() || rule.severities.iter().any(|s| s == q.severity))
        && (rule.services.is_empty() || rule.services.iter().any(|s| q.services.contains(s)))
        && (rule.drills || !q.drill)
}

/// A drill when `[drills]` is configured: only its notifiers, for its events, and email only to
/// its recipients. Nothing else receives a drill (and pagers refuse drills on their own too).
fn drill_routes(d: &DrillSettings, enabled: &[String], q: &RouteQuery<'_>) -> Vec<Route> {
    if !d.events.iter().any(|e| e == q.event.as_str()) {
        return Vec::new();
    }
    let mut routes: Vec<Route> = d
        .notifiers
        .iter()
        .filter(|n| enabled.contains(n))
        .map(|n| Route {
            notifier: n.clone(),
            email_to: if n == "email" { d.email_to.clone() } else { Vec::new() },
        })
        .collect();
    routes.sort_by(|a, b| a.notifier.cmp(&b.notifier));
    routes.dedup_by(|a, b| a.notifier == b.notifier);
    routes
        .into_iter()
        .filter_map(|mut r| {
            r.email_to.iter_mut().for_each(|e| *e = e.to_ascii_lowercase());
            r.email_to.sort();
            r.email_to.dedup();
            (r.notifier != "email" || !r.email_to.is_empty()).then_some(r)
        })
        .collect()
}

/// Selects the routes for an event. `enabled` lists the notifiers that exist in this process.
/// With no rules configured, every enabled notifier gets every event but notes. A drill goes to
/// the `[drills]` targets when that section exists (see [`DrillSettings`]).
pub fn route(settings: &Settings, enabled: &[String], q: &RouteQuery<'_>) -> Vec<Route> {
    if q.drill
        && let Some(d) = &settings.drills
    {
        return drill_routes(d, enabled, q);
    }
    let default_rule;
    let rules: &[RoutingRule] = if settings.routing.is_empty() {
        default_rule = [RoutingRule {
            name: "default".into(),
            events: crate::config::default_rule_events(),
            severities: vec![],
            services: vec![],
            drills: true,
            notifiers: enabled.to_vec(),
            email_to: vec![],
            service_lists: true,
        }];
        &default_rule
    } else {
        &settings.routing
    };

    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rule in rules.iter().filter(|r| rule_matches(r, q)) {
        for notifier in rule.notifiers.iter().filter(|n| enabled.contains(n)) {
            let to = routes.entry(notifier.clone()).or_default();
            if notifier == "email" {
                to.extend(rule.email_to.iter().cloned());
                if rule.service_lists {
                    for s in settings.services.iter().filter(|s| q.services.contains(&s.id)) {
                        to.extend(s.email_to.iter().cloned());
                    }
                }
                if let Some(email) = &settings.integrations.email {
                    to.extend(email.always_to.iter().cloned());
                }
            }
        }
    }
    routes
        .into_iter()
        .filter_map(|(notifier, mut email_to)| {
            email_to.iter_mut().for_each(|e| *e = e.to_ascii_lowercase());
            email_to.sort();
            email_to.dedup();
            // An email with nobody to send it to is not a side effect; skip it.
            (notifier != "email" || !email_to.is_empty()).then_some(Route { notifier, email_to })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Settings {
        Settings::parse(toml).unwrap()
    }

    const BASE: &str = r#"
[integrations.email]
host = "localhost"
tls = "none"

[[services]]
id = "checkout"
email_to = ["checkout-team@example.com"]

[[services]]
id = "search"
email_to = ["search-team@example.com"]
"#;

    fn q<'a>(event: EventKind, severity: &'a str, services: &'a [String], drill: bool) -> RouteQuery<'a> {
        RouteQuery {
            event,
            severity,
            services,
            drill,
        }
    }

    #[test]
    fn default_rule_sends_to_service_lists_but_not_notes() {
        let s = settings(BASE);
        let enabled = vec!["email".to_string()];
        let svcs = vec!["checkout".to_string()];
        let r = route(&s, &enabled, &q(EventKind::Declared, "SEV2", &svcs, false));
        assert_eq!(
            r,
            vec![Route {
                notifier: "email".into(),
                email_to: vec!["checkout-team@example.com".into()]
            }]
        );
        assert!(route(&s, &enabled, &q(EventKind::NoteAdded, "SEV2", &svcs, false)).is_empty());
        assert!(
            route(&s, &enabled, &q(EventKind::Declared, "SEV2", &[], false)).is_empty(),
            "nobody to email"
        );
    }

    #[test]
    fn rules_filter_by_severity_service_event_and_drill_and_merge_recipients() {
        let s = settings(&format!(
            "{BASE}
[[routing]]
severities = [\"SEV0\", \"SEV1\"]
notifiers = [\"email\"]
email_to = [\"Leadership@example.com\"]
service_lists = false
drills = false

[[routing]]
services = [\"search\"]
events = [\"declared\", \"note_added\"]
notifiers = [\"email\"]
email_to = [\"search-watchers@example.com\"]
"
        ));
        let enabled = vec!["email".to_string()];
        let both = vec!["checkout".to_string(), "search".to_string()];
        let r = route(&s, &enabled, &q(EventKind::Declared, "SEV1", &both, false));
        assert_eq!(
            r[0].email_to,
            vec![
                "checkout-team@example.com",
                "leadership@example.com",
                "search-team@example.com",
                "search-watchers@example.com"
            ],
            "rule 2 adds every affected service's list"
        );
        let r = route(&s, &enabled, &q(EventKind::Declared, "SEV1", &both, true));
        assert_eq!(
            r[0].email_to,
            vec![
                "checkout-team@example.com",
                "search-team@example.com",
                "search-watchers@example.com"
            ],
            "drills skip rule 1"
        );
        let r = route(&s, &enabled, &q(EventKind::StatusChanged, "SEV3", &both, false));
        assert!(r.is_empty());
        let r = route(&s, &enabled, &q(EventKind::NoteAdded, "SEV3", &both, false));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn disabled_notifiers_are_never_routed() {
        let s = settings(BASE);
        let svcs = vec!["checkout".to_string()];
        assert!(route(&s, &[], &q(EventKind::Declared, "SEV1", &svcs, false)).is_empty());
    }

    #[test]
    fn with_drill_targets_a_drill_reaches_only_them_and_email_only_their_recipients() {
        let s = settings(&format!(
            "{BASE}
[integrations.slack]
token_env = \"SLACK\"

[[routing]]
notifiers = [\"email\", \"slack\"]
email_to = [\"leadership@example.com\"]

[drills]
notifiers = [\"email\"]
email_to = [\"Game-Day@example.com\"]
"
        ));
        let enabled = vec!["email".to_string(), "slack".to_string()];
        let svcs = vec!["checkout".to_string()];
        let real = route(&s, &enabled, &q(EventKind::Declared, "SEV1", &svcs, false));
        assert_eq!(real.len(), 2, "a real incident follows the rules");
        let drill = route(&s, &enabled, &q(EventKind::Declared, "SEV1", &svcs, true));
        assert_eq!(
            drill,
            vec![Route {
                notifier: "email".into(),
                email_to: vec!["game-day@example.com".into()]
            }],
            "no Slack, no service list, no leadership"
        );
        assert!(
            route(&s, &enabled, &q(EventKind::NoteAdded, "SEV1", &svcs, true)).is_empty(),
            "notes are not among the default drill events"
        );
    }
}
