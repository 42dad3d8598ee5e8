//! A test projector that records every change it is given, so tests can count deliveries.

use cairn_eventlog::StoredChange;
use cairn_eventlog::projector::{ApplyError, Projector};
use deadpool_postgres::Transaction;

/// Appends one row per applied change to `test_applied` (no unique key: duplicates would show).
/// `fail_on` makes it fail deterministically on changes of that type (to exercise dead-lettering).
#[derive(Clone, Debug)]
pub struct Recorder {
    pub name: String,
    pub fail_on: Option<String>,
}

impl Recorder {
    pub fn new(name: &str) -> Self {
        Self { name: name.into(), fail_on: None }
    }

    pub async fn create_table(client: &deadpool_postgres::Object) {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS test_applied (projector text NOT NULL, position bigint NOT NULL, change_id uuid NOT NULL)",
            )
            .await
            .expect("create test_applied");
    }
}

impl Projector for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    async fn apply(&self, tx: &Transaction<'_>, changes: &[StoredChange]) -> Result<(), ApplyError> {
        for c in changes {
            if self.fail_on.as_deref() == Some(c.change_type.as_str()) {
                return Err(ApplyError::Invalid(format!("poison change at {}", c.position)));
            }
            tx.execute(
                "INSERT INTO test_applied (projector, position, change_id) VALUES ($1, $2, $3)",
                &[&self.name, &c.position, &c.change_id],
            )
            .await?;
        }
        Ok(())
    }
}
