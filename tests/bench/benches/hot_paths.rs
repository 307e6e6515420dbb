//! Micro-benchmarks of the per-observation hot paths of ingest and reads:
//! Open mHealth validation, FHIR (de)serialisation of an Observation, of an uploaded batch Bundle
//! and of a searchset page, the paging cursor, and the single-table keys.
//!
//! Run: `cargo bench -p jhe-bench --bench hot_paths -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jhe::domain::observation::Observation;
use jhe::fhir::search::Cursor;
use jhe::model::Code;
use jhe::repo::keys;
use jhe::repo::observations::{StoredObs, obs_pk, obs_sk, observation_item};
use serde_json::{Value, json};

const CODE: &str = "omh:blood-glucose:4.0";
const BASE: &str = "http://127.0.0.1:8000/FHIR/R5";

/// A page as `fhir::ObservationSearchset` writes it (every entry of the one code), serialised.
fn typed_page<E: jhe::fhir::ObservationSource>(entries: &[E], links: &[(&str, String)], code: &Code) -> Vec<u8> {
    let bundle = jhe::fhir::ObservationSearchset {
        base: BASE,
        total: Some(25_920),
        links,
        entries,
        lookup: |_, _| (code, Some(10005)),
    };
    bundle.to_bytes().expect("json")
}

fn at(i: i64) -> String {
    let t = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000) + time::Duration::minutes(5 * i);
    t.format(&time::format_description::well_known::Rfc3339).expect("rfc3339")
}

fn data_point(i: i64) -> Value {
    jhe::omh::example(CODE, &format!("6a1a2f4e-5b7c-4d8e-9f00-{i:012}"), &at(i)).expect("example")
}

/// An Observation as the phone app uploads it.
fn upload(i: i64) -> Value {
    json!({
        "resourceType": "Observation",
        "identifier": [{"system": "https://bench.jhe/micro", "value": format!("bg-{i}")}],
        "status": "final",
        "code": {"coding": [{"system": "https://w3id.org/openmhealth", "code": CODE}]},
        "subject": {"reference": "Patient/40001"},
        "device": {"reference": "Device/70002"},
        "valueAttachment": {"contentType": "application/json", "data": STANDARD.encode(data_point(i).to_string())},
    })
}

fn batch(n: i64) -> String {
    let entries: Vec<Value> =
        (0..n).map(|i| json!({"resource": upload(i), "request": {"method": "POST", "url": "Observation"}})).collect();
    json!({"resourceType": "Bundle", "type": "batch", "entry": entries}).to_string()
}

/// An Observation as stored.
fn stored(i: i64) -> Observation {
    Observation {
        id: 60_000 + i,
        patient_id: 40001,
        code_id: 50001,
        data_source_id: Some(70002),
        status: "final".into(),
        identifiers: vec![("https://bench.jhe/micro".into(), format!("bg-{i}"))],
        effective_start: Some(1_728_000_000_000 + i * 300_000),
        effective_end: None,
        last_updated: 1_728_000_000_000 + i * 300_000,
        data: STANDARD.encode(data_point(i).to_string()),
        uuid: format!("6a1a2f4e-5b7c-4d8e-9f00-{i:012}"),
        archive: "bundles/2024/10/04/000000060000.json".into(),
    }
}

fn code() -> Code {
    Code {
        id: 50001,
        coding_system: "https://w3id.org/openmhealth".into(),
        coding_code: CODE.into(),
        text: "Blood glucose".into(),
    }
}

fn omh(c: &mut Criterion) {
    let mut g = c.benchmark_group("omh");
    let dp = data_point(1);
    g.bench_function("validate_data_point blood-glucose", |b| {
        b.iter(|| jhe::omh::validate_data_point(CODE, black_box(&dp)))
    });
    let b64 = STANDARD.encode(dp.to_string());
    g.bench_function("base64 + parse + validate (one uploaded entry)", |b| {
        b.iter(|| {
            let raw = STANDARD.decode(black_box(&b64)).expect("b64");
            let v: Value = serde_json::from_slice(&raw).expect("json");
            jhe::omh::validate_data_point(CODE, &v).expect("valid")
        })
    });
    g.bench_function("example (build + validate)", |b| {
        b.iter(|| {
            jhe::omh::example(
                CODE,
                black_box("6a1a2f4e-5b7c-4d8e-9f00-000000000001"),
                black_box("2024-10-04T10:00:00Z"),
            )
        })
    });
    g.finish();
}

