//! Every fact Cairn records. Each variant is named `<aggregate>.<fact>.v<N>`; a stored change is
//! `(change_type = "<aggregate>.<fact>", schema_version = N, payload = data)`.
//!
//! A shape that changes gets a new `…vN+1` variant name and an upcaster in [`upcast`] (the only place
//! old shapes are known), so replay of an old log always yields today's enum. Golden-JSON tests pin
//! the serialized form of every variant: renaming a field fails CI.

use crate::instance::Bootstrap;
use crate::organisation::Organisation;
use crate::user::{AuthKey, User};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Change {
    // instance
    #[serde(rename = "instance.bootstrapped.v1")]
    InstanceBootstrapped(Bootstrap),
    #[serde(rename = "instance.setting_changed.v1")]
    SettingChanged { name: String, value: Value },
    #[serde(rename = "instance.default_role_set.v1")]
    DefaultRoleSet { role_id: i64 },

    // organisation
    #[serde(rename = "organisation.created.v1")]
    OrganisationCreated(Organisation),
    #[serde(rename = "organisation.updated.v1")]
    OrganisationUpdated(Organisation),
    #[serde(rename = "organisation.deleted.v1")]
    OrganisationDeleted { id: i64, uuid: uuid::Uuid },

    // user
    #[serde(rename = "user.created.v1")]
    UserCreated(User),
    #[serde(rename = "user.updated.v1")]
    UserUpdated(User),
    #[serde(rename = "user.deleted.v1")]
    UserDeleted { id: i64 },
    #[serde(rename = "user.auth_key_created.v1")]
    AuthKeyCreated(AuthKey),
    #[serde(rename = "user.auth_key_revoked.v1")]
    AuthKeyRevoked { id: i64 },
}

/// A change in its stored form.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub change_type: String,
    pub schema_version: i16,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown change type {change_type} v{schema_version}")]
    Unknown { change_type: String, schema_version: i16 },
    #[error("change {change_type} v{schema_version} does not decode: {source}")]
    Shape { change_type: String, schema_version: i16, source: serde_json::Error },
}

impl Change {
    /// The stored form: type without the version suffix, the version, and the data.
    pub fn to_record(&self) -> Record {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        let tag = value.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        let (change_type, schema_version) = split_tag(&tag);
        let payload = value.get("data").cloned().unwrap_or(Value::Null);
        Record { change_type, schema_version, payload }
    }

    /// Reads a stored change, upcasting older versions first.
    ///
    /// # Errors
    /// Unknown change types or payloads that do not match the variant.
    pub fn from_record(change_type: &str, schema_version: i16, payload: &Value) -> Result<Self, DecodeError> {
        let (version, payload) = upcast(change_type, schema_version, payload.clone());
        let tagged = serde_json::json!({ "type": format!("{change_type}.v{version}"), "data": payload });
        serde_json::from_value(tagged).map_err(|source| {
            if source.to_string().starts_with("unknown variant") {
                DecodeError::Unknown { change_type: change_type.into(), schema_version }
            } else {
                DecodeError::Shape { change_type: change_type.into(), schema_version, source }
            }
        })
    }

    /// The stored change type (e.g. `organisation.created`).
    pub fn change_type(&self) -> String {
        self.to_record().change_type
    }
}

fn split_tag(tag: &str) -> (String, i16) {
    match tag.rsplit_once(".v") {
        Some((name, v)) => (name.to_string(), v.parse().unwrap_or(1)),
        None => (tag.to_string(), 1),
    }
}

