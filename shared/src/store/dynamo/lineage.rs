//! The lineage knowledge base on the table: the content claim, the undo log, the node merge and the
//! committing transaction, graph reads and BM25 search over postings (the design is in the parent
//! module's documentation).

use super::*;

/// A claim on a file's content older than this belongs to an attempt presumed dead (a Lambda
/// invocation lives at most 15 minutes), and the next attempt at the same content takes it over.
const CLAIM_STALE_AFTER: Duration = Duration::from_secs(15 * 60);
/// How long an attempt waits for another one, holding a fresh claim on the same content, to finish.
const CLAIM_WAIT: Duration = Duration::from_secs(20);
/// Requests in flight at once for one call (writes of nodes and edges, queries of edges and postings).
const CONCURRENCY: usize = 16;
/// The JSON of one undo log item stays below this (an item holds at most 400 KB).
const UNDO_ITEM_BYTES: usize = 300_000;
/// Attempts at a batch call that leaves items unprocessed (throttling).
const BATCH_ATTEMPTS: u32 = 8;
/// A file's warnings are packed into items of at most this many...
const WARNINGS_PER_ITEM: usize = 1000;
/// ...whose JSON passes this size by at most one warning (an item holds at most 400 KB; a warning
/// is at most `MAX_WARNING_BYTES`, about 12 KB as escaped JSON at worst).
const WARNING_ITEM_BYTES: usize = 200_000;
/// Items read per request when paging warnings (a page of 1,000 usually lies in one or two).
const WARNING_ITEMS_PER_QUERY: i32 = 4;
const FILES_INDEX_PK: &str = "FILE";
const MAX_SORT_KEY_BYTES: usize = 1024;
/// Node, chunk and file ids fit a sort key with their prefix (and an edge key with a hashed far end).
const MAX_ID_BYTES: usize = 900;
/// Project ids fit a partition key (2,048 bytes) with a prefix and a search term.
const MAX_PROJECT_BYTES: usize = 1024;

pub(super) type Item = HashMap<String, AttributeValue>;

fn project_pk(project: &str) -> String {
    format!("PROJECT#{project}")
}

fn graph_pk(project: &str) -> String {
    format!("GRAPH#{project}")
}

fn chunk_pk(project: &str) -> String {
    format!("CHUNK#{project}")
}

fn term_pk(project: &str, term: &str) -> String {
    format!("TERM#{project}#{term}")
}

fn search_counters_sk(project: &str) -> String {
    format!("SEARCH#{project}")
}

fn hash_sk(content_hash: &str) -> String {
    format!("HASH#{content_hash}")
}

fn undo_prefix(file_id: &str) -> String {
    format!("UNDO#{file_id}#")
}

fn file_id_sk(file_id: &str) -> String {
    format!("FILEID#{file_id}")
}

/// The sort key prefix of the warning items one attempt at storing a file writes: the attempt's own,
/// so that an attempt colliding with a stored file (the same id) can neither overwrite nor undo that
/// file's warnings, and readers see only the committed attempt's (named by its `FILEID#` item).
fn warnings_prefix(file_id: &str, attempt: &str) -> String {
    format!("WARNINGS#{file_id}#{attempt}#")
}

/// The sort key of the warning item whose first warning is the `first`-th of the file: zero-padded,
/// so that key order is warning order.
fn warning_sk(prefix: &str, first: u64) -> String {
    format!("{prefix}{first:010}")
}

fn node_sk(id: &str) -> String {
    format!("NODE#{id}")
}

fn object_sk(id: &str) -> String {
    format!("OBJECT#{id}")
}

/// The column index item of a column (`COLUMN#<key>#<id>`), found by its key or a prefix of it
/// (keys hold no `#`: an id's name part never does); `None` for an object's id.
fn column_sk(id: &str) -> Option<String> {
    crate::lineage::column_part(id).map(|part| format!("COLUMN#{}#{id}", indexed_key(&crate::lineage::column_key(part))))
}

/// Bytes of a column's key kept in its index item: with the id (at most `MAX_ID_BYTES`), the sort
/// key stays within `MAX_SORT_KEY_BYTES`. A longer key is found by its start and checked in full.
const INDEXED_KEY_BYTES: usize = 100;

fn indexed_key(key: &str) -> &str {
    let mut end = key.len().min(INDEXED_KEY_BYTES);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// The sort key of an edge's item as seen from its `near` end: `<side>#<near>|<KIND>|<far>`, with
/// `far` replaced by `~<its SHA-256>` when the key would pass DynamoDB's 1,024 bytes (the edge
/// itself is in the item; queries only need the near end).
fn edge_sk(side: &str, near: &str, kind: EdgeKind, far: &str) -> String {
    let sk = format!("{side}#{near}|{kind}|{far}");
    if sk.len() <= MAX_SORT_KEY_BYTES {
        return sk;
    }
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(far.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{side}#{near}|{kind}|~{digest}")
}

fn out_sk(source: &str, kind: EdgeKind, target: &str) -> String {
    edge_sk("OUT", source, kind, target)
}

fn in_sk(source: &str, kind: EdgeKind, target: &str) -> String {
    edge_sk("IN", target, kind, source)
}

/// Refuses ids that would not fit DynamoDB's keys (sort keys hold at most 1,024 bytes), before
/// anything is written.
fn check_key_sizes(record: &FileRecord, graph: &FileGraph) -> Result<(), StoreError> {
    let too_long = |what: &str, id: &str, limit: usize| {
        Err(StoreError::Internal(anyhow!("file {} cannot be stored: {what} {id:?} is longer than {limit} bytes", record.id)))
    };
    if record.project_id.len() > MAX_PROJECT_BYTES {
        return too_long("project id", &record.project_id, MAX_PROJECT_BYTES);
    }
    if record.id.len() > MAX_ID_BYTES {
        return too_long("file id", &record.id, MAX_ID_BYTES);
    }
    let ids = graph.nodes.iter().map(|node| &node.id).chain(graph.edges.iter().flat_map(|edge| [&edge.source, &edge.target]));
    for id in ids.chain(graph.chunks.iter().map(|indexed| &indexed.chunk.id)) {
        if id.len() > MAX_ID_BYTES {
            return too_long("id", id, MAX_ID_BYTES);
        }
    }
    Ok(())
}

pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn internal(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Internal(anyhow!(error))
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(internal)
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    serde_json::from_str(text(item, name)?).map_err(|error| corrupt(&format!("`{name}`: {error}")))
}

pub(super) fn is_conditional_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.as_service_error().and_then(|service| service.code()) == Some("ConditionalCheckFailedException")
}

async fn back_off(attempt: u32) {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 20);
    tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt + 1) + jitter)).await;
}

