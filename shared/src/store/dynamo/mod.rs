//! The cloud backend: one DynamoDB table, designed for DynamoDB's access patterns rather than ported
//! from SQL.
//!
//! ## Key design
//!
//! The table has a string partition key `pk`, a string sort key `sk`, one global secondary index
//! `by_type` (`gsi1pk`, `gsi1sk`) and TTL on the number attribute `expires_at` (epoch seconds).
//!
//! | Item | `pk` | `sk` | Other attributes |
//! | --- | --- | --- | --- |
//! | Activity event | `ACTIVITY#<yyyymmdd>` | `<timestamp ms, 13 digits>#<event id>` | `event` (JSON), `gsi1pk` = `ACTIVITY#<type>#<yyyymmdd>`, `gsi1sk` = `sk` |
//! | Activity counters | `COUNTERS` | `ACTIVITY#<0..7>` | one number per counter; `days`: string set of the days with activity (8 shards, summed on read) |
//! | Graph counters | `COUNTERS` | `GRAPH` | `nodes`, `edges`, `files`, `node:<type>`, `edge:<type>` (`ADD`ed by a file's commit only) |
//! | Stats snapshot | `SNAPSHOT` | `<timestamp ms, 13 digits>` | `total_nodes`, `total_edges`, `files_processed` |
//! | Connection | `CONNECTION` | `<connection id>` | `client_ip`, `connected_at` (ms), `expires_at` (TTL), `acknowledged` |
//! | Connection by address | `CONNECTION_IP#<ip>` | `<connection id>` | `expires_at` (TTL) |
//! | Connections per address | `CONNECTION_COUNT#<ip>` | `COUNT` | `live`, `expires_at` (TTL) |
//! | Ingested file | `PROJECT#<project>` | `FILE#<ingested ms, 13 digits>#<file id>` | `file` (JSON, with the first 100 warnings), `warnings_total`, `gsi1pk` = `FILE`, `gsi1sk` = `<ingested ms, 13 digits>#<file id>` |
//! | File by id | `PROJECT#<project>` | `FILEID#<file id>` | `filename`, `warnings_total`, `warnings` (the sort key prefix of its warning items) |
//! | File warnings | `PROJECT#<project>` | `WARNINGS#<file id>#<attempt>#<first, 10 digits>` | `warnings` (JSON: up to 1,000 `{line, message}`, about 200 KB at most), `first` (the file's index of the first), `count` |
//! | Content claim | `PROJECT#<project>` | `HASH#<sha-256>` | `state` (`pending`, `complete`), `file_id`, `started_at` (ms), `orphans` (string set: file ids whose writes are still to be undone) |
//! | Undo log | `PROJECT#<project>` | `UNDO#<file id>#<n, 5 digits>` | `entries` (JSON: nodes created; nodes replaced, with their old value and writer; edges created; chunks written; the prefix of the warning items written) |
//! | Node | `GRAPH#<project>` | `NODE#<node id>` | `node` (JSON), `kind`, `rev` (bumped by every write), `writer` (the file id that wrote it last) |
//! | Object index | `GRAPH#<project>` | `OBJECT#<node id>` | `kind`; one per node that is not a column |
//! | Column index | `GRAPH#<project>` | `COLUMN#<key>#<column id>` | none; one per column, `<key>` its name without `_` and spaces (`lineage::column_key`, its first 100 bytes), put after the column and removed by the undo log with it |
//! | Edge, outgoing | `GRAPH#<project>` | `OUT#<source>\|<KIND>\|<target>` | `edge` (JSON), `writer` |
//! | Edge, incoming | `GRAPH#<project>` | `IN#<target>\|<KIND>\|<source>` | `edge` (JSON), `writer` |
//! | Chunk | `CHUNK#<project>` | `<chunk id>` | `chunk` (JSON), `tokens` (its length in search tokens) |
//! | Posting | `TERM#<project>#<term>` | `<chunk id>` | `tf` (the term's count in the chunk), `dl` (the chunk's length) |
//! | Search figures | `COUNTERS` | `SEARCH#<project>` | `documents`, `tokens` (the project's committed chunks and their tokens) |
//! | Chat turn | `CHAT#<session id>` | `TURN#<written ms, 13 digits>#<turn id>` | `turn` (JSON), `expires_at` (TTL, 30 days) |
//!
//! Access patterns, none of them a Scan:
//!
//! * **Append activity**: one `TransactWriteItems` per chunk of up to 99 events: a conditional
//!   `Put` per event (`attribute_not_exists`, so a retried event is refused, never counted twice) and
//!   one `Update` that `ADD`s every counter the new events touch, on one of eight counter shards
//!   picked at random. A cancelled transaction names the duplicates; they are dropped and the rest
//!   retried. Concurrent writers conflict only when they pick the same shard; conflicts are retried
//!   with jitter, and `ADD` keeps the counts exact.
//! * **Recent activity**: the `days` set says which day partitions exist; they are queried newest
//!   first (`ScanIndexForward = false`), page by page, until the limit is reached. A type filter uses
//!   the `by_type` index the same way.
//! * **Totals**: one strongly consistent `Query` of the eight counter shards, summed. **Graph
//!   counts**: one strongly consistent `GetItem`.
//! * **Storing a file** takes more items than one transaction (100), so it is a claim, writes that
//!   are logged before they are made, and one committing transaction:
//!   1. *Claim*: a conditional put (`attribute_not_exists`) of the `HASH#` item, `pending`, naming
//!      the file. A `complete` claim makes the file a duplicate of the one it names (nothing is
//!      written). A `pending` claim younger than 15 minutes is waited for (up to 20 s, then the
//!      store answers unavailable); an older one is presumed dead (a Lambda invocation lives at most
//!      15 minutes) and taken over with a conditional update that records its holder in `orphans`;
//!      the orphans' writes are then undone from their logs before this attempt writes anything.
//!   2. *Plan*: the file's nodes and outgoing edge items are read (`BatchGetItem`, strongly
//!      consistent) and merged by the rules of [`LineageStore`].
//!   3. *Log*: the undo entries (every node to be replaced with its old value and writer, the ids of
//!      nodes, edges and chunks to be created, the prefix of the warning items) are put in `UNDO#`
//!      items before any of those writes.
//!   4. *Write*, 16 requests in flight: a new node by a put conditional on `attribute_not_exists`, a
//!      replaced one by a put conditional on the `rev` that was read (with its `OBJECT#` item in a
//!      two-item transaction when its kind changes); an edge by a conditional put of its `OUT#` item,
//!      then its `IN#` item; chunks, then their postings, then the warnings, by `BatchWriteItem`
//!      (unprocessed items retried). Every warning is kept, packed in order into `WARNINGS#` items of
//!      up to 1,000 and about 200 KB (100,000 warnings of 300 bytes are about 170 items, seven
//!      requests), under a prefix of this attempt's own (a random id), so that an attempt colliding
//!      with a stored file's id can neither overwrite nor undo that file's warnings.
//!   5. *Commit*, one `TransactWriteItems`: the file record (`attribute_not_exists`), the claim set
//!      `complete` (on the condition that it is still `pending` and this file's), the `FILEID#` item
//!      naming the attempt's warning prefix (`attribute_not_exists`: a file id is stored once), the graph counters
//!      `ADD`ed (new nodes and edges by kind, kinds moved by replacements, one file), the project's
//!      search figures `ADD`ed, and the undo log deleted. Counts therefore never include a file that
//!      did not commit. A conflict with another commit on the counters is retried.
//!
//!   On any failure before the commit, the attempt undoes what its log describes (deletes and
//!   restores are conditional on `writer` still being this file, so they never touch another file's
//!   writes, and are safe to repeat), deletes its log and its claim, and returns the error.
//! * **What a crash leaves**: a process that dies between claim and commit leaves a `pending` claim,
//!   its undo log and the items it had written. Those items are visible to reads (nodes, edges, and
//!   chunks in search results) but counted nowhere. They stay until the same content is stored again
//!   15 minutes or more after the crashed attempt began: that attempt takes the claim over and undoes
//!   them from the log. A re-upload sooner waits 20 s and fails as unavailable. Nothing else sweeps
//!   them (that would need a Scan). The same happens when a failed attempt cannot undo itself (the
//!   table unreachable).
//! * **Reads are not isolated from writes**: a file's items are visible as they are written, before
//!   its commit, and disappear again if it fails.
//! * **Two files merging the same node at once**: every write of a node is conditional on what was
//!   read (`rev`, or absence); a refused write reads the node again, merges into it and logs the new
//!   undo entry first. So concurrent files never lose an update, and a node or edge is inserted, and
//!   counted, by exactly one of them. The remaining gap needs a failure racing a success on the same
//!   ids: a failing file undoes only what it still owns, so a concurrent file that found one of its
//!   uncommitted nodes or edges already there (and wrote nothing) loses it, and one that replaced such
//!   a node keeps the replacement with the kind counts computed from the failed file's version. The
//!   SQLite backend, one transaction per file, has no such gap.
//! * **Graph reads**: nodes by `BatchGetItem` (strongly consistent); edges by one `Query` per id,
//!   `begins_with(sk, "OUT#<id>|")` upstream or `"IN#<id>|"` downstream (node ids never contain `|`),
//!   all pages, 16 ids at a time; the object index by `begins_with(sk, "OBJECT#")`; columns by name
//!   by `begins_with(sk, "COLUMN#<key>#")` (or `"COLUMN#<prefix>"`), sort-key order, up to the limit. An edge key that
//!   would pass DynamoDB's 1,024 bytes has its far end replaced by `~<SHA-256>` (the item holds the
//!   edge); ids longer than 900 bytes (project ids 1,024) are refused before anything is written.
//! * **Files**: one project's by a `Query` of `begins_with(sk, "FILE#")` newest first; all projects'
//!   on the `by_type` index (`FILE`), newest first, eventually consistent. Both stop at the limit.
//!   A record written before every warning was kept has no `warnings_total`: its list is all it has.
//! * **A file's warnings**: its `FILEID#` item (one `GetItem`) gives the name, the total and the
//!   prefix of the committed attempt's warning items (an abandoned attempt's are never read); a page
//!   is one `Query` of `sk BETWEEN <prefix>0000000000 AND <prefix><last wanted>`, newest first, a few
//!   items at a time, stopping at the item that holds the first wanted. Files stored before the
//!   `FILEID#` items existed are not found there (their at most 101 warnings are in their record).
//! * **Search**: every posting of each query term (all pages, strongly consistent) is read; a term's
//!   document frequency is its number of postings, and each chunk's BM25 score is the sum of
//!   `Corpus::term_score` (k1 = 1.2, b = 0.75) against the project's search figures. The best `limit`
//!   chunks are then fetched with `BatchGetItem`. Reading a term costs in proportion to the chunks that
//!   hold it (about 6 MB for a term in 100,000 chunks), so callers search with query terms, not with
//!   whole statements.
//! * **Chat sessions**: a turn is a conditional put (`attribute_not_exists`, so a retry adds it once);
//!   a session's newest turns are one `Query` newest first with a limit; deleting a session queries
//!   its keys and deletes them with `BatchWriteItem`. TTL removes turns 30 days after they were written.
//! * **Snapshots**: `Query` on `SNAPSHOT`, newest first, `Limit 1`, optionally `sk <= at`.
//! * **Connections**: admission is one transaction: the address's counter is incremented on the
//!   condition `live < max`, and both connection items are put. Concurrent admissions from one
//!   address are therefore exact: never more than the limit, and none refused below it. Removal
//!   decrements in the same transaction that deletes the items. The counter can drift up only when
//!   connections expire without a `$disconnect`; a refusal first recounts the live items (a
//!   consistent `Query`) and repairs the counter with a conditional write. Listing and counting
//!   query the `CONNECTION` partition page by page and filter out expired items (TTL deletion lags).
//!
//! Limits worth knowing: one partition takes about 1,000 writes per second, so activity beyond that
//! rate per day partition needs a shard suffix on `pk` (as would ingesting one project faster than
//! that, its nodes and edges sharing `GRAPH#<project>`), and all connections live in the `CONNECTION`
//! partition (API Gateway admits at most 500 new connections per second per account anyway).
//! Counting the live connections reads that whole partition (about 1 MB per 10,000 connections);
//! callers reuse a count for 250 ms.

