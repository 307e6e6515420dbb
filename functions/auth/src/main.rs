//! Lambda function `jhe-auth`: the `auth` route group (wiring only; see `jhe-lambda`).

fn main() -> Result<(), jhe_lambda::Error> {
    jhe_lambda::run("auth")
}
