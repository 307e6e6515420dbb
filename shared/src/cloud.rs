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
use crate::domain::audit::AuditRecord;
use crate::http::AppState;
use crate::ports::{Accounts, AuditLog, AuditQuery, BlobStore, Identity, Table};
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
    let mut state = state_with(settings, table, blobs, identity, accounts)?;
    if let Some(bucket) = std::env::var("JHE_AUDIT_BUCKET").ok().filter(|b| !b.is_empty()) {
        let copies = Arc::new(S3Blobs::new(aws::s3_client(conf), bucket, "audit"));
        state.audit = Arc::new(CopiedAudit { log: state.audit.clone(), copies });
    }
    Ok(state)
}

/// The audit log with a write-once copy of every record in a blob store: in the cloud the
/// Object-Lock bucket (`JHE_AUDIT_BUCKET`), where no role can overwrite or delete a record before
/// its retention ends, unlike table items. A record counts as written when both writes succeeded;
/// otherwise the request it records fails, as for the table alone. Reads come from the log.
pub struct CopiedAudit {
    pub log: Arc<dyn AuditLog>,
    pub copies: Arc<dyn BlobStore>,
}

impl CopiedAudit {
    /// Where the copy of a record lives: by day, then id (ids are time-ordered).
    pub fn key(r: &AuditRecord) -> String {
        let day = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.recorded) * 1_000_000)
            .map(|t| t.date().to_string())
            .unwrap_or_else(|_| "unknown".into());
        format!("{day}/{}.json", r.id)
    }
}

#[async_trait::async_trait]
impl AuditLog for CopiedAudit {
    async fn append(&self, r: &AuditRecord) -> Result<(), String> {
        let body = serde_json::to_vec(r).map_err(|e| e.to_string())?;
        let key = Self::key(r);
        let (logged, copied) = tokio::join!(self.log.append(r), self.copies.put_new(&key, body));
        logged?;
        // Every record has a fresh id: a copy already under its key is not this record's.
        copied.map_err(|e| format!("copying audit record {key}: {e}"))
    }

    async fn query(&self, q: &AuditQuery) -> Result<(Vec<AuditRecord>, Option<String>), String> {
        self.log.query(q).await
    }
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