mod chat;
pub(in crate::store) mod lineage;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, DeleteRequest, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, Put, PutRequest, ScalarAttributeType, Select, TimeToLiveSpecification,
    TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::merge::{GraphDelta, fold_edges, fold_nodes, merge_node, stored_record, validate};
use super::{
    ActivityStore, Admission, CHAT_SESSION_TTL, ChatStore, ConnectionPage, ConnectionRecord, ConnectionStore, Direction, GraphCounts,
    LineageStore, ListedConnection, ListedFile, SearchHit, SnapshotStore, StatsSnapshot, StoreError, StoreHealth, WarningPage,
};
use crate::activity::{ActivityEvent, ActivityTotals, EventType};
use crate::chat::Turn;
use crate::lineage::{
    Chunk, EdgeKind, FileGraph, FileRecord, GraphEdge, GraphNode, IndexedChunk, IngestWarning, NodeKind, StoredFile, search,
};
use crate::realtime::ConnectionId;

/// Events per transaction: DynamoDB allows 100 actions, one of which is the counters update.
const EVENTS_PER_TRANSACTION: usize = 99;
/// Attempts at a transaction that conflicts with a concurrent writer.
const CONFLICT_ATTEMPTS: u32 = 12;
const INDEX: &str = "by_type";
const COUNTERS_PK: &str = "COUNTERS";
/// Activity counters are spread over this many items (`ACTIVITY#0` …), one picked at random per
/// write, so concurrent writers rarely touch the same item; reads add them up.
const COUNTER_SHARDS: u8 = 8;
const ACTIVITY_COUNTERS_PREFIX: &str = "ACTIVITY#";
const GRAPH_COUNTERS_SK: &str = "GRAPH";
const SNAPSHOT_PK: &str = "SNAPSHOT";
const CONNECTION_PK: &str = "CONNECTION";

