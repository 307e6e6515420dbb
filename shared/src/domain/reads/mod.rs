//! FHIR reads and searches, and the admin observation list, all under the consent rule
//! (`access::visible_scopes`) for observations and the organization rule for everything else.

mod admin;
mod other;
mod page;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Caller;
use super::audit::Grant;
use super::facts::Facts;
use super::observation::Observation;
use crate::access;
use crate::error::{Error, Result};
use crate::fhir::search::{Common, Cursor, ObservationQuery, OtherQuery, SortBy, TimeRange};
use crate::fhir::{self};
use crate::model::{Code, Id};
use crate::repo::Repo;
use crate::repo::observations::{ObsOrder, ObsScan, ScannedObs, StoredObs};

pub use admin::{admin_observations, admin_query};
pub use other::{read_other, search_other};
pub use page::{ObservationPage, observation_bundle, search_observations};

/// One page of results: the resources, the total, and the cursor of the next page.
pub struct Found {
    pub resources: Vec<Value>,
    pub total: usize,
    pub next: Option<String>,
}

/// The patients a practitioner reaches through a filter (403 when the filter is out of reach).
pub(crate) async fn candidate_patients(
    repo: &Repo,
    c: &Caller,
    patient: Option<Id>,
    study: Option<Id>,
    org: Option<Id>,
) -> Result<Vec<Id>> {
    let denied = |what: String| Error::Forbidden(format!("You do not have access to {what}."));
    let mut set: Option<BTreeSet<Id>> = None;
    let mut narrow = |ids: Vec<Id>| {
        let ids: BTreeSet<Id> = ids.into_iter().collect();
        set = Some(match set.take() {
            Some(s) => s.intersection(&ids).copied().collect(),
            None => ids,
        });
    };
    if let Some(s) = study {
        let st = repo.study(s).await?.ok_or_else(|| denied(format!("Group/{s}")))?;
        if !access::may_search_in(c, st.organization_id) {
            return Err(denied(format!("Group/{s}")));
        }
        narrow(repo.study_patient_ids(s).await?);
    }
    if let Some(o) = org {
        if !access::may_search_in(c, o) {
            return Err(denied(format!("Organization/{o}")));
        }
        narrow(repo.org_patient_ids(o).await?);
    }
    if let Some(p) = patient {
        let orgs = repo.patient_org_ids(p).await?;
        if !orgs.iter().any(|o| access::may_search_in(c, *o)) {
            return Err(denied(format!("Patient/{p}")));
        }
        narrow(vec![p]);
    }
    if set.is_none() {
        let mut all = BTreeSet::new();
        for o in access::searched_orgs(c) {
            all.extend(repo.org_patient_ids(o).await?);
        }
        set = Some(all);
    }
    Ok(set.unwrap_or_default().into_iter().collect())
}

/// For each patient the caller reaches, the scope codes they may read (in patient-id order).
/// A search for another source's data (`_source`) reaches no one: everything here is JHE's.
async fn readable_scopes(
    repo: &Repo,
    c: &Caller,
    q: &ObservationQuery,
    facts: &mut Facts,
    all_codes: &[Code],
) -> Result<Vec<(Id, Vec<Id>)>> {
    if q.common.foreign_source {
        return Ok(vec![]);
    }
    let wanted: Option<BTreeSet<Id>> = if q.codes.is_empty() {
        None
    } else {
        Some(
            all_codes
                .iter()
                .filter(|code| q.codes.iter().any(|t| t.matches(&code.coding_system, &code.coding_code)))
                .map(|code| code.id)
                .collect(),
        )
    };
    let patients = match access::patient_self(c) {
        Some(me) => {
            if q.patient.is_some_and(|p| p != me) {
                return Err(Error::Forbidden(format!(
                    "You do not have access to Patient/{}.",
                    q.patient.unwrap_or_default()
                )));
            }
            vec![me]
        }
        _ => candidate_patients(repo, c, q.patient, q.study, q.organization).await?,
    };
    facts.preload(repo, &patients).await?;
    let mut out = Vec::new();
    for p in patients {
        let Some(pf) = facts.patient(repo, p).await? else { continue };
        if let Some((sys, val)) = &q.patient_identifier {
            let pat = repo.patient(p).await?;
            let has = pat.is_some_and(|pat| {
                pat.identifiers.iter().any(|i| i.value == *val && sys.as_ref().is_none_or(|s| *s == i.system))
            });
            if !has {
                continue;
            }
        }
        if let Some(s) = q.study
            && !pf.enrolled.iter().any(|g| g.study == s)
        {
            continue;
        }
        let vis = access::visible_scopes(c, p, &pf.enrolled, &pf.consents, q.study);
        let codes: Vec<Id> = all_codes
            .iter()
            .map(|code| code.id)
            .filter(|id| vis.allows(*id) && wanted.as_ref().is_none_or(|w| w.contains(id)))
            .collect();
        if !codes.is_empty() {
            out.push((p, codes));
        }
    }
    Ok(out)
}

/// The store's order for a sort.
fn order(by: SortBy) -> ObsOrder {
    match by {
        SortBy::Date => ObsOrder::Date,
        SortBy::LastUpdated => ObsOrder::LastUpdated,
    }
}

/// The other filter (the one the scan order does not bound), applied after reading.
fn post_filter(q: &ObservationQuery) -> Option<(SortBy, TimeRange)> {
    match q.sort {
        SortBy::Date if !q.last_updated.is_all() => Some((SortBy::LastUpdated, q.last_updated)),
        SortBy::LastUpdated if !q.date.is_all() => Some((SortBy::Date, q.date)),
        _ => None,
    }
}