/// One step of undoing an attempt, logged before the write it undoes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub(in crate::store) enum UndoEntry {
    /// A node the attempt inserts: delete it (and its object index item) while the attempt is its writer.
    CreatedNode { id: String },
    /// A node the attempt overwrites: put back its value while the attempt is its writer.
    ReplacedNode { node: GraphNode, writer: String },
    /// An edge the attempt inserts: delete both of its items while the attempt is their writer.
    CreatedEdge { source: String, kind: EdgeKind, target: String },
    /// A chunk the attempt writes: delete it and its postings.
    Chunk { id: String },
    /// The warning items the attempt writes (every sort key starting with `prefix`, the attempt's
    /// own): delete them.
    Warnings { prefix: String },
}

impl UndoEntry {
    fn node_id(&self) -> Option<&str> {
        match self {
            UndoEntry::CreatedNode { id } => Some(id),
            UndoEntry::ReplacedNode { node, .. } => Some(&node.id),
            _ => None,
        }
    }

    /// The entry that undoes the write of a node over `stored`.
    fn for_node(id: &str, stored: Option<&StoredNode>) -> UndoEntry {
        match stored {
            None => UndoEntry::CreatedNode { id: id.to_owned() },
            Some(stored) => UndoEntry::ReplacedNode { node: stored.node.clone(), writer: stored.writer.clone() },
        }
    }
}

/// One attempt at storing a file: who writes (the file id), and the undo entries it has logged.
pub(in crate::store) struct Attempt {
    project: String,
    file_id: String,
    /// Where this attempt's warning items are ([`warnings_prefix`]).
    warnings_prefix: String,
    entries: std::sync::Mutex<Vec<UndoEntry>>,
    log_items: std::sync::atomic::AtomicU32,
}

impl Attempt {
    pub(in crate::store) fn new(record: &FileRecord) -> Self {
        Attempt {
            project: record.project_id.clone(),
            file_id: record.id.clone(),
            warnings_prefix: warnings_prefix(&record.id, &uuid::Uuid::new_v4().simple().to_string()),
            entries: std::sync::Mutex::new(Vec::new()),
            log_items: std::sync::atomic::AtomicU32::new(0),
        }
    }

    fn entries(&self) -> Vec<UndoEntry> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// What claiming a file's content found.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::store) enum Claim {
    /// This attempt holds the content's claim and may write.
    Claimed,
    /// The project already holds this content, as this file.
    Duplicate(String),
}

/// What the items of a file add up to, for the commit.
pub(in crate::store) struct Written {
    delta: GraphDelta,
    documents: u64,
    tokens: u64,
    /// The file's warnings, all written.
    warnings: u64,
}

/// A node as stored, with its revision (bumped by every write) and its last writer (a file id).
struct StoredNode {
    node: GraphNode,
    rev: i64,
    writer: String,
}

fn decode_node(item: &Item) -> Result<StoredNode, StoreError> {
    Ok(StoredNode { node: from_json(item, "node")?, rev: number(item, "rev")?, writer: text(item, "writer")?.to_owned() })
}

enum NodeEffect {
    Kept,
    Created(NodeKind),
    Changed(NodeKind, NodeKind),
}

/// How one conditional write went.
enum Outcome {
    Written,
    /// The condition failed: the item is not what the write expected.
    Refused,
    /// A concurrent transaction touched the item: try again.
    Conflict,
}

impl DynamoStore {
    #[cfg(test)]
    pub(in crate::store) fn client(&self) -> &Client {
        &self.client
    }

    /// A transaction, and the cancellation reasons' codes if it was cancelled.
    async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<Result<(), Vec<String>>, StoreError> {
        match self.client.transact_write_items().set_transact_items(Some(actions)).send().await {
            Ok(_) => Ok(Ok(())),
            Err(SdkError::ServiceError(service)) if matches!(service.err(), TransactWriteItemsError::TransactionCanceledException(_)) => {
                let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else { unreachable!() };
                Ok(Err(cancelled.cancellation_reasons().iter().map(|reason| reason.code().unwrap_or("None").to_owned()).collect()))
            }
            Err(error) => Err(classify(error)),
        }
    }

    /// A transaction whose first action carries the condition that matters.
    async fn transact_conditional(&self, actions: Vec<TransactWriteItem>) -> Result<Outcome, StoreError> {
        Ok(match self.transact(actions).await? {
            Ok(()) => Outcome::Written,
            Err(reasons) if reasons.iter().any(|code| code == "ConditionalCheckFailed") => Outcome::Refused,
            Err(_) => Outcome::Conflict,
        })
    }

