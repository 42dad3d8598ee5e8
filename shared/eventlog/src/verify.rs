//! Chain verification: recompute every content hash, batch digest and chain link from position 1 and
//! compare with what is stored; the first commit that does not match is named.

use crate::hash::{self, ChangeFields, CommitFields};
use crate::model::Head;
use crate::store::{self, StoreError};
use deadpool_postgres::GenericClient;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub commits: i64,
    pub changes: i64,
    pub head: Head,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("commit {commit_seq} is not valid: {reason}")]
    BadCommit { commit_seq: i64, reason: String },
    #[error("the log head does not match the last commit: {0}")]
    BadHead(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COMMITS_PER_READ: i64 = 2_000;

/// Verifies the whole log. `progress(commits_done, total_commits)` is called after each chunk.
///
/// # Errors
/// [`VerifyError::BadCommit`] naming the first commit whose stored data does not reproduce its hashes.
pub async fn verify(
    client: &impl GenericClient,
    mut progress: impl FnMut(i64, i64),
) -> Result<VerifyReport, VerifyError> {
    let head = store::head(client).await?;
    let mut prev: Vec<u8> = hash::GENESIS.to_vec();
    let mut next_position = 1_i64;
    let mut after = 0_i64;
    let mut commits = 0_i64;
    let mut changes_seen = 0_i64;
    let mut scratch = Vec::new();
    loop {
        let batch = store::read_commits(client, after, COMMITS_PER_READ).await?;
        let Some(last_commit) = batch.last() else { break };
        let changes = store::read_range(client, next_position - 1, last_commit.last_position).await?;
        let mut iter = changes.iter().peekable();
        for commit in &batch {
            let bad = |reason: String| VerifyError::BadCommit { commit_seq: commit.commit_seq, reason };
            if commit.commit_seq != after + 1 {
                return Err(bad(format!("expected commit {} (commits are gap-free)", after + 1)));
            }
            if commit.first_position != next_position || commit.last_position < commit.first_position {
                return Err(bad(format!(
                    "covers positions {}..{} but the next position is {next_position}",
                    commit.first_position, commit.last_position
                )));
            }
            let mut hashes: Vec<Vec<u8>> = Vec::new();
            for position in commit.first_position..=commit.last_position {
                let Some(change) = iter.next_if(|c| c.position == position) else {
                    return Err(bad(format!("position {position} is missing")));
                };
                if change.commit_seq != commit.commit_seq {
                    return Err(bad(format!("position {position} names commit {}", change.commit_seq)));
                }
                let expected_metadata = serde_json::json!({
                    "command_id": commit.command_id,
                    "command_type": commit.command_type,
                    "actor": commit.actor,
                });
                if change.metadata != expected_metadata {
                    return Err(bad(format!("position {position}: metadata differs from its commit")));
                }
                let recomputed = hash::content_hash(
                    &ChangeFields {
                        stream_id: change.stream_id,
                        stream_type: &change.stream_type,
                        stream_version: change.stream_version,
                        change_id: change.change_id,
                        change_type: &change.change_type,
                        schema_version: change.schema_version,
                        recorded_at: &change.recorded_at,
                        payload: &change.payload,
                        metadata: &change.metadata,
                    },
                    &mut scratch,
                );
                if recomputed.as_slice() != change.content_hash.as_slice() {
                    return Err(bad(format!("position {position}: content hash mismatch (the change was altered)")));
                }
                hashes.push(change.content_hash.clone());
                changes_seen += 1;
            }
            let digest = hash::batch_digest(hashes.iter().map(|h| h.as_slice()));
            if digest.as_slice() != commit.batch_digest.as_slice() {
                return Err(bad("batch digest mismatch".into()));
            }
            let chain = hash::chain_hash(
                &prev,
                &CommitFields {
                    commit_seq: commit.commit_seq,
                    first_position: commit.first_position,
                    last_position: commit.last_position,
                    command_id: commit.command_id,
                    command_type: &commit.command_type,
                    actor: &commit.actor,
                    committed_at: &commit.committed_at,
                    batch_digest: &commit.batch_digest,
                },
                &mut scratch,
            );
            if chain.as_slice() != commit.chain_hash.as_slice() {
                return Err(bad("chain hash mismatch (the commit was altered or history rewritten)".into()));
            }
            prev = chain.to_vec();
            next_position = commit.last_position + 1;
            after = commit.commit_seq;
            commits += 1;
        }
        if iter.next().is_some() {
            return Err(VerifyError::BadCommit {
                commit_seq: after,
                reason: "changes exist beyond the last commit's positions".into(),
            });
        }
        progress(commits, head.commit_seq);
    }
    if head.commit_seq != commits || head.position != next_position - 1 || head.chain_hash != prev {
        return Err(VerifyError::BadHead(format!(
            "head says commit {} / position {} but the log ends at commit {commits} / position {}",
            head.commit_seq,
            head.position,
            next_position - 1
        )));
    }
    Ok(VerifyReport { commits, changes: changes_seen, head })
}