/// Reads up to `need` observations of one patient and code, in order, after `seek`, honouring
/// both time filters.
async fn scan(
    repo: &Repo,
    q: &ObservationQuery,
    p: Id,
    code: Id,
    seek: Option<(i64, Id)>,
    need: usize,
) -> Result<Vec<StoredObs>> {
    let (order, range) = (order(q.sort), q.window());
    if range.is_empty() {
        return Ok(vec![]);
    }
    let post = post_filter(q);
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let scan = ObsScan { patient: p, code, order, range, seek, descending: q.descending, limit: need.min(1000) };
        let (page, next) = repo.observations_page(&scan, cursor).await?;
        for o in page {
            let keep = match post {
                Some((by, r)) => r.contains(o.time(self::order(by))?),
                None => true,
            };
            if keep {
                out.push(o);
            }
        }
        if out.len() >= need || next.is_none() {
            out.truncate(need);
            return Ok(out);
        }
        cursor = next;
    }
}

async fn total(repo: &Repo, q: &ObservationQuery, readable: &[(Id, Vec<Id>)]) -> Result<usize> {
    use futures_util::stream::{StreamExt, TryStreamExt};
    let pairs = readable.iter().flat_map(|(p, codes)| codes.iter().map(move |c| (*p, *c)));
    let filtered = post_filter(q).is_some();
    let (order, range) = (order(q.sort), q.window());
    if !filtered && range.is_empty() {
        return Ok(0);
    }
    // One count per patient and scope, several in flight at once. (Boxed: a stream of closures'
    // futures borrowing the query trips the compiler's Send check in the handlers.)
    let counts: Vec<super::facts::Pending<'_, usize>> = pairs
        .map(|(p, code)| -> super::facts::Pending<'_, usize> {
            if filtered {
                Box::pin(async move { Ok(scan(repo, q, p, code, None, usize::MAX).await?.len()) })
            } else {
                Box::pin(repo.observations_count(p, code, order, range))
            }
        })
        .collect();
    let counts: Vec<usize> =
        futures_util::stream::iter(counts).buffer_unordered(super::facts::CONCURRENT_READS).try_collect().await?;
    Ok(counts.into_iter().sum())
}

/// The scope-code catalogue by id, for rendering observations.
struct Renderer {
    codes: BTreeMap<Id, Code>,
    /// What a code no longer in the catalogue renders as (empty: left out of the resource).
    missing: Code,
}

impl Renderer {
    fn new(codes: &[Code]) -> Self {
        Self {
            codes: codes.iter().map(|c| (c.id, c.clone())).collect(),
            missing: Code { id: 0, coding_system: String::new(), coding_code: String::new(), text: String::new() },
        }
    }
    fn code(&self, id: Id) -> &Code {
        self.codes.get(&id).unwrap_or(&self.missing)
    }
}

/// The catalogue as `code -> id`, built in catalogue order (the last of equal codes wins).
fn ids_by_code(codes: &[Code]) -> BTreeMap<String, Id> {
    codes.iter().map(|c| (c.coding_code.clone(), c.id)).collect()
}

/// One observation, if the caller may read it (404 otherwise: hidden data is not revealed).
pub async fn read_observation(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    read_observation_noting(repo, c, id, |_| ()).await
}

/// `read_observation`, telling `patient` whose observation it is as soon as it is found, before
/// the consent rule decides (the audit record names whose data was asked for, refused or not):
/// the observation is read once.
pub async fn read_observation_noting(repo: &Repo, c: &Caller, id: Id, patient: impl FnOnce(Id)) -> Result<Value> {
    let o = repo.observation(id).await?.ok_or_else(Error::not_found)?;
    patient(o.patient_id);
    let mut facts = Facts::default();
    let pf = facts.patient(repo, o.patient_id).await?.ok_or_else(Error::not_found)?;
    let vis = access::visible_scopes(c, o.patient_id, &pf.enrolled, &pf.consents, None);
    if !vis.allows(o.code_id) {
        return Err(Error::not_found());
    }
    let code = repo.code(o.code_id).await?.ok_or_else(Error::not_found)?;
    Ok(fhir::observation(&o, &code, pf.user_id))
}

/// For the audit record: the consents that let the caller see these (patient, scope code) pairs,
/// as (patient, study, code).
pub async fn grants(repo: &Repo, c: &Caller, pairs: &BTreeSet<(Id, String)>) -> Result<BTreeSet<Grant>> {
    grants_with(repo, c, pairs, &ids_by_code(&repo.list_codes().await?), &mut Facts::default()).await
}

/// `grants` with the catalogue (code -> id) and a facts cache already at hand.
async fn grants_with(
    repo: &Repo,
    c: &Caller,
    pairs: &BTreeSet<(Id, String)>,
    codes: &BTreeMap<String, Id>,
    facts: &mut Facts,
) -> Result<BTreeSet<Grant>> {
    let mut grants = BTreeSet::new();
    for (p, code) in pairs {
        if c.patient_id() == Some(*p) {
            continue;
        }
        let Some(code_id) = codes.get(code) else { continue };
        let Some(pf) = facts.patient(repo, *p).await? else { continue };
        for study in access::granting_studies(c, *p, &pf.enrolled, &pf.consents, *code_id) {
            grants.insert((*p, study, code.clone()));
        }
    }
    Ok(grants)
}
