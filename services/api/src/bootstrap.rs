//! Instance bootstrap: the host organisation, a site admin and its API key, the TLP taxonomy and
//! MISP's classic event templates, in one commit.

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
    let template_writes = seed_template_writes(settings, &client, org.id).await?;
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
            .chain(template_writes)
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

/// MISP's classic event templates ("Phishing E-mail", "Phishing E-mail with malicious attachment",
/// "Malware Report", "Indicator List"), as facts transcribed from MISP's install data.
const SEED_TEMPLATES: &str = include_str!("../seed/templates.json");

/// A seed template's stream: derived from its name, so every instance gives it the same uuid and a
/// second seeding finds it.
pub fn seed_template_uuid(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::from_u128(0xca1e_0000_0000_5000_8000_0000_0000_0004), name.as_bytes())
}

/// Writes creating the seed templates that do not exist yet, owned by `org_id` and shared.
///
/// # Errors
/// Database errors; a seed that does not parse or validate (a build defect).
async fn seed_template_writes(settings: &Settings, client: &deadpool_postgres::Object, org_id: i64) -> Result<Vec<StreamWrite>, BoxError> {
    use cairn_domain::event_template::{self, Element, Template, TemplateCommand, TemplateState};
    let path = settings.data_dir.join("pymisp/describeTypes.json");
    let Some(catalogue) = std::fs::read(&path)
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .and_then(|v| cairn_domain::types::TypeCatalogue::from_describe_types(&v).ok())
    else {
        tracing::warn!(path = %path.display(), "describeTypes.json not found: the seed event templates are not created");
        return Ok(Vec::new());
    };
    let admin_role = default_role(1).ok_or("the admin role is missing")?;
    let actor = Actor { org_id, ..Actor::system("cli:bootstrap") };
    let seeds: Vec<serde_json::Value> = serde_json::from_str(SEED_TEMPLATES)?;
    // On a fresh instance the elements keep MISP's own ids (`value_1` is "From address" as in MISP), and
    // the sequence moves past them; otherwise they get new ids.
    let seed_ids: Vec<i64> = seeds.iter().flat_map(|t| t["elements"].as_array().cloned().unwrap_or_default()).filter_map(|e| e["id"].as_i64()).collect();
    let last: i64 = client.query_one("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ids.template_element", &[]).await?.get(0);
    let keep_ids = !seed_ids.is_empty() && seed_ids.iter().all(|id| *id > last);
    let mut writes = Vec::new();
    for seed in seeds {
        let name = seed["name"].as_str().ok_or("seed template without a name")?.to_string();
        let uuid = seed_template_uuid(&name);
        if cairn_eventlog::store::stream_version(client, uuid).await?.is_some() {
            continue;
        }
        let mut elements = Vec::new();
        for e in seed["elements"].as_array().cloned().unwrap_or_default() {
            let mut e = e;
            if !(keep_ids && e["id"].is_i64()) {
                e["id"] = next_id(client, "template_element").await?.into();
            }
            elements.push(serde_json::from_value::<Element>(e)?);
        }
        let template = Template {
            id: next_id(client, "template").await?,
            uuid,
            name,
            description: seed["description"].as_str().unwrap_or_default().to_string(),
            org_id,
            share: seed["share"].as_bool().unwrap_or(true),
            tag_ids: Vec::new(),
            elements,
        };
        let changes = event_template::decide(&TemplateState::default(), &actor, &admin_role, &catalogue, TemplateCommand::Create { template })?;
        writes.push(StreamWrite {
            stream_id: uuid,
            stream_type: stream::EVENT_TEMPLATE.into(),
            expected: ExpectedVersion::NoStream,
            changes: to_new_changes(&changes),
        });
    }
    if keep_ids && !writes.is_empty() {
        let max = seed_ids.iter().copied().max().unwrap_or(0);
        client.query_one("SELECT setval('ids.template_element', $1)", &[&max]).await?;
    }
    Ok(writes)
}

/// Creates the seed event templates an already bootstrapped instance lacks (one commit); returns how
/// many were created.
///
/// # Errors
/// Database errors.
pub async fn seed_templates(settings: &Settings, pool: &deadpool_postgres::Pool) -> Result<usize, BoxError> {
    let client = pool.get().await?;
    let Some(host_org_id) = client.query_opt("SELECT host_org_id FROM rm.instance WHERE id = 1", &[]).await?.and_then(|r| r.get::<_, Option<i64>>(0)) else {
        return Ok(0);
    };
    let writes = seed_template_writes(settings, &client, host_org_id).await?;
    if writes.is_empty() {
        return Ok(0);
    }
    let n = writes.len();
    let actor = Actor::system("cli:bootstrap");
    let receipt = Appender::spawn(pool.clone(), None)
        .commit(CommitRequest { command_id: Uuid::new_v4(), command_type: "bootstrap.seed_templates".into(), actor: serde_json::to_value(&actor)?, writes })
        .await;
    match receipt {
        Ok(_) => Ok(n),
        Err(cairn_eventlog::StoreError::Conflict { .. }) => Ok(0), // seeded concurrently
        Err(e) => Err(e.into()),
    }
}