    /// The items with these keys that exist (strongly consistent), 100 keys per request, retrying
    /// the keys DynamoDB leaves unprocessed.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let batches: Vec<Vec<Item>> = keys.chunks(100).map(<[Item]>::to_vec).collect();
        let found: Vec<Vec<Item>> = stream::iter(batches)
            .map(|mut pending| async move {
                let mut found = Vec::new();
                for attempt in 0..BATCH_ATTEMPTS {
                    let request = KeysAndAttributes::builder().set_keys(Some(pending)).consistent_read(true).build().map_err(internal)?;
                    let answer = self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(classify)?;
                    found.extend(answer.responses.and_then(|mut responses| responses.remove(&self.table)).unwrap_or_default());
                    pending =
                        answer.unprocessed_keys.and_then(|mut left| left.remove(&self.table)).map(|left| left.keys).unwrap_or_default();
                    if pending.is_empty() {
                        return Ok(found);
                    }
                    back_off(attempt).await;
                }
                Err(StoreError::Unavailable(anyhow!("DynamoDB kept {} keys of a batch read unprocessed", pending.len())))
            })
            .buffer_unordered(4)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Writes (puts and deletes) 25 per request, retrying the ones DynamoDB leaves unprocessed.
    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        let batches: Vec<Vec<WriteRequest>> = requests.chunks(25).map(<[WriteRequest]>::to_vec).collect();
        stream::iter(batches)
            .map(|mut pending| async move {
                for attempt in 0..BATCH_ATTEMPTS {
                    let answer = self.client.batch_write_item().request_items(&self.table, pending).send().await.map_err(classify)?;
                    pending = answer.unprocessed_items.and_then(|mut left| left.remove(&self.table)).unwrap_or_default();
                    if pending.is_empty() {
                        return Ok(());
                    }
                    back_off(attempt).await;
                }
                Err(StoreError::Unavailable(anyhow!("DynamoDB kept {} items of a batch write unprocessed", pending.len())))
            })
            .buffer_unordered(CONCURRENCY / 2)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
        Ok(WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().map_err(internal)?).build())
    }

    pub(super) fn delete_request(key: Item) -> Result<WriteRequest, StoreError> {
        Ok(WriteRequest::builder().delete_request(DeleteRequest::builder().set_key(Some(key)).build().map_err(internal)?).build())
    }

    /// Claims `record`'s content for this attempt: a conditional put of the `HASH#` guard. A complete
    /// guard makes the file a duplicate; a fresh pending one is waited for; a stale pending one is
    /// taken over, and what its attempts wrote is undone from their logs.
    pub(in crate::store) async fn claim(&self, record: &FileRecord) -> Result<Claim, StoreError> {
        let (pk, sk) = (project_pk(&record.project_id), hash_sk(&record.content_hash));
        let waiting_since = std::time::Instant::now();
        for attempt in 0u32.. {
            if attempt > 0 {
                if waiting_since.elapsed() >= CLAIM_WAIT {
                    return Err(StoreError::Unavailable(anyhow!(
                        "file {} has the content of a file that another request is storing right now",
                        record.id
                    )));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let now_ms = crate::time::now().timestamp_millis();
            let claimed = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("sk", s(&sk))
                .item("state", s("pending"))
                .item("file_id", s(&record.id))
                .item("started_at", n(now_ms))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match claimed {
                Ok(_) => return Ok(Claim::Claimed),
                Err(error) if is_conditional_failure(&error) => {}
                Err(error) => return Err(classify(error)),
            }
            let Some(guard) = self.get(&pk, &sk).await? else { continue };
            let holder = text(&guard, "file_id")?.to_owned();
            if text(&guard, "state")? == "complete" {
                return Ok(Claim::Duplicate(holder));
            }
            let started_at = number(&guard, "started_at")?;
            if now_ms - started_at < CLAIM_STALE_AFTER.as_millis() as i64 {
                continue;
            }
            // The holder is presumed dead. Take the claim over first (so the holder, were it alive
            // after all, can no longer commit), remembering whose writes are to be undone.
            let taken = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(&sk))
                .update_expression("SET file_id = :me, started_at = :now ADD orphans :holder")
                .condition_expression("file_id = :holder_id AND started_at = :started AND #state = :pending")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":me", s(&record.id))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":holder", AttributeValue::Ss(vec![holder.clone()]))
                .expression_attribute_values(":holder_id", s(&holder))
                .expression_attribute_values(":started", n(started_at))
                .expression_attribute_values(":pending", s("pending"))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            let guard = match taken {
                Ok(answer) => answer.attributes.unwrap_or_default(),
                Err(error) if is_conditional_failure(&error) => continue,
                Err(error) => return Err(classify(error)),
            };
            let orphans = match guard.get("orphans") {
                Some(AttributeValue::Ss(orphans)) => orphans.clone(),
                _ => vec![holder],
            };
            tracing::warn!(project = %record.project_id, file = %record.id, ?orphans, "took over a stale claim; undoing what its attempts wrote");
            self.recover(&record.project_id, &orphans).await?;
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(&sk))
                .update_expression("DELETE orphans :done")
                .condition_expression("file_id = :me")
                .expression_attribute_values(":done", AttributeValue::Ss(orphans))
                .expression_attribute_values(":me", s(&record.id))
                .send()
                .await
                .map_err(classify)?;
            return Ok(Claim::Claimed);
        }
        unreachable!("the claim loop only ends by returning")
    }

    /// Undoes, from their logs, what the attempts of `file_ids` wrote, and deletes the logs.
    async fn recover(&self, project: &str, file_ids: &[String]) -> Result<(), StoreError> {
        for file_id in file_ids {
            let log = self.query_all(&project_pk(project), Some(&undo_prefix(file_id))).await?;
            let mut entries = Vec::new();
            for item in &log {
                entries.extend(from_json::<Vec<UndoEntry>>(item, "entries")?);
            }
            self.undo(project, file_id, &entries).await?;
            let deletes =
                log.iter().map(|item| Self::delete_request(key(project_pk(project), text(item, "sk")?))).collect::<Result<_, _>>()?;
            self.batch_write(deletes).await?;
        }
        Ok(())
    }

    /// Logs undo entries (in items of at most [`UNDO_ITEM_BYTES`]) before the writes they undo.
    async fn log(&self, attempt: &Attempt, entries: Vec<UndoEntry>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        attempt.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(entries.iter().cloned());
        let mut groups: Vec<Vec<String>> = vec![Vec::new()];
        let mut size = 0;
        for entry in &entries {
            let json = to_json(entry)?;
            if size + json.len() > UNDO_ITEM_BYTES && !groups.last().is_some_and(Vec::is_empty) {
                groups.push(Vec::new());
                size = 0;
            }
            size += json.len() + 1;
            groups.last_mut().expect("a group").push(json);
        }
        for group in groups {
            let seq = attempt.log_items.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(project_pk(&attempt.project)))
                .item("sk", s(format!("{}{seq:05}", undo_prefix(&attempt.file_id))))
                .item("entries", s(format!("[{}]", group.join(","))))
                .send()
                .await
                .map_err(classify)?;
        }
        Ok(())
    }

    /// Undoes the writes `entries` describe, where `writer` (a file id) still owns what they touched.
    /// Safe to repeat, and to run over entries whose writes never happened.
    async fn undo(&self, project: &str, writer: &str, entries: &[UndoEntry]) -> Result<(), StoreError> {
        let pk = graph_pk(project);
        // Search data: postings first (found through the chunk's text), then the chunks.
        let chunk_keys: Vec<Item> = entries
            .iter()
            .filter_map(|entry| match entry {
                UndoEntry::Chunk { id } => Some(key(chunk_pk(project), id)),
                _ => None,
            })
            .collect();
        let mut postings = Vec::new();
        for item in self.batch_get(chunk_keys.clone()).await? {
            let chunk: Chunk = from_json(&item, "chunk")?;
            let terms: std::collections::BTreeSet<String> = search::tokenize(&chunk.text).into_iter().collect();
            for term in terms {
                postings.push(Self::delete_request(key(term_pk(project, &term), &chunk.id))?);
            }
        }
        self.batch_write(postings).await?;
        self.batch_write(chunk_keys.into_iter().map(Self::delete_request).collect::<Result<_, _>>()?).await?;

        // Warning items: the attempt's own prefix holds no one else's.
        for entry in entries {
            if let UndoEntry::Warnings { prefix } = entry {
                let items = self.query_all(&project_pk(project), Some(prefix)).await?;
                let deletes =
                    items.iter().map(|item| Self::delete_request(key(project_pk(project), text(item, "sk")?))).collect::<Result<_, _>>()?;
                self.batch_write(deletes).await?;
            }
        }

        // Edges: both items, while this writer wrote them.
        let mut edge_deletes = Vec::new();
        for entry in entries {
            if let UndoEntry::CreatedEdge { source, kind, target } = entry {
                edge_deletes.push(out_sk(source, *kind, target));
                edge_deletes.push(in_sk(source, *kind, target));
            }
        }
        edge_deletes.sort_unstable();
        edge_deletes.dedup();
        stream::iter(edge_deletes)
            .map(|sk| {
                let pk = &pk;
                async move {
                    let deleted = self
                        .client
                        .delete_item()
                        .table_name(&self.table)
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .condition_expression("#writer = :me")
                        .expression_attribute_names("#writer", "writer")
                        .expression_attribute_values(":me", s(writer))
                        .send()
                        .await;
                    match deleted {
                        Ok(_) => Ok(()),
                        Err(error) if is_conditional_failure(&error) => Ok(()),
                        Err(error) => Err(classify(error)),
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;

        // Nodes: the last entry of a node is the one its write, if any, followed.
        let mut last = HashMap::new();
        for entry in entries {
            if let Some(id) = entry.node_id() {
                last.insert(id.to_owned(), entry.clone());
            }
        }
        stream::iter(last)
            .map(|(id, entry)| {
                let pk = &pk;
                async move {
                    let owned = |builder: aws_sdk_dynamodb::types::builders::UpdateBuilder| {
                        builder.condition_expression("#writer = :me").expression_attribute_names("#writer", "writer")
                    };
                    let actions = match &entry {
                        UndoEntry::ReplacedNode { node, writer: previous } => {
                            let update = owned(Update::builder())
                                .table_name(&self.table)
                                .key("pk", s(pk))
                                .key("sk", s(node_sk(&id)))
                                .update_expression("SET #node = :node, #kind = :kind, #writer = :previous ADD #rev :one")
                                .expression_attribute_names("#node", "node")
                                .expression_attribute_names("#kind", "kind")
                                .expression_attribute_names("#rev", "rev")
                                .expression_attribute_values(":node", s(to_json(node)?))
                                .expression_attribute_values(":kind", s(node.kind.as_str()))
                                .expression_attribute_values(":previous", s(previous))
                                .expression_attribute_values(":one", n(1))
                                .expression_attribute_values(":me", s(writer))
                                .build()
                                .map_err(internal)?;
                            vec![TransactWriteItem::builder().update(update).build(), self.object_index_action(project, node)?]
                        }
                        _ => {
                            let delete = Delete::builder()
                                .table_name(&self.table)
                                .key("pk", s(pk))
                                .key("sk", s(node_sk(&id)))
                                .condition_expression("#writer = :me")
                                .expression_attribute_names("#writer", "writer")
                                .expression_attribute_values(":me", s(writer))
                                .build()
                                .map_err(internal)?;
                            // The node's kind is not in the log: its index item is one of these.
                            let mut actions = vec![TransactWriteItem::builder().delete(delete).build()];
                            for sk in std::iter::once(object_sk(&id)).chain(column_sk(&id)) {
                                let index = Delete::builder()
                                    .table_name(&self.table)
                                    .key("pk", s(pk))
                                    .key("sk", s(sk))
                                    .build()
                                    .map_err(internal)?;
                                actions.push(TransactWriteItem::builder().delete(index).build());
                            }
                            actions
                        }
                    };
                    for attempt in 0..CONFLICT_ATTEMPTS {
                        match self.transact_conditional(actions.clone()).await? {
                            // Refused: this writer no longer owns the node (never wrote it, or was overwritten).
                            Outcome::Written | Outcome::Refused => return Ok(()),
                            Outcome::Conflict => back_off(attempt).await,
                        }
                    }
                    Err(StoreError::Unavailable(anyhow!("undoing node {id} kept conflicting with other writers")))
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// The write that makes the index item of `node` match it: the object index item with its kind
    /// for an object, the column index item for a column.
    fn object_index_action(&self, project: &str, node: &GraphNode) -> Result<TransactWriteItem, StoreError> {
        Ok(if let (NodeKind::Column, Some(sk)) = (node.kind, column_sk(&node.id)) {
            let put =
                Put::builder().table_name(&self.table).item("pk", s(graph_pk(project))).item("sk", s(sk)).build().map_err(internal)?;
            TransactWriteItem::builder().put(put).build()
        } else {
            let put = Put::builder()
                .table_name(&self.table)
                .item("pk", s(graph_pk(project)))
                .item("sk", s(object_sk(&node.id)))
                .item("kind", s(node.kind.as_str()))
                .build()
                .map_err(internal)?;
            TransactWriteItem::builder().put(put).build()
        })
    }

    /// Writes a file's graph, chunks and postings (everything but the commit), logging how to undo
    /// each write before making it. Returns what the commit adds to the counters.
    pub(in crate::store) async fn write_items(
        &self,
        attempt: &Attempt,
        record: &FileRecord,
        graph: &FileGraph,
    ) -> Result<Written, StoreError> {
        let project = record.project_id.as_str();
        let pk = graph_pk(project);
        let (nodes, edges) = (fold_nodes(graph.nodes.clone()), fold_edges(graph.edges.clone()));

        // What is stored already decides what is inserted, overwritten or left alone.
        let mut stored_nodes = HashMap::new();
        for item in self.batch_get(nodes.iter().map(|node| key(&pk, node_sk(&node.id))).collect()).await? {
            let stored = decode_node(&item)?;
            stored_nodes.insert(stored.node.id.clone(), stored);
        }
        let stored_edges: std::collections::HashSet<String> = self
            .batch_get(edges.iter().map(|edge| key(&pk, out_sk(&edge.source, edge.kind, &edge.target))).collect())
            .await?
            .iter()
            .map(|item| text(item, "sk").map(str::to_owned))
            .collect::<Result<_, _>>()?;

        let mut entries = Vec::new();
        let mut node_writes = Vec::new();
        for node in nodes {
            let stored = stored_nodes.remove(&node.id);
            if merge_node(stored.as_ref().map(|stored| &stored.node), &node).is_some() {
                entries.push(UndoEntry::for_node(&node.id, stored.as_ref()));
                node_writes.push((node, stored));
            }
        }
        let new_edges: Vec<GraphEdge> =
            edges.into_iter().filter(|edge| !stored_edges.contains(&out_sk(&edge.source, edge.kind, &edge.target))).collect();
        entries.extend(new_edges.iter().map(|edge| UndoEntry::CreatedEdge {
            source: edge.source.clone(),
            kind: edge.kind,
            target: edge.target.clone(),
        }));
        entries.extend(graph.chunks.iter().map(|indexed| UndoEntry::Chunk { id: indexed.chunk.id.clone() }));
        if !record.warnings.is_empty() {
            entries.push(UndoEntry::Warnings { prefix: attempt.warnings_prefix.clone() });
        }
        self.log(attempt, entries).await?;

        let mut delta = GraphDelta::default();
        let effects: Vec<NodeEffect> = stream::iter(node_writes)
            .map(|(node, stored)| self.write_node(attempt, node, stored))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        for effect in effects {
            match effect {
                NodeEffect::Kept => {}
                NodeEffect::Created(kind) => delta.node_inserted(kind),
                NodeEffect::Changed(from, to) => delta.node_changed(from, to),
            }
        }
        let created: Vec<Option<EdgeKind>> =
            stream::iter(new_edges).map(|edge| self.write_edge(attempt, edge)).buffer_unordered(CONCURRENCY).try_collect().await?;
        for kind in created.into_iter().flatten() {
            delta.edge_inserted(kind);
        }

        // Every chunk is written before any posting, so undoing finds a posting's terms in its chunk.
        let (mut chunk_puts, mut posting_puts, mut tokens) = (Vec::new(), Vec::new(), 0u64);
        for IndexedChunk { chunk, terms } in &graph.chunks {
            let length = terms.len();
            tokens += length as u64;
            let mut frequencies = BTreeMap::<&str, u32>::new();
            for term in terms {
                *frequencies.entry(term).or_default() += 1;
            }
            let mut item = key(chunk_pk(project), &chunk.id);
            item.insert("chunk".to_owned(), s(to_json(chunk)?));
            item.insert("tokens".to_owned(), n(length));
            chunk_puts.push(Self::put_request(item)?);
            for (term, frequency) in frequencies {
                let mut posting = key(term_pk(project, term), &chunk.id);
                posting.insert("tf".to_owned(), n(frequency));
                posting.insert("dl".to_owned(), n(length));
                posting_puts.push(Self::put_request(posting)?);
            }
        }
        self.batch_write(chunk_puts).await?;
        self.batch_write(posting_puts).await?;
        self.write_warnings(attempt, &record.warnings).await?;
        Ok(Written { delta, documents: graph.chunks.len() as u64, tokens, warnings: record.warnings.len() as u64 })
    }

    /// Writes a file's warnings, in order, packed many to an item (at most [`WARNINGS_PER_ITEM`], and
    /// [`WARNING_ITEM_BYTES`] of JSON), under the attempt's own prefix; each item says which warning
    /// it starts with (`first`) and how many it holds (`count`).
    async fn write_warnings(&self, attempt: &Attempt, warnings: &[IngestWarning]) -> Result<(), StoreError> {
        let mut puts = Vec::new();
        let mut pack = |first: usize, packed: &[String]| -> Result<(), StoreError> {
            let mut item = key(project_pk(&attempt.project), warning_sk(&attempt.warnings_prefix, first as u64));
            item.insert("warnings".to_owned(), s(format!("[{}]", packed.join(","))));
            item.insert("first".to_owned(), n(first));
            item.insert("count".to_owned(), n(packed.len()));
            puts.push(Self::put_request(item)?);
            Ok(())
        };
        let (mut first, mut packed, mut size) = (0, Vec::new(), 0);
        for (index, warning) in warnings.iter().enumerate() {
            let json = to_json(warning)?;
            if !packed.is_empty() && (packed.len() == WARNINGS_PER_ITEM || size + json.len() > WARNING_ITEM_BYTES) {
                pack(first, &packed)?;
                (first, size) = (index, 0);
                packed.clear();
            }
            size += json.len() + 1;
            packed.push(json);
        }
        if !packed.is_empty() {
            pack(first, &packed)?;
        }
        self.batch_write(puts).await
    }

    /// The `FILEID#` item of a stored file, if the project holds it.
    async fn file_entry(&self, project: &str, file_id: &str) -> Result<Option<Item>, StoreError> {
        // Ids that cannot be keys were never stored.
        if file_id.is_empty() || file_id.len() > MAX_ID_BYTES || project.is_empty() || project.len() > MAX_PROJECT_BYTES {
            return Ok(None);
        }
        self.get(&project_pk(project), &file_id_sk(file_id)).await
    }

    /// The warning items holding the `offset`-th to the `last`-th warnings under `prefix`: read from
    /// the one holding `last` back to the one holding `offset`, then put in order.
    async fn warning_items(&self, project: &str, prefix: &str, offset: u64, last: u64) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(project_pk(project)))
            .expression_attribute_values(":from", s(warning_sk(prefix, 0)))
            .expression_attribute_values(":to", s(warning_sk(prefix, last)))
            .scan_index_forward(false)
            .limit(WARNING_ITEMS_PER_QUERY);
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = query.clone().set_exclusive_start_key(start).send().await.map_err(classify)?;
            for item in page.items.unwrap_or_default() {
                let first = number(&item, "first")?;
                items.push(item);
                if u64::try_from(first).map_err(|_| corrupt("warning item `first`"))? <= offset {
                    items.reverse();
                    return Ok(items);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                items.reverse();
                return Ok(items);
            }
        }
    }

    /// Writes one node merged into what is stored, conditionally on the stored revision (or on
    /// there being none); on a refusal it reads the node again and merges anew.
    async fn write_node(&self, attempt: &Attempt, incoming: GraphNode, mut stored: Option<StoredNode>) -> Result<NodeEffect, StoreError> {
        let pk = graph_pk(&attempt.project);
        let mut logged = true;
        for round in 0..CONFLICT_ATTEMPTS {
            let Some(merged) = merge_node(stored.as_ref().map(|stored| &stored.node), &incoming) else { return Ok(NodeEffect::Kept) };
            if !logged {
                self.log(attempt, vec![UndoEntry::for_node(&incoming.id, stored.as_ref())]).await?;
                logged = true;
            }
            let mut put = Put::builder()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("sk", s(node_sk(&merged.id)))
                .item("node", s(to_json(&merged)?))
                .item("kind", s(merged.kind.as_str()))
                .item("rev", n(stored.as_ref().map_or(1, |stored| stored.rev + 1)))
                .item("writer", s(&attempt.file_id));
            put = match &stored {
                None => put.condition_expression("attribute_not_exists(pk)"),
                Some(stored) => put
                    .condition_expression("#rev = :rev")
                    .expression_attribute_names("#rev", "rev")
                    .expression_attribute_values(":rev", n(stored.rev)),
            };
            let index_changes = match &stored {
                None => merged.kind != NodeKind::Column,
                Some(stored) => stored.node.kind != merged.kind,
            };
            let outcome = if index_changes {
                let actions = vec![
                    TransactWriteItem::builder().put(put.build().map_err(internal)?).build(),
                    self.object_index_action(&attempt.project, &merged)?,
                ];
                self.transact_conditional(actions).await?
            } else {
                let put = put.build().map_err(internal)?;
                let written = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(put.item))
                    .set_condition_expression(put.condition_expression)
                    .set_expression_attribute_names(put.expression_attribute_names)
                    .set_expression_attribute_values(put.expression_attribute_values)
                    .send()
                    .await;
                match written {
                    Ok(_) => Outcome::Written,
                    Err(error) if is_conditional_failure(&error) => Outcome::Refused,
                    Err(error) => return Err(classify(error)),
                }
            };
            match outcome {
                Outcome::Written => {
                    // A column's index item, put after the column (a plain put: its kind never
                    // changes, and the undo log deletes it with the column). Put again when a
                    // column is merged, so a column stored before the index existed gains it.
                    if let (NodeKind::Column, Some(sk), false) = (merged.kind, column_sk(&merged.id), index_changes) {
                        self.client
                            .put_item()
                            .table_name(&self.table)
                            .item("pk", s(&pk))
                            .item("sk", s(sk))
                            .send()
                            .await
                            .map_err(classify)?;
                    }
                    return Ok(match stored {
                        None => NodeEffect::Created(merged.kind),
                        Some(stored) => NodeEffect::Changed(stored.node.kind, merged.kind),
                    });
                }
                // Another file wrote this node meanwhile: merge into what it wrote.
                Outcome::Refused => {
                    stored = self.get(&pk, &node_sk(&incoming.id)).await?.as_ref().map(decode_node).transpose()?;
                    logged = false;
                }
                Outcome::Conflict => back_off(round).await,
            }
        }
        Err(StoreError::Unavailable(anyhow!("node {} kept conflicting with other writers", incoming.id)))
    }

    /// Inserts an edge (its `OUT#` item conditionally, then its `IN#` item); `None` when another
    /// file inserted it meanwhile.
    async fn write_edge(&self, attempt: &Attempt, edge: GraphEdge) -> Result<Option<EdgeKind>, StoreError> {
        let pk = graph_pk(&attempt.project);
        let json = to_json(&edge)?;
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s(out_sk(&edge.source, edge.kind, &edge.target)))
            .item("edge", s(&json))
            .item("writer", s(&attempt.file_id))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match written {
            Ok(_) => {}
            Err(error) if is_conditional_failure(&error) => return Ok(None),
            Err(error) => return Err(classify(error)),
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s(in_sk(&edge.source, edge.kind, &edge.target)))
            .item("edge", s(json))
            .item("writer", s(&attempt.file_id))
            .send()
            .await
            .map_err(classify)?;
        Ok(Some(edge.kind))
    }

    /// The one transaction that makes a file count: its record, its guard made complete, the graph
    /// and search counters, and (when they fit) the deletion of its undo log.
    async fn commit(&self, attempt: &Attempt, record: &FileRecord, written: &Written) -> Result<(), StoreError> {
        let project = record.project_id.as_str();
        let sort = format!("{}#{}", sort_time(record.ingested_at.timestamp_millis()), record.id);
        let mut actions = Vec::new();
        let file = Put::builder()
            .table_name(&self.table)
            .item("pk", s(project_pk(project)))
            .item("sk", s(format!("FILE#{sort}")))
            .item("gsi1pk", s(FILES_INDEX_PK))
            .item("gsi1sk", s(&sort))
            .item("file", s(to_json(record)?))
            .item("warnings_total", n(written.warnings))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(internal)?;
        actions.push(TransactWriteItem::builder().put(file).build());
        let guard = Update::builder()
            .table_name(&self.table)
            .key("pk", s(project_pk(project)))
            .key("sk", s(hash_sk(&record.content_hash)))
            .update_expression("SET #state = :complete")
            .condition_expression("#state = :pending AND file_id = :me")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":complete", s("complete"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":me", s(&record.id))
            .build()
            .map_err(internal)?;
        actions.push(TransactWriteItem::builder().update(guard).build());
        let by_id = Put::builder()
            .table_name(&self.table)
            .item("pk", s(project_pk(project)))
            .item("sk", s(file_id_sk(&record.id)))
            .item("filename", s(&record.filename))
            .item("warnings_total", n(written.warnings))
            .item("warnings", s(&attempt.warnings_prefix))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(internal)?;
        actions.push(TransactWriteItem::builder().put(by_id).build());
        let increments = written.delta.counter_increments();
        let mut counters = Update::builder().table_name(&self.table).key("pk", s(COUNTERS_PK)).key("sk", s(GRAPH_COUNTERS_SK));
        let mut expression = Vec::new();
        for (index, (name, by)) in increments.iter().enumerate() {
            counters =
                counters.expression_attribute_names(format!("#c{index}"), name).expression_attribute_values(format!(":c{index}"), n(by));
            expression.push(format!("#c{index} :c{index}"));
        }
        let counters = counters.update_expression(format!("ADD {}", expression.join(", "))).build().map_err(internal)?;
        actions.push(TransactWriteItem::builder().update(counters).build());
        if written.documents > 0 {
            let corpus = Update::builder()
                .table_name(&self.table)
                .key("pk", s(COUNTERS_PK))
                .key("sk", s(search_counters_sk(project)))
                .update_expression("ADD #documents :documents, #tokens :tokens")
                .expression_attribute_names("#documents", "documents")
                .expression_attribute_names("#tokens", "tokens")
                .expression_attribute_values(":documents", n(written.documents))
                .expression_attribute_values(":tokens", n(written.tokens))
                .build()
                .map_err(internal)?;
            actions.push(TransactWriteItem::builder().update(corpus).build());
        }
        let log_items = attempt.log_items.load(std::sync::atomic::Ordering::SeqCst);
        let log_in_transaction = actions.len() + log_items as usize <= 100;
        if log_in_transaction {
            for seq in 0..log_items {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(project_pk(project)))
                    .key("sk", s(format!("{}{seq:05}", undo_prefix(&record.id))))
                    .build()
                    .map_err(internal)?;
                actions.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        for round in 0..CONFLICT_ATTEMPTS {
            let reasons = match self.transact(actions.clone()).await {
                Ok(Ok(())) => {
                    if !log_in_transaction {
                        // Left behind, a committed file's log is inert: nothing ever reads it again.
                        if let Err(error) = self.delete_log(attempt).await {
                            tracing::warn!(file = %record.id, error = %error, "could not delete a committed file's undo log");
                        }
                    }
                    return Ok(());
                }
                Ok(Err(reasons)) => reasons,
                Err(error) => {
                    // The answer may have been lost after the commit happened: the guard says.
                    return match self.get(&project_pk(project), &hash_sk(&record.content_hash)).await {
                        Ok(Some(guard)) if guard.get("state") == Some(&s("complete")) && guard.get("file_id") == Some(&s(&record.id)) => {
                            Ok(())
                        }
                        _ => Err(error),
                    };
                }
            };
            let refused = |index: usize| reasons.get(index).map(String::as_str) == Some("ConditionalCheckFailed");
            if refused(0) {
                return Err(StoreError::Internal(anyhow!(
                    "file {} ingested at {} is already stored in project {project}",
                    record.id,
                    record.ingested_at
                )));
            }
            if refused(1) {
                return Err(StoreError::Unavailable(anyhow!(
                    "the claim on file {}'s content was taken over by a later attempt (this one was presumed dead)",
                    record.id
                )));
            }
            if refused(2) {
                return Err(StoreError::Internal(anyhow!("file id {} is already stored in project {project}", record.id)));
            }
            // A concurrent commit touched the counters: try again.
            back_off(round).await;
        }
        Err(StoreError::Unavailable(anyhow!("committing file {} kept conflicting with other writers", record.id)))
    }

    async fn delete_log(&self, attempt: &Attempt) -> Result<(), StoreError> {
        let pk = project_pk(&attempt.project);
        let log = self.query_all(&pk, Some(&undo_prefix(&attempt.file_id))).await?;
        self.batch_write(log.iter().map(|item| Self::delete_request(key(&pk, text(item, "sk")?))).collect::<Result<_, _>>()?).await
    }

    /// Undoes a failed attempt and releases its claim. If that fails too, the claim stays pending
    /// with the log, and the next attempt at the same content undoes it once the claim is stale.
    async fn abandon(&self, attempt: &Attempt, record: &FileRecord) {
        let undone = async {
            self.undo(&attempt.project, &attempt.file_id, &attempt.entries()).await?;
            self.delete_log(attempt).await?;
            let released = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(project_pk(&record.project_id)))
                .key("sk", s(hash_sk(&record.content_hash)))
                .condition_expression("#state = :pending AND file_id = :me")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":me", s(&record.id))
                .send()
                .await;
            match released {
                Ok(_) => Ok(()),
                // Taken over meanwhile: the claim is someone else's now.
                Err(error) if is_conditional_failure(&error) => Ok(()),
                Err(error) => Err(classify(error)),
            }
        };
        if let Err(error) = undone.await {
            tracing::error!(
                project = %record.project_id,
                file = %record.id,
                error = %error,
                "could not undo a failed file; the next attempt at the same content undoes it once its claim is stale"
            );
        }
    }
}

#[async_trait]
impl LineageStore for DynamoStore {
    async fn graph_counts(&self) -> Result<GraphCounts, StoreError> {
        let item = self.get(COUNTERS_PK, GRAPH_COUNTERS_SK).await?.unwrap_or_default();
        let mut counts = GraphCounts {
            nodes: number(&item, "nodes")?.max(0) as u64,
            edges: number(&item, "edges")?.max(0) as u64,
            files: number(&item, "files")?.max(0) as u64,
            ..Default::default()
        };
        for (name, value) in &item {
            let AttributeValue::N(value) = value else { continue };
            let value = value.parse::<i64>().unwrap_or(0).max(0) as u64;
            if value == 0 {
                continue;
            }
            if let Some(kind) = name.strip_prefix("node:") {
                counts.node_types.insert(kind.to_owned(), value);
            } else if let Some(kind) = name.strip_prefix("edge:") {
                counts.relationship_types.insert(kind.to_owned(), value);
            }
        }
        Ok(counts)
    }

    async fn store_file(&self, file: &FileRecord, graph: FileGraph) -> Result<StoredFile, StoreError> {
        let graph = &graph;
        validate(file, graph)?;
        check_key_sizes(file, graph)?;
        let record = stored_record(file, &GraphDelta::default());
        if let Claim::Duplicate(existing_file_id) = self.claim(&record).await? {
            return Ok(StoredFile::Duplicate { existing_file_id });
        }
        let attempt = Attempt::new(&record);
        let stored = async {
            // Every warning is written; the record lists the first ones.
            let written = self.write_items(&attempt, file, graph).await?;
            let record = stored_record(&record, &written.delta);
            self.commit(&attempt, &record, &written).await?;
            Ok::<_, StoreError>(StoredFile::Stored {
                nodes_created: written.delta.nodes_created,
                edges_created: written.delta.edges_created,
            })
        }
        .await;
        if stored.is_err() {
            self.abandon(&attempt, &record).await;
        }
        stored
    }

    async fn list_files(&self, project: Option<&str>, limit: usize) -> Result<Vec<ListedFile>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let items = match project {
            Some(project) => self.newest_with_prefix(&project_pk(project), "FILE#", limit).await?,
            None => self.newest_in(true, FILES_INDEX_PK, limit).await?,
        };
        items
            .iter()
            .take(limit)
            .map(|item| {
                let record: FileRecord = from_json(item, "file")?;
                // A record stored before every warning was kept has no total: its list is all it has.
                let warnings_total = match item.get("warnings_total") {
                    Some(_) => u64::try_from(number(item, "warnings_total")?).map_err(|_| corrupt("file `warnings_total`"))?,
                    None => record.warnings.len() as u64,
                };
                Ok(ListedFile { record, warnings_total })
            })
            .collect()
    }

    async fn file_warnings(&self, project: &str, file_id: &str, offset: u64, limit: usize) -> Result<Option<WarningPage>, StoreError> {
        let Some(entry) = self.file_entry(project, file_id).await? else { return Ok(None) };
        let filename = text(&entry, "filename")?.to_owned();
        let total = u64::try_from(number(&entry, "warnings_total")?).map_err(|_| corrupt("file `warnings_total`"))?;
        let mut warnings = Vec::new();
        if limit > 0 && offset < total {
            let last = offset.saturating_add(limit as u64 - 1).min(total - 1);
            for item in self.warning_items(project, text(&entry, "warnings")?, offset, last).await? {
                let first = u64::try_from(number(&item, "first")?).map_err(|_| corrupt("warning item `first`"))?;
                let packed: Vec<IngestWarning> = from_json(&item, "warnings")?;
                let skip = offset.saturating_sub(first) as usize;
                let take = (last + 1).saturating_sub(first.max(offset)) as usize;
                warnings.extend(packed.into_iter().skip(skip).take(take));
            }
        }
        Ok(Some(WarningPage { filename, total, warnings }))
    }

    async fn object_index(&self, project: &str) -> Result<Vec<(String, NodeKind)>, StoreError> {
        self.query_all(&graph_pk(project), Some("OBJECT#"))
            .await?
            .iter()
            .map(|item| {
                let id = text(item, "sk")?.strip_prefix("OBJECT#").ok_or_else(|| corrupt("object index key"))?.to_owned();
                let kind = NodeKind::parse(text(item, "kind")?).ok_or_else(|| corrupt("object index kind"))?;
                Ok((id, kind))
            })
            .collect()
    }

    async fn find_columns(&self, project: &str, keys: &[String], prefix: bool, limit: usize) -> Result<Vec<String>, StoreError> {
        let pk = graph_pk(project);
        let mut seen = std::collections::HashSet::new();
        let keys: Vec<String> =
            keys.iter().filter(|key| !key.is_empty() && !key.contains('#') && seen.insert(key.as_str())).cloned().collect();
        // One query per key, several at once, in the keys' order.
        let pages: Vec<(String, Vec<Item>)> = stream::iter(keys)
            .map(|key: String| {
                let pk = &pk;
                async move {
                    let indexed = indexed_key(&key);
                    // An exact key ends at the `#` before the id (unless it was cut).
                    let sk_prefix =
                        if prefix || indexed.len() < key.len() { format!("COLUMN#{indexed}") } else { format!("COLUMN#{key}#") };
                    let items = self.first_with_prefix(pk, &sk_prefix, limit).await?;
                    Ok::<_, StoreError>((key, items))
                }
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut ids = Vec::new();
        for (key, items) in pages {
            for item in items {
                let sk = text(&item, "sk")?;
                let id = sk.strip_prefix("COLUMN#").and_then(|rest| rest.split_once('#')).ok_or_else(|| corrupt("column index key"))?.1;
                let full = crate::lineage::column_part(id).map(crate::lineage::column_key).unwrap_or_default();
                if (prefix && full.starts_with(key.as_str())) || full == key {
                    ids.push(id.to_owned());
                }
            }
        }
        Ok(ids)
    }

    async fn get_nodes(&self, project: &str, ids: &[String]) -> Result<Vec<GraphNode>, StoreError> {
        let pk = graph_pk(project);
        let ids: std::collections::BTreeSet<&String> = ids.iter().collect();
        self.batch_get(ids.into_iter().map(|id| key(&pk, node_sk(id))).collect())
            .await?
            .iter()
            .map(|item| from_json(item, "node"))
            .collect()
    }

    async fn edges_of(&self, project: &str, ids: &[String], direction: Direction) -> Result<Vec<GraphEdge>, StoreError> {
        let pk = graph_pk(project);
        let ids: std::collections::BTreeSet<String> = ids.iter().cloned().collect();
        let pages: Vec<Vec<Item>> = stream::iter(ids)
            .map(|id: String| {
                let prefix = match direction {
                    Direction::Upstream => format!("OUT#{id}|"),
                    Direction::Downstream => format!("IN#{id}|"),
                };
                let pk = &pk;
                async move { self.query_all(pk, Some(&prefix)).await }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        pages.iter().flatten().map(|item| from_json(item, "edge")).collect()
    }

    async fn search_chunks(&self, project: &str, terms: &[String], limit: usize) -> Result<Vec<SearchHit>, StoreError> {
        let terms: std::collections::BTreeSet<String> = terms.iter().filter(|term| !term.is_empty()).cloned().collect();
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let figures = self.get(COUNTERS_PK, &search_counters_sk(project)).await?.unwrap_or_default();
        let corpus =
            search::Corpus { documents: number(&figures, "documents")?.max(0) as u64, tokens: number(&figures, "tokens")?.max(0) as u64 };
        let postings: Vec<Vec<Item>> = stream::iter(terms)
            .map(|term: String| async move { self.query_all(&term_pk(project, &term), None).await })
            .buffer_unordered(CONCURRENCY / 2)
            .try_collect()
            .await?;
        let mut scores = HashMap::<String, f64>::new();
        for term_postings in &postings {
            let containing = term_postings.len() as u64;
            for posting in term_postings {
                let frequency = u32::try_from(number(posting, "tf")?).map_err(|_| corrupt("posting `tf`"))?;
                let length = u32::try_from(number(posting, "dl")?).map_err(|_| corrupt("posting `dl`"))?;
                *scores.entry(text(posting, "sk")?.to_owned()).or_default() += corpus.term_score(frequency, length, containing);
            }
        }
        let mut ranked: Vec<(String, f64)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(limit);
        let mut chunks: HashMap<String, Chunk> = HashMap::new();
        for item in self.batch_get(ranked.iter().map(|(id, _)| key(chunk_pk(project), id)).collect()).await? {
            let chunk: Chunk = from_json(&item, "chunk")?;
            chunks.insert(chunk.id.clone(), chunk);
        }
        // A chunk whose file was undone meanwhile is gone: skipped.
        Ok(ranked.into_iter().filter_map(|(id, score)| chunks.remove(&id).map(|chunk| SearchHit { chunk, score })).collect())
    }
}
