//! Cloud wiring (feature `aws`): the application state on DynamoDB, S3 and a Cognito user pool,
//! from the standard environment. Used by every Lambda function and by `jhe serve --backend aws`
//! when a user pool is configured. No key or secret lives in this process: tokens are the pool's.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::adapters::aws;
use crate::adapters::cognito::{CognitoAccounts, CognitoIdentity};
use crate::adapters::dynamo::DynamoTable;
use crate::adapters::s3::S3Blobs;
use crate::auth::issuer::{Issuer, IssuerSettings};
use crate::config::Settings;
use crate::http::AppState;
use crate::ports::{Accounts, BlobStore, Identity, Table};
use crate::repo::Repo;

/// The table (`JHE_TABLE`) and bundle bucket (`JHE_BUNDLE_BUCKET`) names.
pub fn resource_names() -> (String, String) {
    let table = std::env::var("JHE_TABLE").unwrap_or_else(|_| "jhe".into());
    let bucket = std::env::var("JHE_BUNDLE_BUCKET").unwrap_or_else(|_| "jhe-bundles".into());
    (table, bucket)
}

/// The state on the deployment's table, bucket and user pool (`settings.cognito` must be set).
pub fn state(settings: Settings, conf: &SdkConfig) -> Result<AppState, String> {
    let pool = settings.cognito.clone().ok_or("JHE_USER_POOL_ID is not set: no user pool to sign users in")?;
    let (table, bucket) = resource_names();
    let table = Arc::new(DynamoTable::new(aws::dynamo_client(conf), table));
    let blobs = Arc::new(S3Blobs::new(aws::s3_client(conf), bucket, ""));
    let identity = Arc::new(CognitoIdentity::new(pool.clone()));
    let accounts = Arc::new(CognitoAccounts::new(aws::cognito_client(conf), pool));
    state_with(settings, table, blobs, identity, accounts)
}

/// The state on given stores, with users signed in by an identity provider.
pub fn state_with(
    settings: Settings,
    table: Arc<dyn Table>,
    blobs: Arc<dyn BlobStore>,
    identity: Arc<dyn Identity>,
    accounts: Arc<dyn Accounts>,
) -> Result<AppState, String> {
    let pool = settings.cognito.as_ref().ok_or("no user pool configured")?;
    let issuer = Arc::new(Issuer::delegating(
        IssuerSettings {
            issuer: pool.issuer.clone(),
            audience: String::new(),
            access_ttl: settings.access_token_ttl,
            refresh_ttl: 0,
            // Invitation grants: the code is exchanged right after the invitation is redeemed.
            code_ttl: 60,
            id_token_ttl: 0,
        },
        accounts,
    ));
    let repo = Repo::new(table);
    let audit = Arc::new(crate::repo::audit::TableAudit { repo: repo.clone() });
    Ok(AppState { repo, identity, issuer, settings: Arc::new(settings), blobs, audit })
}
