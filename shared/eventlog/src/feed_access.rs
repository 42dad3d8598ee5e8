//! Who may read which feed over NATS: per-organisation feed users, their subject permissions, the users
//! file nats-server reads, and the client side a subscriber needs (connect options, consumer configs).
//!
//! One NATS user per organisation, `feed-<org uuid>`, may read its own audience
//! (`cairn.feed.org.<uuid>.>`) and `cairn.feed.public.>`, nothing else. The platform's services are the
//! user [`SERVICE_USER`] with every permission.
//!
//! Subject permissions are the only tool nats-server 2.9 gives inside one account, and its wildcards
//! match whole tokens only, so the permissions below are built around fixed names:
//! - **Inbox.** Replies (JetStream API answers, pulled messages) go to the requester's inbox. A user
//!   allowed `_INBOX.>` could read every other client's replies, org A's pulled feed messages
//!   included, so each feed user has its own prefix, [`inbox_prefix`], and may subscribe only below it.
//! - **Consumers.** `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` serves whoever asks: with `*` for the
//!   consumer, org B could pull from org A's consumer by name. Each organisation therefore has two fixed
//!   consumer names ([`durable_consumer`], [`replay_consumer`]) and may create, inspect, delete, pull and
//!   ack those only.
//! - **Filters.** A consumer may only be created through the filtered subject
//!   `$JS.API.CONSUMER.CREATE.<stream>.<consumer>.<filter>`; nats-server (2.9+) refuses a request whose
//!   body filter differs from the subject's (err 10131), so the permission on the subject bounds what
//!   the consumer can read. The unfiltered `$JS.API.CONSUMER.CREATE.<stream>` and
//!   `$JS.API.CONSUMER.DURABLE.CREATE.…` forms, direct get and message get are not allowed.
//!
//! What permissions cannot stop (docs/feeds.md, "Security model"): the reply subject of a request is not
//! checked, so a feed user can make the server publish JetStream answers (and its own feed messages)
//! on any subject of the account. That is a write (spoofing, or a stray message in a stream), never a
//! read of another audience.
//!
//! nats-server 2.9 cannot `include` inside an array, so the users file holds the whole
//! `users = [...]` list, the service user first; `nats/auth.conf` includes it inside `authorization {}`.
//! The file is ours: one user per line, parsed back by [`UsersFile::parse`] when an organisation's entry
//! changes.

use crate::subjects::{Audience, FEEDS_STREAM};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

/// The platform's own NATS user (every subject); `no_auth_user` in the local setup.
pub const SERVICE_USER: &str = "cairn";
// nats-server 2.9 cannot map `no_auth_user` to a user with a bcrypt password: it compares the stored
// hash with itself and refuses the connection. So the service user has no password while the services
// connect without credentials, and a bcrypt one once they are given CAIRN_NATS_PASSWORD (and
// `no_auth_user` is removed).
/// bcrypt cost of the password hashes (nats-server's own `nats server passwd` uses 11).
const BCRYPT_COST: u32 = 11;
const USER_PREFIX: &str = "feed-";

/// An organisation's feed user name: `feed-<org uuid>`.
pub fn user_name(org: Uuid) -> String {
    format!("{USER_PREFIX}{org}")
}

/// The organisation of a feed user name.
pub fn org_of_user(user: &str) -> Option<Uuid> {
    user.strip_prefix(USER_PREFIX).and_then(|u| Uuid::parse_str(u).ok())
}

/// The inbox prefix a feed user's client must use (`_INBOX.feed-<org uuid>`): it may subscribe below it only.
pub fn inbox_prefix(org: Uuid) -> String {
    format!("_INBOX.{}", user_name(org))
}

/// The organisation's durable consumer (explicit acks; resumes where it stopped).
pub fn durable_consumer(org: Uuid) -> String {
    user_name(org)
}

/// The organisation's replay consumer (no acks; recreated for each replay, dropped when idle).
pub fn replay_consumer(org: Uuid) -> String {
    format!("{}-replay", user_name(org))
}

/// The filter subjects an organisation may read: its own audience, then `public`.
pub fn readable_filters(org: Uuid) -> [String; 2] {
    [audience_filter(&Audience::Org(org)), audience_filter(&Audience::Public)]
}

/// `cairn.feed.<audience>.>`.
pub fn audience_filter(audience: &Audience) -> String {
    format!("cairn.feed.{}.>", audience.token())
}