/// The DynamoDB store.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn sort_time(ms: i64) -> String {
    format!("{:013}", ms.max(0))
}

fn day(at: &DateTime<Utc>) -> String {
    at.format("%Y%m%d").to_string()
}

/// Runs `query` page by page: every item, or the first `limit` (then each page asks for no more
/// than is missing, and at most 1,000).
async fn query_pages(query: QueryFluentBuilder, limit: Option<usize>) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
    let mut items = Vec::new();
    if limit == Some(0) {
        return Ok(items);
    }
    let mut start = None;
    loop {
        let mut page = query.clone().set_exclusive_start_key(start);
        if let Some(limit) = limit {
            page = page.limit((limit - items.len()).min(1000) as i32);
        }
        let page = page.send().await.map_err(classify)?;
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if let Some(limit) = limit
            && items.len() >= limit
        {
            items.truncate(limit);
            return Ok(items);
        }
        if start.is_none() {
            return Ok(items);
        }
    }
}

/// Sorts SDK failures into transient (throttling, timeouts, the service being down) and the rest.
fn classify<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "ThrottlingException"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "ResourceNotFoundException"
                    | "TransactionInProgressException"
            )
        ),
        _ => false,
    };
    let described = match error.as_service_error() {
        Some(service) if service.code().is_some() => {
            anyhow!("{}: {}", service.code().unwrap_or_default(), service.message().unwrap_or_default())
        }
        _ => anyhow!(aws_smithy_types::error::display::DisplayErrorContext(&error).to_string()),
    };
    if transient { StoreError::Unavailable(described) } else { StoreError::Internal(described) }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("DynamoDB item: {what}"))
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| corrupt(&format!("`{name}` is not an integer"))),
        Some(_) => Err(corrupt(&format!("`{name}` is not a number"))),
        None => Ok(0),
    }
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(corrupt(&format!("`{name}` is missing or not a string"))),
    }
}

