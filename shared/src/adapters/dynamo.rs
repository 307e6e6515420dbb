//! The `Table` port on one DynamoDB table (feature `aws`), with the same semantics as the embedded
//! engine (both pass `testkit::table_contract`).
//!
//! Item layout: `pk` (S, hash key), `sk` (S, range key), `gsi1pk`/`gsi1sk` (index `gsi1`),
//! `gsi2pk`/`gsi2sk` (index `gsi2`), `v` (N, the version) and `d` (S, the JSON `data`). An item
//! without a secondary key simply lacks those attributes (a sparse index).
//!
//! Reads of the primary index are strongly consistent; secondary-index queries cannot be (DynamoDB
//! GSIs are eventually consistent), which is why the repository reads access-deciding facts from
//! primary keys only.
//!
//! Must not depend on: the web framework, the domain, the repository.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, Put, PutRequest, ScalarAttributeType,
    Select, TableStatus, TransactWriteItem, WriteRequest,
};
use base64::Engine;

use crate::ports::{
    Cond, Index, Item, Key, Page, Query, SkRange, StoreError, StoreResult, Table, Write, check_item_keys,
    check_key_part, check_transact,
};

type Attrs = HashMap<String, AttributeValue>;

/// `BatchWriteItem` takes at most this many writes.
const BATCH: usize = 25;
/// `BatchGetItem` takes at most this many keys.
const BATCH_GET: usize = 100;
/// Rounds of resending a batch's unprocessed items (or keys) before giving up with `Busy`.
const BATCH_ROUNDS: u32 = 8;
/// How long `create_table` waits for the table and its indexes to become ACTIVE.
const CREATE_WAIT: Duration = Duration::from_secs(300);

/// Error codes that mean "too much load or contention right now": the caller may retry.
const BUSY_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "LimitExceededException",
    "InternalServerError",
    "ServiceUnavailable",
];

/// Cancellation-reason codes of `TransactWriteItems` that mean the same.
const BUSY_REASONS: &[&str] =
    &["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"];

/// The DynamoDB engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoTable {
    client: Client,
    table: String,
}

/// Maps an SDK error onto the port's errors (the single place that knows DynamoDB's error codes).
fn classify<E>(op: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let msg = || format!("DynamoDB {op}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ServiceError(se) => match se.err().code().unwrap_or_default() {
            "ConditionalCheckFailedException" => StoreError::ConditionFailed { index: 0 },
            code if BUSY_CODES.contains(&code) => StoreError::Busy(msg()),
            "ValidationException" => StoreError::Invalid(msg()),
            _ if se.raw().status().is_server_error() => StoreError::Busy(msg()),
            _ => StoreError::Backend(msg()),
        },
        // The request did not complete (network, timeout): retrying later may work.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => StoreError::Busy(msg()),
        _ => StoreError::Backend(msg()),
    }
}

