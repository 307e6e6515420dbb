//! The one place that decides who may see or do what. Pure functions of the caller and the facts
//! the repository looked up; no I/O.
//!
//! Rules (upstream's role table, enforced on every route, with its holes closed):
//! - superuser: everything;
//! - manager of an organization: its members and roles, its sub-organizations, its patients and studies;
//! - member: its patients and studies;
//! - viewer: read only;
//! - a patient: only themself.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::Caller;
use crate::model::{Id, ROOT_ORG_ID, Role};

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

/// What a consent write does to one scope of one study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentChange {
    /// `consented: true`: makes the patient's data of that scope readable by the study.
    Grant,
    /// `consented: false`: a refusal, or the withdrawal of a grant.
    Refuse,
    /// Removes the decision (back to pending), the patient's own or not.
    Forget,
}

/// May make this change to a patient's consent in a study of `study_org`. Granting consent is the
/// patient's own act (their token: app, invitation, their web pages), and so is taking back a
/// decision; a practitioner who may manage the study's patients (or a superuser) may record a
/// refusal or a withdrawal, never a grant.
pub fn may_change_consent(c: &Caller, patient: Id, patient_orgs: &[Id], study_org: Id, change: ConsentChange) -> bool {
    if c.patient_id() == Some(patient) {
        return true;
    }
    match change {
        ConsentChange::Grant | ConsentChange::Forget => false,
        ConsentChange::Refuse => {
            c.is_superuser()
                || (may_manage_patients_and_studies(c, study_org)
                    && patient_orgs.iter().any(|o| c.role_in(*o).is_some()))
        }
    }
}

/// May see a patient's consents in a study of `study_org`: the patient, a superuser, or a
/// practitioner with a role in that organization.
pub fn may_see_study_consents(c: &Caller, patient: Id, study_org: Id) -> bool {
    c.patient_id() == Some(patient) || c.is_superuser() || c.role_in(study_org).is_some()
}

/// May read the audit trail of the patients of this organization: its managers (a superuser
/// reads every record).
pub fn may_read_audit_in(c: &Caller, org: Id) -> bool {
    c.role_in(org) == Some(Role::Manager)
}

/// Catalogue writes (data sources, patient-app clients, practitioners): superuser only.
pub fn may_manage_catalogue(c: &Caller) -> bool {
    c.is_superuser()
}

/// May search through an organization's patients, studies or members (a FHIR search filtered by
/// an organization or one of its studies, the practitioners listed): any role in it. Unlike
/// `is_in_org`, a superuser gets no data through it.
pub fn may_search_in(c: &Caller, org: Id) -> bool {
    c.role_in(org).is_some()
}

/// The organizations whose records a practitioner's searches reach by default: every one they
/// hold a role in.
pub fn searched_orgs(c: &Caller) -> Vec<Id> {
    c.roles.keys().copied().collect()
}

/// Whose records a search reaches: a patient only their own (`Some(me)`); a practitioner those
/// of their organizations (`None`).
pub fn patient_self(c: &Caller) -> Option<Id> {
    c.patient_id().filter(|_| !c.is_practitioner())
}

/// How far a caller's listings of organizations, studies and patients reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every organization (a superuser's administration lists; never data, see `visible_scopes`).
    All,
    /// These organizations.
    Orgs(Vec<Id>),
}

/// The organizations a caller's admin listings cover: a superuser all, others those they hold a
/// role in.
pub fn listing_reach(c: &Caller) -> Reach {
    if c.is_superuser() { Reach::All } else { Reach::Orgs(searched_orgs(c)) }
}

/// The organizations whose patients a caller may manage (invite, add): a superuser all, others
/// those where they are a manager or member.
pub fn managing_reach(c: &Caller) -> Reach {
    if c.is_superuser() {
        Reach::All
    } else {
        Reach::Orgs(searched_orgs(c).into_iter().filter(|o| may_manage_patients_and_studies(c, *o)).collect())
    }
}

/// May look up an existing patient of another organization to add them to one's own.
pub fn may_add_existing_patients(c: &Caller) -> bool {
    managing_reach(c) != Reach::Orgs(vec![])
}

