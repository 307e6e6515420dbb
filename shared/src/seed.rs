//! The demo data set: upstream's seed (organizations, practitioners, patients, studies, scopes,
//! data sources, clients, consents), password `Jhe1234!`, with upstream's id ranges.

use time::OffsetDateTime;

use crate::auth::crypto::random_alnum;
use crate::auth::password;
use crate::config::Settings;
use crate::error::Result;
use crate::model::*;
use crate::repo::{Repo, Tx, keys};

pub const DEMO_PASSWORD: &str = "Jhe1234!";

/// The demo logins, as printed at start-up: (email, what they are).
pub const DEMO_LOGINS: &[(&str, &str)] = &[
    ("admin@example.com", "superuser"),
    ("manager_mary@example.com", "manager: Planetary Research Institute, Saturn School, Lifespan Lab"),
    ("member_megan@example.com", "member: Lifespan Lab"),
    ("viewer_victor@example.com", "viewer: Lifespan Lab"),
    ("three_org_tom@example.com", "viewer Lifespan Lab, member Neptunian Pulse Lab, manager Cosmic Cardio Lab"),
    ("manager_mark@example.com", "manager: Neptune Health System, Dept. of Medicine, Cardiology, Neptunian Pulse Lab"),
    ("ll_patient_peter@example.com", "patient: Lifespan Lab"),
    ("ll_patient_pamela@example.com", "patient: Lifespan Lab"),
    ("npl_patient_percy@example.com", "patient: Neptunian Pulse Lab"),
    ("ccl_patient_paul@example.com", "patient: Cosmic Cardio Lab"),
    ("ccl_cardio_patient_pat@example.com", "patient: Cardiology Division, Cosmic Cardio Lab"),
];

pub const OMH: &str = "https://w3id.org/openmhealth";

/// The scope-code catalogue: (id, system, code, text).
pub const CODES: &[(Id, &str, &str, &str)] = &[
    (50001, OMH, "omh:blood-glucose:4.0", "Blood glucose"),
    (50002, OMH, "omh:blood-pressure:4.0", "Blood pressure"),
    (50003, OMH, "omh:body-temperature:4.0", "Body temperature"),
    (50004, OMH, "omh:heart-rate:2.0", "Heart Rate"),
    (50005, OMH, "omh:oxygen-saturation:2.0", "Oxygen saturation"),
    (50006, OMH, "omh:respiratory-rate:2.0", "Respiratory rate"),
    (50007, OMH, "omh:rr-interval:1.0", "RR Interval"),
    (50008, OMH, "omh:body-weight:3.0", "Body weight"),
    (50009, OMH, "omh:forced-vital-capacity:1.0", "Forced vital capacity"),
    (50010, OMH, "omh:forced-expiratory-volume-1-second:1.0", "Forced expiratory volume in 1 second"),
    (50011, "http://hl7.org/fhir/resource-types", "QuestionnaireResponse", "FHIR QuestionnaireResponse"),
    (50012, OMH, "omh:physical-activity:1.2", "Physical activity"),
    (50013, OMH, "omh:step-count:3.0", "Step count"),
    (50014, "https://w3id.org/ieee1752", "ieee:sleep-stage-summary:1.0", "Sleep stage summary"),
    (50015, OMH, "omh:sleep-episode:1.1", "Sleep episode"),
    (50016, OMH, "omh:sleep-duration:2.0", "Sleep duration"),
];

/// The scopes of the other FHIR types stored as sent (`{TYPE_SCOPE_SYSTEM}|{type}`), after
/// upstream's catalogue: ids from 50017 in the order of `fhir::stored::TYPES` without
/// QuestionnaireResponse (50011).
pub fn type_scopes() -> Vec<(Id, String)> {
    crate::fhir::stored::TYPES
        .iter()
        .filter(|t| **t != "QuestionnaireResponse")
        .enumerate()
        .map(|(i, t)| (50017 + i as Id, t.to_string()))
        .collect()
}

