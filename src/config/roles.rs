//! `[[roles]]`: the roles people hold during an incident. The lead (incident commander) is built
//! in; the rest come from the file, or default to a comms lead and a scribe.

use std::collections::HashSet;

use serde::Deserialize;

use super::{ConfigError, Settings, bad};

/// The built-in role id of the incident lead, kept in the incident's own lead columns.
pub const LEAD: &str = "lead";

/// The longest one-line description a role may have.
pub const DESCRIPTION_MAX_CHARS: usize = 200;

/// The longest role name.
pub const NAME_MAX_CHARS: usize = 60;

/// One `[[roles]]` entry. Configured roles replace the default comms lead and scribe (list them
/// too to keep them: `id = "comms"` alone takes the default name and description); the lead is
/// always there, and an entry with `id = "lead"` may only change its description.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoleSetting {
    /// Stored id, a lowercase slug such as `comms`.
    pub id: String,
    /// Display name, such as "Comms lead". Defaults for the built-in ids.
    #[serde(default)]
    pub name: String,
    /// One line saying what the holder does during an incident, shown where it is assigned.
    #[serde(default)]
    pub description: String,
}

/// A role as the application uses it: always with a name and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Stored id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// One-line description.
    pub description: String,
}

impl Role {
    /// Whether this is the built-in lead.
    pub fn is_lead(&self) -> bool {
        self.id == LEAD
    }

    /// The name in running text: "comms lead", "scribe" (the first letter lowered unless the
    /// name starts with an acronym such as "SME").
    pub fn in_sentence(&self) -> String {
        in_sentence(&self.name)
    }
}

/// A role name in running text: the first letter lowered, unless the name starts with an
/// acronym ("SME" stays).
pub fn in_sentence(name: &str) -> String {
    let mut chars = name.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => {
            first.to_lowercase().chain(name.chars().skip(1)).collect()
        }
        _ => name.to_string(),
    }
}

/// The defaults: (id, name, description). The lead first.
const DEFAULTS: [(&str, &str, &str); 3] = [
    (
        LEAD,
        "Incident lead",
        "Runs the response: sets priorities, makes the calls, hands out work and keeps everyone on one plan.",
    ),
    (
        "comms",
        "Comms lead",
        "Keeps stakeholders and customers informed: writes the status updates and answers questions so responders can focus.",
    ),
    (
        "scribe",
        "Scribe",
        "Records what is seen, decided and done, with times, so the timeline is complete for the review.",
    ),
];

fn default_role(id: &str) -> Option<Role> {
    DEFAULTS
        .iter()
        .find(|(d, _, _)| *d == id)
        .map(|(id, name, description)| Role {
            id: (*id).into(),
            name: (*name).into(),
            description: (*description).into(),
        })
}

/// The roles in force for `configured`: the lead first, then the configured roles in file order,
/// or the default comms lead and scribe when none are configured. Assumes [`validate`] passed.
pub fn effective(configured: &[RoleSetting]) -> Vec<Role> {
    let mut lead = default_role(LEAD).expect("the lead is a default");
    if let Some(own) = configured.iter().find(|r| r.id == LEAD)
        && !own.description.trim().is_empty()
    {
        lead.description = own.description.trim().to_string();
    }
    let mut roles = vec![lead];
    let others: Vec<&RoleSetting> = configured.iter().filter(|r| r.id != LEAD).collect();
    if others.is_empty() {
        roles.extend(DEFAULTS[1..].iter().filter_map(|(id, _, _)| default_role(id)));
    } else {
        for r in others {
            let fallback = default_role(&r.id);
            let pick = |own: &str, default: Option<&String>| {
                let own = own.trim();
                if own.is_empty() {
                    default.cloned().unwrap_or_default()
                } else {
                    own.to_string()
                }
            };
            roles.push(Role {
                id: r.id.clone(),
                name: pick(&r.name, fallback.as_ref().map(|f| &f.name)),
                description: pick(&r.description, fallback.as_ref().map(|f| &f.description)),
            });
        }
    }
    roles
}

