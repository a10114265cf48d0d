//! The conformance suite every store backend passes: the same calls, the same answers.
//!
//! `conformance_suite!(name, factory)` expands to one test per behaviour, where `factory` is an async
//! expression giving a fresh, empty [`Stores`] (and anything that must live as long as it).

use std::time::Duration;

use chrono::{DateTime, Utc};

use std::collections::BTreeMap;

use super::{Admission, ConnectionRecord, Direction, LISTED_WARNINGS, ListedFile, StatsSnapshot, StoreError, Stores, WarningPage};
use crate::activity::{ActivityEvent, EventSource, EventStatus, EventType};
use crate::chat::{Mode, Turn};
use crate::lineage::{
    Chunk, EdgeKind, FileGraph, FileRecord, GraphEdge, GraphNode, IndexedChunk, IngestWarning, NodeKind, StoredFile, search,
};
use crate::realtime::ConnectionId;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn request(seconds: i64, endpoint: &str, status_code: u16) -> ActivityEvent {
    let mut event = ActivityEvent::http_request("GET", endpoint, status_code, 2.0);
    event.timestamp = at(seconds);
    event
}

pub async fn appends_are_idempotent_and_counted_once(stores: &Stores) {
    let events = vec![request(1, "/a", 200), request(2, "/a", 500).with_metadata("error", "internal_error"), request(3, "/b", 404)];
    // The same event twice in one batch is one event.
    let with_repeat = [events.clone(), vec![events[0].clone()]].concat();
    assert_eq!(stores.activity.append_activity(&with_repeat).await.unwrap(), 3);
    // A retried batch, overlapping the first one.
    let retry = vec![events[2].clone(), request(4, "/b", 200)];
    assert_eq!(stores.activity.append_activity(&retry).await.unwrap(), 1);

    let totals = stores.activity.activity_totals().await.unwrap();
    assert_eq!(totals.total_events, 4);
    assert_eq!(totals.total_requests, 4);
    assert_eq!(totals.successful_requests, 2);
    assert_eq!(totals.failed_requests, 2);
    assert_eq!(totals.latency_sum_us, 8_000);
    assert_eq!(totals.endpoints.get("GET /a"), Some(&2));
    assert_eq!(totals.endpoints.get("GET /b"), Some(&2));
    assert_eq!(totals.error_types.get("internal_error"), Some(&1));
    assert_eq!(totals.error_types.get("http_404"), Some(&1));
}

pub async fn recent_activity_is_newest_first_bounded_and_filterable(stores: &Stores) {
    let mut events: Vec<ActivityEvent> = (0..20).map(|n| request(n, "/r", 200)).collect();
    let mut connect = ActivityEvent::new(EventType::WebsocketConnect, EventSource::Websocket, "/ws/dashboard", EventStatus::Success)
        .with_metadata("client_ip", "127.0.0.1");
    connect.timestamp = at(10);
    events.push(connect.clone());
    stores.activity.append_activity(&events).await.unwrap();

    let recent = stores.activity.recent_activity(5, None).await.unwrap();
    assert_eq!(recent.len(), 5);
    assert_eq!(recent[0], events[19]);
    assert!(recent.windows(2).all(|pair| pair[0].timestamp >= pair[1].timestamp));

    let connects = stores.activity.recent_activity(50, Some(EventType::WebsocketConnect)).await.unwrap();
    assert_eq!(connects, vec![connect]);
}

