//! The `BlobStore` port on one S3 bucket, under a key prefix (feature `aws`), with the same
//! semantics as the file store (both pass `testkit::blob_contract`).
//!
//! Write-once is a conditional put (`If-None-Match: *`): S3 itself refuses to overwrite, so two
//! concurrent writers of one key cannot both succeed (no check-then-put race). S3 answers 412 when
//! the object exists, and 409 when another conditional write of the key is in flight.
//!
//! Must not depend on: the web framework, the domain, the repository.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use crate::ports::{BlobError, BlobStore, check_blob_key};

/// The S3 engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
    /// Empty, or a `/`-terminated folder that every key lives under.
    prefix: String,
}

/// Every S3 failure but the ones with a meaning of their own: the store cannot serve now.
fn unavailable<E, R>(op: &str, err: SdkError<E, R>) -> BlobError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    BlobError::Unavailable(format!("S3 {op}: {}", DisplayErrorContext(&err)))
}

fn status<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

impl S3Blobs {
    /// The store on `bucket`, keys under `prefix` (e.g. `"jhe/"`; `""` for the bucket root).
    pub fn new(client: Client, bucket: impl Into<String>, prefix: &str) -> Self {
        let p = prefix.trim_matches('/');
        let prefix = if p.is_empty() { String::new() } else { format!("{p}/") };
        Self { client, bucket: bucket.into(), prefix }
    }

    /// The same bucket under another prefix.
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Self::new(self.client.clone(), self.bucket.clone(), prefix)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket (for tests and local runs against moto); an existing one of ours is fine.
    pub async fn create_bucket(client: &Client, bucket: &str) -> Result<(), BlobError> {
        let mut req = client.create_bucket().bucket(bucket);
        // Outside us-east-1, S3 wants the region named.
        if let Some(region) = client.config().region().map(|r| r.as_ref().to_string())
            && region != "us-east-1"
        {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_bucket_already_owned_by_you()) => Ok(()),
            Err(e) => Err(unavailable("CreateBucket", e)),
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put_new(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        check_blob_key(key)?;
        let content_type = if key.ends_with(".json") { "application/json" } else { "application/octet-stream" };
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .content_type(content_type)
            .if_none_match("*")
            .body(ByteStream::from(bytes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(412) => Err(BlobError::Exists(key.into())),
            // 409 ConditionalRequestConflict: a concurrent conditional write of this key; a retry
            // answers for sure (stored, or Exists).
            Err(e) => Err(unavailable("PutObject", e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_blob_key(key)?;
        let result = self.client.get_object().bucket(&self.bucket).key(self.full(key)).send().await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) || status(&e) == Some(404) => {
                return Ok(None);
            }
            Err(e) => return Err(unavailable("GetObject", e)),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Unavailable(format!("S3 GetObject body: {}", DisplayErrorContext(&e))))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(self.full(prefix))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| unavailable("ListObjectsV2", e))?;
            out.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter_map(|k| k.strip_prefix(&self.prefix))
                    .map(String::from),
            );
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }
}