/// Subjects the feed user may subscribe to.
pub fn subscribe_allow(org: Uuid) -> Vec<String> {
    let mut allow = readable_filters(org).to_vec();
    allow.push(format!("{}.>", inbox_prefix(org)));
    allow
}

/// Subjects the feed user may publish to: the JetStream API calls that consuming its own subjects
/// needs, on its own two consumers only.
pub fn publish_allow(org: Uuid) -> Vec<String> {
    let stream = FEEDS_STREAM;
    let mut allow = vec![format!("$JS.API.STREAM.INFO.{stream}")];
    for consumer in [durable_consumer(org), replay_consumer(org)] {
        for filter in readable_filters(org) {
            allow.push(format!("$JS.API.CONSUMER.CREATE.{stream}.{consumer}.{filter}"));
        }
        allow.push(format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"));
        allow.push(format!("$JS.API.CONSUMER.DELETE.{stream}.{consumer}"));
        allow.push(format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"));
        allow.push(format!("$JS.ACK.{stream}.{consumer}.>"));
    }
    allow
}

/// Errors reading, writing or hashing the users file.
#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path} line {line}: not a users file cairnctl wrote ({reason})")]
    Parse { path: String, line: usize, reason: &'static str },
    #[error("password hashing failed: {0}")]
    Hash(#[from] bcrypt::BcryptError),
}

/// A feed user's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedUser {
    /// The organisation's name when the entry was written (a comment for people reading the file).
    pub org_name: String,
    /// bcrypt hash (`$2a$…`) of the password.
    pub password_hash: String,
}

/// The users nats-server knows: the service user and one feed user per organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsersFile {
    /// bcrypt hash of the service user's password; `None` while services connect without credentials
    /// (`no_auth_user`), since nats-server 2.9 cannot map `no_auth_user` to a bcrypt-protected user.
    pub service_password_hash: Option<String>,
    pub feeds: BTreeMap<Uuid, FeedUser>,
}

impl UsersFile {
    /// A file with the service user only.
    pub fn new(service_password_hash: Option<String>) -> Self {
        Self { service_password_hash, feeds: BTreeMap::new() }
    }

    /// Adds or replaces an organisation's feed user.
    pub fn set_feed(&mut self, org: Uuid, org_name: &str, password_hash: String) {
        self.feeds.insert(org, FeedUser { org_name: org_name.to_string(), password_hash });
    }

    /// Removes an organisation's feed user; whether there was one.
    pub fn remove_feed(&mut self, org: Uuid) -> bool {
        self.feeds.remove(&org).is_some()
    }

    /// The nats-server configuration text: `users = [...]`, one user per line.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Cairn's NATS users, written by `cairnctl feed-credentials`: edits by hand are lost at its next write.\n\
             # nats-server reads this file inside `authorization { }` (nats/auth.conf); see docs/feeds.md.\n\
             users = [\n  # The platform's services: every subject.\n",
        );
        match &self.service_password_hash {
            Some(hash) => out.push_str(&format!("  {{user: {}, password: {}}}\n", quote(SERVICE_USER), quote(hash))),
            None => out.push_str(&format!("  {{user: {}}}\n", quote(SERVICE_USER))),
        }
        for (org, feed) in &self.feeds {
            out.push_str(&format!("  # org {}\n", comment_safe(&feed.org_name)));
            out.push_str(&format!(
                "  {{user: {}, password: {}, permissions: {{publish: {{allow: {}}}, subscribe: {{allow: {}}}}}}}\n",
                quote(&user_name(*org)),
                quote(&feed.password_hash),
                list(&publish_allow(*org)),
                list(&subscribe_allow(*org)),
            ));
        }
        out.push_str("]\n");
        out
    }

    /// Parses [`UsersFile::render`]'s output (`path` only names the file in errors). Permissions are
    /// not read back: they follow from the organisation and are rendered afresh at every write.
    ///
    /// # Errors
    /// A line that is not one this module writes, or no service user.
    pub fn parse(text: &str, path: &str) -> Result<Self, UsersFileError> {
        let err = |line: usize, reason| UsersFileError::Parse { path: path.to_string(), line, reason };
        let mut service = None;
        let mut feeds = BTreeMap::new();
        let mut org_name = String::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix("# org ") {
                org_name = name.to_string();
                continue;
            }
            if line.is_empty() || line.starts_with('#') || line == "users = [" || line == "]" {
                continue;
            }
            let rest = line.strip_prefix("{user: ").ok_or_else(|| err(i + 1, "unexpected line"))?;
            let (user, rest) = unquote(rest).ok_or_else(|| err(i + 1, "user name"))?;
            let hash = match rest.strip_prefix(", password: ") {
                Some(rest) => Some(unquote(rest).ok_or_else(|| err(i + 1, "password"))?.0),
                None if rest == "}" => None,
                None => return Err(err(i + 1, "unexpected user fields")),
            };
            if user == SERVICE_USER {
                service = Some(hash.map(str::to_string));
            } else {
                let hash = hash.ok_or_else(|| err(i + 1, "feed user without password"))?;
                let org = org_of_user(user).ok_or_else(|| err(i + 1, "unknown user name"))?;
                feeds.insert(org, FeedUser { org_name: std::mem::take(&mut org_name), password_hash: hash.to_string() });
            }
        }
        let service_password_hash = service.ok_or_else(|| err(0, "no service user"))?;
        Ok(Self { service_password_hash, feeds })
    }

    /// Reads the file; `None` when it does not exist.
    ///
    /// # Errors
    /// I/O errors other than "not found", or a file [`UsersFile::parse`] refuses.
    pub fn load(path: &Path) -> Result<Option<Self>, UsersFileError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(UsersFileError::Read { path: path.display().to_string(), source }),
        }
    }

    /// Writes the file atomically (a temporary file renamed over it), readable by its owner only.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, path: &Path) -> Result<(), UsersFileError> {
        let werr = |source| UsersFileError::Write { path: path.display().to_string(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(werr)?;
        }
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(werr)?;
        std::io::Write::write_all(&mut file, self.render().as_bytes()).map_err(werr)?;
        file.sync_all().map_err(werr)?;
        std::fs::rename(&tmp, path).map_err(werr)
    }
}