/// The practitioner API (organizations, studies, patients as managed records): practitioners,
/// not patients acting as themselves.
pub fn is_practitioner(c: &Caller) -> bool {
    c.is_practitioner()
}

/// Administration of accounts and the catalogue: superusers.
pub fn is_administrator(c: &Caller) -> bool {
    c.is_superuser()
}

/// May read a user's account: their own, or any for a superuser.
pub fn may_read_user(c: &Caller, user: Id) -> bool {
    user == c.id() || c.is_superuser()
}

/// May change a user's account (names): their own only.
pub fn may_edit_user(c: &Caller, user: Id) -> bool {
    user == c.id()
}

/// May change `user`'s membership of an organization they manage: not their own (a superuser may).
pub fn may_change_membership_of(c: &Caller, user: Id) -> bool {
    user != c.id() || c.is_superuser()
}

/// The creator of a sub-organization becomes its manager (a superuser needs no membership).
pub fn manages_what_they_create(c: &Caller) -> bool {
    !c.is_superuser()
}

/// The caller as the audit trail names them: `superuser`, `patient`, or their roles
/// (`manager@20003,viewer@20004`).
pub fn agent_role(c: &Caller) -> String {
    if c.is_superuser() {
        "superuser".to_string()
    } else if patient_self(c).is_some() {
        "patient".to_string()
    } else {
        c.roles.iter().map(|(o, r)| format!("{}@{o}", r.as_str())).collect::<Vec<_>>().join(",")
    }
}

/// Reads every audit record whole (the compliance view): superusers.
pub fn reads_every_audit_record(c: &Caller) -> bool {
    c.is_superuser()
}

/// May search AuditEvents (practitioners; patients read their own trail through the admin API).
pub fn may_search_audit(c: &Caller) -> bool {
    c.is_practitioner()
}

/// May use the admin API's observation list (practitioners; patients read through FHIR).
pub fn may_list_observations(c: &Caller) -> bool {
    c.is_practitioner()
}

/// May read one AuditEvent by id (rather than search the records they may see): superusers.
pub fn may_read_audit_event_by_id(c: &Caller) -> bool {
    c.is_superuser()
}

/// The permissions the web UI shows and hides things by, per role (upstream's
/// `client_settings.js`); each stands for one of the rules above.
pub const UI_PERMISSIONS: &[(&str, &[&str])] = &[
    (
        "super_user",
        &[
            "organization.manage_for_practitioners",
            "organization.create_top_level",
            "patient.manage_for_organization",
            "study.manage_for_organization",
            "client.manage",
            "data_source.manage",
        ],
    ),
    (
        "manager",
        &["organization.manage_for_practitioners", "patient.manage_for_organization", "study.manage_for_organization"],
    ),
    ("member", &["patient.manage_for_organization", "study.manage_for_organization"]),
    ("viewer", &[]),
];

/// What a study contributes to the consent rule.
#[derive(Debug, Clone, Default)]
pub struct StudyGrant {
    pub study: Id,
    pub org: Id,
    /// Scope codes the study requests.
    pub requested: BTreeSet<Id>,
    /// Data sources (devices) of the study.
    pub data_sources: BTreeSet<Id>,
}

/// Which of a patient's scopes a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// The patient themself: all their data (narrowed to a study's scopes when one is named).
    Own(Option<BTreeSet<Id>>),
    /// These scope codes only.
    Codes(BTreeSet<Id>),
}

impl Visible {
    pub fn allows(&self, code: Id) -> bool {
        match self {
            Visible::Own(None) => true,
            Visible::Own(Some(c)) | Visible::Codes(c) => c.contains(&code),
        }
    }
}

