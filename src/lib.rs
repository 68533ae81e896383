//! Big Red Button: self-hosted incident declaration with durable fan-out.
//!
//! Layers, outermost first: `web` (actix handlers and askama pages) calls `services` (use cases,
//! one transaction each), which use `domain` (pure rules), `routing` (pure) and `db` (diesel over
//! SQLite or PostgreSQL). The `outbox` worker delivers what services enqueued through `notifiers`.
//! See docs/ARCHITECTURE.md.

pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod notifiers;
pub mod outbox;
pub mod prometheus;
pub mod routing;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
