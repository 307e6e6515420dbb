//! The admin API's observation list (`/api/v1/observations`): DRF pages by number.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::page::{PagePlan, collected, scans, walk};
use super::*;

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
    let readable = readable_scopes(repo, c, &q, &mut facts, &codes).await?;
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
    if skip > 0 && PagePlan::of(&q, &readable) == PagePlan::WrittenAsRead {
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
            rows = collected(repo, &q, &readable).await?.0;
        }
    } else {
        let mut skipped = 0;
        loop {
            let (obs, t, next) = collected(repo, &q, &readable).await?;
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

/// The admin list's query (`organizationId`, `studyId`, `patientId`, `observationId`, snake_cased)
/// as the Observation search it is: newest stored first.
pub fn admin_query(q: &std::collections::BTreeMap<String, String>) -> Result<ObservationQuery> {
    let named = [
        ("organization_id", "patient.organization"),
        ("study_id", "patient._has:Group:member:_id"),
        ("patient_id", "patient"),
        ("observation_id", "_id"),
    ];
    let mut params: Vec<(String, String)> =
        named.iter().filter_map(|(k, p)| q.get(*k).map(|v| (p.to_string(), v.clone()))).collect();
    params.push(("_sort".to_string(), "-_lastUpdated".to_string()));
    crate::fhir::search::parse_observation_query(&params).map_err(Error::BadRequest)
}