/// The consent rule for reads. A practitioner sees a patient's observations of a scope only
/// through a study (a) of an organization where they hold a role, (b) in which the patient is
/// enrolled (`enrolled` lists exactly those), (c) which requests the scope, and (d) for which
/// the patient's consent to that scope is in force. A patient sees all of their own data.
/// `only_study` narrows to one study. A superuser has no special access to data.
pub fn visible_scopes(
    c: &Caller,
    patient: Id,
    enrolled: &[StudyGrant],
    consents: &BTreeMap<(Id, Id), bool>,
    only_study: Option<Id>,
) -> Visible {
    let in_scope = |s: &&StudyGrant| only_study.is_none_or(|o| o == s.study);
    if c.patient_id() == Some(patient) {
        return Visible::Own(
            only_study.map(|_| enrolled.iter().filter(in_scope).flat_map(|s| s.requested.iter().copied()).collect()),
        );
    }
    let mut codes = BTreeSet::new();
    for s in enrolled.iter().filter(in_scope) {
        if c.role_in(s.org).is_none() {
            continue;
        }
        for code in &s.requested {
            if consents.get(&(s.study, *code)) == Some(&true) {
                codes.insert(*code);
            }
        }
    }
    Visible::Codes(codes)
}

/// The studies through which the consent rule lets a practitioner see a patient's data of one
/// scope (for the audit record: the grants an answer relied on). The patient's own reads rely on
/// none.
pub fn granting_studies(
    c: &Caller,
    patient: Id,
    enrolled: &[StudyGrant],
    consents: &BTreeMap<(Id, Id), bool>,
    code: Id,
) -> Vec<Id> {
    if c.patient_id() == Some(patient) {
        return vec![];
    }
    enrolled
        .iter()
        .filter(|s| {
            c.role_in(s.org).is_some() && s.requested.contains(&code) && consents.get(&(s.study, code)) == Some(&true)
        })
        .map(|s| s.study)
        .collect()
}

/// Why an upload is refused by the consent rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadRefusal {
    /// The patient's consent to the scope is in force in no study of theirs.
    NotConsented,
    /// It is, but no such study requests the scope with this device as a data source.
    NoStudy,
}

/// May upload observations for this patient: the patient themself, or a practitioner who may
/// manage them.
pub fn may_upload_for(c: &Caller, patient: Id, patient_orgs: &[Id]) -> bool {
    c.patient_id() == Some(patient) || may_manage_patient(c, patient_orgs)
}

/// The consent rule for uploads of `code` from `device`: the patient's consent to the scope is in
/// force in a study they are enrolled in (else `NotConsented`, upstream's rule), and one such
/// study requests the scope and has the device as a data source (else `NoStudy`, JHE's).
///
/// A practitioner uploading for a patient goes through the studies of organizations where they
/// may manage patients: another organization's study, however consented, lets them store nothing
/// that organization would read as the patient's.
pub fn upload_consent(
    c: &Caller,
    patient: Id,
    enrolled: &[StudyGrant],
    consents: &BTreeMap<(Id, Id), bool>,
    device: Id,
    code: Id,
) -> Result<(), UploadRefusal> {
    let through = |s: &&StudyGrant| c.patient_id() == Some(patient) || may_manage_patients_and_studies(c, s.org);
    let mut consenting =
        enrolled.iter().filter(through).filter(|s| consents.get(&(s.study, code)) == Some(&true)).peekable();
    if consenting.peek().is_none() {
        return Err(UploadRefusal::NotConsented);
    }
    if consenting.any(|s| s.requested.contains(&code) && s.data_sources.contains(&device)) {
        Ok(())
    } else {
        Err(UploadRefusal::NoStudy)
    }
}

/// The consent rule for FHIR resources stored as sent: the rule of observations
/// (`visible_scopes`) with the scope that covers the resource's type (`type_scope`, the catalogue's
/// `http://hl7.org/fhir/resource-types|{type}`); a type without such a scope is readable by the
/// patient alone.
pub fn may_read_stored(
    c: &Caller,
    patient: Id,
    enrolled: &[StudyGrant],
    consents: &BTreeMap<(Id, Id), bool>,
    type_scope: Option<Id>,
    only_study: Option<Id>,
) -> bool {
    let visible = visible_scopes(c, patient, enrolled, consents, only_study);
    match (type_scope, &visible) {
        (_, Visible::Own(None)) => true,
        (Some(code), v) => v.allows(code),
        (None, _) => false,
    }
}