/// The error of a cancelled transaction: the first write whose condition failed, else busy.
fn classify_transact(err: SdkError<TransactWriteItemsError, HttpResponse>) -> StoreError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error() {
        let codes: Vec<&str> = e.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
        if let Some(index) = codes.iter().position(|c| *c == "ConditionalCheckFailed") {
            return StoreError::ConditionFailed { index };
        }
        let msg = format!("DynamoDB TransactWriteItems cancelled: [{}]", codes.join(", "));
        if codes.iter().any(|c| BUSY_REASONS.contains(c)) {
            return StoreError::Busy(msg);
        }
        if codes.contains(&"ValidationError") {
            return StoreError::Invalid(msg);
        }
        return StoreError::Backend(msg);
    }
    classify("TransactWriteItems", err)
}

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("building a DynamoDB request: {e}"))
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn key_attrs(pk: &str, sk: &str) -> Attrs {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn encode(item: &Item) -> StoreResult<Attrs> {
    let mut m = key_attrs(&item.pk, &item.sk);
    if let Some(g) = &item.gsi1 {
        m.insert("gsi1pk".into(), s(&g.pk));
        m.insert("gsi1sk".into(), s(&g.sk));
    }
    if let Some(g) = &item.gsi2 {
        m.insert("gsi2pk".into(), s(&g.pk));
        m.insert("gsi2sk".into(), s(&g.sk));
    }
    m.insert("v".into(), AttributeValue::N(item.version.to_string()));
    let d =
        serde_json::to_string(&item.data).map_err(|e| StoreError::Invalid(format!("data not serializable: {e}")))?;
    m.insert("d".into(), AttributeValue::S(d));
    if let Some(t) = item.expires {
        // The table's TimeToLiveSpecification attribute (infra/template.yaml).
        m.insert("ttl".into(), AttributeValue::N(t.to_string()));
    }
    Ok(m)
}

fn get_s<'a>(m: &'a Attrs, name: &str) -> Option<&'a str> {
    m.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn decode(m: &Attrs) -> StoreResult<Item> {
    let bad = |what: &str| StoreError::Backend(format!("DynamoDB item without a valid {what}"));
    let index_key = |p: &str, k: &str| match (get_s(m, p), get_s(m, k)) {
        (Some(pk), Some(sk)) => Some(Key::new(pk, sk)),
        _ => None,
    };
    let version = match m.get("v") {
        None => 0,
        Some(v) => v.as_n().ok().and_then(|n| n.parse().ok()).ok_or_else(|| bad("v"))?,
    };
    let data = serde_json::from_str(get_s(m, "d").ok_or_else(|| bad("d"))?).map_err(|_| bad("d"))?;
    Ok(Item {
        pk: get_s(m, "pk").ok_or_else(|| bad("pk"))?.to_string(),
        sk: get_s(m, "sk").ok_or_else(|| bad("sk"))?.to_string(),
        gsi1: index_key("gsi1pk", "gsi1sk"),
        gsi2: index_key("gsi2pk", "gsi2sk"),
        version,
        data,
        expires: m.get("ttl").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()),
    })
}

/// A condition as a DynamoDB condition expression with its names and values.
#[derive(Default)]
struct CondExpr {
    expr: Option<String>,
    names: Option<HashMap<String, String>>,
    values: Option<Attrs>,
}

fn cond_expr(cond: Cond) -> CondExpr {
    let expr = |e: &str| CondExpr { expr: Some(e.to_string()), ..CondExpr::default() };
    match cond {
        Cond::None => CondExpr::default(),
        Cond::Absent => expr("attribute_not_exists(pk)"),
        Cond::Exists => expr("attribute_exists(pk)"),
        // A missing item has no `v`, so the comparison is false: the condition fails as it must.
        Cond::Version(v) => CondExpr {
            expr: Some("#v = :v".into()),
            names: Some(HashMap::from([("#v".to_string(), "v".to_string())])),
            values: Some(HashMap::from([(":v".to_string(), AttributeValue::N(v.to_string()))])),
        },
    }
}

/// The attribute names of an index's keys, and its name for `IndexName`.
fn index_attrs(index: Index) -> (Option<&'static str>, &'static str, &'static str) {
    match index {
        Index::Primary => (None, "pk", "sk"),
        Index::Gsi1 => (Some("gsi1"), "gsi1pk", "gsi1sk"),
        Index::Gsi2 => (Some("gsi2"), "gsi2pk", "gsi2sk"),
    }
}

