//! Directory read models: organisations, users, API keys, instance settings, roles, event templates.

use cairn_domain::Change;
use cairn_eventlog::projector::ApplyError;
use deadpool_postgres::Transaction;
use serde_json::Value;

fn doc<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Applies one change to the directory tables (changes of other aggregates are ignored).
///
/// # Errors
/// Database errors.
pub async fn apply(tx: &Transaction<'_>, stream_id: uuid::Uuid, change: &Change) -> Result<(), ApplyError> {
    match change {
        Change::InstanceBootstrapped(b) => {
            tx.execute(
                "UPDATE rm.instance SET instance_uuid = $1, host_org_id = $2, admin_user_id = $3 WHERE id = 1",
                &[&b.instance_uuid, &b.host_org_id, &b.admin_user_id],
            )
            .await?;
        }
        Change::SettingChanged { name, value, .. } => {
            tx.execute(
                "INSERT INTO rm.settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
                &[name, value],
            )
            .await?;
        }
        Change::TaxonomyEnabled { namespace } => {
            tx.execute("INSERT INTO rm.taxonomies (namespace) VALUES ($1) ON CONFLICT DO NOTHING", &[namespace]).await?;
        }
        Change::TaxonomyDisabled { namespace } => {
            tx.execute("DELETE FROM rm.taxonomies WHERE namespace = $1", &[namespace]).await?;
        }
        Change::TaxonomyRequiredSet { namespace, required } => {
            tx.execute("UPDATE rm.taxonomies SET required = $2 WHERE namespace = $1", &[namespace, required]).await?;
        }
        Change::RegexpAdded(r) | Change::RegexpUpdated(r) => {
            tx.execute(
                "INSERT INTO rm.regexps (id, regexp, replacement, type) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET regexp = $2, replacement = $3, type = $4",
                &[&r.id, &r.regexp, &r.replacement, &r.attr_type],
            )
            .await?;
        }
        Change::WarninglistEnabled { key } => {
            tx.execute("INSERT INTO rm.warninglists (key) VALUES ($1) ON CONFLICT DO NOTHING", &[key]).await?;
        }
        Change::WarninglistDisabled { key } => {
            tx.execute("DELETE FROM rm.warninglists WHERE key = $1", &[key]).await?;
        }
        Change::TemplateCreated(t) | Change::TemplateUpdated(t) => {
            tx.execute(
                "INSERT INTO rm.event_templates (id, uuid, org_id, share, name, doc) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET org_id = $3, share = $4, name = $5, doc = $6",
                &[&t.id, &t.uuid, &t.org_id, &t.share, &t.name, &doc(t)],
            )
            .await?;
        }
        Change::TemplateDeleted { id } => {
            tx.execute("DELETE FROM rm.event_templates WHERE id = $1", &[id]).await?;
        }
        Change::RoleAdded(r) | Change::RoleUpdated(r) => {
            tx.execute("INSERT INTO rm.roles (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = $2", &[&r.id, &doc(r)]).await?;
        }
        Change::RoleDeleted { id } => {
            tx.execute("DELETE FROM rm.roles WHERE id = $1", &[id]).await?;
        }
        Change::ServerAdded(s) | Change::ServerUpdated(s) => {
            tx.execute("INSERT INTO rm.servers (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = $2", &[&s.id, &doc(s)]).await?;
        }
        Change::ServerDeleted { id } => {
            tx.execute("DELETE FROM rm.servers WHERE id = $1", &[id]).await?;
        }
        Change::RegexpDeleted { id } => {
            tx.execute("DELETE FROM rm.regexps WHERE id = $1", &[id]).await?;
        }
        Change::SharingGroupCreated(g) | Change::SharingGroupUpdated(g) => {
            tx.execute(
                "INSERT INTO rm.sharing_groups (id, uuid, name, releasability, description, org_id, org_uuid, active, roaming, local, \
                 created, modified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (id) DO UPDATE SET name = $3, releasability = $4, description = $5, active = $8, roaming = $9, \
                 local = $10, modified = $12",
                &[&g.id, &g.uuid, &g.name, &g.releasability, &g.description, &g.org_id, &g.org_uuid, &g.active, &g.roaming, &g.local, &g.created, &g.modified],
            )
            .await?;
        }
        Change::SharingGroupOrgAdded(o) => {
            tx.execute(
                "INSERT INTO rm.sharing_group_orgs (sharing_group_id, org_id, extend) \
                 SELECT id, $2, $3 FROM rm.sharing_groups WHERE uuid = $1 \
                 ON CONFLICT (sharing_group_id, org_id) DO UPDATE SET extend = $3",
                &[&stream_id, &o.org_id, &o.extend],
            )
            .await?;
        }
        Change::SharingGroupOrgRemoved { org_id } => {
            tx.execute(
                "DELETE FROM rm.sharing_group_orgs WHERE org_id = $2 AND sharing_group_id = (SELECT id FROM rm.sharing_groups WHERE uuid = $1)",
                &[&stream_id, org_id],
            )
            .await?;
        }
        Change::SharingGroupServerAdded(v) => {
            tx.execute(
                "INSERT INTO rm.sharing_group_servers (sharing_group_id, server_id, all_orgs) \
                 SELECT id, $2, $3 FROM rm.sharing_groups WHERE uuid = $1 \
                 ON CONFLICT (sharing_group_id, server_id) DO UPDATE SET all_orgs = $3",
                &[&stream_id, &v.server_id, &v.all_orgs],
            )
            .await?;
        }
        Change::SharingGroupServerRemoved { server_id } => {
            tx.execute(
                "DELETE FROM rm.sharing_group_servers WHERE server_id = $2 AND sharing_group_id = (SELECT id FROM rm.sharing_groups WHERE uuid = $1)",
                &[&stream_id, server_id],
            )
            .await?;
        }
        Change::SharingGroupDeleted { id } => {
            tx.execute("UPDATE rm.sharing_groups SET deleted = true WHERE id = $1", &[id]).await?;
            tx.execute("DELETE FROM rm.sharing_group_orgs WHERE sharing_group_id = $1", &[id]).await?;
            tx.execute("DELETE FROM rm.sharing_group_servers WHERE sharing_group_id = $1", &[id]).await?;
        }
        Change::DefaultRoleSet { role_id } => {
            tx.execute("UPDATE rm.instance SET default_role_id = $1 WHERE id = 1", &[role_id]).await?;
        }
        Change::OrganisationCreated(o) | Change::OrganisationUpdated(o) => {
            tx.execute(
                "INSERT INTO rm.organisations (id, uuid, name, local, deleted, doc) VALUES ($1, $2, $3, $4, false, $5) \
                 ON CONFLICT (id) DO UPDATE SET name = $3, local = $4, doc = $5",
                &[&o.id, &o.uuid, &o.name, &o.local, &doc(o)],
            )
            .await?;
        }
        Change::OrganisationDeleted { id, .. } => {
            tx.execute("UPDATE rm.organisations SET deleted = true WHERE id = $1", &[id]).await?;
        }
        Change::UserCreated(u) | Change::UserUpdated(u) => {
            tx.execute(
                "INSERT INTO rm.users (id, uuid, org_id, email, role_id, disabled, deleted, doc) \
                 VALUES ($1, $2, $3, $4, $5, $6, false, $7) \
                 ON CONFLICT (id) DO UPDATE SET org_id = $3, email = $4, role_id = $5, disabled = $6, doc = $7",
                &[&u.id, &u.uuid, &u.org_id, &u.email, &u.role_id, &u.disabled, &doc(u)],
            )
            .await?;
        }
        Change::UserDeleted { id } => {
            tx.execute("UPDATE rm.users SET deleted = true WHERE id = $1", &[id]).await?;
            tx.execute("UPDATE rm.auth_keys SET revoked = true WHERE user_id = $1", &[id]).await?;
        }
        Change::AuthKeyCreated(k) => {
            tx.execute(
                "INSERT INTO rm.auth_keys (id, uuid, user_id, key_hash, revoked, doc) \
                 VALUES ($1, $2, $3, $4, false, $5) ON CONFLICT (id) DO NOTHING",
                &[&k.id, &k.uuid, &k.user_id, &k.key_hash, &doc(k)],
            )
            .await?;
        }
        Change::AuthKeyRevoked { id } => {
            tx.execute("UPDATE rm.auth_keys SET revoked = true WHERE id = $1", &[id]).await?;
        }
        _ => {}
    }
    Ok(())
}