pub async fn counters_stay_right_under_concurrent_writers(stores: &Stores) {
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let activity = stores.activity.clone();
            tokio::spawn(async move {
                for batch in 0..5 {
                    let events: Vec<_> = (0..10).map(|n| request(writer * 100 + batch * 10 + n, "/c", 200)).collect();
                    activity.append_activity(&events).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let stored = stores.activity.recent_activity(1000, None).await.unwrap().len();
    let totals = stores.activity.activity_totals().await.unwrap();
    assert_eq!((stored, totals.total_requests), (400, 400), "every event stored and counted once");
    assert_eq!(totals.endpoints.get("GET /c"), Some(&400));
}

pub async fn an_empty_graph_counts_zero(stores: &Stores) {
    let counts = stores.lineage.graph_counts().await.unwrap();
    assert_eq!((counts.nodes, counts.edges, counts.files), (0, 0, 0));
    assert!(counts.node_types.is_empty() && counts.relationship_types.is_empty());
}

pub async fn snapshots_give_the_latest_and_the_baseline(stores: &Stores) {
    assert_eq!(stores.snapshots.latest_snapshot().await.unwrap(), None);
    assert_eq!(stores.snapshots.baseline_snapshot(at(0)).await.unwrap(), None);
    let snapshot =
        |seconds, nodes| StatsSnapshot { taken_at: at(seconds), total_nodes: nodes, total_edges: 0, files_processed: nodes / 10 };
    for (seconds, nodes) in [(100, 10), (200, 20), (300, 30)] {
        stores.snapshots.save_snapshot(&snapshot(seconds, nodes)).await.unwrap();
    }
    assert_eq!(stores.snapshots.latest_snapshot().await.unwrap(), Some(snapshot(300, 30)));
    assert_eq!(stores.snapshots.baseline_snapshot(at(250)).await.unwrap(), Some(snapshot(200, 20)));
    assert_eq!(stores.snapshots.baseline_snapshot(at(300)).await.unwrap(), Some(snapshot(300, 30)));
    // Nothing that old: the oldest there is.
    assert_eq!(stores.snapshots.baseline_snapshot(at(50)).await.unwrap(), Some(snapshot(100, 10)));
}

fn connection(id: &str, ip: &str) -> ConnectionRecord {
    let now = crate::time::now();
    ConnectionRecord {
        id: ConnectionId::new(id),
        client_ip: ip.to_owned(),
        connected_at: now,
        expires_at: now + chrono::Duration::hours(2),
        acknowledged: false,
    }
}

pub async fn connections_respect_the_per_ip_limit(stores: &Stores) {
    let registry = &stores.connections;
    for n in 0..3 {
        assert_eq!(registry.admit_connection(&connection(&format!("a{n}"), "10.0.0.1"), 3).await.unwrap(), Admission::Admitted);
    }
    assert_eq!(registry.admit_connection(&connection("a3", "10.0.0.1"), 3).await.unwrap(), Admission::TooManyFromIp { limit: 3 });
    assert_eq!(registry.get_connection(&ConnectionId::new("a3")).await.unwrap(), None, "a refused connection leaves nothing");
    assert_eq!(registry.admit_connection(&connection("b0", "10.0.0.2"), 3).await.unwrap(), Admission::Admitted);
    assert!(registry.remove_connection(&ConnectionId::new("a0")).await.unwrap());
    assert!(!registry.remove_connection(&ConnectionId::new("a0")).await.unwrap(), "already gone");
    assert_eq!(registry.admit_connection(&connection("a4", "10.0.0.1"), 3).await.unwrap(), Admission::Admitted);
    assert_eq!(registry.count_connections().await.unwrap(), 4);
}

pub async fn concurrent_admissions_never_exceed_the_limit(stores: &Stores) {
    let attempts: Vec<_> = (0..12)
        .map(|n| {
            let registry = stores.connections.clone();
            tokio::spawn(async move { registry.admit_connection(&connection(&format!("race{n:02}"), "10.9.9.9"), 4).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == Admission::Admitted {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 4, "exactly the limit is admitted, however the admissions interleave");
    assert_eq!(stores.connections.count_connections().await.unwrap(), admitted);
}

pub async fn connections_that_expired_without_a_disconnect_free_their_slots(stores: &Stores) {
    for n in 0..2 {
        let mut stale = connection(&format!("stale-{n}"), "10.7.7.7");
        stale.expires_at = crate::time::now() - chrono::Duration::seconds(1);
        assert_eq!(stores.connections.admit_connection(&stale, 2).await.unwrap(), Admission::Admitted);
    }
    assert_eq!(stores.connections.admit_connection(&connection("fresh", "10.7.7.7"), 2).await.unwrap(), Admission::Admitted);
    assert_eq!(stores.connections.count_connections().await.unwrap(), 1);
}

pub async fn connections_list_page_by_page_and_skip_expired_ones(stores: &Stores) {
    let registry = &stores.connections;
    let mut expected = std::collections::BTreeSet::new();
    for n in 0..25 {
        let id = format!("conn-{n:02}");
        registry.admit_connection(&connection(&id, &format!("10.1.0.{n}")), 10).await.unwrap();
        expected.insert(id);
    }
    let mut expired = connection("conn-expired", "10.1.1.1");
    expired.expires_at = crate::time::now() - chrono::Duration::seconds(5);
    registry.admit_connection(&expired, 10).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = registry.list_connections(cursor, 7).await.unwrap();
        pages += 1;
        seen.extend(page.connections.into_iter().map(|listed| listed.id.as_str().to_owned()));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 100, "pagination terminates");
    }
    assert!(pages >= 4, "25 connections in pages of 7 take several pages");
    assert_eq!(seen.len(), 25, "each connection once");
    assert_eq!(seen.into_iter().collect::<std::collections::BTreeSet<_>>(), expected);
    assert_eq!(registry.count_connections().await.unwrap(), 25);
    assert_eq!(registry.get_connection(&ConnectionId::new("conn-expired")).await.unwrap(), None);
}

pub async fn connection_records_round_trip_and_acknowledge(stores: &Stores) {
    let record = connection("round-trip", "2001:db8::7");
    stores.connections.admit_connection(&record, 10).await.unwrap();
    let stored = stores.connections.get_connection(&record.id).await.unwrap().unwrap();
    assert_eq!(stored.client_ip, "2001:db8::7");
    assert_eq!(stored.connected_at.timestamp_millis(), record.connected_at.timestamp_millis());
    assert_eq!(stored.expires_at.timestamp(), record.expires_at.timestamp());
    assert!(!stored.acknowledged);
    stores.connections.mark_acknowledged(&record.id).await.unwrap();
    assert!(stores.connections.get_connection(&record.id).await.unwrap().unwrap().acknowledged);
    // Marking a connection that is gone is not an error.
    stores.connections.mark_acknowledged(&ConnectionId::new("never-there")).await.unwrap();
}

pub async fn the_store_answers_pings(stores: &Stores) {
    tokio::time::timeout(Duration::from_secs(5), stores.health.ping()).await.expect("ping in time").unwrap();
}

// ---------------------------------------------------------------------------------------------
// The lineage knowledge base.

fn file(project: &str, id: &str, content: &str, seconds: i64) -> FileRecord {
    use sha2::Digest;
    FileRecord {
        id: id.to_owned(),
        project_id: project.to_owned(),
        filename: format!("{id}.sql"),
        content_hash: sha2::Sha256::digest(content.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect(),
        dialect: "ansi".to_owned(),
        size_bytes: content.len() as u64,
        ingested_at: at(seconds),
        statements: 2,
        nodes_created: 0,
        edges_created: 0,
        warnings: Vec::new(),
    }
}

fn object(id: &str, kind: NodeKind, file: &str, line: u32) -> GraphNode {
    let mut node = GraphNode::new(id, kind, id.rsplit('.').next().unwrap_or(id));
    node.file = Some(file.to_owned());
    node.line = Some(line);
    node.properties.insert("definition".to_owned(), format!("CREATE {kind} {id} ...").into());
    node
}

fn external(id: &str) -> GraphNode {
    GraphNode::new(id, NodeKind::External, id)
}

fn column(parent: &str, name: &str, data_type: Option<&str>) -> GraphNode {
    let mut node = GraphNode::new(format!("{parent}#{name}"), NodeKind::Column, name);
    node.parent = Some(parent.to_owned());
    if let Some(data_type) = data_type {
        node.properties.insert("data_type".to_owned(), data_type.into());
    }
    node
}

fn edge(source: &str, kind: EdgeKind, target: &str, line: u32) -> GraphEdge {
    let mut edge = GraphEdge::new(kind, source, target);
    edge.properties.insert("line".to_owned(), line.into());
    edge
}

/// A chunk as ingestion hands it to a store, with its search terms.
fn chunk(file_id: &str, ordinal: u32, text: &str) -> IndexedChunk {
    IndexedChunk::new(Chunk {
        id: format!("{file_id}:{ordinal}"),
        file_id: file_id.to_owned(),
        filename: format!("{file_id}.sql"),
        start_line: ordinal * 10 + 1,
        end_line: ordinal * 10 + 3,
        object: None,
        statement_kind: "SELECT".to_owned(),
        text: text.to_owned(),
    })
}

fn ids_of(nodes: &[GraphNode]) -> Vec<String> {
    nodes.iter().map(|node| node.id.clone()).collect()
}

fn sorted_nodes(mut nodes: Vec<GraphNode>) -> Vec<GraphNode> {
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    nodes
}

fn edge_ids(mut edges: Vec<GraphEdge>) -> Vec<String> {
    edges.sort_by(|a, b| a.id.cmp(&b.id));
    edges.into_iter().map(|edge| edge.id).collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn type_counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), *value)).collect()
}

async fn node(stores: &Stores, project: &str, id: &str) -> Option<GraphNode> {
    stores.lineage.get_nodes(project, &[id.to_owned()]).await.unwrap().into_iter().next()
}

/// A small warehouse file: a table loaded from an external source, its columns, a view on it.
fn warehouse(project: &str, id: &str) -> (FileRecord, FileGraph) {
    let mut record = file(project, id, "CREATE TABLE staging.orders ...; CREATE VIEW gold.sales ...", 0);
    record.warnings.push(IngestWarning { line: 9, message: "unsupported statement skipped".to_owned() });
    let sql = format!("{id}.sql");
    let graph = FileGraph {
        nodes: vec![
            external("raw.orders"),
            object("staging.orders", NodeKind::Table, &sql, 1),
            column("staging.orders", "id", Some("INT")),
            column("staging.orders", "amount", Some("DECIMAL(10,2)")),
            object("gold.sales", NodeKind::View, &sql, 5),
            // Met twice in one file: one node.
            external("raw.orders"),
        ],
        edges: vec![
            edge("staging.orders", EdgeKind::ReadsFrom, "raw.orders", 2),
            edge("staging.orders", EdgeKind::Contains, "staging.orders#id", 1),
            edge("staging.orders", EdgeKind::Contains, "staging.orders#amount", 1),
            edge("gold.sales", EdgeKind::Derives, "staging.orders", 5),
            // Found twice: one edge.
            edge("gold.sales", EdgeKind::Derives, "staging.orders", 6),
        ],
        chunks: vec![
            chunk(id, 0, "CREATE TABLE staging.orders (id INT, amount DECIMAL(10,2))"),
            chunk(id, 1, "CREATE VIEW gold.sales AS SELECT SUM(amount) FROM staging.orders"),
        ],
    };
    (record, graph)
}

pub async fn a_stored_file_reads_back_as_its_graph(stores: &Stores) {
    let (record, graph) = warehouse("p1", "f1");
    let stored = stores.lineage.store_file(&record, graph.clone()).await.unwrap();
    assert_eq!(stored, StoredFile::Stored { nodes_created: 5, edges_created: 4 });

    let mut wanted = ids_of(&graph.nodes);
    wanted.push("no.such.node".to_owned());
    let nodes = sorted_nodes(stores.lineage.get_nodes("p1", &wanted).await.unwrap());
    assert_eq!(nodes, sorted_nodes(graph.nodes[..5].to_vec()), "every node back as given; unknown ids skipped");
    assert!(stores.lineage.get_nodes("p2", &wanted).await.unwrap().is_empty(), "another project holds none of them");

    let upstream = stores.lineage.edges_of("p1", &strings(&["staging.orders"]), Direction::Upstream).await.unwrap();
    assert_eq!(
        edge_ids(upstream.clone()),
        [
            "staging.orders|CONTAINS|staging.orders#amount",
            "staging.orders|CONTAINS|staging.orders#id",
            "staging.orders|READS_FROM|raw.orders"
        ]
    );
    let reads = upstream.iter().find(|edge| edge.kind == EdgeKind::ReadsFrom).unwrap();
    assert_eq!(reads, &graph.edges[0], "an edge reads back with its properties");
    let derives = stores.lineage.edges_of("p1", &strings(&["staging.orders"]), Direction::Downstream).await.unwrap();
    assert_eq!(derives, vec![graph.edges[3].clone()], "the first of a repeated edge is kept");

    let counts = stores.lineage.graph_counts().await.unwrap();
    assert_eq!((counts.nodes, counts.edges, counts.files), (5, 4, 1));
    assert_eq!(counts.node_types, type_counts(&[("Column", 2), ("External", 1), ("Table", 1), ("View", 1)]));
    assert_eq!(counts.relationship_types, type_counts(&[("CONTAINS", 2), ("DERIVES", 1), ("READS_FROM", 1)]));

    let listed = stores.lineage.list_files(Some("p1"), 10).await.unwrap();
    let record = FileRecord { nodes_created: 5, edges_created: 4, ..record };
    assert_eq!(listed, vec![ListedFile { record, warnings_total: 1 }], "the record, with what it created");
}

pub async fn the_same_content_is_stored_once_per_project(stores: &Stores) {
    let (first, graph) = warehouse("p1", "f1");
    stores.lineage.store_file(&first, graph.clone()).await.unwrap();
    let before = stores.lineage.graph_counts().await.unwrap();

    // The same content again, under another id and with a graph that would add a node.
    let mut again = first.clone();
    again.id = "f2".to_owned();
    again.ingested_at = at(60);
    let (_, mut graph_again) = warehouse("p1", "f2");
    graph_again.nodes.push(object("extra.table", NodeKind::Table, "f2.sql", 1));
    let stored = stores.lineage.store_file(&again, graph_again.clone()).await.unwrap();
    assert_eq!(stored, StoredFile::Duplicate { existing_file_id: "f1".to_owned() });
    assert_eq!(stores.lineage.graph_counts().await.unwrap(), before, "a duplicate changes no count");
    assert_eq!(node(stores, "p1", "extra.table").await, None, "a duplicate writes nothing");
    assert_eq!(ids_of_files(stores.lineage.list_files(None, 10).await.unwrap()), ["f1"]);
    assert!(stores.lineage.search_chunks("p1", &strings(&["sales"]), 10).await.unwrap().iter().all(|hit| hit.chunk.file_id == "f1"));

    // The same content in another project is that project's first copy.
    let mut elsewhere = again.clone();
    elsewhere.project_id = "p2".to_owned();
    let stored = stores.lineage.store_file(&elsewhere, graph_again.clone()).await.unwrap();
    assert_eq!(stored, StoredFile::Stored { nodes_created: 6, edges_created: 4 });
    assert_eq!(stores.lineage.graph_counts().await.unwrap().files, 2);
}

fn ids_of_files(files: Vec<ListedFile>) -> Vec<String> {
    files.into_iter().map(|file| file.record.id).collect()
}

pub async fn definitions_replace_external_references_and_the_counts_follow(stores: &Stores) {
    let f1 = FileGraph {
        nodes: vec![object("gold.v", NodeKind::View, "f1.sql", 1), external("raw.orders")],
        edges: vec![edge("gold.v", EdgeKind::Derives, "raw.orders", 1)],
        chunks: vec![],
    };
    stores.lineage.store_file(&file("p1", "f1", "one", 1), f1.clone()).await.unwrap();
    assert_eq!(stores.lineage.graph_counts().await.unwrap().node_types, type_counts(&[("External", 1), ("View", 1)]));

    // raw.orders is now defined; gold.v is only referenced, which changes nothing.
    let definition = object("raw.orders", NodeKind::Table, "f2.sql", 3);
    let f2 = FileGraph {
        nodes: vec![definition.clone(), external("gold.v"), column("raw.orders", "id", Some("INT"))],
        edges: vec![edge("raw.orders", EdgeKind::Contains, "raw.orders#id", 3), edge("gold.v", EdgeKind::Derives, "raw.orders", 9)],
        chunks: vec![],
    };
    let stored = stores.lineage.store_file(&file("p1", "f2", "two", 2), f2.clone()).await.unwrap();
    assert_eq!(stored, StoredFile::Stored { nodes_created: 1, edges_created: 1 }, "only the column and its edge are new");
    assert_eq!(node(stores, "p1", "raw.orders").await, Some(definition), "the definition replaces the external reference");
    assert_eq!(node(stores, "p1", "gold.v").await, Some(f1.nodes[0].clone()), "a reference leaves a definition alone");
    let kept = stores.lineage.edges_of("p1", &strings(&["gold.v"]), Direction::Upstream).await.unwrap();
    assert_eq!(kept, f1.edges, "an edge met again keeps its first properties");
    let counts = stores.lineage.graph_counts().await.unwrap();
    assert_eq!((counts.nodes, counts.edges), (3, 2));
    assert_eq!(counts.node_types, type_counts(&[("Column", 1), ("Table", 1), ("View", 1)]), "the count moved from External to Table");

    // Defined again as a view: the newer definition, its kind changed; the column gains a property.
    let redefinition = object("raw.orders", NodeKind::View, "f3.sql", 7);
    let mut column_again = column("raw.orders", "id", Some("BIGINT"));
    column_again.properties.insert("nullable".to_owned(), false.into());
    let f3 = FileGraph { nodes: vec![redefinition.clone(), column_again], edges: vec![], chunks: vec![] };
    let stored = stores.lineage.store_file(&file("p1", "f3", "three", 3), f3.clone()).await.unwrap();
    assert_eq!(stored, StoredFile::Stored { nodes_created: 0, edges_created: 0 });
    assert_eq!(node(stores, "p1", "raw.orders").await, Some(redefinition));
    let column = node(stores, "p1", "raw.orders#id").await.unwrap();
    assert_eq!(column.properties.get("data_type"), Some(&"INT".into()), "a known property is kept");
    assert_eq!(column.properties.get("nullable"), Some(&false.into()), "a new property is gained");
    let counts = stores.lineage.graph_counts().await.unwrap();
    assert_eq!((counts.nodes, counts.edges, counts.files), (3, 2, 3));
    assert_eq!(counts.node_types, type_counts(&[("Column", 1), ("View", 2)]));
    let mut objects = stores.lineage.object_index("p1").await.unwrap();
    objects.sort();
    assert_eq!(objects, [("gold.v".to_owned(), NodeKind::View), ("raw.orders".to_owned(), NodeKind::View)]);
}

pub async fn edges_are_found_in_both_directions(stores: &Stores) {
    let graph = FileGraph {
        nodes: ["a", "b", "c", "d", "ab"]
            .iter()
            .map(|id| object(id, NodeKind::Table, "f1.sql", 1))
            .chain([column("a", "x", None)])
            .collect(),
        edges: vec![
            edge("a", EdgeKind::ReadsFrom, "b", 1),
            edge("a", EdgeKind::ReadsFrom, "c", 2),
            edge("d", EdgeKind::Derives, "a", 3),
            edge("a", EdgeKind::Contains, "a#x", 4),
            // `ab` starts like `a`: its edges are not `a`'s.
            edge("ab", EdgeKind::ReadsFrom, "b", 5),
            edge("d", EdgeKind::Calls, "ab", 6),
        ],
        chunks: vec![],
    };
    stores.lineage.store_file(&file("p1", "f1", "edges", 1), graph.clone()).await.unwrap();
    let other = FileGraph {
        nodes: vec![],
        edges: vec![edge("a", EdgeKind::ReadsFrom, "z", 1), edge("q", EdgeKind::Derives, "a", 1)],
        chunks: vec![],
    };
    stores.lineage.store_file(&file("p2", "g1", "edges elsewhere", 1), other.clone()).await.unwrap();

    let edges = |ids: &[&str], direction| {
        let ids = strings(ids);
        async move { edge_ids(stores.lineage.edges_of("p1", &ids, direction).await.unwrap()) }
    };
    assert_eq!(edges(&["a"], Direction::Upstream).await, ["a|CONTAINS|a#x", "a|READS_FROM|b", "a|READS_FROM|c"]);
    assert_eq!(edges(&["a"], Direction::Downstream).await, ["d|DERIVES|a"]);
    assert_eq!(edges(&["b", "c"], Direction::Downstream).await, ["ab|READS_FROM|b", "a|READS_FROM|b", "a|READS_FROM|c"]);
    assert_eq!(edges(&["d", "d", "b"], Direction::Upstream).await, ["d|CALLS|ab", "d|DERIVES|a"], "each edge once, however often asked");
    assert_eq!(edges(&["a#x"], Direction::Upstream).await, Vec::<String>::new());
    assert_eq!(edges(&["a#x"], Direction::Downstream).await, ["a|CONTAINS|a#x"]);
    assert_eq!(edges(&[], Direction::Upstream).await, Vec::<String>::new());
}

pub async fn a_walk_reaches_what_walking_edge_by_edge_reaches(stores: &Stores) {
    // raw → staging → gold → report, a fork (staging also from lookup), a cycle (gold ↔ audit), a
    // column with its own flow, and an edge of another project that must not be followed.
    let graph = FileGraph {
        nodes: ["raw", "lookup", "staging", "gold", "audit", "report"]
            .iter()
            .map(|id| object(id, NodeKind::Table, "w.sql", 1))
            .chain([column("gold", "amount", None), column("staging", "amount", None)])
            .collect(),
        edges: vec![
            edge("staging", EdgeKind::ReadsFrom, "raw", 1),
            edge("staging", EdgeKind::ReadsFrom, "lookup", 2),
            edge("gold", EdgeKind::ReadsFrom, "staging", 3),
            edge("report", EdgeKind::ReadsFrom, "gold", 4),
            edge("gold", EdgeKind::ReadsFrom, "audit", 5),
            edge("audit", EdgeKind::ReadsFrom, "gold", 6),
            edge("gold", EdgeKind::Contains, "gold#amount", 7),
            edge("gold#amount", EdgeKind::Derives, "staging#amount", 8),
        ],
        chunks: vec![],
    };
    stores.lineage.store_file(&file("p1", "w1", "walk", 1), graph).await.unwrap();
    let elsewhere = FileGraph { nodes: vec![], edges: vec![edge("raw", EdgeKind::ReadsFrom, "far", 1)], chunks: vec![] };
    stores.lineage.store_file(&file("p2", "w2", "walk elsewhere", 1), elsewhere).await.unwrap();

    fn objects_only(edge: &GraphEdge) -> bool {
        edge.kind != EdgeKind::Derives
    }
    let both = [Direction::Upstream, Direction::Downstream];
    for (start, directions, depth, max_nodes, follows) in [
        ("gold", &both[..], 4, 100, objects_only as fn(&GraphEdge) -> bool),
        ("gold", &both[..], 1, 100, objects_only),
        ("staging", &both[1..], 3, 100, objects_only),
        ("report", &both[..1], 10, 3, objects_only),
        ("gold#amount", &both[..1], 4, 100, |_: &GraphEdge| true),
        ("gold#amount", &both[..1], 4, 100, objects_only),
        ("raw", &both[..], 4, 100, |_: &GraphEdge| true),
        ("nothing", &both[..], 4, 100, |_: &GraphEdge| true),
    ] {
        let walked = stores.lineage.walk("p1", start, directions, depth, max_nodes, follows).await.unwrap();
        let by_edges = crate::lineage::walk::walk(start, directions, depth, max_nodes, |ids, direction| async move {
            let edges = stores.lineage.edges_of("p1", &ids, direction).await?;
            Ok::<_, StoreError>(edges.into_iter().filter(&follows).collect::<Vec<_>>())
        })
        .await
        .unwrap();
        let case = format!("from {start}, {directions:?}, depth {depth}, at most {max_nodes}");
        assert_eq!(walked.nodes, by_edges.nodes, "{case}");
        assert_eq!(edge_ids(walked.edges), edge_ids(by_edges.edges), "{case}");
        assert_eq!(walked.truncated, by_edges.truncated, "{case}");
    }
    // And what that is, for one of them: everything upstream and downstream of gold, once.
    let walked = stores.lineage.walk("p1", "gold", &both, 4, 100, objects_only).await.unwrap();
    assert_eq!(walked.nodes.iter().map(String::as_str).collect::<Vec<_>>(), ["audit", "gold", "lookup", "raw", "report", "staging"]);
    let truncated = stores.lineage.walk("p1", "report", &both[..1], 10, 3, objects_only).await.unwrap();
    assert!(truncated.truncated && truncated.nodes.len() == 3, "{truncated:?}");
    let column = stores.lineage.walk("p1", "gold#amount", &both[..1], 4, 100, |_| true).await.unwrap();
    assert_eq!(edge_ids(column.edges), ["gold#amount|DERIVES|staging#amount"]);
}

pub async fn the_object_index_lists_objects_but_not_columns(stores: &Stores) {
    let graph = FileGraph {
        nodes: vec![
            object("dbo.t", NodeKind::Table, "f1.sql", 1),
            column("dbo.t", "a", Some("INT")),
            object("dbo.v", NodeKind::View, "f1.sql", 2),
            column("dbo.v", "b", None),
            object("dbo.m", NodeKind::MaterializedView, "f1.sql", 3),
            object("dbo.p", NodeKind::FunctionOrProcedure, "f1.sql", 4),
            external("ext.source"),
            // A temporary table's id holds a `#`, yet it is an object.
            object("#staging", NodeKind::Table, "f1.sql", 5),
        ],
        edges: vec![],
        chunks: vec![],
    };
    stores.lineage.store_file(&file("p1", "f1", "objects", 1), graph.clone()).await.unwrap();
    let elsewhere = FileGraph { nodes: vec![object("other.t", NodeKind::Table, "g.sql", 1)], edges: vec![], chunks: vec![] };
    stores.lineage.store_file(&file("p2", "g1", "objects elsewhere", 1), elsewhere.clone()).await.unwrap();

    let mut objects = stores.lineage.object_index("p1").await.unwrap();
    objects.sort();
    let expected = [
        ("#staging", NodeKind::Table),
        ("dbo.m", NodeKind::MaterializedView),
        ("dbo.p", NodeKind::FunctionOrProcedure),
        ("dbo.t", NodeKind::Table),
        ("dbo.v", NodeKind::View),
        ("ext.source", NodeKind::External),
    ];
    assert_eq!(objects, expected.map(|(id, kind)| (id.to_owned(), kind)));
    assert!(stores.lineage.object_index("p3").await.unwrap().is_empty());
}

pub async fn columns_are_found_by_their_key_or_a_prefix_of_it(stores: &Stores) {
    let graph = FileGraph {
        nodes: vec![
            object("gold.dim_customer", NodeKind::Table, "f1.sql", 1),
            column("gold.dim_customer", "customer_tier", Some("TEXT")),
            column("gold.dim_customer", "customer_id", Some("INT")),
            object("staging.customers", NodeKind::View, "f1.sql", 5),
            column("staging.customers", "customer_tier", None),
            column("staging.customers", "customer_tier_code", None),
            // A quoted name with a space, and a temporary table's column.
            column("staging.customers", "order date", None),
            object("#staging", NodeKind::Table, "f1.sql", 9),
            column("#staging", "customertier", None),
            // An object of that name is not a column.
            object("dbo.customer_tier", NodeKind::Table, "f1.sql", 12),
        ],
        edges: vec![],
        chunks: vec![],
    };
    stores.lineage.store_file(&file("p1", "f1", "columns", 1), graph).await.unwrap();
    let elsewhere = FileGraph { nodes: vec![column("other.t", "customer_tier", None)], edges: vec![], chunks: vec![] };
    stores.lineage.store_file(&file("p2", "g1", "columns elsewhere", 1), elsewhere).await.unwrap();
    let find = |keys: &[&str], prefix: bool, limit: usize| {
        let keys = strings(keys);
        async move { stores.lineage.find_columns("p1", &keys, prefix, limit).await.unwrap() }
    };

    let tiers = ["#staging#customertier", "gold.dim_customer#customer_tier", "staging.customers#customer_tier"];
    assert_eq!(find(&["customertier"], false, 10).await, strings(&tiers), "every spelling of the key, in id order, in this project");
    assert_eq!(find(&["customertier"], false, 2).await, strings(&tiers[..2]), "at most `limit` per key");
    assert_eq!(
        find(&["orderdate", "customerid"], false, 10).await,
        strings(&["staging.customers#order date", "gold.dim_customer#customer_id"])
    );
    assert_eq!(
        find(&["customert"], true, 10).await,
        strings(&[&tiers[..], &["staging.customers#customer_tier_code"]].concat()),
        "a prefix: the shortest completions first"
    );
    assert!(find(&["customert"], false, 10).await.is_empty(), "not a prefix unless asked");
    assert!(find(&["", "nothing"], true, 10).await.is_empty());
    assert!(stores.lineage.find_columns("p3", &strings(&["customertier"]), false, 10).await.unwrap().is_empty());
}

pub async fn files_list_newest_first_per_project_and_overall(stores: &Stores) {
    for (project, id, seconds) in [("p1", "a", 10), ("p2", "c", 20), ("p1", "b", 30), ("p2", "d", 40)] {
        let graph = FileGraph { nodes: vec![object(&format!("t.{id}"), NodeKind::Table, "x.sql", 1)], edges: vec![], chunks: vec![] };
        stores.lineage.store_file(&file(project, id, id, seconds), graph.clone()).await.unwrap();
    }
    let list = |project: Option<&'static str>, limit| async move { ids_of_files(stores.lineage.list_files(project, limit).await.unwrap()) };
    assert_eq!(list(Some("p1"), 10).await, ["b", "a"]);
    assert_eq!(list(Some("p2"), 1).await, ["d"]);
    assert_eq!(list(None, 10).await, ["d", "b", "c", "a"]);
    assert_eq!(list(None, 3).await, ["d", "b", "c"]);
    assert_eq!(list(Some("p3"), 10).await, Vec::<String>::new());
    let newest = &stores.lineage.list_files(None, 1).await.unwrap()[0].record;
    assert_eq!((newest.project_id.as_str(), newest.ingested_at, newest.nodes_created), ("p2", at(40), 1));
}

pub async fn search_ranks_by_bm25_and_stays_in_its_project(stores: &Stores) {
    let texts = [
        // Six tokens, "customer" three times.
        "SELECT customer, customer, customer FROM sales",
        // Six tokens, "customer" once.
        "SELECT customer, region, amount FROM sales",
        // Three tokens, "customer" once.
        "SELECT customer FROM s",
        // Seven tokens, "customer" once, as a piece of `DimCustomer`.
        "SELECT key FROM dbo.DimCustomer",
        "INSERT INTO audit_log VALUES (1)",
        "CREATE TABLE inventory (sku INT)",
        "UPDATE pricing SET price = 2",
        "DELETE FROM sessions WHERE expired",
        "CREATE VIEW totals AS SELECT SUM(price) FROM pricing",
        "TRUNCATE TABLE scratch",
        "INSERT INTO warehouse.stock SELECT * FROM inventory",
        "CREATE INDEX by_sku ON inventory (sku)",
        "DROP VIEW legacy_report",
    ];
    let graph =
        FileGraph { nodes: vec![], edges: vec![], chunks: texts.iter().enumerate().map(|(n, text)| chunk("f1", n as u32, text)).collect() };
    stores.lineage.store_file(&file("p1", "f1", "search", 1), graph.clone()).await.unwrap();
    let noise =
        FileGraph { nodes: vec![], edges: vec![], chunks: vec![chunk("g1", 0, "SELECT customer customer customer customer FROM c")] };
    stores.lineage.store_file(&file("p2", "g1", "search elsewhere", 1), noise.clone()).await.unwrap();

    let hits = stores.lineage.search_chunks("p1", &strings(&["customer"]), 10).await.unwrap();
    let ranked: Vec<&str> = hits.iter().map(|hit| hit.chunk.id.as_str()).collect();
    assert_eq!(ranked.len(), 4, "every chunk of the project with the term, and none of another project: {ranked:?}");
    let rank = |id: &str| ranked.iter().position(|hit| *hit == id).unwrap();
    assert!(rank("f1:0") < rank("f1:1"), "more mentions in as long a chunk rank higher: {ranked:?}");
    assert!(rank("f1:2") < rank("f1:1"), "a mention in a shorter chunk ranks higher: {ranked:?}");
    assert!(rank("f1:1") < rank("f1:3"), "a mention in a longer chunk ranks lower: {ranked:?}");
    assert!(hits.iter().all(|hit| hit.score > 0.0), "scores are positive");
    assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score), "best first");
    assert_eq!(hits[rank("f1:3")].chunk, graph.chunks[3].chunk, "a hit carries its whole chunk");

    // Both terms in one chunk beat either alone; the whole identifier finds only itself.
    let hits = stores.lineage.search_chunks("p1", &strings(&["customer", "region"]), 2).await.unwrap();
    assert_eq!(hits.len(), 2, "at most the limit");
    assert_eq!(hits[0].chunk.id, "f1:1");
    let hits = stores.lineage.search_chunks("p1", &search::query_terms("DimCustomer"), 10).await.unwrap();
    assert_eq!(hits[0].chunk.id, "f1:3", "the exact identifier ranks first");
    let hits = stores.lineage.search_chunks("p1", &strings(&["dimcustomer"]), 10).await.unwrap();
    assert_eq!(hits.iter().map(|hit| hit.chunk.id.as_str()).collect::<Vec<_>>(), ["f1:3"]);

    let elsewhere = stores.lineage.search_chunks("p2", &strings(&["customer"]), 10).await.unwrap();
    assert_eq!(elsewhere.iter().map(|hit| hit.chunk.id.as_str()).collect::<Vec<_>>(), ["g1:0"]);
    assert!(stores.lineage.search_chunks("p1", &strings(&["nowhere"]), 10).await.unwrap().is_empty());
    assert!(stores.lineage.search_chunks("p1", &[], 10).await.unwrap().is_empty());
}

pub async fn long_ids_are_stored_and_found(stores: &Stores) {
    // Sort keys hold 1,024 bytes on DynamoDB: an edge between two long ids passes that.
    let (source, target) = (format!("db.{}", "s".repeat(600)), format!("db.{}#{}", "t".repeat(300), "c".repeat(400)));
    let graph = FileGraph {
        nodes: vec![object(&source, NodeKind::Table, "f1.sql", 1), column(&target[..303], &"c".repeat(400), None)],
        edges: vec![edge(&source, EdgeKind::Derives, &target, 1)],
        chunks: vec![],
    };
    let stored = stores.lineage.store_file(&file("p1", "f1", "long", 1), graph.clone()).await.unwrap();
    assert_eq!(stored, StoredFile::Stored { nodes_created: 2, edges_created: 1 });
    assert_eq!(stores.lineage.edges_of("p1", std::slice::from_ref(&source), Direction::Upstream).await.unwrap(), graph.edges);
    assert_eq!(stores.lineage.edges_of("p1", std::slice::from_ref(&target), Direction::Downstream).await.unwrap(), graph.edges);
    // A column of a long name is found by it, and by a start longer than a short key.
    let (whole, start) = ("c".repeat(400), "c".repeat(150));
    assert_eq!(stores.lineage.find_columns("p1", std::slice::from_ref(&whole), false, 5).await.unwrap(), std::slice::from_ref(&target));
    assert_eq!(stores.lineage.find_columns("p1", std::slice::from_ref(&start), true, 5).await.unwrap(), std::slice::from_ref(&target));
    assert!(stores.lineage.find_columns("p1", &[format!("{start}x")], true, 5).await.unwrap().is_empty());
    assert!(stores.lineage.find_columns("p1", std::slice::from_ref(&start), false, 5).await.unwrap().is_empty());
    // Met again: the same edge, not a second one.
    let again = stores.lineage.store_file(&file("p1", "f2", "long again", 2), FileGraph { chunks: vec![], ..graph.clone() }).await.unwrap();
    assert_eq!(again, StoredFile::Stored { nodes_created: 0, edges_created: 0 });
    assert_eq!(stores.lineage.graph_counts().await.unwrap().edges, 1);
}

/// A first file, and a second one that upgrades its external reference, adds nodes, edges and
/// chunks, and collides with it on the file record (same id, same time), so its store fails last.
fn colliding_files() -> ((FileRecord, FileGraph), (FileRecord, FileGraph)) {
    let first = FileGraph {
        nodes: vec![object("gold.v", NodeKind::View, "f1.sql", 1), external("raw.orders")],
        edges: vec![edge("gold.v", EdgeKind::Derives, "raw.orders", 1)],
        chunks: vec![chunk("f1", 0, "CREATE VIEW gold.v AS SELECT * FROM raw.orders")],
    };
    let second = FileGraph {
        nodes: vec![
            object("raw.orders", NodeKind::Table, "f1.sql", 1),
            object("staging.shipments", NodeKind::Table, "f1.sql", 4),
            column("staging.shipments", "carrier", Some("TEXT")),
        ],
        edges: vec![
            edge("staging.shipments", EdgeKind::ReadsFrom, "raw.orders", 5),
            edge("staging.shipments", EdgeKind::Contains, "staging.shipments#carrier", 4),
        ],
        chunks: vec![chunk("f1", 7, "INSERT INTO staging.shipments SELECT carrier FROM raw.orders")],
    };
    ((file("p1", "f1", "first", 100), first), (file("p1", "f1", "second", 100), second))
}

pub async fn a_failed_store_leaves_nothing_behind(stores: &Stores) {
    let ((first, first_graph), (second, second_graph)) = colliding_files();
    stores.lineage.store_file(&first, first_graph.clone()).await.unwrap();
    let counts = stores.lineage.graph_counts().await.unwrap();
    let objects = stores.lineage.object_index("p1").await.unwrap();

    let failed = stores.lineage.store_file(&second, second_graph.clone()).await;
    assert!(failed.is_err(), "a second record under the same key is refused: {failed:?}");
    assert_eq!(stores.lineage.graph_counts().await.unwrap(), counts, "no count of the failed file");
    assert_eq!(node(stores, "p1", "raw.orders").await, Some(external("raw.orders")), "an upgraded node is put back");
    assert_eq!(node(stores, "p1", "staging.shipments").await, None, "a new node is gone");
    assert_eq!(node(stores, "p1", "staging.shipments#carrier").await, None);
    assert!(stores.lineage.edges_of("p1", &strings(&["staging.shipments"]), Direction::Upstream).await.unwrap().is_empty());
    assert_eq!(stores.lineage.edges_of("p1", &strings(&["raw.orders"]), Direction::Downstream).await.unwrap(), first_graph.edges);
    assert_eq!(stores.lineage.object_index("p1").await.unwrap(), objects);
    assert!(stores.lineage.search_chunks("p1", &strings(&["shipments", "carrier"]), 10).await.unwrap().is_empty(), "no chunk");
    assert!(stores.lineage.find_columns("p1", &strings(&["carrier"]), false, 10).await.unwrap().is_empty(), "no column index entry");
    assert_eq!(stores.lineage.list_files(Some("p1"), 10).await.unwrap().len(), 1);

    // Its content is not claimed: stored under its own id, it goes in.
    let mut retried = second.clone();
    retried.id = "f2".to_owned();
    let mut retried_graph = second_graph.clone();
    retried_graph.chunks = vec![chunk("f2", 0, &second_graph.chunks[0].chunk.text)];
    let stored = stores.lineage.store_file(&retried, retried_graph.clone()).await.unwrap();
    assert_eq!(stored, StoredFile::Stored { nodes_created: 2, edges_created: 2 });
    let counts = stores.lineage.graph_counts().await.unwrap();
    assert_eq!((counts.nodes, counts.edges, counts.files), (4, 3, 2));
    assert_eq!(counts.node_types, type_counts(&[("Column", 1), ("Table", 2), ("View", 1)]));
    assert_eq!(stores.lineage.search_chunks("p1", &strings(&["carrier"]), 10).await.unwrap()[0].chunk.id, "f2:0");
}

pub async fn concurrent_stores_of_the_same_content_store_it_once(stores: &Stores) {
    let (_, graph) = warehouse("p1", "f0");
    let attempts: Vec<_> = (0..4)
        .map(|n| {
            let lineage = stores.lineage.clone();
            let (record, mut graph) = (file("p1", &format!("f{n}"), "the same SQL", n), graph.clone());
            graph.chunks = vec![chunk(&record.id, 0, "CREATE TABLE staging.orders (id INT)")];
            tokio::spawn(async move { (record.id.clone(), lineage.store_file(&record, graph.clone()).await.unwrap()) })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    let winners: Vec<&String> =
        outcomes.iter().filter(|(_, stored)| matches!(stored, StoredFile::Stored { .. })).map(|(id, _)| id).collect();
    assert_eq!(winners.len(), 1, "exactly one store wins: {outcomes:?}");
    for (id, stored) in &outcomes {
        if id != winners[0] {
            assert_eq!(stored, &StoredFile::Duplicate { existing_file_id: winners[0].clone() });
        }
    }
    let counts = stores.lineage.graph_counts().await.unwrap();
    assert_eq!((counts.nodes, counts.edges, counts.files), (5, 4, 1));
    assert_eq!(ids_of_files(stores.lineage.list_files(None, 10).await.unwrap()), [winners[0].clone()]);
    assert_eq!(stores.lineage.search_chunks("p1", &strings(&["orders"]), 10).await.unwrap().len(), 1);
}

/// `count` warnings on lines 1, 3, 5, …, each about 300 bytes (as long as the parser makes them), so
/// that they take several DynamoDB items.
fn many_warnings(count: u32, tag: &str) -> Vec<IngestWarning> {
    (0..count)
        .map(|n| IngestWarning {
            line: 2 * n + 1,
            message: format!("statement skipped ({tag} {n}): Expected: an SQL statement, found: FROBNICATE {}", "x".repeat(220)),
        })
        .collect()
}

/// Every warning of a file, pages of `page` at a time.
async fn all_warnings(stores: &Stores, project: &str, file_id: &str, page: usize) -> Vec<IngestWarning> {
    let mut warnings = Vec::new();
    loop {
        let got = stores.lineage.file_warnings(project, file_id, warnings.len() as u64, page).await.unwrap().expect("the file");
        assert!(got.warnings.len() <= page, "at most a page");
        if got.warnings.is_empty() {
            return warnings;
        }
        warnings.extend(got.warnings);
    }
}

pub async fn every_warning_of_a_file_is_kept_and_paged_in_order(stores: &Stores) {
    // More than a page (1,000) and more than a DynamoDB item holds (1,000, or about 200 KB).
    let mut record = file("p1", "f1", "a file nothing can read", 1);
    record.warnings = many_warnings(2_345, "f1");
    let graph = FileGraph { nodes: vec![object("t.kept", NodeKind::Table, "f1.sql", 1)], edges: vec![], chunks: vec![] };
    assert_eq!(stores.lineage.store_file(&record, graph.clone()).await.unwrap(), StoredFile::Stored { nodes_created: 1, edges_created: 0 });

    // The record lists the first ones, and says how many there are.
    let listed = stores.lineage.list_files(Some("p1"), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].warnings_total, 2_345);
    assert_eq!(listed[0].record.warnings, record.warnings[..LISTED_WARNINGS], "the first ones, in order");

    // Every one comes back, in order, whatever the page size.
    assert_eq!(all_warnings(stores, "p1", "f1", 1_000).await, record.warnings, "pages of 1,000");
    assert_eq!(all_warnings(stores, "p1", "f1", 777).await, record.warnings, "pages across items");
    let page = stores.lineage.file_warnings("p1", "f1", 999, 3).await.unwrap().unwrap();
    assert_eq!(page, WarningPage { filename: "f1.sql".to_owned(), total: 2_345, warnings: record.warnings[999..1002].to_vec() });
    let last = stores.lineage.file_warnings("p1", "f1", 2_344, 1_000).await.unwrap().unwrap();
    assert_eq!(last.warnings, record.warnings[2_344..], "the last page is what is left");
    let past = stores.lineage.file_warnings("p1", "f1", 2_345, 10).await.unwrap().unwrap();
    assert_eq!((past.total, past.warnings.len()), (2_345, 0), "past the end: none, and the total");
    assert_eq!(stores.lineage.file_warnings("p1", "f1", u64::MAX, 10).await.unwrap().unwrap().warnings, []);
    assert_eq!(stores.lineage.file_warnings("p2", "f1", 0, 10).await.unwrap(), None, "another project holds no such file");
    assert_eq!(stores.lineage.file_warnings("p1", "nope", 0, 10).await.unwrap(), None);

    // A file without warnings has an empty list.
    let quiet = file("p1", "f0", "a quiet file", 2);
    stores.lineage.store_file(&quiet, FileGraph::default()).await.unwrap();
    let page = stores.lineage.file_warnings("p1", "f0", 0, 100).await.unwrap().unwrap();
    assert_eq!(page, WarningPage { filename: "f0.sql".to_owned(), total: 0, warnings: vec![] });

    // A duplicate stores none of its warnings.
    let mut duplicate = record.clone();
    duplicate.id = "f2".to_owned();
    duplicate.warnings = many_warnings(1_500, "f2");
    let stored = stores.lineage.store_file(&duplicate, FileGraph::default()).await.unwrap();
    assert_eq!(stored, StoredFile::Duplicate { existing_file_id: "f1".to_owned() });
    assert_eq!(stores.lineage.file_warnings("p1", "f2", 0, 10).await.unwrap(), None);

    // A store that fails late (its record collides with f1's) leaves none of its warnings: f1's are
    // still exactly its own.
    let mut colliding = file("p1", "f1", "other content, the same id and time", 1);
    colliding.warnings = many_warnings(1_200, "collision");
    let colliding_graph = FileGraph { nodes: vec![object("t.colliding", NodeKind::Table, "f1.sql", 1)], edges: vec![], chunks: vec![] };
    assert!(stores.lineage.store_file(&colliding, colliding_graph).await.is_err());
    assert_eq!(all_warnings(stores, "p1", "f1", 1_000).await, record.warnings);
    assert_eq!(node(stores, "p1", "t.colliding").await, None);
    // A file refused before anything is written leaves none either.
    let mut refused = file("p1", "f3", "refused", 3);
    refused.warnings = many_warnings(10, "f3");
    let foreign = FileGraph { nodes: vec![], edges: vec![], chunks: vec![chunk("f9", 0, "SELECT 1")] };
    assert!(stores.lineage.store_file(&refused, foreign).await.is_err());
    assert_eq!(stores.lineage.file_warnings("p1", "f3", 0, 10).await.unwrap(), None);

    let totals: Vec<(String, u64)> =
        stores.lineage.list_files(None, 10).await.unwrap().into_iter().map(|file| (file.record.id, file.warnings_total)).collect();
    assert_eq!(totals, [("f0".to_owned(), 0), ("f1".to_owned(), 2_345)]);
}

fn turn(id: &str, seconds: i64, question: &str) -> Turn {
    Turn {
        id: id.to_owned(),
        at: DateTime::from_timestamp(seconds, 0).unwrap(),
        mode: Mode::Deep,
        model: "extractive".to_owned(),
        question: question.to_owned(),
        answer: format!("answer to {question}"),
    }
}

pub async fn chat_sessions_keep_turns_in_order_and_forget_them(stores: &Stores) {
    let chat = &stores.chat;
    let now = crate::time::now().timestamp();
    for (index, question) in ["first", "second", "third"].iter().enumerate() {
        chat.append_turn("s1", &turn(&format!("t{index}"), now - 30 + index as i64, question)).await.unwrap();
    }
    // A retried append is kept once; another session is apart.
    chat.append_turn("s1", &turn("t2", now - 28, "third")).await.unwrap();
    chat.append_turn("s2", &turn("u0", now - 10, "elsewhere")).await.unwrap();

    let questions = |turns: Vec<Turn>| turns.into_iter().map(|turn| turn.question).collect::<Vec<_>>();
    assert_eq!(questions(chat.recent_turns("s1", 10).await.unwrap()), ["first", "second", "third"]);
    assert_eq!(questions(chat.recent_turns("s1", 2).await.unwrap()), ["second", "third"], "the newest, oldest first");
    let back = chat.recent_turns("s1", 1).await.unwrap();
    assert_eq!(back, vec![turn("t2", now - 28, "third")], "a turn reads back whole");
    assert!(chat.recent_turns("nobody", 10).await.unwrap().is_empty());
    // Turns older than the retention are gone (whether pruned or expired).
    chat.append_turn("old", &turn("o0", now - 31 * 24 * 3600, "long ago")).await.unwrap();
    assert!(chat.recent_turns("old", 10).await.unwrap().is_empty());

    assert!(chat.delete_session("s1").await.unwrap());
    assert!(!chat.delete_session("s1").await.unwrap());
    assert!(chat.recent_turns("s1", 10).await.unwrap().is_empty());
    assert_eq!(questions(chat.recent_turns("s2", 10).await.unwrap()), ["elsewhere"]);
}

/// Expands to the whole suite for one backend. The factory gives `Some((stores, guard))`, or
/// `None` when the backend is not available here (the test then says so and passes, unless
/// `TRIBUTARY_REQUIRE_DYNAMODB` is set, as the project's test command does).
macro_rules! conformance_suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let Some((stores, _keep)) = $factory.await else { return };
                        $crate::store::conformance::$name(&stores).await;
                    }
                };
            }

            case!(appends_are_idempotent_and_counted_once);
            case!(recent_activity_is_newest_first_bounded_and_filterable);
            case!(counters_stay_right_under_concurrent_writers);
            case!(an_empty_graph_counts_zero);
            case!(snapshots_give_the_latest_and_the_baseline);
            case!(connections_respect_the_per_ip_limit);
            case!(concurrent_admissions_never_exceed_the_limit);
            case!(connections_that_expired_without_a_disconnect_free_their_slots);
            case!(connections_list_page_by_page_and_skip_expired_ones);
            case!(connection_records_round_trip_and_acknowledge);
            case!(the_store_answers_pings);
            case!(a_stored_file_reads_back_as_its_graph);
            case!(the_same_content_is_stored_once_per_project);
            case!(definitions_replace_external_references_and_the_counts_follow);
            case!(edges_are_found_in_both_directions);
            case!(a_walk_reaches_what_walking_edge_by_edge_reaches);
            case!(the_object_index_lists_objects_but_not_columns);
            case!(columns_are_found_by_their_key_or_a_prefix_of_it);
            case!(files_list_newest_first_per_project_and_overall);
            case!(search_ranks_by_bm25_and_stays_in_its_project);
            case!(a_failed_store_leaves_nothing_behind);
            case!(concurrent_stores_of_the_same_content_store_it_once);
            case!(long_ids_are_stored_and_found);
            case!(every_warning_of_a_file_is_kept_and_paged_in_order);
            case!(chat_sessions_keep_turns_in_order_and_forget_them);
        }
    };
}