impl DynamoStore {
    /// A store on `table`, configured from the standard AWS settings (region, credentials,
    /// `AWS_ENDPOINT_URL_DYNAMODB`), with a bounded time per attempt.
    pub async fn from_env(table: &str) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(5))
            .build();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts).load().await;
        DynamoStore { client: Client::new(&config), table: table.to_owned() }
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table, its index and TTL, unless it exists. For local runs and tests; in AWS
    /// the stack (`template.yaml`) creates it.
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(error) => return Err(classify(error)),
        }
        let key =
            |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("complete key");
        let attribute = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().expect("complete")
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(INDEX)
            .key_schema(key("gsi1pk", KeyType::Hash))
            .key_schema(key("gsi1sk", KeyType::Range))
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .expect("complete index");
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .attribute_definitions(attribute("pk"))
            .attribute_definitions(attribute("sk"))
            .attribute_definitions(attribute("gsi1pk"))
            .attribute_definitions(attribute("gsi1sk"))
            .global_secondary_indexes(index)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another process created it meanwhile.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(()),
            Err(error) => return Err(classify(error)),
        }
        for _ in 0..60 {
            let status = self.client.describe_table().table_name(&self.table).send().await.map_err(classify)?;
            if status.table().and_then(|table| table.table_status()).is_some_and(|status| status.as_str() == "ACTIVE") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ttl = TimeToLiveSpecification::builder().enabled(true).attribute_name("expires_at").build().expect("complete TTL");
        self.client.update_time_to_live().table_name(&self.table).time_to_live_specification(ttl).send().await.map_err(classify)?;
        tracing::info!(table = %self.table, "created the DynamoDB table");
        Ok(())
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(answer.item)
    }

    /// Appends one chunk in one transaction, dropping duplicates and retrying conflicts.
    async fn append_chunk(&self, chunk: &[ActivityEvent]) -> Result<usize, StoreError> {
        // One transaction may not touch an item twice: an id repeated in the batch is one event.
        let mut seen = std::collections::HashSet::new();
        let mut pending: Vec<&ActivityEvent> = chunk.iter().filter(|event| seen.insert(event.id)).collect();
        for attempt in 0..CONFLICT_ATTEMPTS {
            if pending.is_empty() {
                return Ok(0);
            }
            let mut actions = Vec::with_capacity(pending.len() + 1);
            let mut increments = BTreeMap::<String, i64>::new();
            let mut days = std::collections::BTreeSet::new();
            for event in &pending {
                let sk = format!("{}#{}", sort_time(event.timestamp.timestamp_millis()), event.id);
                let event_day = day(&event.timestamp);
                let json = serde_json::to_string(event).map_err(|error| StoreError::Internal(anyhow!(error)))?;
                let put = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(format!("ACTIVITY#{event_day}")))
                    .item("sk", s(&sk))
                    .item("gsi1pk", s(format!("ACTIVITY#{}#{event_day}", event.event_type.as_str())))
                    .item("gsi1sk", s(&sk))
                    .item("event", s(json))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(|error| StoreError::Internal(anyhow!(error)))?;
                actions.push(TransactWriteItem::builder().put(put).build());
                for (name, by) in event.counter_increments() {
                    *increments.entry(name).or_default() += by;
                }
                days.insert(event_day);
            }
            let mut expression = Vec::with_capacity(increments.len() + 1);
            let shard = uuid::Uuid::new_v4().as_bytes()[0] % COUNTER_SHARDS;
            let mut update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(COUNTERS_PK))
                .key("sk", s(format!("{ACTIVITY_COUNTERS_PREFIX}{shard}")))
                .expression_attribute_names("#days", "days")
                .expression_attribute_values(":days", AttributeValue::Ss(days.into_iter().collect()));
            expression.push("#days :days".to_owned());
            for (index, (name, by)) in increments.iter().enumerate() {
                update =
                    update.expression_attribute_names(format!("#c{index}"), name).expression_attribute_values(format!(":c{index}"), n(by));
                expression.push(format!("#c{index} :c{index}"));
            }
            let update = update
                .update_expression(format!("ADD {}", expression.join(", ")))
                .build()
                .map_err(|error| StoreError::Internal(anyhow!(error)))?;
            actions.push(TransactWriteItem::builder().update(update).build());

            match self.client.transact_write_items().set_transact_items(Some(actions)).send().await {
                Ok(_) => return Ok(pending.len()),
                Err(SdkError::ServiceError(service))
                    if matches!(service.err(), TransactWriteItemsError::TransactionCanceledException(_)) =>
                {
                    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else { unreachable!() };
                    let reasons = cancelled.cancellation_reasons();
                    let duplicate = |index: usize| reasons.get(index).and_then(|reason| reason.code()) == Some("ConditionalCheckFailed");
                    let duplicates = (0..pending.len()).filter(|index| duplicate(*index)).count();
                    if duplicates > 0 {
                        // Stored by an earlier attempt: drop them and write the rest.
                        let mut index = 0;
                        pending.retain(|_| {
                            let keep = !duplicate(index);
                            index += 1;
                            keep
                        });
                        continue;
                    }
                    // A concurrent writer touched the counters item: back off briefly and retry.
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt + 1) + jitter)).await;
                }
                Err(error) => return Err(classify(error)),
            }
        }
        Err(StoreError::Unavailable(anyhow!("activity transaction kept conflicting with other writers")))
    }

    /// Every activity counter shard (one strongly consistent query).
    async fn counter_shards(&self) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        self.query_all(COUNTERS_PK, Some(ACTIVITY_COUNTERS_PREFIX)).await
    }

    /// Every item of a partition (whose sort key starts with `prefix`), page by page, consistently.
    async fn query_all(&self, pk: &str, prefix: Option<&str>) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let query = self.client.query().table_name(&self.table).consistent_read(true).expression_attribute_values(":pk", s(pk));
        let query = match prefix {
            Some(prefix) => {
                query.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)").expression_attribute_values(":prefix", s(prefix))
            }
            None => query.key_condition_expression("pk = :pk"),
        };
        query_pages(query, None).await
    }

    /// The newest `limit` items of a partition whose sort key starts with `prefix`.
    async fn newest_with_prefix(&self, pk: &str, prefix: &str, limit: usize) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        self.with_prefix(pk, prefix, limit, false).await
    }

    /// The first `limit` items of a partition, in sort key order, whose sort key starts with `prefix`.
    async fn first_with_prefix(&self, pk: &str, prefix: &str, limit: usize) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        self.with_prefix(pk, prefix, limit, true).await
    }

    async fn with_prefix(
        &self,
        pk: &str,
        prefix: &str,
        limit: usize,
        forward: bool,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .scan_index_forward(forward);
        query_pages(query, Some(limit)).await
    }

    /// Queries one partition (of the table or the index) newest first until `limit` items are read.
    async fn newest_in(&self, index: bool, partition: &str, limit: usize) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#key = :partition")
            .expression_attribute_names("#key", if index { "gsi1pk" } else { "pk" })
            .expression_attribute_values(":partition", s(partition))
            .scan_index_forward(false);
        // The index is read eventually consistently (DynamoDB offers no more there).
        let query = if index { query.index_name(INDEX) } else { query.consistent_read(true) };
        query_pages(query, Some(limit)).await
    }

    /// One snapshot query: `sk <= at` (newest first) when `at` is given, else newest or oldest first.
    async fn snapshot_query(&self, at: Option<DateTime<Utc>>, newest_first: bool) -> Result<Option<StatsSnapshot>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .scan_index_forward(!newest_first)
            .limit(1)
            .expression_attribute_values(":pk", s(SNAPSHOT_PK));
        query = match at {
            Some(at) => query
                .key_condition_expression("pk = :pk AND sk <= :at")
                .expression_attribute_values(":at", s(sort_time(at.timestamp_millis()))),
            None => query.key_condition_expression("pk = :pk"),
        };
        let page = query.send().await.map_err(classify)?;
        let Some(item) = page.items.unwrap_or_default().into_iter().next() else { return Ok(None) };
        let taken_at_ms: i64 = text(&item, "sk")?.parse().map_err(|_| corrupt("snapshot sort key"))?;
        Ok(Some(StatsSnapshot {
            taken_at: DateTime::from_timestamp_millis(taken_at_ms).ok_or_else(|| corrupt("snapshot time"))?,
            total_nodes: number(&item, "total_nodes")?.max(0) as u64,
            total_edges: number(&item, "total_edges")?.max(0) as u64,
            files_processed: number(&item, "files_processed")?.max(0) as u64,
        }))
    }

    /// Counts the live items of a connection partition, page by page.
    async fn count_live(&self, partition: &str) -> Result<u64, StoreError> {
        let now = crate::time::now().timestamp();
        let mut total = 0u64;
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk")
                .filter_expression("expires_at > :now")
                .expression_attribute_values(":pk", s(partition))
                .expression_attribute_values(":now", n(now))
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            total += page.count.max(0) as u64;
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(total);
            }
        }
    }

    /// Lowers an address's connection counter to its live connections, if it counts more and the
    /// address is then below `max`. The counter is read *before* the count: an admission committing
    /// in between changes the counter, so the conditional write fails rather than undercount.
    /// Returns whether it was lowered.
    async fn repair_count(&self, counter_pk: &str, partition: &str, max: u32) -> Result<bool, StoreError> {
        let Some(counter) = self.get(counter_pk, "COUNT").await? else { return Ok(false) };
        let observed = number(&counter, "live")?;
        let live = self.count_live(partition).await?;
        if live >= u64::from(max) || observed <= live as i64 {
            return Ok(false);
        }
        let repaired = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(counter_pk))
            .key("sk", s("COUNT"))
            .update_expression("SET live = :live")
            .condition_expression("live = :observed")
            .expression_attribute_values(":live", n(live))
            .expression_attribute_values(":observed", n(observed))
            .send()
            .await;
        match repaired {
            Ok(_) => {
                tracing::info!(counter = counter_pk, from = observed, to = live, "repaired a drifted connection counter");
                Ok(true)
            }
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(error) => Err(classify(error)),
        }
    }

    async fn delete_connection_items(&self, id: &ConnectionId, client_ip: &str) -> Result<(), StoreError> {
        let delete = |pk: String| {
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(id.as_str()))
                .build()
                .map(|delete| TransactWriteItem::builder().delete(delete).build())
        };
        let actions = vec![
            delete(CONNECTION_PK.to_owned()).map_err(|error| StoreError::Internal(anyhow!(error)))?,
            delete(format!("CONNECTION_IP#{client_ip}")).map_err(|error| StoreError::Internal(anyhow!(error)))?,
        ];
        self.client.transact_write_items().set_transact_items(Some(actions)).send().await.map_err(classify)?;
        Ok(())
    }
}