/// Makes sure the users file exists (scripts/run calls this before starting nats-server): creates it
/// with the service user only, or, when `service_password` is given and the file's service hash does
/// not match it, replaces that hash. Without a given password a new file's service user has none: the
/// services connect without credentials and nats-server maps them to it (`no_auth_user`).
///
/// # Errors
/// I/O, a file [`UsersFile::parse`] refuses, hashing.
pub fn ensure_users_file(path: &Path, service_password: Option<&str>) -> Result<UsersFile, UsersFileError> {
    let existing = UsersFile::load(path)?;
    let users = match (existing, service_password) {
        (Some(users), None) => return Ok(users),
        (Some(users), Some(pw))
            if users.service_password_hash.as_deref().is_some_and(|hash| password_matches(pw, hash)) =>
        {
            return Ok(users);
        }
        (Some(mut users), Some(pw)) => {
            users.service_password_hash = Some(hash_password(pw)?);
            users
        }
        (None, pw) => UsersFile::new(pw.map(hash_password).transpose()?),
    };
    users.save(path)?;
    Ok(users)
}

/// Gives an organisation's feed user a new random password (creating the user, and the file, when
/// missing) and returns the password; the previous one stops working once nats-server reloads.
///
/// # Errors
/// As [`ensure_users_file`].
pub fn issue_credentials(path: &Path, org: Uuid, org_name: &str) -> Result<String, UsersFileError> {
    let mut users = ensure_users_file(path, None)?;
    let password = random_password();
    users.set_feed(org, org_name, hash_password(&password)?);
    users.save(path)?;
    Ok(password)
}

/// Removes an organisation's feed user; whether it had one.
///
/// # Errors
/// As [`ensure_users_file`].
pub fn revoke_credentials(path: &Path, org: Uuid) -> Result<bool, UsersFileError> {
    let Some(mut users) = UsersFile::load(path)? else { return Ok(false) };
    let removed = users.remove_feed(org);
    if removed {
        users.save(path)?;
    }
    Ok(removed)
}

/// A random password: 32 alphanumerics (about 190 bits) from the OS-seeded CSPRNG.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..32).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

/// The bcrypt hash nats-server checks passwords against (`$2a$11$…`).
///
/// # Errors
/// bcrypt refused the input (a password over 72 bytes).
pub fn hash_password(password: &str) -> Result<String, UsersFileError> {
    Ok(bcrypt::hash_with_result(password, BCRYPT_COST)?.format_for_version(bcrypt::Version::TwoA))
}

