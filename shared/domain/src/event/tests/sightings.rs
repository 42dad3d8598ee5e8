//! Given/when/then tests of the sightings aggregate ([`crate::sighting`]): its own stream per Event,
//! decided against the Event's folded state (read only), in the world of the parent module.

use super::*;
use crate::sighting::{
    self, EXPIRATION, FALSE_POSITIVE, SIGHTING, Sighting, SightingCommand, SightingContext, SightingDraft, SightingRef, SightingState,
};

fn sightings_given(history: &[Change]) -> SightingState {
    history.iter().fold(SightingState::default(), sighting::evolve)
}

fn sight(sightings: &SightingState, event: &EventState, who: &Who, command: SightingCommand) -> Result<Vec<Change>, DomainError> {
    let ctx = SightingContext { actor: &who.actor, role: &who.role, now: NOW, viewer: &who.viewer, access: who.access };
    sighting::decide(sightings, event, &ctx, command)
}

fn sighting_uuid(n: u128) -> Uuid {
    Uuid::from_u128(0x5100_0000 + n)
}

fn draft(id: i64, attribute: ElementRef, sighting_type: u8) -> SightingDraft {
    SightingDraft { id, uuid: sighting_uuid(id as u128), attribute, sighting_type, source: "Testcases".into(), date_sighting: None, org_id: None }
}

fn add(drafts: Vec<SightingDraft>) -> SightingCommand {
    SightingCommand::Add { sightings: drafts }
}

fn recorded(id: i64, attribute: &Attribute, org_id: i64, user_id: i64, sighting_type: u8) -> Change {
    Change::SightingAdded(Sighting {
        id,
        uuid: sighting_uuid(id as u128),
        event_id: EVENT_ID,
        event_uuid: EVENT_UUID,
        attribute_id: attribute.id,
        attribute_uuid: attribute.uuid,
        org_id,
        user_id,
        sighting_type,
        source: "Testcases".into(),
        date_sighting: NOW,
    })
}

fn ok(result: Result<Vec<Change>, DomainError>) -> Vec<Change> {
    match result {
        Ok(c) => c,
        Err(e) => panic!("expected the sightings to be accepted, refused: {e:?}"),
    }
}