#[async_trait]
impl ActivityStore for DynamoStore {
    async fn append_activity(&self, events: &[ActivityEvent]) -> Result<usize, StoreError> {
        let mut inserted = 0;
        for chunk in events.chunks(EVENTS_PER_TRANSACTION) {
            inserted += self.append_chunk(chunk).await?;
        }
        Ok(inserted)
    }

    async fn recent_activity(&self, limit: usize, event_type: Option<EventType>) -> Result<Vec<ActivityEvent>, StoreError> {
        let mut days: Vec<String> = self
            .counter_shards()
            .await?
            .iter()
            .filter_map(|shard| match shard.get("days") {
                Some(AttributeValue::Ss(days)) => Some(days.clone()),
                _ => None,
            })
            .flatten()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        days.sort_unstable_by(|a, b| b.cmp(a));
        let mut events = Vec::with_capacity(limit);
        for day in days {
            if events.len() >= limit {
                break;
            }
            let (index, partition) = match event_type {
                None => (false, format!("ACTIVITY#{day}")),
                Some(kind) => (true, format!("ACTIVITY#{}#{day}", kind.as_str())),
            };
            for item in self.newest_in(index, &partition, limit - events.len()).await? {
                let json = text(&item, "event")?;
                events.push(serde_json::from_str(json).map_err(|error| corrupt(&format!("activity event: {error}")))?);
            }
        }
        Ok(events)
    }

