//! The one place that decides who may see or do what. Pure functions of the caller and the facts
//! the repository looked up; no I/O.
//!
//! Rules (upstream's role table, enforced on every route, with its holes closed):
//! - superuser: everything;
//! - manager of an organization: its members and roles, its sub-organizations, its patients and studies;
//! - member: its patients and studies;
//! - viewer: read only;
//! - a patient: only themself.

use crate::domain::Caller;
use crate::domain::model::{Id, ROOT_ORG_ID, Role};

/// The role string upstream reports for a caller in an organization.
pub fn role_label(c: &Caller, org: Id) -> Option<&'static str> {
    if c.is_superuser() { Some("super_user") } else { c.role_in(org).map(Role::as_str) }
}

/// May read an organization's internal lists (its patients, studies, members).
pub fn is_in_org(c: &Caller, org: Id) -> bool {
    c.is_superuser() || c.role_in(org).is_some()
}

/// Patients and studies of the organization can be created, changed and removed.
pub fn may_manage_patients_and_studies(c: &Caller, org: Id) -> bool {
    c.is_superuser() || matches!(c.role_in(org), Some(Role::Manager | Role::Member))
}

/// Practitioners and their roles in the organization can be managed.
pub fn may_manage_members(c: &Caller, org: Id) -> bool {
    c.is_superuser() || c.role_in(org) == Some(Role::Manager)
}

/// A new organization may be created under `parent` (ROOT or none = top level: superuser only).
pub fn may_create_org(c: &Caller, parent: Option<Id>) -> bool {
    match parent {
        None | Some(ROOT_ORG_ID) => c.is_superuser(),
        Some(p) => may_manage_members(c, p),
    }
}

/// An organization may be renamed or deleted: by a manager of its parent, or of itself when it
/// is top level (as upstream).
pub fn may_edit_org(c: &Caller, org: Id, parent: Option<Id>) -> bool {
    if c.is_superuser() {
        return true;
    }
    match parent {
        None => false, // ROOT
        Some(ROOT_ORG_ID) => c.role_in(org) == Some(Role::Manager),
        Some(p) => c.role_in(p) == Some(Role::Manager),
    }
}

/// May see a patient (their record, consents, invitations): the patient themself, a superuser,
/// or a practitioner with any role in one of the patient's organizations.
pub fn may_see_patient(c: &Caller, patient: Id, patient_orgs: &[Id]) -> bool {
    c.patient_id() == Some(patient) || c.is_superuser() || patient_orgs.iter().any(|o| c.role_in(*o).is_some())
}

/// May change a patient's record or invite them: superuser, or member/manager in one of their orgs.
pub fn may_manage_patient(c: &Caller, patient_orgs: &[Id]) -> bool {
    c.is_superuser() || patient_orgs.iter().any(|o| may_manage_patients_and_studies(c, *o))
}

/// May record or withdraw consent for a patient in a study of `study_org`.
pub fn may_write_consent(c: &Caller, patient: Id, patient_orgs: &[Id], study_org: Id) -> bool {
    if c.patient_id() == Some(patient) {
        return true;
    }
    if c.is_superuser() {
        return true;
    }
    may_manage_patients_and_studies(c, study_org) && patient_orgs.iter().any(|o| c.role_in(*o).is_some())
}

/// Catalogue writes (data sources, patient-app clients, practitioners): superuser only.
pub fn may_manage_catalogue(c: &Caller) -> bool {
    c.is_superuser()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::User;
    use std::collections::BTreeMap;

    fn caller(su: bool, roles: &[(Id, Role)], patient: Option<Id>) -> Caller {
        Caller {
            user: User {
                id: 1,
                email: "x@example.com".into(),
                first_name: String::new(),
                last_name: String::new(),
                password_hash: None,
                user_type: None,
                is_superuser: su,
                patient_id: patient,
                practitioner_id: None,
                identifier: None,
                date_joined: time::OffsetDateTime::UNIX_EPOCH,
                last_login: None,
                settings: Default::default(),
            },
            roles: roles.iter().copied().collect::<BTreeMap<_, _>>(),
            client_id: "c".into(),
        }
    }

    #[test]
    fn role_table() {
        let su = caller(true, &[], None);
        let mgr = caller(false, &[(5, Role::Manager)], None);
        let mem = caller(false, &[(5, Role::Member)], None);
        let view = caller(false, &[(5, Role::Viewer)], None);
        let other = caller(false, &[(6, Role::Manager)], None);
        let pat = caller(false, &[], Some(40001));
        // (caller, manage patients, manage members, create sub-org, create top level)
        for (c, pats, members, sub, top) in [
            (&su, true, true, true, true),
            (&mgr, true, true, true, false),
            (&mem, true, false, false, false),
            (&view, false, false, false, false),
            (&other, false, false, false, false),
            (&pat, false, false, false, false),
        ] {
            assert_eq!(may_manage_patients_and_studies(c, 5), pats);
            assert_eq!(may_manage_members(c, 5), members);
            assert_eq!(may_create_org(c, Some(5)), sub);
            assert_eq!(may_create_org(c, Some(ROOT_ORG_ID)), top);
        }
    }

    #[test]
    fn patients_see_only_themselves() {
        let pat = caller(false, &[], Some(40001));
        assert!(may_see_patient(&pat, 40001, &[5]));
        assert!(!may_see_patient(&pat, 40002, &[5]));
        let view = caller(false, &[(5, Role::Viewer)], None);
        assert!(may_see_patient(&view, 40002, &[5]));
        assert!(!may_see_patient(&view, 40002, &[6]));
        assert!(!may_manage_patient(&view, &[5]));
    }

    #[test]
    fn consent_writes_need_a_managing_role_in_the_study_org_and_a_shared_org() {
        let mem = caller(false, &[(5, Role::Member)], None);
        assert!(may_write_consent(&mem, 40001, &[5], 5));
        assert!(!may_write_consent(&mem, 40001, &[7], 5));
        let view = caller(false, &[(5, Role::Viewer)], None);
        assert!(!may_write_consent(&view, 40001, &[5], 5));
        let pat = caller(false, &[], Some(40001));
        assert!(may_write_consent(&pat, 40001, &[5], 5));
        assert!(!may_write_consent(&pat, 40002, &[5], 5));
    }

    #[test]
    fn org_edit_goes_to_the_parent_manager() {
        let parent_mgr = caller(false, &[(5, Role::Manager)], None);
        assert!(may_edit_org(&parent_mgr, 9, Some(5)));
        let self_mgr = caller(false, &[(9, Role::Manager)], None);
        assert!(!may_edit_org(&self_mgr, 9, Some(5)));
        assert!(may_edit_org(&self_mgr, 9, Some(ROOT_ORG_ID)));
        assert!(
            !may_edit_org(&caller(false, &[(0, Role::Manager)], None), 0, None),
            "nobody but a superuser edits ROOT"
        );
    }
}
