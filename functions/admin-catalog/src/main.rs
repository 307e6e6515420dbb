//! Lambda function `jhe-admin-catalog`: the `admin-catalog` route group (wiring only; see `jhe-lambda`).

fn main() -> Result<(), jhe_lambda::Error> {
    jhe_lambda::run("admin-catalog")
}