async fn fresh_sqlite() -> Option<(Stores, tempfile::TempDir)> {
    let folder = tempfile::tempdir().unwrap();
    let store = super::SqliteStore::open(folder.path().join("conformance.db")).unwrap();
    Some((Stores::sqlite(store), folder))
}

/// A fresh table on the local DynamoDB-compatible server named by `TRIBUTARY_TEST_DYNAMODB_ENDPOINT`.
#[cfg(feature = "cloud")]
async fn fresh_dynamodb() -> Option<(Stores, ())> {
    Some((Stores::dynamodb(fresh_dynamo_store().await?), ()))
}

#[cfg(feature = "cloud")]
async fn fresh_dynamo_store() -> Option<super::DynamoStore> {
    let Ok(endpoint) = std::env::var("TRIBUTARY_TEST_DYNAMODB_ENDPOINT") else {
        assert!(
            std::env::var_os("TRIBUTARY_REQUIRE_DYNAMODB").is_none(),
            "TRIBUTARY_REQUIRE_DYNAMODB is set but TRIBUTARY_TEST_DYNAMODB_ENDPOINT is not: run the tests with scripts/test"
        );
        eprintln!("skipped: no local DynamoDB server (TRIBUTARY_TEST_DYNAMODB_ENDPOINT); scripts/test starts one");
        return None;
    };
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "conformance"))
        .build();
    let table = format!("conformance-{}", uuid::Uuid::new_v4().simple());
    let store = super::DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), table);
    store.create_table_if_missing().await.expect("creating the test table");
    Some(store)
}

