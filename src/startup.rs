//! Building and running the application: database, notifiers, worker and HTTP server, wired
//! from one validated [`Settings`]. Tests use the same path with port 0.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer, web};
use tokio::sync::{Notify, watch};
use tracing_actix_web::TracingLogger;

use crate::config::{AuthMode, Settings};
use crate::db::{DEFAULT_DATABASE_URL, Db, DbUrl};
use crate::notifiers::{Notifier, Registry};
use crate::outbox::Worker;
use crate::state::AppState;
use crate::web::session::SessionKey;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Overrides that come from the command line and environment rather than the file.
#[derive(Default)]
pub struct Options {
    /// Listen address (flag or `REDBUTTON_LISTEN`), beats `server.listen`.
    pub listen: Option<String>,
    /// Database URL (`DATABASE_URL`), beats `database.url`.
    pub database_url: Option<String>,
    /// Notifiers registered in code besides the built-in ones (tests, embedders).
    pub extra_notifiers: Vec<Arc<dyn Notifier>>,
    /// Whether to run the delivery worker in this process.
    pub run_worker: bool,
    /// Whether the HTTP server reacts to SIGINT/SIGTERM itself (the binary) or not (tests).
    pub handle_signals: bool,
}

/// The effective database URL for these options and settings.
pub fn database_url(settings: &Settings, opts_url: Option<&str>) -> anyhow::Result<DbUrl> {
    let raw = opts_url
        .map(str::to_string)
        .or_else(|| settings.database.url.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
    DbUrl::parse(&raw).map_err(|e| anyhow::anyhow!(e))
}

/// Opens the database (migrating it) for these settings.
pub fn open_database(settings: &Settings, opts_url: Option<&str>) -> anyhow::Result<Db> {
    let url = database_url(settings, opts_url)?;
    tracing::info!(db.url = %url.redacted(), "opening database");
    Db::connect(
        &url,
        settings.database.max_connections,
        settings.database.sqlite_busy_timeout_ms,
    )
}

/// A built application, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    worker: Option<Worker>,
    /// Keeps follow-ups in step with their Jira issues; runs wherever the worker runs.
    follow_up_sync: Option<crate::services::follow_ups::JiraSync>,
    shutdown: watch::Sender<bool>,
    state: AppState,
}

/// Stops a running application from outside (tests, signal handlers).
#[derive(Clone)]
pub struct AppHandle {
    server: actix_web::dev::ServerHandle,
}

impl AppHandle {
    /// Stops the HTTP server (gracefully or not); `run_until_stopped` then stops the worker.
    pub async fn stop(&self, graceful: bool) {
        self.server.stop(graceful).await;
    }
}

