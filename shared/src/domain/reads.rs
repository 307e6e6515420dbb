//! FHIR reads and searches, and the admin observation list, all under the consent rule
//! (`access::visible_scopes`) for observations and the organization rule for everything else.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

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

/// One page of results: the resources, the total, and the cursor of the next page.
pub struct Found {
    pub resources: Vec<Value>,
    pub total: usize,
    pub next: Option<String>,
}

/// The patients a practitioner reaches through a filter (403 when the filter is out of reach).
async fn candidate_patients(
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
async fn readable(
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

/// Observation search: patients in id order; within a patient, by the sort (newest first by
/// default), merged across the readable scopes. Paging is by cursor: a page costs the same
/// wherever it starts.
pub async fn search_observations(
    repo: &Repo,
    c: &Caller,
    q: &ObservationQuery,
) -> Result<(Vec<Observation>, usize, Option<String>)> {
    let readable = readable(repo, c, q, &mut Facts::default(), &repo.list_codes().await?).await?;
    let (found, total, next) = search_in(repo, q, &readable).await?;
    Ok((found.iter().map(StoredObs::decode).collect::<Result<_>>()?, total, next))
}

/// `search_observations` over the patients and scopes the caller may read (`readable`), as
/// stored.
async fn search_in(
    repo: &Repo,
    q: &ObservationQuery,
    readable: &[(Id, Vec<Id>)],
) -> Result<(Vec<StoredObs>, usize, Option<String>)> {
    if let Some(ids) = &q.common.ids {
        let mut found = Vec::new();
        for id in ids {
            if let Some(o) = repo.stored_observation(*id).await?
                && readable.iter().any(|(p, codes)| *p == o.patient_id && codes.contains(&o.code_id))
                && q.date.contains(o.time(ObsOrder::Date)?)
                && q.last_updated.contains(o.time(ObsOrder::LastUpdated)?)
            {
                found.push(o);
            }
        }
        let n = found.len();
        return Ok((if q.common.summary_count { vec![] } else { found }, n, None));
    }
    // Later pages carry the total their first page counted.
    let total = match q.common.cursor.and_then(|c| c.total).filter(|_| !q.common.summary_count) {
        Some(n) => n,
        None => total(repo, q, readable).await?,
    };
    if q.common.summary_count {
        return Ok((vec![], total, None));
    }
    let limit = q.common.count;
    let mut out: Vec<StoredObs> = Vec::new();
    let mut more = false;
    for (p, codes) in readable {
        if let Some(cur) = q.common.cursor
            && *p < cur.patient
        {
            continue;
        }
        let seek = q.common.cursor.filter(|cur| cur.patient == *p).map(|cur| (cur.at, cur.id));
        let need = limit + 1 - out.len();
        let mut merged = Vec::new();
        for code in codes {
            merged.extend(scan(repo, q, *p, *code, seek, need).await?);
        }
        // One scope's scan is in order already (by time, then id, as its keys sort).
        if codes.len() > 1 {
            let mut keyed =
                merged.into_iter().map(|o| Ok((o.time(order(q.sort))?, o.id, o))).collect::<Result<Vec<_>>>()?;
            keyed.sort_by_key(|(at, id, _)| (*at, *id));
            if q.descending {
                keyed.reverse();
            }
            merged = keyed.into_iter().map(|(_, _, o)| o).collect();
        }
        merged.truncate(need);
        out.extend(merged);
        if out.len() > limit {
            more = true;
            out.truncate(limit);
            break;
        }
    }
    let next = if more {
        match out.last() {
            Some(o) => Some(
                Cursor { patient: o.patient_id, at: o.time(order(q.sort))?, id: o.id, total: Some(total) }.encode(),
            ),
            None => None,
        }
    } else {
        None
    };
    Ok((out, total, next))
}

/// One page of an Observation search, typed: serialised straight to the wire by
/// `fhir::EntryWriter` (no `Value` tree per Observation), either from the page's stored
/// observations or, for a page written as its store queries read it, from the entries already
/// written.
pub struct ObservationPage {
    /// The entries written and how many.
    written: (Vec<u8>, usize),
    /// The (patient, code id) pairs shown.
    pairs: BTreeSet<(Id, Id)>,
    pub total: usize,
    pub next: Option<String>,
    codes: Renderer,
    /// The consent facts the search loaded and the catalogue as listed, for `grants`.
    facts: Facts,
    catalogue: Vec<Code>,
}

impl ObservationPage {
    /// How many entries the page holds.
    pub fn len(&self) -> usize {
        self.written.1
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The Bundle of this page as JSON bytes, with its links.
    pub fn into_bytes(self, links: &[(&str, String)]) -> Result<Vec<u8>> {
        let (mut out, n) = self.written;
        fhir::finish_searchset(&mut out, n, links, Some(self.total)).map_err(Error::Internal)?;
        Ok(out)
    }
    /// The (patient, code) pairs shown, for the audit record.
    pub fn shown(&self) -> BTreeSet<(Id, String)> {
        self.pairs.iter().map(|(p, code)| (*p, self.codes.code(*code).coding_code.clone())).collect()
    }
    /// `grants` of the pairs shown, with the catalogue and facts this search already read.
    pub async fn grants(&mut self, repo: &Repo, c: &Caller, pairs: &BTreeSet<(Id, String)>) -> Result<BTreeSet<Grant>> {
        grants_with(repo, c, pairs, &ids_by_code(&self.catalogue), &mut self.facts).await
    }
}

/// The code (empty if no longer in the catalogue) and the patient's user id of an observation.
fn lookup<'a>(codes: &'a Renderer, users: &BTreeMap<Id, Option<Id>>, patient: Id, code: Id) -> (&'a Code, Option<Id>) {
    (codes.code(code), users.get(&patient).copied().flatten())
}

/// A page of an Observation search; `base` is the FHIR base URL its entries name. A page ends
/// before `max_bytes` (`fhir::EntryWriter::push_within`), its `next` link resuming after the last
/// entry it holds.
pub async fn observation_bundle(
    repo: &Repo,
    c: &Caller,
    q: &ObservationQuery,
    base: &str,
    max_bytes: usize,
) -> Result<ObservationPage> {
    let codes = repo.list_codes().await?;
    let mut facts = Facts::default();
    let readable = readable(repo, c, q, &mut facts, &codes).await?;
    if one_scan_each(q, &readable) {
        return written_page(repo, q, readable, codes, facts, base, max_bytes).await;
    }
    let (obs, total, mut next) = search_in(repo, q, &readable).await?;
    let mut users: BTreeMap<Id, Option<Id>> = BTreeMap::new();
    for o in &obs {
        if let std::collections::btree_map::Entry::Vacant(e) = users.entry(o.patient_id) {
            e.insert(facts.patient(repo, o.patient_id).await?.and_then(|f| f.user_id));
        }
    }
    let renderer = Renderer::new(&codes);
    let mut w = fhir::EntryWriter::new(base, |p, code| lookup(&renderer, &users, p, code), obs.len())
        .map_err(Error::Internal)?;
    let (mut pairs, mut last) = (BTreeSet::new(), None);
    for o in &obs {
        // A search by `_id` has no cursor to go on with: its page holds every match.
        let kept = if q.common.ids.is_some() { w.push(o).map(|()| true) } else { w.push_within(o, max_bytes) };
        match (kept.map_err(Error::Internal)?, last) {
            (true, _) => {
                pairs.insert((o.patient_id, o.code_id));
                last = Some(o);
            }
            (false, Some(l)) => {
                let at = l.time(order(q.sort))?;
                next = Some(Cursor { patient: l.patient_id, at, id: l.id, total: Some(total) }.encode());
                break;
            }
            (false, None) => break,
        }
    }
    let written = w.into_parts();
    Ok(ObservationPage { written, pairs, total, next, codes: renderer, facts, catalogue: codes })
}

/// Whether each patient's observations are one scan read in the page's order with nothing
/// filtered after reading (one readable scope per patient, one time filter): how a notebook pulls
/// a patient's data (`patient` and `code`). Otherwise `search_in` answers.
fn one_scan_each(q: &ObservationQuery, readable: &[(Id, Vec<Id>)]) -> bool {
    q.common.ids.is_none()
        && !q.common.summary_count
        && post_filter(q).is_none()
        && readable.iter().all(|(_, codes)| codes.len() <= 1)
}

/// `search_in` for a search `one_scan_each` let through, with each entry written as the store
/// reads it: no copy of the stored documents, no list of them. The same page, byte for byte.
async fn written_page(
    repo: &Repo,
    q: &ObservationQuery,
    readable: Vec<(Id, Vec<Id>)>,
    catalogue: Vec<Code>,
    mut facts: Facts,
    base: &str,
    max_bytes: usize,
) -> Result<ObservationPage> {
    let total = match q.common.cursor.and_then(|c| c.total) {
        Some(n) => n,
        None => total(repo, q, &readable).await?,
    };
    let scans = scans(q, &readable);
    let mut users = BTreeMap::new();
    for (p, _) in &scans {
        users.insert(*p, facts.patient(repo, *p).await?.and_then(|f| f.user_id));
    }
    let codes = Renderer::new(&catalogue);
    let limit = q.common.count;
    let mut w = fhir::EntryWriter::new(base, |p, code| lookup(&codes, &users, p, code), limit.min(1000))
        .map_err(Error::Internal)?;
    let (mut last, mut more, mut pairs) = (None, false, BTreeSet::new());
    walk(repo, q, &scans, limit + 1, &mut |o| {
        // One more than the page holds, or than its bytes allow: there is a next page.
        if more || w.entries() == limit || !w.push_within(&o, max_bytes).map_err(Error::Internal)? {
            more = true;
            return Ok(());
        }
        last = Some((o.patient_id, o.at, o.id));
        pairs.insert((o.patient_id, o.code_id));
        Ok(())
    })
    .await?;
    let next = last.filter(|_| more).map(|(patient, at, id)| Cursor { patient, at, id, total: Some(total) }.encode());
    let written = w.into_parts();
    Ok(ObservationPage { written, pairs, total, next, codes, facts, catalogue })
}

/// The (patient, scope) of each scan of a search `one_scan_each` let through, from its cursor's
/// patient on.
fn scans(q: &ObservationQuery, readable: &[(Id, Vec<Id>)]) -> Vec<(Id, Id)> {
    let after = |p: Id| q.common.cursor.is_none_or(|cur| p >= cur.patient);
    readable.iter().filter(|(p, _)| after(*p)).filter_map(|(p, codes)| codes.first().map(|c| (*p, *c))).collect()
}

/// Hands up to `need` observations of `scans` to `each`, in the search's order from its cursor on,
/// each as the store reads it (its document borrowed, not copied).
async fn walk(
    repo: &Repo,
    q: &ObservationQuery,
    scans: &[(Id, Id)],
    need: usize,
    each: &mut (dyn FnMut(ScannedObs<'_>) -> Result<()> + Send),
) -> Result<()> {
    let (order, range) = (order(q.sort), q.window());
    if range.is_empty() {
        return Ok(());
    }
    let mut given = 0;
    for &(p, code) in scans {
        let seek = q.common.cursor.filter(|cur| cur.patient == p).map(|cur| (cur.at, cur.id));
        let mut store_cursor = None;
        loop {
            if given == need {
                return Ok(());
            }
            let limit = (need - given).min(1000);
            let scan = ObsScan { patient: p, code, order, range, seek, descending: q.descending, limit };
            let next = repo
                .observations_each(&scan, store_cursor, &mut |o| {
                    given += 1;
                    each(o)
                })
                .await?;
            match next {
                Some(n) => store_cursor = Some(n),
                None => break,
            }
        }
    }
    Ok(())
}

/// One observation, if the caller may read it (404 otherwise: hidden data is not revealed).
pub async fn read_observation(repo: &Repo, c: &Caller, id: Id) -> Result<Value> {
    let o = repo.observation(id).await?.ok_or_else(Error::not_found)?;
    let mut facts = Facts::default();
    let pf = facts.patient(repo, o.patient_id).await?.ok_or_else(Error::not_found)?;
    let vis = access::visible_scopes(c, o.patient_id, &pf.enrolled, &pf.consents, None);
    if !vis.allows(o.code_id) {
        return Err(Error::not_found());
    }
    let code = repo.code(o.code_id).await?.ok_or_else(Error::not_found)?;
    Ok(fhir::observation(&o, &code, pf.user_id))
}

/// The admin API's observation list (`/api/v1/observations`), a DRF page under the same rule.
pub async fn admin_observations(
    repo: &Repo,
    c: &Caller,
    q: &ObservationQuery,
    page: usize,
    page_size: usize,
) -> Result<(Vec<Value>, usize)> {
    if !access::may_list_observations(c) {
        return Err(Error::not_found());
    }
    let codes = repo.list_codes().await?;
    let mut facts = Facts::default();
    let mut q = q.clone();
    q.common.count = page_size;
    q.common.cursor = None;
    let readable = readable(repo, c, &q, &mut facts, &codes).await?;
    // A page number too large to multiply out is past the last page all the same.
    let skip = page.saturating_sub(1).saturating_mul(page_size);
    let mut rows = Vec::new();
    let mut total = 0;
    if skip > 0 {
        // A page past the last is answered from the count, without walking the pages before it.
        total = self::total(repo, &q, &readable).await?;
        if skip >= total {
            return Ok((Vec::new(), total));
        }
    }
    if skip > 0 && one_scan_each(&q, &readable) {
        // The pages before it are walked in the store (no document copied or parsed), and the
        // page is read from where they end.
        let (mut walked, mut last) = (0, None);
        walk(repo, &q, &scans(&q, &readable), skip, &mut |o| {
            walked += 1;
            last = Some((o.patient_id, o.at, o.id));
            Ok(())
        })
        .await?;
        if let Some((patient, at, id)) = last.filter(|_| walked == skip) {
            q.common.cursor = Some(Cursor { patient, at, id, total: Some(total) });
            rows = search_in(repo, &q, &readable).await?.0;
        }
    } else {
        let mut skipped = 0;
        loop {
            let (obs, t, next) = search_in(repo, &q, &readable).await?;
            total = t;
            if skipped + obs.len() > skip {
                rows = obs.into_iter().skip(skip - skipped).collect();
                break;
            }
            skipped += obs.len();
            match next {
                Some(n) => q.common.cursor = Some(Cursor::decode(&n).map_err(Error::Internal)?),
                None => break,
            }
        }
    }
    let r = Renderer::new(&codes);
    let mut out = Vec::new();
    // A page holds few patients: read each once.
    let mut patients: BTreeMap<Id, Option<crate::model::Patient>> = BTreeMap::new();
    for o in rows {
        let o = o.decode()?;
        if let std::collections::btree_map::Entry::Vacant(e) = patients.entry(o.patient_id) {
            e.insert(repo.patient(o.patient_id).await?);
        }
        let p = patients.get(&o.patient_id).and_then(Option::as_ref);
        let code = r.code(o.code_id);
        let omh: Value = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, o.data.as_bytes())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        out.push(json!({
            "id": o.id, "subjectPatientId": o.patient_id,
            "patientNameFamily": p.and_then(|p| p.name_family.clone()),
            "patientNameGiven": p.and_then(|p| p.name_given.clone()),
            "jheUserId": p.and_then(|p| p.user_id),
            "codeableConceptId": o.code_id, "codingSystem": code.coding_system, "codingCode": code.coding_code, "codingText": code.text,
            "dataSourceId": o.data_source_id, "status": o.status,
            "effectiveDateTime": o.effective_start.map(fhir::ts_ms),
            "lastUpdated": fhir::ts_ms(o.last_updated),
            "omhData": omh,
        }));
    }
    Ok((out, total))
}

// ------------------------------------------------------------------- other resources

fn starts(hay: Option<&str>, needle: &Option<String>) -> bool {
    needle.as_ref().is_none_or(|n| hay.is_some_and(|h| h.to_lowercase().starts_with(n.as_str())))
}

/// Patient, Group, Organization, Practitioner and Device search: small sets, filtered in
/// memory, ordered by id, paged by the last id.
pub async fn search_other(repo: &Repo, c: &Caller, resource: &str, common: &Common, q: &OtherQuery) -> Result<Found> {
    let mut items: Vec<(Id, Value)> = Vec::new();
    if !common.foreign_source {
        match resource {
            "Patient" => {
                let ids: Vec<Id> = match access::patient_self(c) {
                    Some(me) => vec![me],
                    _ => candidate_patients(repo, c, None, q.study, q.organization).await?,
                };
                for id in ids {
                    if let Some(s) = q.study
                        && c.patient_id() == Some(id)
                        && !repo.patient_study_ids(id).await?.contains(&s)
                    {
                        continue;
                    }
                    let Some(p) = repo.patient(id).await? else { continue };
                    if let Some((sys, val)) = &q.identifier
                        && !p.identifiers.iter().any(|i| i.value == *val && sys.as_ref().is_none_or(|s| *s == i.system))
                    {
                        continue;
                    }
                    let name_hit = q.name.as_ref().is_none_or(|n| {
                        [&p.name_family, &p.name_given]
                            .iter()
                            .any(|x| x.as_deref().is_some_and(|x| x.to_lowercase().starts_with(n.as_str())))
                    });
                    let birth_ok = q.birthdate.is_all()
                        || p.birth_date
                            .as_deref()
                            .and_then(|d| fhir::search::parse_date(d).ok())
                            .and_then(|r| r.lo)
                            .is_some_and(|t| q.birthdate.contains(t));
                    let lu = (p.last_updated.unix_timestamp_nanos() / 1_000_000) as i64;
                    if name_hit
                        && birth_ok
                        && starts(p.name_family.as_deref(), &q.family)
                        && starts(p.name_given.as_deref(), &q.given)
                        && q.last_updated.contains(lu)
                    {
                        let email = match p.user_id {
                            Some(u) => repo.user(u).await?.map(|u| u.email),
                            None => None,
                        };
                        items.push((id, fhir::patient(&p, email.as_deref())));
                    }
                }
            }
            "Group" => {
                if let Some(me) = access::patient_self(c) {
                    // A patient sees the studies they are enrolled in.
                    for s in repo.patient_study_ids(me).await? {
                        if let Some(st) = repo.study(s).await? {
                            items.push((s, fhir::group(&st, None)));
                        }
                    }
                } else {
                    let orgs: Vec<Id> = match q.organization {
                        Some(o) if access::may_search_in(c, o) => vec![o],
                        Some(o) => {
                            return Err(Error::Forbidden(format!("You do not have access to Organization/{o}.")));
                        }
                        None => access::searched_orgs(c),
                    };
                    for o in orgs {
                        for s in repo.studies(&repo.org_study_ids(o).await?).await? {
                            if starts(Some(&s.name), &q.name) {
                                let n = repo.study_patient_ids(s.id).await?.len();
                                items.push((s.id, fhir::group(&s, Some(n))));
                            }
                        }
                    }
                }
            }
            "Organization" => {
                for o in repo.list_orgs().await? {
                    if starts(Some(&o.name), &q.name) {
                        items.push((o.id, fhir::organization(&o)));
                    }
                }
            }
            "Practitioner" => {
                if access::patient_self(c).is_none() {
                    let mut seen = BTreeSet::new();
                    for o in access::searched_orgs(c) {
                        for (u, _) in repo.org_members(o).await? {
                            seen.insert(u);
                        }
                    }
                    seen.insert(c.id());
                    for u in seen {
                        let Some(user) = repo.user(u).await? else { continue };
                        let Some(pid) = user.practitioner_id else { continue };
                        let Some(p) = repo.practitioner(pid).await? else { continue };
                        let hit = q.name.as_ref().is_none_or(|n| {
                            [&p.name_family, &p.name_given]
                                .iter()
                                .any(|x| x.as_deref().is_some_and(|x| x.to_lowercase().starts_with(n.as_str())))
                        });
                        if hit {
                            items.push((p.id, fhir::practitioner(&p)));
                        }
                    }
                }
            }
            "Device" => {
                if q.device_type.as_deref().is_none_or(|t| t == "data-source" || t.ends_with("|data-source")) {
                    for d in repo.list_data_sources().await? {
                        items.push((d.id, fhir::device(&d)));
                    }
                }
            }
            other => return Err(Error::NotFound(format!("Unsupported FHIR resource type: {other}."))),
        }
    }
    if let Some(ids) = &common.ids {
        items.retain(|(id, _)| ids.contains(id));
    }
    items.sort_by_key(|(id, _)| *id);
    items.dedup_by_key(|(id, _)| *id);
    let total = items.len();
    if common.summary_count {
        return Ok(Found { resources: vec![], total, next: None });
    }
    let after = common.cursor.map(|c| c.id).unwrap_or(i64::MIN);
    let rest: Vec<(Id, Value)> = items.into_iter().filter(|(id, _)| *id > after).collect();
    let next = if rest.len() > common.count {
        rest.get(common.count - 1).map(|(id, _)| Cursor { patient: 0, at: 0, id: *id, total: None }.encode())
    } else {
        None
    };
    Ok(Found { resources: rest.into_iter().take(common.count).map(|(_, v)| v).collect(), total, next })
}

/// Reads one Patient, Group, Organization, Practitioner or Device (404 if absent or out of reach).
pub async fn read_other(repo: &Repo, c: &Caller, resource: &str, id: Id) -> Result<Value> {
    let common = Common { count: 1, summary_count: false, cursor: None, ids: Some(vec![id]), foreign_source: false };
    let found = search_other(repo, c, resource, &common, &OtherQuery::default()).await?;
    found.resources.into_iter().next().ok_or_else(Error::not_found)
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