conformance_suite!(sqlite, fresh_sqlite());
#[cfg(feature = "cloud")]
conformance_suite!(dynamodb, fresh_dynamodb());

/// Tests of one backend's own failure paths.
mod sqlite_only {
    use super::*;

    /// A chunk id already taken makes the last writes of the transaction fail: nothing of the file stays.
    #[tokio::test]
    async fn a_write_failing_late_in_the_transaction_rolls_back_the_whole_file() {
        let (stores, _folder) = fresh_sqlite().await.unwrap();
        let ((first, first_graph), (mut second, mut second_graph)) = colliding_files();
        stores.lineage.store_file(&first, first_graph.clone()).await.unwrap();
        let counts = stores.lineage.graph_counts().await.unwrap();
        second.id = "f2".to_owned();
        let mut taken = first_graph.chunks[0].clone();
        taken.chunk.file_id = "f2".to_owned();
        second_graph.chunks = vec![chunk("f2", 0, "SELECT carrier FROM raw.orders"), taken];
        let failed = stores.lineage.store_file(&second, second_graph.clone()).await;
        assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
        assert_eq!(stores.lineage.graph_counts().await.unwrap(), counts);
        assert_eq!(node(&stores, "p1", "raw.orders").await, Some(external("raw.orders")));
        assert_eq!(node(&stores, "p1", "staging.shipments").await, None);
        assert_eq!(ids_of_files(stores.lineage.list_files(None, 10).await.unwrap()), ["f1"]);
        assert!(stores.lineage.search_chunks("p1", &strings(&["carrier"]), 10).await.unwrap().is_empty());
    }
}