/// The cursor: base64url of a JSON array `[pk, sk]`, plus `[.., index pk, index sk]` for an index
/// query, i.e. exactly the `ExclusiveStartKey` DynamoDB needs to resume after that item.
fn encode_cursor(index: Index, item: &Item) -> StoreResult<String> {
    let mut parts = vec![item.pk.as_str(), item.sk.as_str()];
    let g = match index {
        Index::Primary => None,
        Index::Gsi1 => Some(&item.gsi1),
        Index::Gsi2 => Some(&item.gsi2),
    };
    if let Some(g) = g {
        let g = g.as_ref().ok_or_else(|| StoreError::Backend("index query returned an unindexed item".into()))?;
        parts.extend([g.pk.as_str(), g.sk.as_str()]);
    }
    let json = serde_json::to_vec(&parts).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

fn decode_cursor(q: &Query, cursor: &str) -> StoreResult<Attrs> {
    let malformed = || StoreError::Invalid("malformed cursor".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| malformed())?;
    let parts: Vec<String> = serde_json::from_slice(&raw).map_err(|_| malformed())?;
    let (_, ipk, isk) = index_attrs(q.index);
    let mut key = match (q.index, parts.as_slice()) {
        (Index::Primary, [pk, sk]) if *pk == q.pk => key_attrs(pk, sk),
        (Index::Gsi1 | Index::Gsi2, [pk, sk, gpk, gsk]) if *gpk == q.pk => {
            let mut k = key_attrs(pk, sk);
            k.insert(ipk.into(), s(gpk));
            k.insert(isk.into(), s(gsk));
            k
        }
        _ => return Err(StoreError::Invalid("cursor does not belong to this query".into())),
    };
    key.retain(|_, v| v.as_s().is_ok_and(|x| !x.is_empty()));
    if key.len() != if q.index == Index::Primary { 2 } else { 4 } {
        return Err(malformed());
    }
    Ok(key)
}

impl DynamoTable {
    /// The adapter on an existing table (see [`DynamoTable::create_table`] for its shape).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing, both indexes projecting every attribute) and waits
    /// until it and its indexes are ACTIVE. A table that already exists is only waited for.
    pub async fn create_table(client: &Client, name: &str) -> StoreResult<()> {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_err)
        };
        let key =
            |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().map_err(build_err);
        let gsi = |n: &str, pk: &str, sk: &str| -> StoreResult<GlobalSecondaryIndex> {
            GlobalSecondaryIndex::builder()
                .index_name(n)
                .key_schema(key(pk, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(build_err)
        };
        let mut req = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi("gsi1", "gsi1pk", "gsi1sk")?)
            .global_secondary_indexes(gsi("gsi2", "gsi2pk", "gsi2sk")?);
        for a in ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"] {
            req = req.attribute_definitions(attr(a)?);
        }
        match req.send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_in_use_exception()) => {}
            Err(e) => return Err(classify("CreateTable", e)),
        }
        let deadline = tokio::time::Instant::now() + CREATE_WAIT;
        loop {
            let desc =
                client.describe_table().table_name(name).send().await.map_err(|e| classify("DescribeTable", e))?;
            let ready = desc.table().is_some_and(|t| {
                t.table_status() == Some(&TableStatus::Active)
                    && t.global_secondary_indexes().iter().all(|g| g.index_status() == Some(&IndexStatus::Active))
            });
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::Backend(format!("table {name} not ACTIVE after {CREATE_WAIT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The query request of one page, without limit or start key. `None`: the range is empty.
    fn query_request(&self, q: &Query) -> Option<QueryFluentBuilder> {
        let (index_name, pk, sk) = index_attrs(q.index);
        let mut values = HashMap::from([(":p".to_string(), s(&q.pk))]);
        // Key values may not be empty strings in DynamoDB, and no sort key is empty: rewrite the
        // conditions that would need one into equivalent ones.
        let range = match &q.range {
            SkRange::All => None,
            SkRange::Prefix(p) if p.is_empty() => None,
            SkRange::Prefix(p) => {
                values.insert(":a".into(), s(p));
                Some(format!("begins_with({sk}, :a)"))
            }
            SkRange::Between(lo, hi) if hi.is_empty() || lo > hi => return None,
            SkRange::Between(lo, hi) if lo.is_empty() => {
                values.insert(":b".into(), s(hi));
                Some(format!("{sk} <= :b"))
            }
            SkRange::Between(lo, hi) => {
                values.insert(":a".into(), s(lo));
                values.insert(":b".into(), s(hi));
                Some(format!("{sk} BETWEEN :a AND :b"))
            }
        };
        let expr = match range {
            Some(r) => format!("{pk} = :p AND {r}"),
            None => format!("{pk} = :p"),
        };
        Some(
            self.client
                .query()
                .table_name(&self.table)
                .set_index_name(index_name.map(String::from))
                .key_condition_expression(expr)
                .set_expression_attribute_values(Some(values))
                .scan_index_forward(q.forward)
                .consistent_read(q.index == Index::Primary),
        )
    }

    async fn write_batch(&self, items: &[Item]) -> StoreResult<()> {
        let mut pending = items
            .iter()
            .map(|item| {
                Ok(WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(encode(item)?)).build().map_err(build_err)?)
                    .build())
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut delay = Duration::from_millis(50);
        for round in 0..BATCH_ROUNDS {
            if round > 0 {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| classify("BatchWriteItem", e))?;
            pending = out.unprocessed_items().and_then(|m| m.get(&self.table)).cloned().unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Busy(format!(
            "DynamoDB BatchWriteItem: {} items still unprocessed after {BATCH_ROUNDS} rounds",
            pending.len()
        )))
    }

    /// Reads up to [`BATCH_GET`] distinct keys (strongly consistent) into `found`, resending
    /// unprocessed keys with backoff.
    async fn read_batch(&self, keys: &[&Key], found: &mut HashMap<Key, Item>) -> StoreResult<()> {
        let mut pending: Vec<Attrs> = keys.iter().map(|k| key_attrs(&k.pk, &k.sk)).collect();
        let mut delay = Duration::from_millis(50);
        for round in 0..BATCH_ROUNDS {
            if round > 0 {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(pending))
                .consistent_read(true)
                .build()
                .map_err(build_err)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| classify("BatchGetItem", e))?;
            for m in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                let item = decode(m)?;
                found.insert(item.key(), item);
            }
            pending =
                out.unprocessed_keys().and_then(|u| u.get(&self.table)).map(|k| k.keys().to_vec()).unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Busy(format!(
            "DynamoDB BatchGetItem: {} keys still unprocessed after {BATCH_ROUNDS} rounds",
            pending.len()
        )))
    }
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> StoreResult<Option<Item>> {
        if check_key_part(&key.pk).is_err() || check_key_part(&key.sk).is_err() {
            // No item can have such a key.
            return Ok(None);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(&key.pk, &key.sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem", e))?;
        out.item().map(decode).transpose()
    }

    async fn get_many(&self, keys: &[Key]) -> StoreResult<Vec<Option<Item>>> {
        // BatchGetItem refuses a key twice in one request, and keys no item can have are missing.
        let mut seen = HashSet::new();
        let wanted: Vec<&Key> = keys
            .iter()
            .filter(|k| check_key_part(&k.pk).is_ok() && check_key_part(&k.sk).is_ok())
            .filter(|k| seen.insert(*k))
            .collect();
        let mut found = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(BATCH_GET) {
            self.read_batch(chunk, &mut found).await?;
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn put(&self, item: Item, cond: Cond) -> StoreResult<()> {
        check_item_keys(&item)?;
        let c = cond_expr(cond);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(&item)?))
            .set_condition_expression(c.expr)
            .set_expression_attribute_names(c.names)
            .set_expression_attribute_values(c.values)
            .send()
            .await
            .map_err(|e| classify("PutItem", e))?;
        Ok(())
    }

    /// One `UpdateItem ADD` on the item's number `n`: no read, no contention.
    async fn add(&self, key: &Key, by: i64) -> StoreResult<i64> {
        check_key_part(&key.pk)?;
        check_key_part(&key.sk)?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(&key.pk, &key.sk)))
            .update_expression("ADD #n :by")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        out.attributes()
            .and_then(|a| a.get("n"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError::Backend("UpdateItem ADD returned no number".into()))
    }

    async fn delete(&self, key: &Key, cond: Cond) -> StoreResult<()> {
        if check_key_part(&key.pk).is_err() || check_key_part(&key.sk).is_err() {
            // No item can have such a key: the condition is judged on a missing item.
            return match cond {
                Cond::None | Cond::Absent => Ok(()),
                Cond::Exists | Cond::Version(_) => Err(StoreError::ConditionFailed { index: 0 }),
            };
        }
        let c = cond_expr(cond);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(&key.pk, &key.sk)))
            .set_condition_expression(c.expr)
            .set_expression_attribute_names(c.names)
            .set_expression_attribute_values(c.values)
            .send()
            .await
            .map_err(|e| classify("DeleteItem", e))?;
        Ok(())
    }

    async fn query(&self, q: &Query) -> StoreResult<Page> {
        if q.limit == 0 || q.limit > 10_000 {
            return Err(StoreError::Invalid(format!("limit {} out of range", q.limit)));
        }
        check_key_part(&q.pk)?;
        let mut start = q.cursor.as_deref().map(|c| decode_cursor(q, c)).transpose()?;
        let Some(request) = self.query_request(q) else {
            return Ok(Page { items: Vec::new(), next: None });
        };
        // One item more than asked tells whether another page exists. A response can hold fewer
        // items than its `Limit` (1 MB pages), so keep reading until that item or the end.
        let want = q.limit + 1;
        let mut items = Vec::with_capacity(want.min(1024));
        loop {
            let remaining = i32::try_from(want - items.len()).unwrap_or(i32::MAX);
            let out = request
                .clone()
                .limit(remaining)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query", e))?;
            for m in out.items() {
                items.push(decode(m)?);
            }
            match out.last_evaluated_key() {
                Some(k) if items.len() < want => start = Some(k.clone()),
                _ => break,
            }
        }
        let more = items.len() > q.limit;
        items.truncate(q.limit);
        let next = match (more, items.last()) {
            (true, Some(last)) => Some(encode_cursor(q.index, last)?),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn transact(&self, writes: Vec<Write>) -> StoreResult<()> {
        check_transact(&writes)?;
        let mut items = Vec::with_capacity(writes.len());
        for w in &writes {
            let item = match w {
                Write::Put { item, cond } => {
                    check_item_keys(item)?;
                    let c = cond_expr(*cond);
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(encode(item)?))
                        .set_condition_expression(c.expr)
                        .set_expression_attribute_names(c.names)
                        .set_expression_attribute_values(c.values)
                        .build()
                        .map_err(build_err)?;
                    TransactWriteItem::builder().put(put).build()
                }
                Write::Delete { key, cond } => {
                    check_key_part(&key.pk)?;
                    check_key_part(&key.sk)?;
                    let c = cond_expr(*cond);
                    let del = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(&key.pk, &key.sk)))
                        .set_condition_expression(c.expr)
                        .set_expression_attribute_names(c.names)
                        .set_expression_attribute_values(c.values)
                        .build()
                        .map_err(build_err)?;
                    TransactWriteItem::builder().delete(del).build()
                }
                Write::Check { key, cond } => {
                    check_key_part(&key.pk)?;
                    check_key_part(&key.sk)?;
                    let mut c = cond_expr(*cond);
                    // A ConditionCheck needs an expression; `Cond::None` checks nothing.
                    c.expr.get_or_insert_with(|| "attribute_exists(pk) OR attribute_not_exists(pk)".into());
                    let check = ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attrs(&key.pk, &key.sk)))
                        .set_condition_expression(c.expr)
                        .set_expression_attribute_names(c.names)
                        .set_expression_attribute_values(c.values)
                        .build()
                        .map_err(build_err)?;
                    TransactWriteItem::builder().condition_check(check).build()
                }
            };
            items.push(item);
        }
        // The SDK fills in a ClientRequestToken, so its own retries of this call are idempotent.
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.map_err(classify_transact)?;
        Ok(())
    }

    async fn put_many(&self, items: Vec<Item>) -> StoreResult<()> {
        for item in &items {
            check_item_keys(item)?;
        }
        // BatchWriteItem refuses two writes to one key in one request: start a new batch at a
        // repeated key, so the later write of that key still lands last.
        let mut batch: Vec<Item> = Vec::with_capacity(BATCH);
        let mut keys = HashSet::new();
        for item in items {
            if batch.len() == BATCH || keys.contains(&item.key()) {
                self.write_batch(&batch).await?;
                batch.clear();
                keys.clear();
            }
            keys.insert(item.key());
            batch.push(item);
        }
        if !batch.is_empty() {
            self.write_batch(&batch).await?;
        }
        Ok(())
    }

    async fn count(&self, q: &Query) -> StoreResult<usize> {
        check_key_part(&q.pk)?;
        let Some(request) = self.query_request(q) else { return Ok(0) };
        let request = request.select(Select::Count);
        let mut n = 0usize;
        let mut start = None;
        loop {
            let out = request
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query (count)", e))?;
            n += usize::try_from(out.count()).unwrap_or(0);
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(n),
            }
        }
    }
}