/// The one place that knows old shapes: maps `(type, version, payload)` to the current version.
/// Each arm moves one version forward; the loop applies them until the current version is reached.
pub fn upcast(change_type: &str, schema_version: i16, payload: Value) -> (i16, Value) {
    // Each arm moves one version forward (e.g. `("attribute.added", 1) => attribute_added_v1_to_v2(p)`),
    // applied repeatedly until the current version is reached. No shape has changed yet.
    let _ = change_type;
    (schema_version, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn golden(change: Change, expected: Value) {
        let record = change.to_record();
        let tagged = json!({ "type": format!("{}.v{}", record.change_type, record.schema_version), "data": record.payload });
        assert_eq!(tagged, expected, "serialized form changed");
        let back = Change::from_record(&record.change_type, record.schema_version, &record.payload).expect("decodes");
        assert_eq!(back, change);
    }

    fn org() -> Organisation {
        Organisation {
            id: 1,
            uuid: Uuid::from_u128(1),
            name: "ORGNAME".into(),
            description: "d".into(),
            org_type: "ADMIN".into(),
            nationality: "LU".into(),
            sector: "CERT".into(),
            contacts: "c".into(),
            local: true,
            restricted_to_domain: vec!["example.org".into()],
            landingpage: "".into(),
            created_by: 0,
            date_created: 1_700_000_000,
            date_modified: 1_700_000_001,
        }
    }

    fn org_json() -> Value {
        json!({"id":1,"uuid":"00000000-0000-0000-0000-000000000001","name":"ORGNAME","description":"d","type":"ADMIN",
               "nationality":"LU","sector":"CERT","contacts":"c","local":true,"restricted_to_domain":["example.org"],
               "landingpage":"","created_by":0,"date_created":1700000000,"date_modified":1700000001})
    }

    fn user() -> User {
        User {
            id: 2,
            uuid: Uuid::from_u128(2),
            org_id: 1,
            org_uuid: Uuid::from_u128(1),
            email: "admin@admin.test".into(),
            role_id: 1,
            autoalert: false,
            contactalert: true,
            disabled: false,
            expiration: None,
            nids_sid: 4000000,
            gpgkey: "".into(),
            certif_public: "".into(),
            termsaccepted: true,
            change_pw: false,
            invited_by: 0,
            date_created: 5,
            date_modified: 6,
        }
    }

    fn user_json() -> Value {
        json!({"id":2,"uuid":"00000000-0000-0000-0000-000000000002","org_id":1,"org_uuid":"00000000-0000-0000-0000-000000000001",
               "email":"admin@admin.test","role_id":1,"autoalert":false,"contactalert":true,"disabled":false,"expiration":null,
               "nids_sid":4000000,"gpgkey":"","certif_public":"","termsaccepted":true,"change_pw":false,"invited_by":0,
               "date_created":5,"date_modified":6})
    }

    #[test]
    fn golden_instance_changes() {
        golden(
            Change::InstanceBootstrapped(Bootstrap {
                instance_uuid: Uuid::from_u128(9),
                host_org_id: 1,
                host_org_uuid: Uuid::from_u128(1),
                admin_user_id: 1,
                admin_user_uuid: Uuid::from_u128(2),
            }),
            json!({"type":"instance.bootstrapped.v1","data":{"instance_uuid":"00000000-0000-0000-0000-000000000009",
                   "host_org_id":1,"host_org_uuid":"00000000-0000-0000-0000-000000000001","admin_user_id":1,
                   "admin_user_uuid":"00000000-0000-0000-0000-000000000002"}}),
        );
        golden(
            Change::SettingChanged { name: "MISP.background_jobs".into(), value: json!(false) },
            json!({"type":"instance.setting_changed.v1","data":{"name":"MISP.background_jobs","value":false}}),
        );
        golden(Change::DefaultRoleSet { role_id: 3 }, json!({"type":"instance.default_role_set.v1","data":{"role_id":3}}));
    }

    #[test]
    fn golden_organisation_changes() {
        golden(Change::OrganisationCreated(org()), json!({"type":"organisation.created.v1","data":org_json()}));
        golden(Change::OrganisationUpdated(org()), json!({"type":"organisation.updated.v1","data":org_json()}));
        golden(
            Change::OrganisationDeleted { id: 1, uuid: Uuid::from_u128(1) },
            json!({"type":"organisation.deleted.v1","data":{"id":1,"uuid":"00000000-0000-0000-0000-000000000001"}}),
        );
    }

    #[test]
    fn golden_user_changes() {
        golden(Change::UserCreated(user()), json!({"type":"user.created.v1","data":user_json()}));
        golden(Change::UserUpdated(user()), json!({"type":"user.updated.v1","data":user_json()}));
        golden(Change::UserDeleted { id: 2 }, json!({"type":"user.deleted.v1","data":{"id":2}}));
        golden(
            Change::AuthKeyCreated(AuthKey {
                id: 3,
                uuid: Uuid::from_u128(3),
                user_id: 2,
                key_hash: "ab".into(),
                key_start: "abcd".into(),
                key_end: "wxyz".into(),
                comment: "".into(),
                expiration: Some(10),
                read_only: true,
                allowed_ips: vec!["10.0.0.0/8".into()],
                created: 4,
            }),
            json!({"type":"user.auth_key_created.v1","data":{"id":3,"uuid":"00000000-0000-0000-0000-000000000003","user_id":2,
                   "key_hash":"ab","key_start":"abcd","key_end":"wxyz","comment":"","expiration":10,"read_only":true,
                   "allowed_ips":["10.0.0.0/8"],"created":4}}),
        );
        golden(Change::AuthKeyRevoked { id: 3 }, json!({"type":"user.auth_key_revoked.v1","data":{"id":3}}));
    }

    #[test]
    fn unknown_types_are_reported_not_guessed() {
        let err = Change::from_record("nonsense.thing", 1, &json!({})).expect_err("unknown");
        assert!(matches!(err, DecodeError::Unknown { .. }), "{err}");
    }
}
