//! The access rule of [`cairn_domain::acl`] as SQL conditions over the read models, for list and search
//! paths that cannot load rows one by one. The randomized oracle test checks that both agree.

use crate::filters::Sql;
use cairn_domain::acl::{AccessSettings, Viewer};

/// Rows of `rm.events` (aliased `e`) the viewer may see.
pub fn events(sql: &mut Sql, viewer: &Viewer, settings: &AccessSettings, e: &str) {
    if viewer.site_admin {
        return;
    }
    let org = sql.param(viewer.org_id);
    let sgs = sql.param(viewer.sharing_groups.iter().copied().collect::<Vec<i64>>());
    let published = if settings.unpublished_private { format!(" AND {e}.published") } else { String::new() };
    sql.and(format!(
        "({e}.org_id = {org} OR {e}.delegate_org_id = {org} OR ({e}.distribution IN (1, 2, 3){published}) \
         OR ({e}.distribution = 4 AND {e}.sharing_group_id = ANY({sgs}){published}))"
    ));
}

/// An element (object or attribute, aliased `el`) of a visible Event `e` passes its own check.
pub fn element(sql: &mut Sql, viewer: &Viewer, e: &str, el: &str) {
    if viewer.site_admin {
        return;
    }
    let org = sql.param(viewer.org_id);
    let sgs = sql.param(viewer.sharing_groups.iter().copied().collect::<Vec<i64>>());
    sql.and(format!(
        "({e}.org_id = {org} OR {el}.distribution IN (1, 2, 3, 5) OR ({el}.distribution = 4 AND {el}.sharing_group_id = ANY({sgs})))"
    ));
}

/// Attributes `a` (with their object joined as `o`, possibly NULL) of a visible Event `e`.
pub fn attributes(sql: &mut Sql, viewer: &Viewer, settings: &AccessSettings) {
    attributes_as(sql, viewer, settings, "e", "a", "o");
}

/// [`attributes`] with other aliases (Event `e`, attribute `a`, its object `o`).
pub fn attributes_as(sql: &mut Sql, viewer: &Viewer, settings: &AccessSettings, e: &str, a: &str, o: &str) {
    events(sql, viewer, settings, e);
    element(sql, viewer, e, a);
    if viewer.site_admin {
        return;
    }
    let org = sql.param(viewer.org_id);
    let sgs = sql.param(viewer.sharing_groups.iter().copied().collect::<Vec<i64>>());
    sql.and(format!(
        "({a}.object_id = 0 OR ({o}.id IS NOT NULL AND ({e}.org_id = {org} OR {o}.distribution IN (1, 2, 3, 5) \
         OR ({o}.distribution = 4 AND {o}.sharing_group_id = ANY({sgs})))))"
    ));
}
