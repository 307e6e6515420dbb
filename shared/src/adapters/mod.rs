//! Adapters: the concrete engines behind the ports.
//!
//! `embedded` is the local engine (one `redb` file). The cloud adapters (DynamoDB, S3, Cognito)
//! live beside it behind the `aws` feature. Nothing here may import the web framework.

pub mod embedded;
pub mod files;