fn err(result: Result<Vec<Change>, DomainError>) -> DomainError {
    match result {
        Ok(c) => panic!("expected a refusal, got {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn another_organisation_sights_a_visible_attribute_by_id_or_uuid() {
    let event = given(&event_with_attributes());
    let none = SightingState::default();

    let changes = ok(sight(&none, &event, &outsider(), add(vec![draft(1, ElementRef::Id(1), SIGHTING)])));
    assert_eq!(changes, [recorded(1, &ip1(), OTHER_ORG, 20, SIGHTING)]);

    let by_uuid = SightingDraft { date_sighting: Some(T0), source: "  sensor-7 ".into(), ..draft(2, ElementRef::Uuid(attribute_uuid(2)), FALSE_POSITIVE) };
    let changes = ok(sight(&none, &event, &outsider(), add(vec![by_uuid])));
    assert!(matches!(&changes[..], [Change::SightingAdded(s)] if s.attribute_id == 2 && s.date_sighting == T0 && s.source == "sensor-7" && s.sighting_type == 1));
}

#[test]
fn a_user_without_perm_sighting_cannot_sight() {
    let event = given(&event_with_attributes());
    assert_eq!(
        err(sight(&SightingState::default(), &event, &colleague_read_only(), add(vec![draft(1, ElementRef::Id(1), SIGHTING)]))),
        forbidden(NO_PERMISSION_FUNCTIONALITY)
    );
}

#[test]
fn sighting_an_invisible_deleted_or_unknown_attribute_is_refused_whole() {
    let org_only = Attribute { distribution: 0, ..ip1() };
    let event = given(&[community_event(), added(org_only), added(domain2()), Change::AttributeDeleted { id: 2, hard: false, timestamp: T0 }]);
    let none = SightingState::default();
    for target in [ElementRef::Id(1), ElementRef::Id(2), ElementRef::Id(9), ElementRef::Uuid(attribute_uuid(9))] {
        assert_eq!(err(sight(&none, &event, &outsider(), add(vec![draft(1, target, SIGHTING)]))), not_found("Invalid attribute."));
    }
    assert_eq!(
        err(sight(&none, &given(&[org_only_event(), added(ip1())]), &outsider(), add(vec![draft(1, ElementRef::Id(1), SIGHTING)]))),
        not_found("Invalid event.")
    );
    // the owner sees its org-only attribute and may sight it
    ok(sight(&none, &event, &creator(), add(vec![draft(1, ElementRef::Id(1), SIGHTING)])));
}

#[test]
fn the_target_of_a_pending_delegation_may_sight_the_event() {
    let mut history = vec![org_only_event(), added(ip1())];
    history.push(Change::DelegationRequested(Delegation {
        id: 70,
        event_id: EVENT_ID,
        org_id: OTHER_ORG,
        requester_org_id: HOST_ORG,
        requester_user_id: 11,
        message: String::new(),
        distribution: -1,
        sharing_group_id: 0,
        timestamp: T0,
    }));
    ok(sight(&SightingState::default(), &given(&history), &outsider(), add(vec![draft(1, ElementRef::Id(1), SIGHTING)])));
}

#[test]
fn an_unknown_type_or_an_overlong_source_is_refused() {
    let event = given(&event_with_attributes());
    let none = SightingState::default();
    assert!(matches!(err(sight(&none, &event, &outsider(), add(vec![draft(1, ElementRef::Id(1), 3)]))), DomainError::Invalid { field, .. } if field == "type"));
    let long = SightingDraft { source: "s".repeat(256), ..draft(1, ElementRef::Id(1), SIGHTING) };
    assert_eq!(err(sight(&none, &event, &outsider(), add(vec![long]))), invalid("source", "Too long (255 characters at most)."));
}

#[test]
fn a_sighting_whose_uuid_is_known_is_skipped() {
    let event = given(&event_with_attributes());
    let state = sightings_given(&[recorded(1, &ip1(), OTHER_ORG, 20, SIGHTING)]);
    let again = SightingDraft { id: 5, ..draft(1, ElementRef::Id(1), SIGHTING) };
    assert_eq!(ok(sight(&state, &event, &outsider(), add(vec![again.clone(), draft(2, ElementRef::Id(2), SIGHTING)]))).len(), 1);
    // twice in one request: once
    let none = SightingState::default();
    assert_eq!(ok(sight(&none, &event, &outsider(), add(vec![again.clone(), again]))).len(), 1);
}

#[test]
fn a_new_expiration_replaces_the_same_organisations_previous_one_on_that_attribute() {
    let event = given(&event_with_attributes());
    let state = sightings_given(&[
        recorded(1, &ip1(), OTHER_ORG, 20, EXPIRATION),
        recorded(2, &ip1(), HOST_ORG, 10, EXPIRATION),
        recorded(3, &domain2(), OTHER_ORG, 20, EXPIRATION),
        recorded(4, &ip1(), OTHER_ORG, 20, SIGHTING),
    ]);

    let changes = ok(sight(&state, &event, &outsider(), add(vec![draft(5, ElementRef::Id(1), EXPIRATION)])));

    assert_eq!(changes, [Change::SightingDeleted { id: 1, by_org_id: OTHER_ORG, by_user_id: 20, timestamp: NOW }, recorded(5, &ip1(), OTHER_ORG, 20, EXPIRATION)]);
    let after = changes.iter().fold(state, sighting::evolve);
    assert_eq!(after.sightings.keys().copied().collect::<Vec<_>>(), [2, 3, 4, 5]);
}

#[test]
fn a_sighting_is_deleted_by_its_organisation_with_modify_rights_or_a_site_admin() {
    let event = given(&event_with_attributes());
    let state = sightings_given(&[recorded(1, &ip1(), OTHER_ORG, 20, SIGHTING)]);
    let delete = || SightingCommand::Delete { id: 1 };
    assert_eq!(ok(sight(&state, &event, &outsider(), delete())), [Change::SightingDeleted { id: 1, by_org_id: OTHER_ORG, by_user_id: 20, timestamp: NOW }]);
    ok(sight(&state, &event, &site_admin(), delete()));
    assert_eq!(err(sight(&state, &event, &creator(), delete())), forbidden(NO_PERMISSION_FUNCTIONALITY), "not the event owner's to delete");
    assert_eq!(err(sight(&state, &event, &colleague_read_only(), delete())), forbidden(NO_PERMISSION_FUNCTIONALITY));
    assert_eq!(err(sight(&state, &event, &outsider(), SightingCommand::Delete { id: 2 })), not_found("Invalid sighting."));
}

#[test]
fn the_sightings_state_knows_who_reported() {
    let state = sightings_given(&[recorded(1, &ip1(), OTHER_ORG, 20, SIGHTING), recorded(2, &ip1(), THIRD, 40, FALSE_POSITIVE)]);
    assert!(state.reported_by(OTHER_ORG) && state.reported_by(THIRD) && !state.reported_by(HOST_ORG));
    assert_eq!(state.by_uuid(&sighting_uuid(2)), Some(&SightingRef { uuid: sighting_uuid(2), attribute_id: 1, org_id: THIRD, sighting_type: 1 }));
    let state = sighting::evolve(state, &Change::SightingDeleted { id: 2, by_org_id: THIRD, by_user_id: 40, timestamp: NOW });
    assert!(!state.reported_by(THIRD) && state.by_uuid(&sighting_uuid(2)).is_none());
    // Event changes are not sightings
    assert_eq!(sighting::evolve(state.clone(), &community_event()), state);
}

const THIRD: i64 = 3;
