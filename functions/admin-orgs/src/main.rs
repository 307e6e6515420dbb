//! Lambda function `jhe-admin-orgs`: the `admin-orgs` route group (wiring only; see `jhe-lambda`).

fn main() -> Result<(), jhe_lambda::Error> {
    jhe_lambda::run("admin-orgs")
}
