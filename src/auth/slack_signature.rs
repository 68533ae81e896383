//! Slack's request signing ("Verifying requests from Slack"): `X-Slack-Signature` is `v0=` and
//! the hex HMAC-SHA256, keyed with the app's signing secret, of `v0:<timestamp>:<raw body>`, where
//! the timestamp is `X-Slack-Request-Timestamp` (Unix seconds). Pure: the clock is a parameter.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from our clock, either way.
pub const WINDOW_SECONDS: i64 = 5 * 60;

/// Why a request is refused. The messages name no secret and repeat no header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A header is missing or not what Slack sends.
    #[error("the request is not signed by Slack (missing or malformed {0} header)")]
    Malformed(&'static str),
    /// The timestamp is outside the window.
    #[error("the request's timestamp is more than five minutes from our clock; check the server's clock")]
    Stale,
    /// The signature does not match.
    #[error("the request's signature does not match the signing secret")]
    Mismatch,
}

/// The `v0=<hex>` signature of `body` sent at `timestamp` (the header's text, as sent).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key"));
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a request: the timestamp within [`WINDOW_SECONDS`] of `now` (Unix seconds), then the
/// signature over the raw body, compared in constant time. Returns the signed timestamp.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<i64, Refused> {
    let raw_ts = timestamp.ok_or(Refused::Malformed("X-Slack-Request-Timestamp"))?;
    let ts: i64 = raw_ts
        .parse()
        .ok()
        .filter(|_| !raw_ts.is_empty() && raw_ts.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(Refused::Malformed("X-Slack-Request-Timestamp"))?;
    let signature = signature
        .filter(|s| s.starts_with("v0=") && s.len() == 67)
        .ok_or(Refused::Malformed("X-Slack-Signature"))?;
    if (now - ts).abs() > WINDOW_SECONDS {
        return Err(Refused::Stale);
    }
    let expected = sign(secret, raw_ts, body);
    if bool::from(expected.as_bytes().ct_eq(signature.to_ascii_lowercase().as_bytes())) {
        Ok(ts)
    } else {
        Err(Refused::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example published on Slack's "Verifying requests from Slack" page: its signing secret,
    // timestamp, raw body and the signature Slack says it yields.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_published_example_verifies_at_its_own_time() {
        assert_eq!(sign(SECRET.as_bytes(), TS, BODY.as_bytes()), EXPECTED);
        let at = 1_531_420_618;
        assert_eq!(
            verify(SECRET.as_bytes(), Some(TS), Some(EXPECTED), BODY.as_bytes(), at),
            Ok(at)
        );
        // Still inside the window five minutes later (and earlier), not a second beyond.
        assert!(verify(SECRET.as_bytes(), Some(TS), Some(EXPECTED), BODY.as_bytes(), at + 300).is_ok());
        assert!(verify(SECRET.as_bytes(), Some(TS), Some(EXPECTED), BODY.as_bytes(), at - 300).is_ok());
        assert_eq!(
            verify(SECRET.as_bytes(), Some(TS), Some(EXPECTED), BODY.as_bytes(), at + 301),
            Err(Refused::Stale)
        );
        assert_eq!(
            verify(SECRET.as_bytes(), Some(TS), Some(EXPECTED), BODY.as_bytes(), at - 301),
            Err(Refused::Stale)
        );
    }

    #[test]
    fn any_change_to_body_timestamp_or_secret_is_refused() {
        let at = 1_531_420_618;
        let mut body = BODY.as_bytes().to_vec();
        body.push(b'x');
        assert_eq!(
            verify(SECRET.as_bytes(), Some(TS), Some(EXPECTED), &body, at),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            verify(
                SECRET.as_bytes(),
                Some("1531420619"),
                Some(EXPECTED),
                BODY.as_bytes(),
                at
            ),
            Err(Refused::Mismatch)
        );
        assert_eq!(
            verify(b"another-secret", Some(TS), Some(EXPECTED), BODY.as_bytes(), at),
            Err(Refused::Mismatch)
        );
        for bad in [
            "",
            "v0=",
            "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            "a2114d57",
        ] {
            assert_eq!(
                verify(SECRET.as_bytes(), Some(TS), Some(bad), BODY.as_bytes(), at),
                Err(Refused::Malformed("X-Slack-Signature")),
                "{bad}"
            );
        }
        for bad in ["", "-1531420618", "+1531420618", "1531420618.5", "soon"] {
            assert_eq!(
                verify(SECRET.as_bytes(), Some(bad), Some(EXPECTED), BODY.as_bytes(), at),
                Err(Refused::Malformed("X-Slack-Request-Timestamp")),
                "{bad}"
            );
        }
        assert!(verify(SECRET.as_bytes(), None, Some(EXPECTED), BODY.as_bytes(), at).is_err());
        assert!(verify(SECRET.as_bytes(), Some(TS), None, BODY.as_bytes(), at).is_err());
    }
}
