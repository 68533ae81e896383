//! The binary's commands: check-config, migrate, and the loopback rule of dev sign-in.

use std::process::Command;

fn redbutton() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redbutton"));
    c.env_remove("DATABASE_URL")
        .env_remove("REDBUTTON_CONFIG")
        .env_remove("REDBUTTON_LISTEN");
    c
}

/// Values for the secrets examples/redbutton.toml names (besides the SMTP password).
const EXAMPLE_SECRETS: [(&str, &str); 8] = [
    ("REDBUTTON_SLACK_TOKEN", "xoxb-example"),
    ("REDBUTTON_JIRA_TOKEN", "jira-example"),
    ("REDBUTTON_PAGERDUTY_KEY", "pd-example"),
    ("REDBUTTON_PAGERDUTY_CHECKOUT_KEY", "pd-checkout-example"),
    (
        "REDBUTTON_AUDIT_WEBHOOK_SECRET",
        "an-audit-webhook-secret-of-some-length",
    ),
    ("REDBUTTON_SLACK_SIGNING_SECRET", "slack-signing-example"),
    (
        "REDBUTTON_TEAMS_INCIDENTS_URL",
        "https://example.powerautomate.com/workflows/1/invoke?sig=teams-sig-example",
    ),
    (
        "REDBUTTON_TEAMS_CHECKOUT_URL",
        "https://example.powerautomate.com/workflows/2/invoke?sig=teams-sig-example",
    ),
];

#[test]
fn check_config_accepts_the_example_and_names_bad_keys() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/redbutton.toml");
    let out = redbutton()
        .args(["check-config", "--config", example])
        .envs(EXAMPLE_SECRETS)
        .env("REDBUTTON_SMTP_PASSWORD", "s3cret-value")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("email:       on, SMTP smtp.example.com:587"));
    assert!(!stdout.contains("s3cret-value"), "secrets never printed");
    assert!(!stdout.contains("teams-sig-example"), "Teams URLs never printed");

    let out = redbutton()
        .args(["check-config", "--config", example])
        .envs(EXAMPLE_SECRETS)
        .env_remove("REDBUTTON_SMTP_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("REDBUTTON_SMTP_PASSWORD is not set"));

    let dir = tempfile::tempdir().unwrap();
    for (toml, needle) in [
        ("[server]\nlisen = \"x\"\n", "lisen"),
        ("[outbox]\nmax_attempts = 0\n", "outbox.max_attempts"),
        ("[[routing]]\nnotifiers = [\"email\"]\n", "routing[0].notifiers"),
        ("[database]\nurl = \"mysql://root:hunter2@db/x\"\n", "database.url"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        let out = redbutton()
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{toml}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{toml}: {stderr}");
        assert!(!stderr.contains("hunter2"), "password leaked: {stderr}");
    }
}

#[test]
fn migrate_creates_the_sqlite_file_and_serve_refuses_non_loopback_in_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sub/dir/rb.db");
    let out = redbutton()
        .args(["migrate", "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.exists());

    let out = redbutton()
        .args(["serve", "--listen", "0.0.0.0:0", "--database-url"])
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to listen on 0.0.0.0"));
}

#[tokio::test]
async fn probe_reports_each_integration_ok_or_the_exact_reason_and_creates_nothing() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let slack = crate::slack::SlackWorld::start().await;
    let jira = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/rest/api/3/myself"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Client must be authenticated"))
        .expect(1)
        .mount(&jira)
        .await;
    let closed = crate::helpers::free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[integrations.email]
host = "127.0.0.1"
port = {closed}
tls = "none"
from = "Big Red Button <redbutton@example.com>"

[integrations.slack]
base_url = "{}/api"
token_env = "PROBE_SLACK_TOKEN"

[integrations.jira]
base_url = "{}"
email = "bot@example.com"
token_env = "PROBE_JIRA_TOKEN"
project = "OPS"

[integrations.pagerduty]
routing_key_env = "PROBE_PD_KEY"

[[integrations.webhooks]]
name = "audit"
url = "https://hooks.example.com/x?token=abc"
secret_env = "PROBE_HOOK_SECRET"
"#,
            slack.server.uri(),
            jira.uri()
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        redbutton()
            .args(["check-config", "--probe", "--config"])
            .arg(&config)
            .env("PROBE_SLACK_TOKEN", "xoxb-test-token-1")
            .env("PROBE_JIRA_TOKEN", "jira-secret-token")
            .env("PROBE_PD_KEY", "pd-secret-key")
            .env("PROBE_HOOK_SECRET", "a-webhook-secret-long-enough")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    println!("{stdout}");
    assert!(!out.status.success(), "failures make it exit non-zero: {stdout}");
    assert!(stderr.contains("3 integration check(s) failed"), "{stderr}");
    let line = |name: &str| {
        stdout
            .lines()
            .skip_while(|l| *l != "probe:")
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} line in {stdout}"))
            .to_string()
    };
    let email = line("email");
    assert!(
        email.contains("FAILED") && email.contains(&format!("127.0.0.1:{closed}")),
        "{email}"
    );
    let slack_line = line("slack");
    assert!(
        slack_line.contains("FAILED") && slack_line.contains("signed in to Acme as redbutton"),
        "{slack_line}"
    );
    assert!(
        slack_line.contains("lacks the scopes") && slack_line.contains("users:read.email"),
        "{slack_line}"
    );
    let jira_line = line("jira");
    assert!(jira_line.contains("FAILED") && jira_line.contains("401"), "{jira_line}");
    assert!(line("pagerduty").contains("OK"));
    assert!(line("webhook:audit").contains("OK"));
    for secret in [
        "xoxb-test-token-1",
        "jira-secret-token",
        "pd-secret-key",
        "a-webhook-secret",
        "token=abc",
    ] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "{secret} leaked");
    }
    // Nothing was created: only the reads were called.
    let apis: Vec<String> = slack
        .fake
        .0
        .lock()
        .unwrap()
        .seen
        .iter()
        .map(|s| s.api.clone())
        .collect();
    assert_eq!(apis, vec!["auth.test"]);
}

#[test]
fn check_config_describes_sign_in_and_probes_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oidc.toml");
    // Nothing listens on this port: the probe must say the provider cannot be reached.
    let port = crate::helpers::free_port();
    std::fs::write(
        &path,
        format!(
            "[auth]\nmode = \"oidc\"\nadmin_groups = [\"sre\"]\n[auth.oidc]\nissuer = \"http://127.0.0.1:{port}\"\n\
             client_id = \"redbutton\"\nclient_secret_env = \"RB_CLI_OIDC_SECRET\"\n"
        ),
    )
    .unwrap();
    let out = redbutton()
        .args(["check-config", "--config", path.to_str().unwrap()])
        .env("RB_CLI_OIDC_SECRET", "cli-oidc-secret-value")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "sign-in:     OpenID Connect, issuer http://127.0.0.1:{port}; 0 admin email(s), 1 admin group(s)"
        )),
        "{stdout}"
    );

    let out = redbutton()
        .args(["check-config", "--probe", "--config", path.to_str().unwrap()])
        .env("RB_CLI_OIDC_SECRET", "cli-oidc-secret-value")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "an unreachable provider fails the probe: {stdout}"
    );
    assert!(stdout.contains("sign-in (oidc)   FAILED"), "{stdout}");
    assert!(!stdout.contains("cli-oidc-secret-value"), "secrets never printed");

    // Without the secret's variable, the file is refused by name.
    let out = redbutton()
        .args(["check-config", "--config", path.to_str().unwrap()])
        .env_remove("RB_CLI_OIDC_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.oidc.client_secret_env"));
}
