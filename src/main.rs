//! The `redbutton` binary: a thin command-line shell around the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use redbutton::config::Settings;
use redbutton::startup::{self, Application, Options};

/// Big Red Button: declare an incident with one press; everything else fans out.
#[derive(Parser)]
#[command(name = "redbutton", version, about)]
struct Cli {
    /// Configuration file (TOML). Without one, defaults are used.
    #[arg(long, global = true, env = "REDBUTTON_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,

    /// Address to listen on (for `serve`, the default command).
    #[arg(long, global = true, env = "REDBUTTON_LISTEN", value_name = "ADDR")]
    listen: Option<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration, print what is enabled, and exit.
    CheckConfig {
        /// Also call each integration's cheapest authenticated read (Slack auth.test, Jira
        /// /myself, an SMTP handshake, …) and report per integration; creates nothing.
        #[arg(long)]
        probe: bool,
    },
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Settings> {
    match path {
        Some(p) => Settings::load(p),
        None => Ok(Settings::default()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    redbutton::telemetry::init();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config, cli.database_url, cli.listen).await,
        Command::Migrate => migrate(cli.config, cli.database_url).await,
        Command::CheckConfig { probe } => check_config(cli.config, cli.database_url, probe).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("redbutton: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Option<PathBuf>, database_url: Option<String>, listen: Option<String>) -> anyhow::Result<()> {
    let settings = load(config.as_ref())?;
    let app = Application::build(
        settings,
        Options {
            listen,
            database_url,
            extra_notifiers: vec![],
            run_worker: true,
            handle_signals: true,
        },
    )
    .await?;
    app.run_until_stopped().await
}

async fn migrate(config: Option<PathBuf>, database_url: Option<String>) -> anyhow::Result<()> {
    let settings = load(config.as_ref())?;
    let url = startup::database_url(&settings, database_url.as_deref())?;
    tokio::task::spawn_blocking(move || startup::open_database(&settings, database_url.as_deref())).await??;
    println!("database {} is up to date", url.redacted());
    Ok(())
}

async fn check_config(config: Option<PathBuf>, database_url: Option<String>, probe: bool) -> anyhow::Result<()> {
    let settings = load(config.as_ref())?;
    settings.check_secrets()?;
    let url = startup::database_url(&settings, database_url.as_deref())?;
    let source = config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "built-in defaults".into());
    println!("configuration OK ({source})");
    println!(
        "  listen:      {}",
        settings.server.listen.as_deref().unwrap_or(startup::DEFAULT_LISTEN)
    );
    println!("  database:    {} ({})", url.redacted(), url.backend.name());
    println!("  sign-in:     {}", sign_in_summary(&settings));
    let sev: Vec<_> = settings.severities.iter().map(|s| s.id.as_str()).collect();
    println!("  severities:  {} and unknown", sev.join(", "));
    let svc: Vec<_> = settings.services.iter().map(|s| s.id.as_str()).collect();
    println!(
        "  services:    {}",
        if svc.is_empty() {
            "none".to_string()
        } else {
            svc.join(", ")
        }
    );
    match &settings.integrations.email {
        Some(e) => println!(
            "  email:       on, SMTP {}:{} ({:?}){}",
            e.host,
            e.port(),
            e.tls,
            if e.username.is_some() { ", with credentials" } else { "" }
        ),
        None => println!("  email:       off (no [integrations.email])"),
    }
    let others: Vec<String> = settings
        .enabled_notifiers()
        .into_iter()
        .filter(|n| n != "email")
        .collect();
    println!(
        "  notifiers:   {}",
        if others.is_empty() {
            "none besides email".to_string()
        } else {
            others.join(", ")
        }
    );
    if settings.routing.is_empty() {
        println!("  routing:     default (every event but notes to every enabled notifier)");
    } else {
        for (i, r) in settings.routing.iter().enumerate() {
            let name = if r.name.is_empty() {
                format!("rule {i}")
            } else {
                r.name.clone()
            };
            println!("  routing:     {name} -> {}", r.notifiers.join(", "));
        }
    }
    if probe {
        let mut failed = probe_sign_in(&settings).await;
        failed += probe_all(&settings).await?;
        if failed > 0 {
            anyhow::bail!("{failed} integration check(s) failed");
        }
    }
    Ok(())
}

/// One line saying how people sign in and who gets which role.
fn sign_in_summary(settings: &Settings) -> String {
    let a = &settings.auth;
    let mode = match a.mode {
        redbutton::config::AuthMode::Dev => "development (people name themselves; loopback only)".to_string(),
        redbutton::config::AuthMode::Oidc => format!(
            "OpenID Connect, issuer {}",
            a.oidc.as_ref().map(|o| o.issuer.as_str()).unwrap_or("?")
        ),
        redbutton::config::AuthMode::Proxy => format!(
            "trusted proxy at {}",
            a.proxy
                .as_ref()
                .map(|p| p.trusted_proxies.join(", "))
                .unwrap_or_default()
        ),
    };
    format!(
        "{mode}; {} admin email(s), {} admin group(s), {}",
        a.admin_emails.len(),
        a.admin_groups.len(),
        if a.responder_groups.is_empty() {
            "everyone signed in responds".to_string()
        } else {
            format!("responders: members of {}", a.responder_groups.join(", "))
        }
    )
}

/// In OpenID Connect mode, reads the provider's discovery document (what the first sign-in
/// would do). Returns the number of failures (0 or 1).
async fn probe_sign_in(settings: &Settings) -> usize {
    let (redbutton::config::AuthMode::Oidc, Some(oidc)) = (settings.auth.mode, settings.auth.oidc.clone()) else {
        return 0;
    };
    let secret = oidc.client_secret_env.as_deref().and_then(|v| settings.secret(v));
    let base = settings
        .server
        .base_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let outcome = match redbutton::auth::oidc::OidcClient::new(oidc, secret, format!("{base}/auth/callback")) {
        Ok(client) => match tokio::time::timeout(std::time::Duration::from_secs(15), client.begin()).await {
            Ok(Ok(_)) => Ok("discovery document read".to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 15 s".to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(what) => {
            println!("probe:\n  {:<16} OK      {what}", "sign-in (oidc)");
            0
        }
        Err(why) => {
            println!("probe:\n  {:<16} FAILED  {why}", "sign-in (oidc)");
            1
        }
    }
}

/// Runs every configured integration's read-only check, at most 15 s each, all at once.
async fn probe_all(settings: &Settings) -> anyhow::Result<usize> {
    let registry = redbutton::notifiers::Registry::from_settings(settings)?;
    if registry.is_empty() {
        println!("probe: no integrations are configured");
        return Ok(0);
    }
    let checks = registry
        .names()
        .into_iter()
        .filter_map(|name| registry.get(&name))
        .map(|n| async move {
            let outcome = match tokio::time::timeout(std::time::Duration::from_secs(15), n.probe()).await {
                Ok(r) => r,
                Err(_) => Err("no answer within 15 s".to_string()),
            };
            (n.name().to_string(), outcome)
        });
    let mut failed = 0;
    println!("probe:");
    for (name, outcome) in futures_util::future::join_all(checks).await {
        match outcome {
            Ok(what) => println!("  {name:<16} OK      {what}"),
            Err(why) => {
                failed += 1;
                println!("  {name:<16} FAILED  {why}");
            }
        }
    }
    Ok(failed)
}
