//! Loads the facts the consent rule needs (a patient's organizations, enrolments, consents, and
//! each study's organization, scopes and devices), caching studies for the request.

use std::collections::{BTreeMap, HashMap};

use crate::access::StudyGrant;
use crate::error::Result;
use crate::model::Id;
use crate::repo::{PatientLinks, Repo, keys};

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
        let links = repo.patient_with_links(p).await?;
        self.remember(repo, p, links).await
    }

    /// Loads the facts of many patients, `CONCURRENT_READS` partitions at a time (each one
    /// query), so that a study-wide search waits on a few dozen round trips, not thousands.
    pub async fn preload(&mut self, repo: &Repo, patients: &[Id]) -> Result<()> {
        use futures_util::stream::{StreamExt, TryStreamExt};
        let reads: Vec<Pending<'_, (Id, Option<PatientLinks>)>> = patients
            .iter()
            .copied()
            .filter(|p| !self.patients.contains_key(p))
            .map(|p| -> Pending<'_, (Id, Option<PatientLinks>)> {
                Box::pin(async move { repo.patient_with_links(p).await.map(|l| (p, l)) })
            })
            .collect();
        let loaded: Vec<(Id, Option<PatientLinks>)> =
            futures_util::stream::iter(reads).buffered(CONCURRENT_READS).try_collect().await?;
        for (p, links) in loaded {
            self.remember(repo, p, links).await?;
        }
        Ok(())
    }

    async fn remember(&mut self, repo: &Repo, p: Id, links: Option<PatientLinks>) -> Result<Option<PatientFacts>> {
        let f = match links {
            None => None,
            Some(l) => {
                let mut enrolled = Vec::new();
                for s in &l.studies {
                    if let Some(g) = self.study(repo, *s).await? {
                        enrolled.push(g);
                    }
                }
                let consents = l.consents.iter().map(|c| ((c.study_id, c.code_id), c.consented)).collect();
                Some(PatientFacts { orgs: l.orgs, enrolled, consents, user_id: l.patient.user_id })
            }
        };
        self.patients.insert(p, f.clone());
        Ok(f)
    }
}

/// Reads of the store in flight at once for one request.
pub const CONCURRENT_READS: usize = 16;

/// A read in flight, boxed so that a stream of them is `Send` for any borrow it holds.
pub type Pending<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>>;
