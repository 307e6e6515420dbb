//! Lambda function `jhe-fhir-ingest`: the `fhir-ingest` route group (wiring only; see `jhe-lambda`).

fn main() -> Result<(), jhe_lambda::Error> {
    jhe_lambda::run("fhir-ingest")
}
