//! Black-box tests: the real app on port 0, a fresh database per test (SQLite, or PostgreSQL when
//! TEST_DATABASE_URL is set), a real SMTP server on loopback.
// Test helpers may panic on any unexpected failure: that is how a test reports it.
#![allow(clippy::unwrap_used)]

mod helpers;
#[path = "../support/oidc_provider.rs"]
mod oidc_provider;
#[path = "../support/oidc_tokens.rs"]
mod oidc_tokens;

mod access;

mod alertmanager;
mod alertmanager_real;
mod api_v1;
mod browser;
mod cli;
mod closures;
mod crash;
mod declare;
mod delivery;
mod drills;
mod fanout;
mod faults;
mod follow_ups;
mod hostile;
mod insights;
mod jira;
mod keytimes;
mod lifecycle;
mod metrics;
mod nudges;
mod oidc;
mod pagers;
mod pages;
mod postgres;
mod postmortem;
mod roles;
mod routing;
mod slack;
mod slack_commands;
mod teams;
mod updates;
mod webhooks;
