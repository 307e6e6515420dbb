//! Searches and reads of the resources other than Observation, under the organization rule.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

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