/// May write (create, change, delete) a patient's FHIR resources of a type stored as sent: the
/// patient themself; or a practitioner who may manage the patient, and only of a type whose scope
/// (`type_scope`) the patient consented to in a study of an organization where that practitioner
/// may manage patients (as for uploads: another organization's consent lets them write nothing).
pub fn may_write_stored(
    c: &Caller,
    patient: Id,
    patient_orgs: &[Id],
    enrolled: &[StudyGrant],
    consents: &BTreeMap<(Id, Id), bool>,
    type_scope: Option<Id>,
) -> bool {
    if c.patient_id() == Some(patient) {
        return true;
    }
    let Some(code) = type_scope else { return false };
    may_manage_patient(c, patient_orgs)
        && enrolled
            .iter()
            .any(|s| may_manage_patients_and_studies(c, s.org) && consents.get(&(s.study, code)) == Some(&true))
}

/// May register and manage FHIR sources: only for oneself, as a patient.
pub fn may_manage_fhir_source(c: &Caller, source_patient: Id) -> bool {
    c.patient_id() == Some(source_patient)
}

/// May read a patient's consents as FHIR Consent resources: the patient, or a practitioner with a
/// role in the study's organization (`may_see_study_consents`, per study).
pub fn may_read_consent_resource(c: &Caller, patient: Id, study_org: Id) -> bool {
    may_see_study_consents(c, patient, study_org)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::User;
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
    fn reach_and_account_rules() {
        let su = caller(true, &[], None);
        let mgr = caller(false, &[(5, Role::Manager), (6, Role::Viewer)], None);
        let view = caller(false, &[(6, Role::Viewer)], None);
        let pat = caller(false, &[], Some(40001));
        // (caller, listing reach, managing reach, may add existing patients, changes own membership)
        for (c, listing, managing, add, own) in [
            (&su, Reach::All, Reach::All, true, true),
            (&mgr, Reach::Orgs(vec![5, 6]), Reach::Orgs(vec![5]), true, false),
            (&view, Reach::Orgs(vec![6]), Reach::Orgs(vec![]), false, false),
            (&pat, Reach::Orgs(vec![]), Reach::Orgs(vec![]), false, false),
        ] {
            assert_eq!(listing_reach(c), listing);
            assert_eq!(managing_reach(c), managing);
            assert_eq!(may_add_existing_patients(c), add);
            assert_eq!(may_change_membership_of(c, c.id()), own);
            assert!(may_change_membership_of(c, c.id() + 1));
            assert!(may_read_user(c, c.id()) && may_edit_user(c, c.id()));
            assert_eq!(may_read_user(c, c.id() + 1), c.is_superuser());
            assert!(!may_edit_user(c, c.id() + 1), "nobody edits another's account");
        }
        assert_eq!((agent_role(&su), agent_role(&pat)), ("superuser".to_string(), "patient".to_string()));
        assert_eq!(agent_role(&mgr), "manager@5,viewer@6");
        assert_eq!(patient_self(&pat), Some(40001));
        assert_eq!(patient_self(&mgr), None);
    }

    #[test]
    fn the_grants_an_answer_relies_on_follow_the_consent_rule() {
        let g = |study, org| StudyGrant { study, org, requested: [7].into(), data_sources: BTreeSet::new() };
        let enrolled = [g(30001, 5), g(30002, 6), g(30003, 5)];
        let consents: BTreeMap<(Id, Id), bool> = [((30001, 7), true), ((30002, 7), true), ((30003, 7), false)].into();
        let mgr = caller(false, &[(5, Role::Viewer)], None);
        assert_eq!(granting_studies(&mgr, 40001, &enrolled, &consents, 7), vec![30001], "own orgs, consented only");
        assert_eq!(granting_studies(&mgr, 40001, &enrolled, &consents, 8), Vec::<Id>::new(), "scope not requested");
        let pat = caller(false, &[], Some(40001));
        assert_eq!(granting_studies(&pat, 40001, &enrolled, &consents, 7), Vec::<Id>::new(), "own data needs no grant");
        let su = caller(true, &[], None);
        assert_eq!(granting_studies(&su, 40001, &enrolled, &consents, 7), Vec::<Id>::new(), "no superuser data access");
        // It agrees with the read rule.
        assert!(visible_scopes(&mgr, 40001, &enrolled, &consents, None).allows(7));
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
    fn consent_is_granted_by_the_patient_alone() {
        use ConsentChange::{Forget, Grant, Refuse};
        let pat = caller(false, &[], Some(40001));
        let other_pat = caller(false, &[], Some(40002));
        let mgr = caller(false, &[(5, Role::Manager)], None);
        let mem = caller(false, &[(5, Role::Member)], None);
        let view = caller(false, &[(5, Role::Viewer)], None);
        let stranger = caller(false, &[(7, Role::Manager)], None);
        let su = caller(true, &[], None);
        // (caller, patient's orgs) -> may (grant, refuse, forget) in a study of org 5
        for (who, c, orgs, expected) in [
            ("the patient", &pat, &[5][..], [true, true, true]),
            ("another patient", &other_pat, &[5][..], [false, false, false]),
            ("a manager", &mgr, &[5][..], [false, true, false]),
            ("a member", &mem, &[5][..], [false, true, false]),
            ("a viewer", &view, &[5][..], [false, false, false]),
            ("a manager of no org of the patient", &mgr, &[7][..], [false, false, false]),
            ("a manager of another org", &stranger, &[5, 7][..], [false, false, false]),
            ("a superuser", &su, &[5][..], [false, true, false]),
        ] {
            let got = [Grant, Refuse, Forget].map(|ch| may_change_consent(c, 40001, orgs, 5, ch));
            assert_eq!(got, expected, "{who}");
        }
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

    fn grant(study: Id, org: Id, codes: &[Id], dss: &[Id]) -> StudyGrant {
        StudyGrant {
            study,
            org,
            requested: codes.iter().copied().collect(),
            data_sources: dss.iter().copied().collect(),
        }
    }

    #[test]
    fn consent_rule_for_reads_as_a_table() {
        const BG: Id = 1;
        const HR: Id = 2;
        let s1 = grant(30001, 5, &[BG, HR], &[70001]);
        let s2 = grant(30002, 6, &[BG], &[70001]);
        let studies = [s1.clone(), s2.clone()];
        let consented: BTreeMap<(Id, Id), bool> = [((30001, BG), true), ((30001, HR), false)].into_iter().collect();
        let member5 = caller(false, &[(5, Role::Member)], None);
        let viewer5 = caller(false, &[(5, Role::Viewer)], None);
        let member6 = caller(false, &[(6, Role::Member)], None);
        let su = caller(true, &[], None);
        let own = caller(false, &[], Some(40001));
        let other_patient = caller(false, &[], Some(40002));
        let none = BTreeMap::new();
        let codes = |v: Visible| match v {
            Visible::Codes(c) => c.into_iter().collect::<Vec<_>>(),
            Visible::Own(_) => vec![-1],
        };
        // (caller, consents, study filter) -> visible codes
        assert_eq!(
            codes(visible_scopes(&member5, 40001, &studies, &consented, None)),
            vec![BG],
            "consented BG only; HR revoked"
        );
        assert_eq!(codes(visible_scopes(&viewer5, 40001, &studies, &consented, None)), vec![BG], "viewers read too");
        assert_eq!(
            codes(visible_scopes(&member5, 40001, &studies, &none, None)),
            Vec::<Id>::new(),
            "pending shows nothing"
        );
        assert_eq!(
            codes(visible_scopes(&member6, 40001, &studies, &consented, None)),
            Vec::<Id>::new(),
            "consent was given to study 1, not 2"
        );
        assert_eq!(
            codes(visible_scopes(&member5, 40001, &studies, &consented, Some(30002))),
            Vec::<Id>::new(),
            "study filter"
        );
        assert_eq!(
            codes(visible_scopes(&su, 40001, &studies, &consented, None)),
            Vec::<Id>::new(),
            "a superuser holds no role"
        );
        assert_eq!(
            visible_scopes(&own, 40001, &studies, &none, None),
            Visible::Own(None),
            "a patient sees their own data"
        );
        assert_eq!(codes(visible_scopes(&other_patient, 40001, &studies, &consented, None)), Vec::<Id>::new());
        let enrolled_only_in_2 = [s2];
        assert_eq!(
            codes(visible_scopes(&member5, 40001, &enrolled_only_in_2, &consented, None)),
            Vec::<Id>::new(),
            "not enrolled in study 1"
        );
    }

    #[test]
    fn consent_rule_for_uploads() {
        let s1 = [grant(30001, 5, &[1], &[70001])];
        let yes: BTreeMap<(Id, Id), bool> = [((30001, 1), true)].into_iter().collect();
        let no: BTreeMap<(Id, Id), bool> = [((30001, 1), false)].into_iter().collect();
        let own = caller(false, &[], Some(40001));
        let viewer = caller(false, &[(5, Role::Viewer)], None);
        let member = caller(false, &[(5, Role::Member)], None);
        // (caller, patient) -> may upload for them
        for (c, patient, may) in
            [(&own, 40001, true), (&member, 40001, true), (&viewer, 40001, false), (&own, 40002, false)]
        {
            assert_eq!(may_upload_for(c, patient, &[5]), may);
        }
        // (consents, device, code) -> verdict
        assert_eq!(upload_consent(&own, 40001, &s1, &yes, 70001, 1), Ok(()));
        assert_eq!(upload_consent(&own, 40001, &s1, &no, 70001, 1), Err(UploadRefusal::NotConsented));
        assert_eq!(upload_consent(&own, 40001, &s1, &BTreeMap::new(), 70001, 1), Err(UploadRefusal::NotConsented));
        assert_eq!(upload_consent(&own, 40001, &s1, &yes, 70002, 1), Err(UploadRefusal::NoStudy), "another device");
        assert_eq!(upload_consent(&own, 40001, &s1, &yes, 70001, 2), Err(UploadRefusal::NotConsented), "another scope");
        let consented_elsewhere = [grant(30001, 5, &[1], &[]), grant(30002, 5, &[1], &[70001])];
        let only_first: BTreeMap<(Id, Id), bool> = [((30001, 1), true), ((30002, 1), false)].into_iter().collect();
        assert_eq!(
            upload_consent(&own, 40001, &consented_elsewhere, &only_first, 70001, 1),
            Err(UploadRefusal::NoStudy),
            "the study with the device has no consent"
        );
        // A practitioner uploads through their own organizations' studies only.
        assert_eq!(upload_consent(&member, 40001, &s1, &yes, 70001, 1), Ok(()));
        let other_member = caller(false, &[(9, Role::Member)], None);
        assert_eq!(
            upload_consent(&other_member, 40001, &s1, &yes, 70001, 1),
            Err(UploadRefusal::NotConsented),
            "consented to org 5's study, not to one of org 9"
        );
    }

    #[test]
    fn stored_resources_are_written_by_the_patient_or_through_a_consented_study_of_ones_own() {
        let study = |study, org| StudyGrant { study, org, requested: [7].into(), data_sources: BTreeSet::new() };
        let enrolled = [study(1, 5), study(2, 9)];
        let consents: BTreeMap<(Id, Id), bool> = [((2, 7), true)].into();
        let (mgr5, mgr9) = (caller(false, &[(5, Role::Manager)], None), caller(false, &[(9, Role::Manager)], None));
        let (viewer9, peter) = (caller(false, &[(9, Role::Viewer)], None), caller(false, &[], Some(40001)));
        let writes = |c: &Caller, scope| may_write_stored(c, 40001, &[5, 9], &enrolled, &consents, scope);
        let reads = |c: &Caller, scope| may_read_stored(c, 40001, &enrolled, &consents, scope, None);
        // (caller, scope, writes, reads): the patient any type; org 9 (whose study has the consent) only.
        let cases = [(&peter, None, true, true), (&mgr9, Some(7), true, true), (&mgr5, Some(7), false, false)];
        let more = [(&viewer9, Some(7), false, true), (&mgr9, None, false, false), (&mgr9, Some(8), false, false)];
        for (c, scope, w, r) in cases.into_iter().chain(more) {
            assert_eq!((writes(c, scope), reads(c, scope)), (w, r), "{:?} {scope:?}", c.roles);
        }
        assert!(!writes(&caller(false, &[], Some(40002)), Some(7)), "another patient");
    }
}
