//! Embedded migrations, one folder per backend with identical migration names.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{Backend, DbUrl};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applies every pending migration on the concrete connection for the URL's backend.
pub fn run(url: &DbUrl) -> anyhow::Result<()> {
    let applied = match url.backend {
        Backend::Sqlite => {
            let mut conn = diesel::SqliteConnection::establish(url.target())
                .map_err(|e| anyhow::anyhow!("cannot open SQLite database {}: {e}", url.redacted()))?;
            // WAL lets readers (the dashboard) work while the worker writes; it is a property of
            // the file, so setting it once here covers every later connection.
            conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")?;
            conn.run_pending_migrations(SQLITE)
                .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?
                .len()
        }
        Backend::Postgres => {
            let mut conn = diesel::PgConnection::establish(url.target())
                .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL {}: {e}", url.redacted()))?;
            // Two replicas starting together must not both run the same migration.
            conn.batch_execute("SELECT pg_advisory_lock(727274)")?;
            let r = conn.run_pending_migrations(POSTGRES).map(|v| v.len());
            conn.batch_execute("SELECT pg_advisory_unlock(727274)")?;
            r.map_err(|e| anyhow::anyhow!("migration failed: {e}"))?
        }
    };
    if applied > 0 {
        tracing::info!(
            migrations.applied = applied,
            db.backend = url.backend.name(),
            "database migrated"
        );
    }
    Ok(())
}