/// Whether `password` matches a hash of [`hash_password`].
pub fn password_matches(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

/// Connect options for a feed user: its credentials and its own inbox prefix (the only inboxes it may
/// subscribe to). `None` when `user` is not a feed user name.
pub fn connect_options(user: &str, password: &str) -> Option<async_nats::ConnectOptions> {
    let org = org_of_user(user)?;
    Some(
        async_nats::ConnectOptions::with_user_and_password(user.to_string(), password.to_string())
            .custom_inbox_prefix(inbox_prefix(org))
            .name(user),
    )
}

/// Where a consumer starts in the feeds stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedStart {
    /// From the first message still in the stream.
    All,
    /// From a stream sequence.
    Sequence(u64),
    /// From the first message stored at or after this time.
    Time(chrono::DateTime<chrono::Utc>),
    /// Only messages stored from now on.
    New,
}

/// Which of an organisation's two consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerKind {
    /// [`durable_consumer`]: explicit acks, survives disconnects; `start` applies when it is created.
    Durable,
    /// [`replay_consumer`]: no acks, dropped by the server a minute after its last pull.
    Replay,
}

/// The pull consumer config for one of an organisation's consumers, filtered on `audience` (its own
/// organisation or `public`; anything else would be refused by nats-server's permissions).
///
/// # Errors
/// A start time out of range.
pub fn consumer_config(
    org: Uuid,
    audience: &Audience,
    kind: ConsumerKind,
    start: FeedStart,
) -> Result<pull::Config, async_nats::Error> {
    let deliver_policy = match start {
        FeedStart::All => DeliverPolicy::All,
        FeedStart::New => DeliverPolicy::New,
        FeedStart::Sequence(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        FeedStart::Time(t) => {
            let nanos = t.timestamp_nanos_opt().ok_or("start time out of range")?;
            DeliverPolicy::ByStartTime { start_time: async_nats::datetime::from_nanos(i128::from(nanos))? }
        }
    };
    let filter_subject = audience_filter(audience);
    Ok(match kind {
        // async-nats sends the filtered create subject only when the config names the consumer.
        ConsumerKind::Durable => pull::Config {
            durable_name: Some(durable_consumer(org)),
            filter_subject,
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(60),
            ..Default::default()
        },
        ConsumerKind::Replay => pull::Config {
            name: Some(replay_consumer(org)),
            filter_subject,
            deliver_policy,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        },
    })
}

fn quote(s: &str) -> String {
    // Values we write never hold quotes or backslashes (uuids, bcrypt hashes, subjects); escape anyway.
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn unquote(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix('"')?;
    let end = s.find('"')?;
    Some((&s[..end], &s[end + 1..]))
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "))
}

fn comment_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_file_parses_back_to_itself() {
        let mut users = UsersFile::new(Some("$2a$11$service".into()));
        users.set_feed(Uuid::from_u128(1), "ACME\nCorp", "$2a$11$one".into());
        users.set_feed(Uuid::from_u128(2), "Beta", "$2a$11$two".into());
        let text = users.render();
        let parsed = UsersFile::parse(&text, "users.conf").expect("parses");
        assert_eq!(parsed.service_password_hash.as_deref(), Some("$2a$11$service"));
        assert_eq!(parsed.feeds[&Uuid::from_u128(1)].org_name, "ACME Corp");
        assert_eq!(parsed.feeds[&Uuid::from_u128(2)].password_hash, "$2a$11$two");
        assert_eq!(parsed.render(), text);
        let without = UsersFile::new(None);
        assert_eq!(UsersFile::parse(&without.render(), "f").expect("parses"), without);
    }

    #[test]
    fn a_foreign_line_is_refused() {
        let text = "users = [\n  {user: \"cairn\", password: \"x\"}\n  {nkey: \"UABC\"}\n]\n";
        assert!(matches!(UsersFile::parse(text, "f"), Err(UsersFileError::Parse { line: 3, .. })));
        assert!(matches!(UsersFile::parse("users = [\n]\n", "f"), Err(UsersFileError::Parse { .. })));
    }

    #[test]
    fn permissions_name_only_the_organisations_own_subjects_and_consumers() {
        let org = Uuid::from_u128(7);
        let publish = publish_allow(org);
        assert!(publish.contains(&format!("$JS.API.CONSUMER.CREATE.CAIRN_FEEDS.feed-{org}.cairn.feed.org.{org}.>")));
        assert!(publish.contains(&format!("$JS.API.CONSUMER.MSG.NEXT.CAIRN_FEEDS.feed-{org}-replay")));
        assert!(publish.iter().all(|s| !s.contains('*') && (s.contains(&org.to_string()) || s.ends_with("CAIRN_FEEDS"))));
        assert_eq!(
            subscribe_allow(org),
            [format!("cairn.feed.org.{org}.>"), "cairn.feed.public.>".into(), format!("_INBOX.feed-{org}.>")]
        );
    }
}
