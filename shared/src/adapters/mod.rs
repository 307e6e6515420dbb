//! Adapters: the concrete engines behind the ports.
//!
//! `embedded` is the local engine (one `redb` file) and `files` the local blob store. The cloud
//! adapters live beside them behind the `aws` feature: `dynamo` (DynamoDB `Table`), `s3` (S3
//! `BlobStore`), `cognito` (user-pool `Identity` and `Accounts`) and `aws` (SDK configuration and clients). Nothing here may import the web framework.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod cognito;
#[cfg(feature = "aws")]
pub mod dynamo;
pub mod embedded;
pub mod files;
#[cfg(feature = "aws")]
pub mod s3;