fn camel_name(email: &str) -> String {
    email
        .split('@')
        .next()
        .unwrap_or("")
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

fn user(id: Id, email: &str, last: &str, hash: &str, kind: UserType) -> User {
    User {
        id,
        email: email.into(),
        first_name: camel_name(email),
        last_name: last.into(),
        password_hash: Some(hash.into()),
        user_type: Some(kind),
        is_superuser: false,
        patient_id: None,
        practitioner_id: None,
        identifier: None,
        date_joined: OffsetDateTime::now_utc(),
        last_login: None,
        settings: Default::default(),
    }
}

/// Loads the demo data into an empty store.
pub async fn seed(repo: &Repo, settings: &Settings, blobs: &dyn crate::ports::BlobStore) -> Result<()> {
    // Dozens of small records, made durable together at the end instead of one fsync'd commit
    // each (the first start is answered only after this returns). A seed that fails is not
    // flushed: when the process then stops without closing the store (`jhe serve` exits), or dies
    // before the end, the store is found empty on the next start and seeded again.
    let bulk = repo.deferred();
    seed_records(&bulk, settings, blobs).await?;
    bulk.table.flush().await?;
    Ok(())
}

async fn seed_records(repo: &Repo, settings: &Settings, blobs: &dyn crate::ports::BlobStore) -> Result<()> {
    let hash = tokio::task::spawn_blocking(|| password::hash(DEMO_PASSWORD))
        .await
        .map_err(|e| crate::error::Error::Internal(e.to_string()))??;
    let now = OffsetDateTime::now_utc();

    // Organizations.
    let orgs: &[(Id, &str, &str, Option<Id>)] = &[
        (ROOT_ORG_ID, "ROOT", "root", None),
        (20001, "Planetary Research Institute", "edu", Some(0)),
        (20002, "Saturn School of Data Science", "team", Some(20001)),
        (20003, "Lifespan Lab", "laboratory", Some(20002)),
        (20004, "Neptune Health System", "prov", Some(0)),
        (20005, "Department of Medicine", "dept", Some(20004)),
        (20006, "Cardiology Division", "dept", Some(20005)),
        (20007, "Neptunian Pulse Lab", "laboratory", Some(20006)),
        (20008, "Cosmic Cardio Lab", "laboratory", Some(20006)),
    ];
    for (id, name, t, parent) in orgs {
        repo.create_org(&Organization { id: *id, name: (*name).into(), org_type: (*t).into(), part_of: *parent }, None)
            .await?;
    }

    // Practitioners and their roles.
    type PractRow<'a> = (Id, Id, &'a str, &'a str, &'a [(Id, Role)]);
    let practs: &[PractRow] = &[
        (
            10002,
            80002,
            "manager_mary@example.com",
            "Smith",
            &[(20001, Role::Manager), (20002, Role::Manager), (20003, Role::Manager)],
        ),
        (10003, 80003, "member_megan@example.com", "Garcia", &[(20003, Role::Member)]),
        (10004, 80004, "viewer_victor@example.com", "Nguyen", &[(20003, Role::Viewer)]),
        (
            10005,
            80005,
            "three_org_tom@example.com",
            "Okafor",
            &[(20003, Role::Viewer), (20007, Role::Member), (20008, Role::Manager)],
        ),
        (
            10006,
            80006,
            "manager_mark@example.com",
            "Larsen",
            &[(20004, Role::Manager), (20005, Role::Manager), (20006, Role::Manager), (20007, Role::Manager)],
        ),
    ];
    let mut admin = user(10001, "admin@example.com", "Admin", &hash, UserType::Practitioner);
    admin.is_superuser = true;
    admin.practitioner_id = Some(80001);
    repo.create_practitioner(
        &admin,
        true,
        &Practitioner {
            id: 80001,
            user_id: 10001,
            name_family: Some("Admin".into()),
            name_given: Some("Admin".into()),
        },
        None,
    )
    .await?;
    for (uid, pid, email, last, roles) in practs {
        let mut u = user(*uid, email, last, &hash, UserType::Practitioner);
        u.practitioner_id = Some(*pid);
        let p = Practitioner {
            id: *pid,
            user_id: *uid,
            name_family: Some((*last).into()),
            name_given: Some(u.first_name.clone()),
        };
        repo.create_practitioner(&u, true, &p, None).await?;
        for (o, r) in *roles {
            repo.set_role(*o, *uid, *r).await?;
        }
    }

    // Scope codes and data sources.
    for (id, system, code, text) in CODES {
        repo.create_code(&Code {
            id: *id,
            coding_system: (*system).into(),
            coding_code: (*code).into(),
            text: (*text).into(),
        })
        .await?;
    }
    for (id, t) in type_scopes() {
        let code = Code {
            id,
            coding_system: crate::fhir::stored::TYPE_SCOPE_SYSTEM.into(),
            coding_code: t.clone(),
            text: format!("FHIR {t}"),
        };
        repo.create_code(&code).await?;
    }
    let sources: &[(Id, &str, &str, &[Id])] = &[
        (70001, "CareX", "personal_device", &[50002, 50004]),
        (70002, "Dexcom", "personal_device", &[50001]),
        (70003, "iHealth", "personal_device", &[50003, 50004]),
        (70004, "Oura", "personal_device", &[50004]),
        (70005, "Questionnaire", "patient_app", &[50011]),
        (70006, "Patient Access API", "medical_device", &[]),
    ];
    for (id, name, t, scopes) in sources {
        repo.create_data_source(&DataSource { id: *id, name: (*name).into(), ds_type: (*t).into() }).await?;
        for s in *scopes {
            repo.set_link(&keys::ds(*id), "C#", *s, true).await?;
        }
    }

    // OAuth clients: the web UI and three patient apps.
    let callback = format!("{}/auth/callback", settings.site_url);
    repo.create_client(&Client {
        id: 1,
        name: "JHE Admin UI".into(),
        client_id: settings.admin_client_id.clone(),
        kind: ClientKind::AdminUi,
        invitation_url: None,
        redirect_uris: vec![callback.clone()],
        created: now,
    })
    .await?;
    let apps: &[(Id, &str, &str, &[Id])] = &[
        (2, "CareX", "https://carex.ai/invitation/CODE", &[70001, 70005]),
        (3, "CommonHealth", "https://commonhealth.tcp.org?invitation=CODE", &[70002, 70003]),
        (4, "Patient Access", "http://localhost:8001/clients/patient-access/?code=CODE", &[]),
    ];
    for (id, name, url, dss) in apps {
        repo.create_client(&Client {
            id: *id,
            name: (*name).into(),
            client_id: random_alnum(40),
            kind: ClientKind::PatientApp,
            invitation_url: Some((*url).into()),
            redirect_uris: vec![callback.clone()],
            created: now + time::Duration::seconds(*id),
        })
        .await?;
        for d in *dss {
            repo.set_link(&keys::client(*id), "D#", *d, true).await?;
        }
    }

    // Patients.
    type PatientRow<'a> = (Id, Id, &'a str, &'a str, &'a [Id], &'a [(&'a str, &'a str)]);
    let patients: &[PatientRow] = &[
        (
            40001,
            10007,
            "ll_patient_peter@example.com",
            "Jones",
            &[20003],
            &[("urn:oid:1.2.3.4", "E1234"), ("https://openwearables.io/ns/patient-id", "abc123")],
        ),
        (40002, 10008, "ll_patient_pamela@example.com", "Brown", &[20003], &[]),
        (40003, 10009, "npl_patient_percy@example.com", "Wilson", &[20007], &[]),
        (40004, 10010, "ccl_patient_paul@example.com", "Taylor", &[20008], &[]),
        (40005, 10011, "ccl_cardio_patient_pat@example.com", "Moore", &[20006, 20008], &[]),
    ];
    for (pid, uid, email, last, porgs, idents) in patients {
        let mut u = user(*uid, email, last, &hash, UserType::Patient);
        u.patient_id = Some(*pid);
        let p = Patient {
            id: *pid,
            user_id: Some(*uid),
            name_family: Some((*last).into()),
            name_given: Some(camel_name(email)),
            birth_date: Some("1990-05-15".into()),
            telecom_phone: Some("+1-555-000-1234".into()),
            identifiers: idents
                .iter()
                .enumerate()
                .map(|(i, (s, v))| PatientIdentifier { id: i as Id + 1, system: (*s).into(), value: (*v).into() })
                .collect(),
            last_updated: now,
        };
        let mut tx = Tx::new();
        crate::repo::Repo::tx_new_user(&mut tx, &u)?;
        tx.commit(repo).await?;
        repo.seed_patient(&p, porgs).await?;
    }

    // Studies with scope requests, data sources, clients, enrolments and consents.
    type StudyRow<'a> = (Id, &'a str, &'a str, Id, &'a [Id], &'a [Id], &'a [Id], &'a [(Id, &'a [Id])]);
    let studies: &[StudyRow] = &[
        (
            30001,
            "Lifespan Study on BP & HR",
            "Blood Pressure & Heart Rate",
            20003,
            &[50002, 50004, 50011],
            &[70001, 70005],
            &[2, 4],
            &[(40001, &[50002, 50004, 50011]), (40002, &[50002, 50004, 50011])],
        ),
        (
            30002,
            "Lifespan Study on BP",
            "Blood Pressure",
            20003,
            &[50002, 50011],
            &[70001, 70005],
            &[2],
            &[(40001, &[]), (40002, &[50002, 50011])],
        ),
        (30003, "Cardiology Div Study on BGL", "Blood Glucose", 20006, &[50001], &[70002], &[3], &[(40005, &[50001])]),
        (30004, "Nep Pulse Lab Study on BT", "Body Temperature", 20007, &[50003], &[70003], &[3], &[(40003, &[50003])]),
        (
            30005,
            "Cosmic Cardio Lab Study on O2",
            "Oxygen Saturation",
            20008,
            &[50005],
            &[],
            &[],
            &[(40004, &[50005]), (40005, &[50005])],
        ),
    ];
    for (sid, name, desc, org, scopes, dss, clients, enrolled) in studies {
        repo.create_study(&Study {
            id: *sid,
            name: (*name).into(),
            description: (*desc).into(),
            organization_id: *org,
            icon_url: None,
        })
        .await?;
        for s in *scopes {
            repo.set_link(&keys::study(*sid), "C#", *s, true).await?;
        }
        for d in *dss {
            repo.set_link(&keys::study(*sid), "D#", *d, true).await?;
        }
        for c in *clients {
            repo.set_link(&keys::study(*sid), "L#", *c, true).await?;
        }
        let pids: Vec<Id> = enrolled.iter().map(|(p, _)| *p).collect();
        repo.enrol(*sid, &pids).await?;
        let consents: Vec<Consent> = enrolled
            .iter()
            .flat_map(|(p, codes)| {
                codes.iter().map(move |c| Consent {
                    patient_id: *p,
                    study_id: *sid,
                    code_id: *c,
                    consented: true,
                    consented_time: now,
                })
            })
            .collect();
        if !consents.is_empty() {
            repo.write_consents(&consents, &[]).await?;
        }
    }

    seed_observations(repo, blobs).await?;
    seed_questionnaire_responses(repo, now).await?;

    for (kind, last) in [
        ("user", 10011),
        ("organization", 20008),
        ("study", 30005),
        ("patient", 40005),
        ("code", 50016 + type_scopes().len() as Id),
        ("data_source", 70006),
        ("practitioner", 80006),
        ("client", 4),
        ("identifier", 2),
        ("fhir_source", 90002),
    ] {
        repo.bump_counter(kind, last).await?;
    }
    Ok(())
}

