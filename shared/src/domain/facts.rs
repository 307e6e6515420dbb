//! Loads the facts the consent rule needs (a patient's organizations, enrolments, consents, and
//! each study's organization, scopes and devices), caching studies for the request.

use std::collections::{BTreeMap, HashMap};

use crate::access::StudyGrant;
use crate::domain::model::Id;
use crate::error::Result;
use crate::repo::{Repo, keys};

#[derive(Debug, Clone, Default)]
pub struct PatientFacts {
    pub orgs: Vec<Id>,
    pub enrolled: Vec<StudyGrant>,
    pub consents: BTreeMap<(Id, Id), bool>,
    pub user_id: Option<Id>,
}

/// A per-request cache of study grants and patient facts.
#[derive(Default)]
pub struct Facts {
    studies: HashMap<Id, Option<StudyGrant>>,
    patients: HashMap<Id, Option<PatientFacts>>,
}

impl Facts {
    pub async fn study(&mut self, repo: &Repo, s: Id) -> Result<Option<StudyGrant>> {
        if let Some(g) = self.studies.get(&s) {
            return Ok(g.clone());
        }
        let g = match repo.study(s).await? {
            Some(st) => Some(StudyGrant {
                study: s,
                org: st.organization_id,
                requested: repo.linked_ids(&keys::study(s), "C#").await?.into_iter().collect(),
                data_sources: repo.linked_ids(&keys::study(s), "D#").await?.into_iter().collect(),
            }),
            None => None,
        };
        self.studies.insert(s, g.clone());
        Ok(g)
    }

    /// The patient's facts, or `None` if there is no such patient.
    pub async fn patient(&mut self, repo: &Repo, p: Id) -> Result<Option<PatientFacts>> {
        if let Some(f) = self.patients.get(&p) {
            return Ok(f.clone());
        }
        let f = match repo.patient(p).await? {
            None => None,
            Some(pat) => {
                let mut enrolled = Vec::new();
                for s in repo.patient_study_ids(p).await? {
                    if let Some(g) = self.study(repo, s).await? {
                        enrolled.push(g);
                    }
                }
                let consents =
                    repo.consents(p).await?.into_iter().map(|c| ((c.study_id, c.code_id), c.consented)).collect();
                Some(PatientFacts { orgs: repo.patient_org_ids(p).await?, enrolled, consents, user_id: pat.user_id })
            }
        };
        self.patients.insert(p, f.clone());
        Ok(f)
    }
}