fn fhir(c: &mut Criterion) {
    let mut g = c.benchmark_group("fhir");
    let o = stored(1);
    let code = code();
    g.bench_function("render Observation (fhir::observation)", |b| {
        b.iter(|| jhe::fhir::observation(black_box(&o), &code, Some(10005)))
    });
    let rendered = jhe::fhir::observation(&o, &code, Some(10005));
    g.bench_function("serialise rendered Observation", |b| {
        b.iter(|| serde_json::to_vec(black_box(&rendered)).expect("json"))
    });
    let doc = serde_json::to_string(&o).expect("json");
    g.bench_function("stored Observation from its JSON document", |b| {
        b.iter(|| serde_json::from_str::<Observation>(black_box(&doc)).expect("json"))
    });
    g.bench_function("stored Observation to its JSON document", |b| {
        b.iter(|| serde_json::to_string(black_box(&o)).expect("json"))
    });
    let up = upload(1).to_string();
    g.bench_function("parse uploaded Observation", |b| {
        b.iter(|| serde_json::from_str::<Value>(black_box(&up)).expect("json"))
    });

    let body = batch(100);
    g.throughput(Throughput::Elements(100));
    g.bench_function("parse batch Bundle of 100 (parse_body + batch_entries)", |b| {
        b.iter(|| {
            let (_, mut v) = jhe::domain::ingest::parse_body(black_box(body.as_bytes())).map_err(|_| ()).expect("body");
            jhe::domain::ingest::batch_entries(&mut v).map_err(|_| ()).expect("entries")
        })
    });

    let page: Vec<Observation> = (0..1000).map(stored).collect();
    g.throughput(Throughput::Elements(1000));
    // `fhir::observation` renders through the typed view into a `Value` since the typed page
    // landed: this is no longer the tree the first figures measured, but the `Value` path that
    // single reads and upload answers still take.
    g.bench_function("searchset page of 1000: Value tree (render + Bundle + serialise)", |b| {
        b.iter(|| {
            let entries: Vec<Value> = page.iter().map(|o| jhe::fhir::observation(o, &code, Some(10005))).collect();
            let links = [
                ("self", format!("{BASE}/Observation?patient=40001")),
                ("next", format!("{BASE}/Observation?_cursor=x")),
            ];
            let bundle = jhe::fhir::searchset(BASE, entries, Some(25_920), &links);
            serde_json::to_vec(&bundle).expect("json")
        })
    });
    // The typed serialiser over decoded Observations.
    g.bench_function("searchset page of 1000: typed (fhir::ObservationSearchset), serialise", |b| {
        b.iter(|| {
            let links = [
                ("self", format!("{BASE}/Observation?patient=40001")),
                ("next", format!("{BASE}/Observation?_cursor=x")),
            ];
            typed_page(black_box(&page), &links, &code)
        })
    });
    // The `Value`-tree form it replaced, step by step, to see which step costs what.
    g.bench_function("searchset page of 1000, step 1: render 1000 Observations", |b| {
        b.iter(|| page.iter().map(|o| jhe::fhir::observation(o, &code, Some(10005))).collect::<Vec<_>>())
    });
    let rendered_page: Vec<Value> = page.iter().map(|o| jhe::fhir::observation(o, &code, Some(10005))).collect();
    let links =
        [("self", format!("{BASE}/Observation?patient=40001")), ("next", format!("{BASE}/Observation?_cursor=x"))];
    g.bench_function("searchset page of 1000, step 2: fhir::searchset (wrap + prune)", |b| {
        b.iter_batched(
            || rendered_page.clone(),
            |entries| jhe::fhir::searchset(BASE, entries, Some(25_920), &links),
            criterion::BatchSize::LargeInput,
        )
    });
    let bundle = jhe::fhir::searchset(BASE, rendered_page.clone(), Some(25_920), &links);
    g.bench_function("searchset page of 1000, step 3: serialise", |b| {
        b.iter(|| serde_json::to_vec(black_box(&bundle)).expect("json"))
    });
    g.bench_function("searchset page of 1000, step 4: drop the Value tree", |b| {
        b.iter_batched(|| bundle.clone(), drop, criterion::BatchSize::LargeInput)
    });
    g.bench_function("prune of a 1000-entry Bundle", |b| {
        b.iter_batched(|| bundle.clone(), jhe::fhir::prune, criterion::BatchSize::LargeInput)
    });
    // What the server does: the page's stored documents, each decoded borrowed while it is
    // written.
    let stored_page: Vec<StoredObs> =
        page.iter().map(|o| StoredObs::from_item(&observation_item(o).expect("item")).expect("doc")).collect();
    g.bench_function("searchset page of 1000: from the stored documents (as served)", |b| {
        b.iter(|| typed_page(black_box(&stored_page), &links, &code))
    });
    let docs: Vec<String> = page.iter().map(|o| serde_json::to_string(o).expect("json")).collect();
    g.bench_function("decode 1000 stored Observations", |b| {
        b.iter(|| docs.iter().map(|s| serde_json::from_str::<Observation>(s).expect("json")).collect::<Vec<_>>())
    });
    g.finish();
}

fn cursor_and_keys(c: &mut Criterion) {
    let mut g = c.benchmark_group("keys");
    let cur = Cursor { patient: 40001, at: 1_728_000_000_000, id: 123_456, total: Some(25_920) };
    g.bench_function("Cursor::encode", |b| b.iter(|| black_box(&cur).encode()));
    let enc = cur.encode();
    g.bench_function("Cursor::decode", |b| b.iter(|| Cursor::decode(black_box(&enc)).expect("cursor")));
    let o = stored(7);
    g.bench_function("obs_pk + obs_sk", |b| b.iter(|| (obs_pk(black_box(o.patient_id)), obs_sk(black_box(&o)))));
    g.bench_function("keys::patient + keys::consent", |b| {
        b.iter(|| (keys::patient(black_box(40001)), keys::consent(black_box(30001), black_box(50001))))
    });
    g.bench_function("keys::by_name", |b| b.iter(|| keys::by_name(black_box("Neptunian Pulse Lab"), black_box(20007))));
    let params: Vec<(String, String)> = vec![
        ("patient".into(), "40001".into()),
        ("code".into(), format!("https://w3id.org/openmhealth|{CODE}")),
        ("date".into(), "ge2024-07-01T00:00:00Z".into()),
        ("date".into(), "lt2024-10-01T00:00:00Z".into()),
        ("_count".into(), "1000".into()),
        ("_cursor".into(), enc.clone()),
    ];
    g.bench_function("parse_observation_query (code + date + cursor)", |b| {
        b.iter(|| jhe::fhir::search::parse_observation_query(black_box(&params)).expect("query"))
    });
    g.finish();
}

criterion_group!(benches, omh, fhir, cursor_and_keys);
criterion_main!(benches);