impl Application {
    /// Validates, migrates, builds notifiers, binds the listener.
    pub async fn build(settings: Settings, opts: Options) -> anyhow::Result<Self> {
        let extra_names: Vec<String> = opts.extra_notifiers.iter().map(|n| n.name().to_string()).collect();
        let extra_refs: Vec<&str> = extra_names.iter().map(String::as_str).collect();
        settings
            .validate(&extra_refs)
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings
            .check_secrets()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;

        let listen = opts
            .listen
            .clone()
            .or_else(|| settings.server.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let addr: SocketAddr = listen
            .parse()
            .map_err(|_| anyhow::anyhow!("listen address \u{201c}{listen}\u{201d} is not like 127.0.0.1:8080"))?;
        if settings.auth.mode == AuthMode::Dev && !addr.ip().is_loopback() && !settings.auth.dev_allow_non_loopback {
            anyhow::bail!(
                "refusing to listen on {addr}: in development sign-in mode (auth.mode = \"dev\") anyone who can reach \
                 the server can claim to be anyone, so it only listens on a loopback address such as 127.0.0.1"
            );
        }

        let url = database_url(&settings, opts.database_url.as_deref())?;
        let db = {
            let settings = settings.clone();
            let url_text = opts.database_url.clone();
            tokio::task::spawn_blocking(move || open_database(&settings, url_text.as_deref())).await??
        };

        let mut registry = Registry::from_settings(&settings)?;
        for n in opts.extra_notifiers {
            registry.add(n);
        }

        let listener = TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let port = listener.local_addr()?.port();
        let base_url = settings
            .server
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{port}", addr.ip()))
            .trim_end_matches('/')
            .to_string();

        let secret = session_secret(&settings, &db).await?;
        let session_key = SessionKey::new(
            secret.as_bytes(),
            base_url.starts_with("https://"),
            settings.auth.session_hours,
        );

        let oidc = match (&settings.auth.mode, &settings.auth.oidc) {
            (AuthMode::Oidc, Some(o)) => {
                let secret = o.client_secret_env.as_deref().and_then(|var| settings.secret(var));
                let client = crate::auth::oidc::OidcClient::new(o.clone(), secret, format!("{base_url}/auth/callback"))
                    .map_err(|e| anyhow::anyhow!("invalid configuration: auth.oidc: {e}"))?;
                Some(Arc::new(client))
            }
            _ => None,
        };

        let wake = Arc::new(Notify::new());
        let state = AppState {
            settings: Arc::new(settings.clone()),
            db: db.clone(),
            notifiers: Arc::new(registry.names()),
            registry: registry.clone(),
            wake: wake.clone(),
            base_url: base_url.into(),
            session_key: Arc::new(session_key),
            trusted_proxies: Arc::new(settings.auth.proxy.as_ref().map(|p| p.trusted()).unwrap_or_default()),
            seen_users: Arc::default(),
            live_sessions: Arc::default(),
            oidc,
            limits: Arc::new(crate::web::limits::RateLimits::new(
                settings.auth.sign_in_per_minute,
                settings.auth.api_per_minute,
            )),
            metrics: Arc::default(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
            slack_commands: crate::web::slack_commands::SlackCommands::from_settings(&settings)?.map(Arc::new),
        };
        let worker = opts.run_worker.then(|| {
            Worker::new(db.clone(), registry.clone(), settings.outbox.clone(), wake).with_metrics(state.metrics.clone())
        });

        let follow_up_sync = if opts.run_worker {
            crate::services::follow_ups::JiraSync::from_state(&state)?
        } else {
            None
        };

        let https = state.base_url.starts_with("https://");
        let data = web::Data::new(state.clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(crate::web::BODY_LIMIT))
                .app_data(web::QueryConfig::default().error_handler(crate::web::bad_query))
                .wrap(actix_web::middleware::from_fn(crate::web::session::authenticate))
                .wrap(actix_web::middleware::from_fn(crate::web::limits::limit))
                .wrap(
                    actix_web::middleware::ErrorHandlers::new()
                        .handler(actix_web::http::StatusCode::PAYLOAD_TOO_LARGE, crate::web::too_large),
                )
                .wrap(security_headers(https))
                .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
                .configure(crate::web::configure)
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        .shutdown_timeout(10);
        if !opts.handle_signals {
            server = server.disable_signals();
        }
        let server = server.run();
        tracing::info!(
            listen = %addr.ip(),
            port,
            db.backend = url.backend.name(),
            notifiers = ?state.notifiers,
            "Big Red Button is ready"
        );
        let (shutdown, _) = watch::channel(false);
        Ok(Self {
            port,
            server,
            worker,
            follow_up_sync,
            shutdown,
            state,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests use it to reach the database).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that stops the server.
    pub fn handle(&self) -> AppHandle {
        AppHandle {
            server: self.server.handle(),
        }
    }

    /// Serves until the server is stopped (signal or handle), then stops the worker, letting
    /// in-flight deliveries finish within the configured grace period.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        // Nudges run wherever deliveries do: a process started without the worker (a web-only
        // replica) leaves both to the others.
        let nudges = (self.worker.is_some() && self.state.settings.nudges.enabled).then(|| {
            let rx = self.shutdown.subscribe();
            tokio::spawn(crate::services::nudges::run_loop(self.state.clone(), rx))
        });
        let worker = self.worker.map(|w| {
            let rx = self.shutdown.subscribe();
            tokio::spawn(w.run(rx))
        });
        let sync = self.follow_up_sync.map(|s| {
            let rx = self.shutdown.subscribe();
            tokio::spawn(s.run(rx))
        });
        let served = self.server.await;
        let _ = self.shutdown.send(true);
        if let Some(n) = nudges {
            let _ = n.await;
        }
        if let Some(w) = worker {
            let _ = w.await;
        }
        if let Some(s) = sync {
            let _ = s.await;
        }
        served.map_err(Into::into)
    }
}

async fn session_secret(settings: &Settings, db: &Db) -> anyhow::Result<String> {
    if let Some(var) = &settings.auth.session_secret_env {
        return std::env::var(var).map_err(|_| anyhow::anyhow!("environment variable {var} is not set"));
    }
    let generated = crate::web::session::random_token();
    let stored = db
        .write(move |conn| {
            crate::db::models::secret::get_or_insert(conn, "session_key", &generated).map_err(crate::db::DbError::from)
        })
        .await?;
    Ok(stored)
}

fn security_headers(https: bool) -> DefaultHeaders {
    let headers = if https {
        // Served over HTTPS: browsers must never fall back to plain HTTP for this site.
        DefaultHeaders::new().add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        DefaultHeaders::new()
    };
    headers
        .add((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
}

async fn not_found() -> actix_web::HttpResponse {
    crate::web::error_page(
        actix_web::http::StatusCode::NOT_FOUND,
        "There is nothing at this address.",
    )
}
