//! Lambda function `jhe-admin-studies`: the `admin-studies` route group (wiring only; see `jhe-lambda`).

fn main() -> Result<(), jhe_lambda::Error> {
    jhe_lambda::run("admin-studies")
}