#[cfg(feature = "cloud")]
mod dynamodb_only {
    use super::*;
    use crate::store::dynamo::lineage::{Attempt, Claim};
    use aws_sdk_dynamodb::types::AttributeValue;

    /// A store that dies between its writes and its commit leaves a pending claim and its items; the
    /// next attempt at the same content, once the claim is stale, undoes them and stores the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crashed_store_is_undone_by_the_next_attempt_at_its_content() {
        let Some(store) = fresh_dynamo_store().await else { return };
        let stores = Stores::dynamodb(store.clone());
        let ((first, first_graph), (mut crashed, mut graph)) = colliding_files();
        stores.lineage.store_file(&first, first_graph.clone()).await.unwrap();
        crashed.id = "f2".to_owned();
        crashed.warnings = many_warnings(1_500, "crashed");
        graph.chunks = vec![chunk("f2", 0, "INSERT INTO staging.shipments SELECT carrier FROM raw.orders")];

        // The crash: everything but the commit, and no undo.
        assert_eq!(store.claim(&crashed).await.unwrap(), Claim::Claimed);
        store.write_items(&Attempt::new(&crashed), &crashed, &graph).await.unwrap();
        assert_eq!(node(&stores, "p1", "raw.orders").await.unwrap().kind, NodeKind::Table, "uncommitted writes are visible");
        let counts = stores.lineage.graph_counts().await.unwrap();
        assert_eq!((counts.nodes, counts.files), (2, 1), "but not counted");