    async fn activity_totals(&self) -> Result<ActivityTotals, StoreError> {
        let mut sums = BTreeMap::<String, i64>::new();
        for shard in self.counter_shards().await? {
            for (name, value) in shard {
                if let AttributeValue::N(number) = value
                    && let Ok(number) = number.parse::<i64>()
                {
                    *sums.entry(name).or_default() += number;
                }
            }
        }
        Ok(ActivityTotals::from_counters(sums))
    }
}

#[async_trait]
impl SnapshotStore for DynamoStore {
    async fn save_snapshot(&self, snapshot: &StatsSnapshot) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(SNAPSHOT_PK))
            .item("sk", s(sort_time(snapshot.taken_at.timestamp_millis())))
            .item("total_nodes", n(snapshot.total_nodes))
            .item("total_edges", n(snapshot.total_edges))
            .item("files_processed", n(snapshot.files_processed))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn latest_snapshot(&self) -> Result<Option<StatsSnapshot>, StoreError> {
        self.snapshot_query(None, true).await
    }

    async fn baseline_snapshot(&self, at: DateTime<Utc>) -> Result<Option<StatsSnapshot>, StoreError> {
        match self.snapshot_query(Some(at), true).await? {
            Some(snapshot) => Ok(Some(snapshot)),
            None => self.snapshot_query(None, false).await,
        }
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn admit_connection(&self, record: &ConnectionRecord, max_per_ip: u32) -> Result<Admission, StoreError> {
        let counter_pk = format!("CONNECTION_COUNT#{}", record.client_ip);
        let mut repaired = false;
        for attempt in 0..CONFLICT_ATTEMPTS {
            let expires = n(record.expires_at.timestamp());
            let internal = |error: aws_sdk_dynamodb::error::BuildError| StoreError::Internal(anyhow!(error));
            // The counter admits only below the limit; its TTL outlives every connection it counts.
            let count = Update::builder()
                .table_name(&self.table)
                .key("pk", s(&counter_pk))
                .key("sk", s("COUNT"))
                .update_expression("SET expires_at = :expires ADD live :one")
                .condition_expression("attribute_not_exists(live) OR live < :max")
                .expression_attribute_values(":expires", expires.clone())
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(max_per_ip))
                .build()
                .map_err(internal)?;
            let connection = Put::builder()
                .table_name(&self.table)
                .item("pk", s(CONNECTION_PK))
                .item("sk", s(record.id.as_str()))
                .item("client_ip", s(&record.client_ip))
                .item("connected_at", n(record.connected_at.timestamp_millis()))
                .item("expires_at", expires.clone())
                .item("acknowledged", AttributeValue::Bool(record.acknowledged))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(internal)?;
            let by_address = Put::builder()
                .table_name(&self.table)
                .item("pk", s(format!("CONNECTION_IP#{}", record.client_ip)))
                .item("sk", s(record.id.as_str()))
                .item("expires_at", expires)
                .build()
                .map_err(internal)?;
            let written = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(count).build())
                .transact_items(TransactWriteItem::builder().put(connection).build())
                .transact_items(TransactWriteItem::builder().put(by_address).build())
                .send()
                .await;
            let reasons = match written {
                Ok(_) => return Ok(Admission::Admitted),
                Err(SdkError::ServiceError(service))
                    if matches!(service.err(), TransactWriteItemsError::TransactionCanceledException(_)) =>
                {
                    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else { unreachable!() };
                    cancelled.cancellation_reasons().iter().map(|reason| reason.code().unwrap_or_default().to_owned()).collect::<Vec<_>>()
                }
                Err(error) => return Err(classify(error)),
            };
            match (reasons.first().map(String::as_str), reasons.get(1).map(String::as_str)) {
                // The id is already recorded (a retried $connect): it holds its slot already.
                (_, Some("ConditionalCheckFailed")) => return Ok(Admission::Admitted),
                (Some("ConditionalCheckFailed"), _) if !repaired => {
                    // The counter says full. It drifts up if connections expire without a
                    // disconnect: recount the live ones and repair it once before refusing.
                    repaired = true;
                    if !self.repair_count(&counter_pk, &format!("CONNECTION_IP#{}", record.client_ip), max_per_ip).await? {
                        return Ok(Admission::TooManyFromIp { limit: max_per_ip });
                    }
                }
                (Some("ConditionalCheckFailed"), _) => return Ok(Admission::TooManyFromIp { limit: max_per_ip }),
                // A concurrent admission or disconnect touched the counter: retry after a moment.
                _ => {
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt + 1) + jitter)).await;
                }
            }
        }
        Err(StoreError::Unavailable(anyhow!("connection admission kept conflicting with other writers")))
    }

    async fn remove_connection(&self, id: &ConnectionId) -> Result<bool, StoreError> {
        let Some(item) = self.get(CONNECTION_PK, id.as_str()).await? else { return Ok(false) };
        let client_ip = text(&item, "client_ip")?.to_owned();
        let internal = |error: aws_sdk_dynamodb::error::BuildError| StoreError::Internal(anyhow!(error));
        let connection = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(CONNECTION_PK))
            .key("sk", s(id.as_str()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(internal)?;
        let by_address = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(format!("CONNECTION_IP#{client_ip}")))
            .key("sk", s(id.as_str()))
            .build()
            .map_err(internal)?;
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("CONNECTION_COUNT#{client_ip}")))
            .key("sk", s("COUNT"))
            .update_expression("ADD live :minus_one")
            .condition_expression("live > :zero")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(internal)?;
        for attempt in 0..CONFLICT_ATTEMPTS {
            let removed = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(connection.clone()).build())
                .transact_items(TransactWriteItem::builder().delete(by_address.clone()).build())
                .transact_items(TransactWriteItem::builder().update(count.clone()).build())
                .send()
                .await;
            let reasons = match removed {
                Ok(_) => return Ok(true),
                Err(SdkError::ServiceError(service))
                    if matches!(service.err(), TransactWriteItemsError::TransactionCanceledException(_)) =>
                {
                    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else { unreachable!() };
                    cancelled.cancellation_reasons().iter().map(|reason| reason.code().unwrap_or_default().to_owned()).collect::<Vec<_>>()
                }
                Err(error) => return Err(classify(error)),
            };
            match (reasons.first().map(String::as_str), reasons.get(2).map(String::as_str)) {
                // Removed by someone else meanwhile.
                (Some("ConditionalCheckFailed"), _) => return Ok(false),
                // The counter is already at zero (it had drifted down): remove the items alone.
                (_, Some("ConditionalCheckFailed")) => {
                    self.delete_connection_items(id, &client_ip).await?;
                    return Ok(true);
                }
                _ => {
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt + 1) + jitter)).await;
                }
            }
        }
        Err(StoreError::Unavailable(anyhow!("connection removal kept conflicting with other writers")))
    }

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<ConnectionRecord>, StoreError> {
        let Some(item) = self.get(CONNECTION_PK, id.as_str()).await? else { return Ok(None) };
        let expires_at = DateTime::from_timestamp(number(&item, "expires_at")?, 0).ok_or_else(|| corrupt("connection expiry"))?;
        if expires_at <= crate::time::now() {
            return Ok(None);
        }
        Ok(Some(ConnectionRecord {
            id: id.clone(),
            client_ip: text(&item, "client_ip")?.to_owned(),
            connected_at: DateTime::from_timestamp_millis(number(&item, "connected_at")?).ok_or_else(|| corrupt("connection time"))?,
            expires_at,
            acknowledged: matches!(item.get("acknowledged"), Some(AttributeValue::Bool(true))),
        }))
    }

    async fn list_connections(&self, cursor: Option<String>, page_size: u32) -> Result<ConnectionPage, StoreError> {
        let start = cursor.map(|sk| HashMap::from([("pk".to_owned(), s(CONNECTION_PK)), ("sk".to_owned(), s(sk))]));
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .filter_expression("expires_at > :now")
            .expression_attribute_values(":pk", s(CONNECTION_PK))
            .expression_attribute_values(":now", n(crate::time::now().timestamp()))
            .projection_expression("sk, acknowledged")
            .limit(page_size.clamp(1, 10_000) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(classify)?;
        let connections = page
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                let acknowledged = matches!(item.get("acknowledged"), Some(AttributeValue::Bool(true)));
                text(item, "sk").map(|id| ListedConnection { id: ConnectionId::new(id), acknowledged })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = match page.last_evaluated_key {
            Some(key) => Some(text(&key, "sk")?.to_owned()),
            None => None,
        };
        Ok(ConnectionPage { connections, next })
    }

    async fn count_connections(&self) -> Result<u64, StoreError> {
        self.count_live(CONNECTION_PK).await
    }

    async fn mark_acknowledged(&self, id: &ConnectionId) -> Result<(), StoreError> {
        let marked = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(CONNECTION_PK))
            .key("sk", s(id.as_str()))
            .update_expression("SET acknowledged = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match marked {
            Ok(_) => Ok(()),
            // Gone meanwhile: nothing to mark.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(error) => Err(classify(error)),
        }
    }
}

#[async_trait]
impl StoreHealth for DynamoStore {
    fn backend(&self) -> &'static str {
        "dynamodb"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.get(COUNTERS_PK, GRAPH_COUNTERS_SK).await.map(|_| ())
    }
}