fn is_slug(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 40
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn check_line(key: &str, text: &str, max: usize, what: &str) -> Result<(), ConfigError> {
    if text.chars().any(char::is_control) {
        return Err(bad(
            key,
            format!("the {what} must be one line without control characters"),
        ));
    }
    if text.chars().count() > max {
        return Err(bad(key, format!("the {what} can be at most {max} characters")));
    }
    Ok(())
}

/// Checks `[[roles]]`, naming the bad key.
pub fn validate(settings: &Settings) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, r) in settings.roles.iter().enumerate() {
        let key = |f: &str| format!("roles[{i}].{f}");
        if !is_slug(&r.id) {
            return Err(bad(
                key("id"),
                format!(
                    "\u{201c}{}\u{201d} is not a role id: use 1-40 lowercase letters, digits, '-' or '_', starting with a letter",
                    r.id
                ),
            ));
        }
        if !seen.insert(r.id.as_str()) {
            return Err(bad(key("id"), format!("duplicate role {}", r.id)));
        }
        if r.id == LEAD && !r.name.trim().is_empty() {
            return Err(bad(
                key("name"),
                "the lead is built in and keeps its name; only its description can be changed",
            ));
        }
        let builtin = default_role(&r.id).is_some();
        if !builtin && r.name.trim().is_empty() {
            return Err(bad(
                key("name"),
                format!("give role {} a name, like \"Comms lead\"", r.id),
            ));
        }
        check_line(&key("name"), &r.name, NAME_MAX_CHARS, "name")?;
        if !builtin && r.description.trim().is_empty() {
            return Err(bad(
                key("description"),
                format!("say in one line what the {} does during an incident", r.id),
            ));
        }
        check_line(
            &key("description"),
            &r.description,
            DESCRIPTION_MAX_CHARS,
            "description",
        )?;
    }
    let names: Vec<Role> = effective(&settings.roles);
    let mut seen = HashSet::new();
    for r in &names {
        if !seen.insert(r.name.to_lowercase()) {
            let i = settings.roles.iter().position(|c| c.id == r.id).unwrap_or(0);
            return Err(bad(
                format!("roles[{i}].name"),
                format!("two roles are called {}", r.name),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<Settings, String> {
        Settings::parse(toml).map_err(|e| e.to_string())
    }

    fn ids(s: &Settings) -> Vec<String> {
        s.roles().into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn defaults_are_lead_comms_and_scribe_with_descriptions() {
        let s = parse("").unwrap();
        let roles = s.roles();
        assert_eq!(ids(&s), ["lead", "comms", "scribe"]);
        assert_eq!(roles[0].name, "Incident lead");
        assert_eq!(roles[1].name, "Comms lead");
        assert_eq!(roles[2].name, "Scribe");
        for r in &roles {
            assert!(!r.description.is_empty() && r.description.chars().count() <= DESCRIPTION_MAX_CHARS);
            assert!(!r.description.contains('\n'));
        }
        assert_eq!(roles[1].in_sentence(), "comms lead");
    }

    #[test]
    fn configured_roles_replace_comms_and_scribe_but_never_the_lead() {
        let s = parse(
            "[[roles]]\nid = \"comms\"\n\n[[roles]]\nid = \"sme\"\nname = \"SME\"\ndescription = \"Knows the system.\"\n",
        )
        .unwrap();
        assert_eq!(ids(&s), ["lead", "comms", "sme"]);
        let roles = s.roles();
        assert_eq!(roles[1].name, "Comms lead", "a built-in id alone keeps its defaults");
        assert_eq!(roles[2].in_sentence(), "SME");
        let s = parse("[[roles]]\nid = \"lead\"\ndescription = \"Our commander.\"\n").unwrap();
        assert_eq!(
            ids(&s),
            ["lead", "comms", "scribe"],
            "changing the lead alone keeps the defaults"
        );
        assert_eq!(s.roles()[0].description, "Our commander.");
        assert_eq!(s.roles()[0].name, "Incident lead");
    }

    #[test]
    fn bad_roles_are_refused_by_key() {
        let cases = [
            (
                "[[roles]]\nid = \"Comms\"\nname = \"C\"\ndescription = \"d\"\n",
                "roles[0].id",
                "lowercase",
            ),
            (
                "[[roles]]\nid = \"\"\nname = \"C\"\ndescription = \"d\"\n",
                "roles[0].id",
                "lowercase",
            ),
            (
                "[[roles]]\nid = \"a b\"\nname = \"C\"\ndescription = \"d\"\n",
                "roles[0].id",
                "lowercase",
            ),
            (
                "[[roles]]\nid = \"x\"\nname = \"X\"\ndescription = \"d\"\n[[roles]]\nid = \"x\"\nname = \"Y\"\ndescription = \"d\"\n",
                "roles[1].id",
                "duplicate",
            ),
            (
                "[[roles]]\nid = \"lead\"\nname = \"Commander\"\n",
                "roles[0].name",
                "built in",
            ),
            (
                "[[roles]]\nid = \"sme\"\ndescription = \"d\"\n",
                "roles[0].name",
                "name",
            ),
            (
                "[[roles]]\nid = \"sme\"\nname = \"SME\"\n",
                "roles[0].description",
                "one line",
            ),
            (
                "[[roles]]\nid = \"sme\"\nname = \"SME\"\ndescription = \"two\\nlines\"\n",
                "roles[0].description",
                "one line",
            ),
            (
                "[[roles]]\nid = \"sme\"\nname = \"Incident lead\"\ndescription = \"d\"\n",
                "roles[0].name",
                "two roles",
            ),
            (
                "[[roles]]\nid = \"sme\"\nname = \"SME\"\ndescripton = \"d\"\n",
                "descripton",
                "unknown",
            ),
        ];
        for (toml, key, words) in cases {
            let e = parse(toml).unwrap_err();
            assert!(e.contains(key) && e.contains(words), "{toml:?}: {e}");
        }
        let long = "x".repeat(DESCRIPTION_MAX_CHARS + 1);
        let e = parse(&format!(
            "[[roles]]\nid = \"sme\"\nname = \"SME\"\ndescription = \"{long}\"\n"
        ))
        .unwrap_err();
        assert!(e.contains("roles[0].description") && e.contains("200"), "{e}");
        let ok = "y".repeat(DESCRIPTION_MAX_CHARS);
        parse(&format!(
            "[[roles]]\nid = \"sme\"\nname = \"SME\"\ndescription = \"{ok}\"\n"
        ))
        .unwrap();
    }
}
