//! What every HTTP integration shares: one client setup (rustls with the ring provider and the
//! Mozilla roots, no redirects, time limits), a bounded body reader, and one reading of HTTP
//! failures into retry-or-not.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::NotifyError;

/// Largest answer body we read; vendors answer in kilobytes, and a bigger body is a fault.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Makes ring the process's rustls provider, for any client built without our preconfigured
/// TLS (we build without aws-lc, which would need cmake). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the HTTP client every integration uses. `timeout` bounds one whole request.
pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("redbutton/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// A fully read answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body (at most [`MAX_BODY_BYTES`]).
    pub body: Vec<u8>,
    /// Whether a success answer's body was cut at [`MAX_BODY_BYTES`] (the request did succeed;
    /// only its body is incomplete).
    pub truncated: bool,
}

impl Answer {
    /// Parses the body as JSON, or says the vendor answered something else.
    pub fn json<T: serde::de::DeserializeOwned>(&self, vendor: &str) -> Result<T, NotifyError> {
        if self.truncated {
            return Err(NotifyError::Retryable(format!(
                "{vendor} answered HTTP {} with a body over {} KiB; not read",
                self.status.as_u16(),
                MAX_BODY_BYTES / 1024
            )));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            NotifyError::Retryable(format!(
                "{vendor} answered HTTP {} with a body that is not the JSON expected ({e}): {}",
                self.status.as_u16(),
                excerpt(&self.body)
            ))
        })
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The request never left (connection refused, DNS, TLS): nothing happened at the vendor.
    NotSent(String),
    /// It may have arrived (timeout or connection lost after sending): the outcome is unknown.
    Unknown(String),
}

impl SendError {
    /// Both are worth retrying.
    pub fn into_notify(self) -> NotifyError {
        match self {
            SendError::NotSent(m) | SendError::Unknown(m) => NotifyError::Retryable(m),
        }
    }
}

impl From<SendError> for NotifyError {
    fn from(e: SendError) -> Self {
        e.into_notify()
    }
}

/// Sends a request and reads the answer, whatever its status. `vendor` names it in errors.
/// Errors never carry the URL (it can hold a secret, as webhook URLs do).
pub async fn send(request: reqwest::RequestBuilder, vendor: &str) -> Result<Answer, SendError> {
    send_reading(request, vendor, true).await
}

/// Like [`send`], for callers to whom the status says it all: a success answer's body is not
/// read (it comes back empty), so a receiver that trickles or pads it cannot turn a delivery
/// that arrived into a timeout. Other answers are read as by [`send`], for their reason.
pub async fn send_for_status(request: reqwest::RequestBuilder, vendor: &str) -> Result<Answer, SendError> {
    send_reading(request, vendor, false).await
}

async fn send_reading(request: reqwest::RequestBuilder, vendor: &str, success_body: bool) -> Result<Answer, SendError> {
    let mut response = request.send().await.map_err(|e| classify(vendor, e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    if status.is_success() && !success_body {
        return Ok(Answer {
            status,
            headers,
            body,
            truncated: false,
        });
    }
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    if status.is_success() {
                        // It worked; only the body is too big. Say so rather than retry (a
                        // retry would repeat a side effect that happened).
                        return Ok(Answer {
                            status,
                            headers,
                            body,
                            truncated: true,
                        });
                    }
                    return Err(SendError::Unknown(format!(
                        "{vendor} answered HTTP {} with a body over {} KiB; not read",
                        status.as_u16(),
                        MAX_BODY_BYTES / 1024
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Err(SendError::Unknown(format!(
                    "{vendor}: reading the answer failed: {}",
                    describe(&e)
                )));
            }
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
        truncated: false,
    })
}

fn classify(vendor: &str, e: reqwest::Error) -> SendError {
    let what = describe(&e);
    if e.is_connect() || e.is_builder() {
        SendError::NotSent(format!("{vendor} unreachable: {what}"))
    } else if e.is_timeout() {
        SendError::Unknown(format!("{vendor} did not answer in time: {what}"))
    } else {
        SendError::Unknown(format!("{vendor} request failed: {what}"))
    }
}

/// The error and its causes, without the URL.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        let mut plain = e.to_string();
        if let Some(url) = e.url() {
            plain = plain.replace(url.as_str(), "<url>");
        }
        parts.push(plain);
    }
    parts.dedup();
    parts.join(": ")
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Reads a non-success status into the error the worker acts on: 429 waits as told, 408 and 5xx
/// retry, 401 and 403 are bad credentials, any other 4xx is a request the vendor will refuse
/// again.
pub fn status_error(vendor: &str, answer: &Answer) -> NotifyError {
    let code = answer.status.as_u16();
    let body = excerpt(&answer.body);
    match code {
        429 => {
            let wait = retry_after(&answer.headers).unwrap_or(Duration::from_secs(30));
            NotifyError::RetryAfter(
                format!(
                    "{vendor} is rate limiting (HTTP 429); retrying after {} s",
                    wait.as_secs()
                ),
                wait,
            )
        }
        408 | 500..=599 => NotifyError::Retryable(format!("{vendor} answered HTTP {code}: {body}")),
        401 | 403 => NotifyError::Permanent(format!(
            "{vendor} refused our credentials (HTTP {code}): {body}; check the token and its permissions"
        )),
        _ => NotifyError::Permanent(format!("{vendor} refused the request (HTTP {code}): {body}")),
    }
}

/// A short, single-line, printable excerpt of a body for error messages.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    let clean = clean.trim().to_string();
    if clean.is_empty() { "(empty body)".into() } else { clean }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, v.parse().unwrap());
        }
        Answer {
            status: StatusCode::from_u16(code).unwrap(),
            headers: map,
            body: body.as_bytes().to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn statuses_are_read_into_retry_or_not() {
        assert!(matches!(
            status_error("X", &answer(429, &[("retry-after", "7")], "")),
            NotifyError::RetryAfter(_, d) if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            status_error("X", &answer(503, &[], "busy")),
            NotifyError::Retryable(_)
        ));
        assert!(
            matches!(status_error("X", &answer(401, &[], "no")), NotifyError::Permanent(m) if m.contains("credentials"))
        );
        assert!(
            matches!(status_error("X", &answer(400, &[], "bad field")), NotifyError::Permanent(m) if m.contains("bad field"))
        );
    }

    #[test]
    fn retry_after_reads_an_http_date() {
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let mut map = HeaderMap::new();
        map.insert("retry-after", later.parse().unwrap());
        let wait = retry_after(&map).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }

    #[test]
    fn excerpts_are_short_and_single_line() {
        let long = "a\nb".repeat(500);
        let e = excerpt(long.as_bytes());
        assert!(!e.contains('\n'));
        assert_eq!(e.chars().count(), 300);
        assert_eq!(excerpt(b""), "(empty body)");
    }
}
