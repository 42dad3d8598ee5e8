//! Numbered SQL migrations (`migrations/NNNN_name.sql`), embedded at build time and applied in order.
//!
//! Applied files are recorded with their SHA-256; a recorded file whose text changed is refused (a landed
//! migration is never edited: write a new one). A session advisory lock serialises concurrent migrators.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration {name} was edited after it was applied (recorded sha256 {recorded}, file sha256 {current})")]
    Edited { name: String, recorded: String, current: String },
    #[error("the database has migration {0} that this build does not know (is the binary older than the database?)")]
    Unknown(String),
    #[error("migration {name} failed: {source}")]
    Failed { name: String, source: tokio_postgres::Error },
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// The embedded migrations, in order.
pub fn migrations() -> &'static [(&'static str, &'static str)] {
    MIGRATIONS
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Applies every migration not yet applied. Returns the names applied now.
///
/// # Errors
/// An edited or unknown migration, or a failing statement (its transaction is rolled back).
pub async fn migrate(client: &mut Client) -> Result<Vec<String>, MigrateError> {
    migrate_these(client, MIGRATIONS).await
}

/// Applies the given migrations (tests use this to show that an edited migration is refused).
///
/// # Errors
/// As [`migrate`].
pub async fn migrate_these(client: &mut Client, migrations: &[(&str, &str)]) -> Result<Vec<String>, MigrateError> {
    client.execute("SELECT pg_advisory_lock(4242001)", &[]).await?;
    let result = run_locked(client, migrations).await;
    client.execute("SELECT pg_advisory_unlock(4242001)", &[]).await?;
    result
}

async fn run_locked(client: &mut Client, migrations: &[(&str, &str)]) -> Result<Vec<String>, MigrateError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS public.cairn_migrations (
                 name text PRIMARY KEY, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let recorded: Vec<(String, String)> = client
        .query("SELECT name, sha256 FROM public.cairn_migrations ORDER BY name", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (name, sha) in &recorded {
        match migrations.iter().find(|(n, _)| n == name) {
            None => return Err(MigrateError::Unknown(name.clone())),
            Some((_, sql)) => {
                let current = sha256_hex(sql);
                if &current != sha {
                    return Err(MigrateError::Edited { name: name.clone(), recorded: sha.clone(), current });
                }
            }
        }
    }
    let mut applied = Vec::new();
    for (name, sql) in migrations {
        if recorded.iter().any(|(n, _)| n == name) {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await.map_err(|source| MigrateError::Failed { name: (*name).to_string(), source })?;
        tx.execute("INSERT INTO public.cairn_migrations (name, sha256) VALUES ($1, $2)", &[name, &sha256_hex(sql)])
            .await?;
        tx.commit().await?;
        tracing::info!(migration = name, "applied");
        applied.push((*name).to_string());
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_numbered_and_ordered() {
        let names: Vec<&str> = super::migrations().iter().map(|(n, _)| *n).collect();
        assert!(!names.is_empty());
        for (i, n) in names.iter().enumerate() {
            let number: usize = n[..4].parse().expect("NNNN_ prefix");
            assert_eq!(number, i + 1, "{n} out of sequence");
        }
    }
}
