//! Lambda function `jhe-admin-patients`: the `admin-patients` route group (wiring only; see `jhe-lambda`).

fn main() -> Result<(), jhe_lambda::Error> {
    jhe_lambda::run("admin-patients")
}
