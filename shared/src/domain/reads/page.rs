//! A page of an Observation search. How it is read is decided once (`PagePlan::of`), then
//! carried out by the plan's own function; every plan writes through one `fhir::EntryWriter`.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// How a page of an Observation search is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PagePlan {
    /// `_summary=count`: only the total.
    CountOnly,
    /// `_id`: each id read and judged on its own; the page holds every match (no cursor).
    ById,
    /// One scan per patient in the page's order, nothing filtered after reading (a notebook
    /// pulling `patient` + `code`): each entry is written as the store reads it (`written_page`).
    WrittenAsRead,
    /// Several scopes of a patient merged in time order, or a filter on the other time: the
    /// stored documents are collected, merged and filtered, then written (`merged`).
    Merged,
}

impl PagePlan {
    pub(super) fn of(q: &ObservationQuery, readable: &[(Id, Vec<Id>)]) -> Self {
        if q.common.summary_count {
            PagePlan::CountOnly
        } else if q.common.ids.is_some() {
            PagePlan::ById
        } else if post_filter(q).is_none() && readable.iter().all(|(_, codes)| codes.len() <= 1) {
            PagePlan::WrittenAsRead
        } else {
            PagePlan::Merged
        }
    }
}

/// Observation search: patients in id order; within a patient, by the sort (newest first by
/// default), merged across the readable scopes. Paging is by cursor: a page costs the same
/// wherever it starts.
pub async fn search_observations(
    repo: &Repo,
    c: &Caller,
    q: &ObservationQuery,
) -> Result<(Vec<Observation>, usize, Option<String>)> {
    let readable = readable_scopes(repo, c, q, &mut Facts::default(), &repo.list_codes().await?).await?;
    let (found, total, next) = collected(repo, q, &readable).await?;
    Ok((found.iter().map(StoredObs::decode).collect::<Result<_>>()?, total, next))
}

/// The page's stored observations, its total and the next page's cursor, for every plan but
/// `WrittenAsRead` (whose page is the same, collected here instead of written as read).
pub(super) async fn collected(
    repo: &Repo,
    q: &ObservationQuery,
    readable: &[(Id, Vec<Id>)],
) -> Result<(Vec<StoredObs>, usize, Option<String>)> {
    match PagePlan::of(q, readable) {
        PagePlan::ById => by_ids(repo, q, readable).await,
        PagePlan::CountOnly if q.common.ids.is_some() => Ok((vec![], by_ids(repo, q, readable).await?.1, None)),
        PagePlan::CountOnly => Ok((vec![], total(repo, q, readable).await?, None)),
        PagePlan::WrittenAsRead | PagePlan::Merged => merged(repo, q, readable).await,
    }
}

/// `PagePlan::ById`: the observations named, those the caller may read in the window.
async fn by_ids(
    repo: &Repo,
    q: &ObservationQuery,
    readable: &[(Id, Vec<Id>)],
) -> Result<(Vec<StoredObs>, usize, Option<String>)> {
    let mut found = Vec::new();
    for id in q.common.ids.iter().flatten() {
        if let Some(o) = repo.stored_observation(*id).await?
            && readable.iter().any(|(p, codes)| *p == o.patient_id && codes.contains(&o.code_id))
            && q.date.contains(o.time(ObsOrder::Date)?)
            && q.last_updated.contains(o.time(ObsOrder::LastUpdated)?)
        {
            found.push(o);
        }
    }
    let n = found.len();
    Ok((found, n, None))
}

/// `PagePlan::Merged`: patients in id order; within a patient, each readable scope's scan
/// merged by the sort, filtered by the other time; paged by cursor.
async fn merged(
    repo: &Repo,
    q: &ObservationQuery,
    readable: &[(Id, Vec<Id>)],
) -> Result<(Vec<StoredObs>, usize, Option<String>)> {
    // Later pages carry the total their first page counted.
    let total = match q.common.cursor.and_then(|c| c.total) {
        Some(n) => n,
        None => total(repo, q, readable).await?,
    };
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
        let mut found = Vec::new();
        for code in codes {
            found.extend(scan(repo, q, *p, *code, seek, need).await?);
        }
        // One scope's scan is in order already (by time, then id, as its keys sort).
        if codes.len() > 1 {
            let mut keyed =
                found.into_iter().map(|o| Ok((o.time(order(q.sort))?, o.id, o))).collect::<Result<Vec<_>>>()?;
            keyed.sort_by_key(|(at, id, _)| (*at, *id));
            if q.descending {
                keyed.reverse();
            }
            found = keyed.into_iter().map(|(_, _, o)| o).collect();
        }
        found.truncate(need);
        out.extend(found);
        if out.len() > limit {
            more = true;
            out.truncate(limit);
            break;
        }
    }
    let next = match out.last().filter(|_| more) {
        Some(o) => Some(cursor_after(q, o, total)?),
        None => None,
    };
    Ok((out, total, next))
}

/// The cursor of the page after one ending with `o`.
fn cursor_after(q: &ObservationQuery, o: &StoredObs, total: usize) -> Result<String> {
    Ok(Cursor { patient: o.patient_id, at: o.time(order(q.sort))?, id: o.id, total: Some(total) }.encode())
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
    let readable = readable_scopes(repo, c, q, &mut facts, &codes).await?;
    let plan = PagePlan::of(q, &readable);
    if plan == PagePlan::WrittenAsRead {
        return written_page(repo, q, readable, codes, facts, base, max_bytes).await;
    }
    let (obs, total, mut next) = collected(repo, q, &readable).await?;
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
        let kept = if plan == PagePlan::ById { w.push(o).map(|()| true) } else { w.push_within(o, max_bytes) };
        match (kept.map_err(Error::Internal)?, last) {
            (true, _) => {
                pairs.insert((o.patient_id, o.code_id));
                last = Some(o);
            }
            (false, Some(l)) => {
                next = Some(cursor_after(q, l, total)?);
                break;
            }
            (false, None) => break,
        }
    }
    let written = w.into_parts();
    Ok(ObservationPage { written, pairs, total, next, codes: renderer, facts, catalogue: codes })
}

/// `PagePlan::WrittenAsRead`: each entry written as the store reads it, no copy of the stored
/// documents and no list of them; the same page, byte for byte, as `merged` would collect.
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

/// The (patient, scope) of each scan of a `WrittenAsRead` search, from its cursor's patient on.
pub(super) fn scans(q: &ObservationQuery, readable: &[(Id, Vec<Id>)]) -> Vec<(Id, Id)> {
    let after = |p: Id| q.common.cursor.is_none_or(|cur| p >= cur.patient);
    readable.iter().filter(|(p, _)| after(*p)).filter_map(|(p, codes)| codes.first().map(|c| (*p, *c))).collect()
}

/// Hands up to `need` observations of `scans` to `each`, in the search's order from its cursor on,
/// each as the store reads it (its document borrowed, not copied).
pub(super) async fn walk(
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
