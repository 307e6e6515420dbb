//! Lambda function `jhe-discovery`: the `discovery` route group (wiring only; see `jhe-lambda`).

fn main() -> Result<(), jhe_lambda::Error> {
    jhe_lambda::run("discovery")
}