        // Some time later, the claim is stale.
        let stale = crate::time::now().timestamp_millis() - 16 * 60 * 1000;
        store
            .client()
            .update_item()
            .table_name(store.table())
            .key("pk", AttributeValue::S("PROJECT#p1".to_owned()))
            .key("sk", AttributeValue::S(format!("HASH#{}", crashed.content_hash)))
            .update_expression("SET started_at = :stale")
            .expression_attribute_values(":stale", AttributeValue::N(stale.to_string()))
            .send()
            .await
            .unwrap();

        let warning_items = |file_id: &'static str| {
            let store = store.clone();
            async move {
                let items = store
                    .client()
                    .query()
                    .table_name(store.table())
                    .key_condition_expression("pk = :pk AND begins_with(sk, :warnings)")
                    .expression_attribute_values(":pk", AttributeValue::S("PROJECT#p1".to_owned()))
                    .expression_attribute_values(":warnings", AttributeValue::S(format!("WARNINGS#{file_id}#")))
                    .consistent_read(true)
                    .send()
                    .await
                    .unwrap();
                items.count
            }
        };
        assert!(warning_items("f2").await > 1, "the crashed attempt wrote its warnings, packed in a few items");
        assert_eq!(stores.lineage.file_warnings("p1", "f2", 0, 10).await.unwrap(), None, "but they are not a file's");

        let mut retried = crashed.clone();
        retried.id = "f3".to_owned();
        retried.warnings = many_warnings(3, "retried");
        graph.chunks = vec![chunk("f3", 0, &graph.chunks[0].chunk.text)];
        let stored = stores.lineage.store_file(&retried, graph.clone()).await.unwrap();
        assert_eq!(stored, StoredFile::Stored { nodes_created: 2, edges_created: 2 }, "counted as if the crash never happened");
        let counts = stores.lineage.graph_counts().await.unwrap();
        assert_eq!((counts.nodes, counts.edges, counts.files), (4, 3, 2));
        assert_eq!(counts.node_types, type_counts(&[("Column", 1), ("Table", 2), ("View", 1)]), "External moved to Table once");
        let hits = stores.lineage.search_chunks("p1", &strings(&["carrier"]), 10).await.unwrap();
        assert_eq!(hits.iter().map(|hit| hit.chunk.id.as_str()).collect::<Vec<_>>(), ["f3:0"], "the crashed chunk is gone");
        let logs = store
            .client()
            .query()
            .table_name(store.table())
            .key_condition_expression("pk = :pk AND begins_with(sk, :undo)")
            .expression_attribute_values(":pk", AttributeValue::S("PROJECT#p1".to_owned()))
            .expression_attribute_values(":undo", AttributeValue::S("UNDO#".to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        assert_eq!(logs.count, 0, "no undo log is left");
        assert_eq!(warning_items("f2").await, 0, "the crashed attempt's warnings are gone");
        assert_eq!(all_warnings(&stores, "p1", "f3", 100).await, retried.warnings);
        let mut again = crashed.clone();
        again.id = "f4".to_owned();
        let duplicate = stores.lineage.store_file(&again, FileGraph { chunks: vec![], ..graph }).await.unwrap();
        assert_eq!(duplicate, StoredFile::Duplicate { existing_file_id: "f3".to_owned() });
    }
}
