//! Instance bootstrap: the host organisation, a site admin and its API key, in one commit.

use cairn_domain::instance::{self, Bootstrap, InstanceCommand, InstanceState};
use cairn_domain::organisation::{self, Organisation, OrganisationCommand, OrganisationState};
use cairn_domain::role::default_role;
use cairn_domain::user::{self, User, UserCommand, UserState};
use cairn_domain::{Actor, Change, stream};
use cairn_eventlog::{Appender, CommitRequest, ExpectedVersion, NewChange, StreamWrite};
use cairn_platform::Settings;
use uuid::Uuid;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a first bootstrap created.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub org: Organisation,
    pub user: User,
    /// The clear admin API key (shown once).
    pub key: String,
    pub position: i64,
}

/// Stored form of domain changes.
pub fn to_new_changes(changes: &[Change]) -> Vec<NewChange> {
    changes
        .iter()
        .map(|c| {
            let r = c.to_record();
            NewChange::new(r.change_type, r.schema_version, r.payload)
        })
        .collect()
}

async fn next_id(client: &deadpool_postgres::Object, sequence: &str) -> Result<i64, BoxError> {
    Ok(client.query_one(&format!("SELECT nextval('ids.{sequence}')"), &[]).await?.get(0))
}

/// Bootstraps the instance unless it already is (then `Ok(None)`).
///
/// # Errors
/// Database errors.
pub async fn bootstrap(settings: &Settings, pool: &deadpool_postgres::Pool) -> Result<Option<Bootstrapped>, BoxError> {
    let client = pool.get().await?;
    if cairn_eventlog::store::stream_version(&client, stream::instance_stream()).await?.is_some() {
        return Ok(None);
    }
    let now = chrono::Utc::now().timestamp();
    let admin_role = default_role(1).ok_or("the admin role is missing")?;
    let actor = Actor::system("cli:bootstrap");
    let org = Organisation {
        id: next_id(&client, "organisation").await?,
        uuid: Uuid::new_v4(),
        name: settings.instance.host_org_name.clone(),
        description: "Automatically generated host organisation".into(),
        org_type: "ADMIN".into(),
        nationality: String::new(),
        sector: String::new(),
        contacts: String::new(),
        local: true,
        restricted_to_domain: vec![],
        landingpage: String::new(),
        created_by: 0,
        date_created: now,
        date_modified: now,
    };
    let user_id = next_id(&client, "user_account").await?;
    let user = User {
        id: user_id,
        uuid: Uuid::new_v4(),
        org_id: org.id,
        org_uuid: org.uuid,
        email: settings.instance.admin_email.clone(),
        role_id: 1,
        autoalert: false,
        contactalert: false,
        disabled: false,
        expiration: None,
        nids_sid: 4_000_000,
        gpgkey: String::new(),
        certif_public: String::new(),
        termsaccepted: true,
        change_pw: false,
        invited_by: 0,
        date_created: now,
        date_modified: now,
    };
    let key = crate::keys::generate();
    let key_record = crate::keys::record(next_id(&client, "auth_key").await?, Uuid::new_v4(), user_id, &key, now);
    let boot = Bootstrap {
        instance_uuid: Uuid::new_v4(),
        host_org_id: org.id,
        host_org_uuid: org.uuid,
        admin_user_id: user.id,
        admin_user_uuid: user.uuid,
    };
    let mut instance_changes = instance::decide(&InstanceState::default(), &admin_role, InstanceCommand::Bootstrap(boot))?;
    // TLP is what every sharing community uses first: its taxonomy starts enabled, with its tags.
    let tlp = crate::reference::load_taxonomies(&settings.data_dir.join("taxonomies")).into_iter().find(|t| t.namespace == "tlp");
    let mut tag_writes = Vec::new();
    if let Some(tlp) = &tlp {
        instance_changes.push(Change::TaxonomyEnabled { namespace: tlp.namespace.clone() });
        for entry in &tlp.entries {
            let mut t = cairn_domain::tag::Tag {
                id: next_id(&client, "tag").await?,
                name: entry.tag.clone(),
                colour: cairn_domain::tag::default_colour(&entry.tag),
                exportable: true,
                org_id: 0,
                user_id: 0,
                hide_tag: false,
                numerical_value: entry.numerical_value,
                is_galaxy: false,
                is_custom_galaxy: false,
                local_only: false,
            };
            if let Some(c) = entry.colour.as_ref().filter(|c| c.len() == 7 && c.starts_with('#')) {
                t.colour = c.to_lowercase();
            }
            let changes = cairn_domain::tag::decide(
                &cairn_domain::tag::TagState::default(),
                &admin_role,
                cairn_domain::tag::TagCommand::Create { tag: t.clone() },
            )?;
            tag_writes.push(StreamWrite {
                stream_id: stream::tag_stream(&t.name),
                stream_type: stream::TAG.into(),
                expected: ExpectedVersion::NoStream,
                changes: to_new_changes(&changes),
            });
        }
    } else {
        tracing::warn!("the tlp taxonomy was not found in the data directory; no taxonomy is enabled");
    }
    let org_changes = organisation::decide(
        &OrganisationState::default(),
        &admin_role,
        OrganisationCommand::Create { organisation: org.clone() },
    )?;
    let user_changes = user::decide(
        &UserState::default(),
        &actor,
        &admin_role,
        UserCommand::Create { user: user.clone(), key: key_record },
    )?;
    let appender = Appender::spawn(pool.clone(), None);
    let receipt = appender
        .commit(CommitRequest {
            command_id: Uuid::new_v4(),
            command_type: "bootstrap".into(),
            actor: serde_json::to_value(&actor)?,
            writes: [
                StreamWrite {
                    stream_id: stream::instance_stream(),
                    stream_type: stream::INSTANCE.into(),
                    expected: ExpectedVersion::NoStream,
                    changes: to_new_changes(&instance_changes),
                },
                StreamWrite {
                    stream_id: org.uuid,
                    stream_type: stream::ORGANISATION.into(),
                    expected: ExpectedVersion::NoStream,
                    changes: to_new_changes(&org_changes),
                },
                StreamWrite {
                    stream_id: user.uuid,
                    stream_type: stream::USER.into(),
                    expected: ExpectedVersion::NoStream,
                    changes: to_new_changes(&user_changes),
                },
            ]
            .into_iter()
            .chain(tag_writes)
            .collect(),
        })
        .await;
    match receipt {
        Ok(r) => Ok(Some(Bootstrapped { org, user, key, position: r.last_position })),
        // Another bootstrap won the race: the instance stream exists now.
        Err(cairn_eventlog::StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
