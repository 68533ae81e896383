//! Pure domain rules: what an incident is, which changes are allowed, and how raw input becomes
//! valid values. Nothing here touches the web framework or the database, so every rule can be
//! unit-tested in isolation and reused by the form handlers, the worker and (later) the API.

pub mod alert;
pub mod declaration;
pub mod event;
pub mod follow_up;
pub mod incident;
pub mod key_times;
pub mod update;

pub use declaration::{Declaration, DeclarationInput, FieldError};
pub use event::EventKind;
pub use incident::{IncidentNumber, Status, Title, TransitionError, allowed_next, check_transition};
pub use key_times::{Durations, KeyTime, KeyTimes};

/// Someone who did something: the declarer, a responder, or the system itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    /// Display name.
    pub name: String,
    /// Email address; also the stable identity until sign-in lands.
    pub email: String,
}

impl Actor {
    /// The actor used for changes the tool makes on its own (retries, worker notes).
    pub fn system() -> Self {
        Self {
            name: "Big Red Button".into(),
            email: "system@redbutton.invalid".into(),
        }
    }
}

/// The severity reserved for "we do not know yet", always accepted whatever the configuration.
pub const UNKNOWN_SEVERITY: &str = "unknown";

/// Whether text shows nothing at all: only whitespace and default-ignorable code points (zero-width
/// spaces and joiners, the byte order mark, soft hyphens, Hangul fillers, variation selectors…).
/// A required field holding only these is as empty as one holding nothing.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || is_default_ignorable(c))
}

/// Unicode's `Default_Ignorable_Code_Point` property (DerivedCoreProperties.txt).
fn is_default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Parses a person's name and email as typed into a form.
pub fn parse_person(name: &str, email: &str) -> Result<Actor, FieldError> {
    let name = name.trim();
    let email = email.trim();
    if is_blank(name) {
        return Err(FieldError::new("name", "Enter your name."));
    }
    if name.chars().count() > 100 {
        return Err(FieldError::new("name", "A name can be at most 100 characters."));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new("name", "A name cannot contain control characters."));
    }
    if !is_plausible_email(email) {
        return Err(FieldError::new("email", "Enter an email address like ada@example.com."));
    }
    Ok(Actor {
        name: name.to_string(),
        email: email.to_ascii_lowercase(),
    })
}

/// A deliberately loose email check: one `@`, something on each side, a dot in the domain, no
/// spaces or control characters, at most 254 characters. Delivery is the real test.
pub fn is_plausible_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let mut parts = email.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_plausible_email("ada@example.com"));
        assert!(!is_plausible_email("ada@example"));
        assert!(!is_plausible_email("ada example@x.com"));
        assert!(!is_plausible_email("a@b@c.com"));
        assert!(!is_plausible_email("@example.com"));
    }

    #[test]
    fn person_is_trimmed_and_lowercased() {
        let p = parse_person("  Ada ", " Ada@Example.COM ").unwrap();
        assert_eq!(p.name, "Ada");
        assert_eq!(p.email, "ada@example.com");
        assert!(parse_person("", "ada@example.com").is_err());
        assert!(parse_person("Ada\u{0}", "ada@example.com").is_err());
        assert!(
            parse_person("\u{200b}\u{feff}", "ada@example.com").is_err(),
            "invisible"
        );
    }

    #[test]
    fn blank_means_nothing_visible() {
        assert!(is_blank(""));
        assert!(is_blank(" \t\n\u{a0}\u{3000}"));
        assert!(is_blank(
            "\u{200b}\u{200d}\u{2060}\u{feff}\u{ad}\u{3164}\u{fe0f}\u{e0041}"
        ));
        assert!(!is_blank("\u{200b}x"));
        assert!(!is_blank("🔥"));
        assert!(!is_blank("\u{1f525}\u{fe0f}"), "an emoji with its variation selector");
    }
}
