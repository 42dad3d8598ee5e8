//! The correlation tables written from a folded log ([`Fold`]): one binary `COPY` per table, into
//! tables whose indexes the caller took off ([`cairn_eventlog::bulk::Indexes`]). The rows are those
//! [`crate::apply_decoded`] leaves for the same log; `cairnctl rebuild` compares the two.

use cairn_domain::correlation;
use cairn_domain::event::Attribute;
use cairn_domain::event::fold::Fold;
use cairn_eventlog::bulk::{BoxError, Copy};
use std::net::IpAddr;
use tokio_postgres::Transaction;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// The tables [`write`] fills (`exclusions` is written by the incremental code).
pub const TABLES: &[&str] = &["events", "objects", "holders"];

/// An `inet` value from its text (`address` or `address/bits`), in PostgreSQL's binary form.
#[derive(Debug)]
struct Inet<'a>(&'a str);

impl Inet<'_> {
    /// A sort key close to PostgreSQL's order of `inet` (family, address, prefix length).
    fn order(text: &str) -> (u8, u128, u8) {
        let (address, bits) = text.split_once('/').unwrap_or((text, ""));
        match address.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => (4, u128::from(u32::from(a)), bits.parse().unwrap_or(32)),
            Ok(IpAddr::V6(a)) => (6, u128::from(a), bits.parse().unwrap_or(128)),
            Err(_) => (0, 0, 0),
        }
    }
}

impl ToSql for Inet<'_> {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let (address, bits) = match self.0.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>()?)),
            None => (self.0, None),
        };
        let (family, octets): (u8, Vec<u8>) = match address.parse::<IpAddr>()? {
            IpAddr::V4(a) => (2, a.octets().to_vec()),
            IpAddr::V6(a) => (3, a.octets().to_vec()),
        };
        let max = (octets.len() * 8) as u8;
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(format!("{:?} is not an inet value", self.0).into());
        }
        out.extend_from_slice(&[family, bits, 0, octets.len() as u8]);
        out.extend_from_slice(&octets);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INET
    }

    to_sql_checked!();
}

/// One row of `holders`.
async fn holder(holders: &mut Copy, a: &Attribute, k: &correlation::Key, ip: Option<Inet<'_>>) -> Result<(), BoxError> {
    holders
        .row(&[
            &a.id,
            &k.half,
            &k.key,
            &a.event_id,
            &a.object_id,
            &a.attr_type,
            &a.value(),
            &i16::from(a.distribution),
            &a.sharing_group_id,
            &a.deleted,
            &a.disable_correlation,
            &ip,
        ])
        .await
}

/// Writes the live Events of `fold` into `{schema}.events`, `objects` and `holders`. Returns the rows
/// written.
///
/// # Errors
/// Database errors, and an IP attribute whose value is not an address.
pub async fn write(tx: &Transaction<'_>, schema: &str, fold: &Fold) -> Result<u64, BoxError> {
    let live = fold.live_in_order();
    let mut rows = 0;

    let mut events = Copy::start(
        tx,
        &format!("{schema}.events"),
        &[
            "id", "uuid", "info", "date", "threat_level_id", "analysis", "timestamp", "org_id", "orgc_id", "distribution",
            "sharing_group_id", "published", "disable_correlation", "delegate_org_id",
        ],
        &[
            Type::INT8, Type::UUID, Type::TEXT, Type::TEXT, Type::INT2, Type::INT2, Type::INT8, Type::INT8, Type::INT8, Type::INT2,
            Type::INT8, Type::BOOL, Type::BOOL, Type::INT8,
        ],
    )
    .await?;
    for f in &live {
        let m = f.meta;
        events
            .row(&[
                &m.id,
                &m.uuid,
                &m.info,
                &m.date,
                &i16::from(m.threat_level_id),
                &i16::from(m.analysis),
                &m.timestamp,
                &m.org_id,
                &m.orgc_id,
                &i16::from(m.distribution),
                &m.sharing_group_id,
                &m.published,
                &m.disable_correlation,
                &f.delegate_org_id(),
            ])
            .await?;
    }
    rows += events.finish().await?;

    let mut objects = Copy::start(
        tx,
        &format!("{schema}.objects"),
        &["id", "event_id", "distribution", "sharing_group_id", "deleted"],
        &[Type::INT8, Type::INT8, Type::INT2, Type::INT8, Type::BOOL],
    )
    .await?;
    for f in &live {
        for o in f.state.objects.values() {
            objects.row(&[&o.id, &o.event_id, &i16::from(o.distribution), &o.sharing_group_id, &o.deleted]).await?;
        }
    }
    rows += objects.finish().await?;

    let mut holders = Copy::start(
        tx,
        &format!("{schema}.holders"),
        &[
            "attribute_id", "half", "key", "event_id", "object_id", "type", "value", "distribution", "sharing_group_id", "deleted",
            "disable_correlation", "ip",
        ],
        &[
            Type::INT8, Type::INT2, Type::TEXT, Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::INT2, Type::INT8, Type::BOOL,
            Type::BOOL, Type::INET,
        ],
    )
    .await?;
    // Rows with an IP go last, in address order: the GiST index over them builds faster from
    // neighbouring addresses.
    let mut with_ip = Vec::new();
    for f in &live {
        for a in f.state.attributes.values() {
            for k in correlation::keys(a) {
                if k.ip.is_some() {
                    with_ip.push((a, k));
                } else {
                    holder(&mut holders, a, &k, None).await?;
                }
            }
        }
    }
    with_ip.sort_by_cached_key(|(_, k)| k.ip.as_deref().map(Inet::order));
    for (a, k) in &with_ip {
        holder(&mut holders, a, k, k.ip.as_deref().map(Inet)).await?;
    }
    rows += holders.finish().await?;
    Ok(rows)
}
