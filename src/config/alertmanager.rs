//! `[alertmanager]`: the Prometheus Alertmanager receiver (`POST /api/v1/alertmanager`). Without
//! this section the receiver is off and answers 404; an empty `[alertmanager]` turns it on with
//! the defaults below.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, Settings, bad};
use crate::domain::UNKNOWN_SEVERITY;

/// How alert groups become incidents.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertmanagerSettings {
    /// The label whose value chooses the severity; default `severity`.
    pub severity_label: String,
    /// Label value → severity id, e.g. `critical = "SEV1"`. A value not listed that is itself a
    /// configured severity id is taken as it is; anything else gets `default_severity`.
    pub severities: BTreeMap<String, String>,
    /// The severity when the label is missing or not mapped; default `unknown`.
    pub default_severity: String,
    /// The label naming the affected service (a configured service id); default `service`.
    pub service_label: String,
    /// The annotation that becomes the incident title; default `summary`. Without it the title is
    /// the alert name and the group labels.
    pub title_annotation: String,
    /// The annotation that opens the incident summary; default `description`.
    pub summary_annotation: String,
    /// Mark the incident mitigated (with the usual notifications) once every alert of its group
    /// is resolved; default false (the resolutions are only recorded on the timeline).
    pub mitigate_on_resolved: bool,
}

impl Default for AlertmanagerSettings {
    fn default() -> Self {
        Self {
            severity_label: "severity".into(),
            severities: BTreeMap::new(),
            default_severity: UNKNOWN_SEVERITY.into(),
            service_label: "service".into(),
            title_annotation: "summary".into(),
            summary_annotation: "description".into(),
            mitigate_on_resolved: false,
        }
    }
}

/// A Prometheus label or annotation name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(bad(
            key,
            format!("\u{201c}{name}\u{201d} is not a label name (letters, digits and _, not starting with a digit)"),
        ))
    }
}

impl AlertmanagerSettings {
    /// Checks the names and that every severity is configured (or `unknown`).
    pub fn validate(&self, settings: &Settings) -> Result<(), ConfigError> {
        check_name("alertmanager.severity_label", &self.severity_label)?;
        check_name("alertmanager.service_label", &self.service_label)?;
        check_name("alertmanager.title_annotation", &self.title_annotation)?;
        check_name("alertmanager.summary_annotation", &self.summary_annotation)?;
        let known = settings.severity_ids();
        let check = |key: String, id: &str| {
            if id == UNKNOWN_SEVERITY || known.contains(&id) {
                Ok(())
            } else {
                Err(bad(
                    key,
                    format!(
                        "unknown severity \u{201c}{id}\u{201d}; configured: {} (or unknown)",
                        known.join(", ")
                    ),
                ))
            }
        };
        check("alertmanager.default_severity".into(), &self.default_severity)?;
        for (value, id) in &self.severities {
            check(format!("alertmanager.severities.{value}"), id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Settings> {
        Settings::parse(text)
    }

    #[test]
    fn defaults_and_a_full_section_parse() {
        let s = parse("[alertmanager]\n").unwrap();
        assert_eq!(s.alertmanager, Some(AlertmanagerSettings::default()));
        assert!(parse("").unwrap().alertmanager.is_none(), "off without the section");
        let s = parse(
            "[alertmanager]\nseverity_label = \"priority\"\ndefault_severity = \"SEV3\"\nmitigate_on_resolved = true\n\
             [alertmanager.severities]\ncritical = \"SEV1\"\nwarning = \"SEV3\"\n",
        )
        .unwrap();
        let a = s.alertmanager.unwrap();
        assert_eq!(a.severities.get("critical").map(String::as_str), Some("SEV1"));
        assert!(a.mitigate_on_resolved);
    }

    #[test]
    fn bad_values_are_refused_by_key() {
        for (text, key) in [
            ("[alertmanager]\nseverity = \"x\"\n", "unknown field `severity`"),
            (
                "[alertmanager]\ndefault_severity = \"P1\"\n",
                "alertmanager.default_severity",
            ),
            (
                "[alertmanager.severities]\ncritical = \"SEV9\"\n",
                "alertmanager.severities.critical",
            ),
            (
                "[alertmanager]\nservice_label = \"1st\"\n",
                "alertmanager.service_label",
            ),
            (
                "[alertmanager]\ntitle_annotation = \"\"\n",
                "alertmanager.title_annotation",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