/// One observation per consented Open mHealth scope, as upstream's seed (9 in all).
async fn seed_observations(repo: &Repo, blobs: &dyn crate::ports::BlobStore) -> Result<()> {
    use base64::Engine;
    let rows: &[(Id, &str, Option<Id>)] = &[
        (40001, "omh:blood-pressure:4.0", Some(70001)),
        (40001, "omh:heart-rate:2.0", Some(70001)),
        (40002, "omh:blood-pressure:4.0", Some(70001)),
        (40002, "omh:blood-pressure:4.0", Some(70001)),
        (40002, "omh:heart-rate:2.0", Some(70001)),
        (40003, "omh:body-temperature:4.0", Some(70003)),
        (40005, "omh:blood-glucose:4.0", Some(70002)),
        (40005, "omh:oxygen-saturation:2.0", None),
        (40004, "omh:oxygen-saturation:2.0", None),
    ];
    let now = OffsetDateTime::now_utc();
    let mut resources = Vec::new();
    for (n, (patient, code, device)) in rows.iter().enumerate() {
        let at = crate::domain::views::ts(now - time::Duration::hours(n as i64 + 1));
        let dp = crate::omh::example(code, &crate::auth::crypto::uuid4(), &at)
            .ok_or_else(|| crate::error::Error::Internal(format!("no example data point for {code}")))?;
        let data = base64::engine::general_purpose::STANDARD.encode(dp.to_string());
        let mut r = serde_json::json!({
            "resourceType": "Observation",
            "identifier": [{"system": "https://jupyterhealth.org/demo", "value": crate::auth::crypto::uuid4()}],
            "status": "final",
            "code": {"coding": [{"system": OMH, "code": code}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "valueAttachment": {"contentType": "application/json", "data": data},
        });
        if let Some(d) = device {
            r["device"] = serde_json::json!({"reference": format!("Device/{d}")});
        }
        resources.push(r);
    }
    crate::domain::ingest::seed_observations(repo, blobs, resources, 10001).await?;
    Ok(())
}

/// Peter's and Pamela's FHIR sources (data source Questionnaire) with upstream's 3 and 4
/// QuestionnaireResponses (upstream ids, dates and answers as upstream's seed).
async fn seed_questionnaire_responses(repo: &Repo, now: OffsetDateTime) -> Result<()> {
    type Answers<'a> = &'a [(&'a str, &'a str, i64, i64, i64)];
    let sets: &[(Id, Id, &str, &str, &str, Answers)] = &[
        (
            90001,
            40001,
            "Records from Halo Health System",
            "https://fhir.halo.org/api/FHIR/R4",
            "a1b2c3d4e5f6",
            &[
                ("c3d4e5f6a1b2", "2025-10-01", 42, 18, 65),
                ("d4e5f6a1b2c3", "2025-10-08", 55, 30, 72),
                ("e5f6a1b2c3d4", "2025-10-15", 38, 22, 48),
            ],
        ),
        (
            90002,
            40002,
            "Chart from Comet Clinic",
            "https://fhir.comet.org/api/FHIR/R4",
            "b2c3d4e5f6a1",
            &[
                ("f6a1b2c3d4e5", "2025-10-03", 60, 45, 80),
                ("a2b3c4d5e6f7", "2025-10-10", 50, 35, 70),
                ("b3c4d5e6f7a2", "2025-10-17", 25, 10, 40),
                ("c4d5e6f7a2b3", "2025-10-24", 70, 55, 90),
            ],
        ),
    ];
    for (sid, patient, label, url, ehr_patient, answers) in sets {
        let source = FhirSource {
            id: *sid,
            patient_id: *patient,
            data_source_id: 70005,
            label: (*label).into(),
            fhir_base_url: (*url).into(),
            last_updated: now,
        };
        repo.save_fhir_source(&source, None).await?;
        for (upstream, authored, cough, dyspnea, fatigue) in *answers {
            let answer = |link: &str, v: i64| serde_json::json!({"linkId": link, "answer": [{"valueInteger": v}]});
            let body = serde_json::json!({
                "resourceType": "QuestionnaireResponse",
                "id": upstream,
                "status": "completed",
                "questionnaire": "Questionnaire/weekly-symptom-severity-vas",
                "subject": {"reference": format!("Patient/{ehr_patient}")},
                "authored": authored,
                "item": [answer("cough-severity", *cough), answer("dyspnea-severity", *dyspnea), answer("fatigue-severity", *fatigue)],
            });
            crate::domain::stored::store_seeded(repo, &source, "QuestionnaireResponse", upstream, body).await?;
        }
    }
    Ok(())
}
