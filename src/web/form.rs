//! Strict `application/x-www-form-urlencoded` parsing. Repeated keys are kept (multi-selects),
//! invalid percent-encoding or UTF-8 and NUL bytes are refused with a clear message instead of
//! being silently replaced.

use actix_web::HttpRequest;
use actix_web::http::{StatusCode, header};

/// A parsed form body.
#[derive(Debug, Default, Clone)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

/// Why a body is not a usable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    /// HTTP status to answer with.
    pub status: StatusCode,
    /// What to tell the person.
    pub message: &'static str,
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    let plus: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
    let s = String::from_utf8(bytes).map_err(|_| FormError {
        status: StatusCode::BAD_REQUEST,
        message: "The form contains text that is not valid UTF-8.",
    })?;
    if s.contains('\0') {
        return Err(FormError {
            status: StatusCode::BAD_REQUEST,
            message: "The form contains NUL characters.",
        });
    }
    Ok(s)
}

impl FormData {
    /// Parses a request body, checking the content type first.
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, FormError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(FormError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: "Send this form as application/x-www-form-urlencoded.",
            });
        }
        Self::parse_body(body)
    }

    /// Parses a body already known to be a form.
    pub fn parse_body(body: &[u8]) -> Result<Self, FormError> {
        let mut pairs = Vec::new();
        for part in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match part.iter().position(|b| *b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            pairs.push((decode(k)?, decode(v)?));
        }
        Ok(Self { pairs })
    }

    /// The first value of `key`, or "".
    pub fn get(&self, key: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether a checkbox `key` was ticked.
    pub fn checked(&self, key: &str) -> bool {
        matches!(self.get(key), "on" | "true" | "1" | "yes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_keys_and_plus() {
        let f = FormData::parse_body(b"title=db+down%21&services=a&services=b&drill=on").unwrap();
        assert_eq!(f.get("title"), "db down!");
        assert_eq!(f.all("services"), vec!["a", "b"]);
        assert!(f.checked("drill"));
        assert!(!f.checked("lead"));
        assert_eq!(f.get("missing"), "");
    }

    #[test]
    fn refuses_bad_bytes() {
        assert!(FormData::parse_body(b"title=%FF%FE").is_err());
        assert!(FormData::parse_body(b"title=a%00b").is_err());
        assert_eq!(
            FormData::parse_body("title=caf%C3%A9".as_bytes()).unwrap().get("title"),
            "café"
        );
    }
}
