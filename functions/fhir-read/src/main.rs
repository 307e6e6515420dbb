//! Lambda function `jhe-fhir-read`: the `fhir-read` route group (wiring only; see `jhe-lambda`).

fn main() -> Result<(), jhe_lambda::Error> {
    jhe_lambda::run("fhir-read")
}
