//! The lineage knowledge base through the API: uploads of the fixture SQL (`tests/fixtures/sql`),
//! exact lineage sets, column lineage, search, files and every warning of a file, the live ingestion
//! events, bad input, and the `tributary` command line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::{Deployment, HostKind, NodeOptions, TestNode};

on_every_host!(
    an_uploaded_warehouse_has_exact_lineage_search_and_files,
    tsql_procedures_and_views_ingested_as_json,
    bad_uploads_get_clear_answers_and_store_nothing,
    every_warning_of_an_upload_is_paged_back_in_order,
    operator_chains_never_bring_the_host_down,
    an_insert_without_columns_fills_a_table_of_an_earlier_upload_by_position,
);

fn fixture_folder(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sql").join(name)
}

/// The fixture files of a folder, sorted, as (name, content).
fn fixture(name: &str) -> Vec<(String, String)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture_folder(name)).unwrap().map(|entry| entry.unwrap().path()).collect();
    paths.sort();
    paths.iter().map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(path).unwrap())).collect()
}

async fn upload(host: &Deployment, files: &[(String, String)], fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form = Form::new();
    for (name, content) in files {
        form = form.part("files", Part::bytes(content.clone().into_bytes()).file_name(name.clone()).mime_str("application/sql").unwrap());
    }
    for (key, value) in fields {
        form = form.text(key.to_string(), value.to_string());
    }
    reqwest::Client::new().post(host.url("/api/v1/files/upload")).multipart(form).send().await.unwrap()
}

async fn get(host: &Deployment, path: &str) -> (StatusCode, Value) {
    let response = reqwest::get(host.url(path)).await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The names of the nodes a lineage walk reaches, the start excluded.
async fn lineage(host: &Deployment, node: &str, direction: &str) -> BTreeSet<String> {
    let encoded = node.replace('#', "%23");
    let (status, graph) = get(host, &format!("/api/v1/lineage/{encoded}?direction={direction}&depth=10")).await;
    assert_eq!(status, StatusCode::OK, "{graph}");
    let root = graph["root"]["id"].as_str().unwrap().to_owned();
    graph["nodes"].as_array().unwrap().iter().map(|node| node["id"].as_str().unwrap().to_owned()).filter(|id| *id != root).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

async fn an_uploaded_warehouse_has_exact_lineage_search_and_files(kind: HostKind) {
    let host = Deployment::start(kind, NodeOptions::default()).await;
    let response = upload(&host, &fixture("warehouse"), &[("project_id", "default"), ("dialect", "auto")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["files_processed"], 3, "{result}");
    assert_eq!(result["files_failed"], 0);
    assert_eq!(result["files_skipped_duplicate"], 0);
    let gold = result["results"].as_array().unwrap().iter().find(|file| file["filename"] == "03_gold.sql").unwrap();
    assert_eq!(gold["status"], "processed");
    assert_eq!(gold["warnings"].as_array().unwrap().len(), 1, "{gold}");
    assert_eq!(gold["warnings"][0]["line"], 29);
    let nodes_created = result["total_nodes_created"].as_u64().unwrap();
    assert!(nodes_created > 10, "{result}");

    // Exact table lineage, both ways, through CTEs, subqueries and views over views.
    assert_eq!(
        lineage(&host, "gold.top_customers", "upstream").await,
        set(&["gold.customer_revenue", "staging.customers", "staging.orders", "raw.customers", "raw.orders"])
    );
    assert_eq!(
        lineage(&host, "raw.orders", "downstream").await,
        set(&["staging.orders", "staging.order_lines", "gold.customer_revenue", "gold.top_customers", "gold.daily_sales"])
    );
    // Names are forgiving: case, quotes, and the schema may be left out when unambiguous.
    assert_eq!(lineage(&host, "\"GOLD\".Daily_Sales", "upstream").await, set(&["staging.orders", "raw.orders"]));
    assert_eq!(lineage(&host, "daily_sales", "upstream").await, set(&["staging.orders", "raw.orders"]));
    // Column lineage for simple projections.
    assert_eq!(
        lineage(&host, "gold.top_customers#customer_name", "upstream").await,
        set(&["gold.customer_revenue#customer_name", "staging.customers#customer_name", "raw.customers#name"])
    );
    let (_, both) = get(&host, "/api/v1/lineage/staging.orders?direction=both&depth=1").await;
    let edges: BTreeSet<(String, String, String)> = both["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            (edge["source"].as_str().unwrap().into(), edge["kind"].as_str().unwrap().into(), edge["target"].as_str().unwrap().into())
        })
        .collect();
    assert!(edges.contains(&("staging.orders".into(), "READS_FROM".into(), "raw.orders".into())), "{edges:?}");
    assert!(edges.contains(&("gold.daily_sales".into(), "DERIVES".into(), "staging.orders".into())), "{edges:?}");
    assert_eq!(both["root"]["kind"], "Table");

    // The counts reflect the graph.
    let (_, graph) = get(&host, "/api/v1/graph/stats").await;
    assert_eq!(graph["nodes"], nodes_created);
    assert_eq!(graph["node_types"]["MaterializedView"], 1);
    // gold.broken's query does not parse: the view is kept, marked recovered (its warning is above).
    assert_eq!(graph["node_types"]["View"], 4);
    let (status, broken) = get(&host, "/api/v1/lineage/gold.broken").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(broken["root"]["properties"]["recovered"], true, "{broken}");
    assert_eq!(graph["node_types"]["Table"], 5, "{graph}");
    assert!(graph["relationship_types"]["REFERENCES"].as_u64().unwrap() >= 2);
    let stats = host.poll_json("/api/v1/stats", |stats| stats["totalNodes"] == nodes_created).await;
    assert_eq!(stats["filesProcessed"], 3);
    assert_eq!(stats["databaseTables"], 5);
    assert_eq!(stats["totalEdges"], graph["edges"]);

    // Search ranks statements, identifier-aware.
    let (status, found) = get(&host, "/api/v1/search?q=customer%20revenue").await;
    assert_eq!(status, StatusCode::OK);
    let first = &found["results"][0];
    assert_eq!(first["filename"], "03_gold.sql", "{found}");
    assert!(first["text"].as_str().unwrap().to_lowercase().contains("customer_revenue"));
    assert!(first["end_line"].as_u64().unwrap() >= first["start_line"].as_u64().unwrap());
    let (_, split) = get(&host, "/api/v1/search?q=unit%20price").await;
    assert!(split["results"].as_array().unwrap().iter().any(|hit| hit["text"].as_str().unwrap().contains("unit_price")), "{split}");
    let (_, nothing) = get(&host, "/api/v1/search?q=zebra").await;
    assert_eq!(nothing["results"], json!([]));

    // Files and their totals.
    let (_, files) = get(&host, "/api/v1/files").await;
    assert_eq!(files["total"], 3);
    let dialects: BTreeSet<&str> = files["files"].as_array().unwrap().iter().map(|file| file["dialect"].as_str().unwrap()).collect();
    assert!(dialects.contains("postgresql"), "{files}");
    let (_, file_stats) = get(&host, "/api/v1/files/stats").await;
    assert_eq!(file_stats["total_files"], 3);
    assert_eq!(file_stats["total_warnings"], 1);
    let bytes: usize = fixture("warehouse").iter().map(|(_, content)| content.len()).sum();
    assert_eq!(file_stats["total_bytes"], bytes);

    // The same content again is a duplicate and changes nothing.
    let again: Value = upload(&host, &fixture("warehouse")[..1], &[]).await.json().await.unwrap();
    assert_eq!(again["files_skipped_duplicate"], 1, "{again}");
    assert_eq!(again["results"][0]["status"], "skipped_duplicate");
    assert_eq!(again["total_nodes_created"], 0);
    let (_, graph_after) = get(&host, "/api/v1/graph/stats").await;
    assert_eq!(graph_after, graph);

    // Projects are separate graphs.
    let other: Value = upload(&host, &fixture("warehouse")[..1], &[("project_id", "other")]).await.json().await.unwrap();
    assert_eq!(other["files_processed"], 1, "{other}");
    let (status, missing) = get(&host, "/api/v1/lineage/gold.top_customers?project_id=other").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}

async fn tsql_procedures_and_views_ingested_as_json(kind: HostKind) {
    let host = Deployment::start(kind, NodeOptions::default()).await;
    let files: Vec<Value> =
        fixture("tsql").into_iter().map(|(filename, content)| json!({"filename": filename, "content": content})).collect();
    let response =
        reqwest::Client::new().post(host.url("/api/v1/ingest")).json(&json!({"dialect": "tsql", "files": files})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["files_processed"], 1, "{result}");
    assert_eq!(result["results"][0]["dialect"], "tsql");
    assert_eq!(result["results"][0]["warnings"], json!([]));
    assert_eq!(lineage(&host, "dbo.vBigOrders", "upstream").await, set(&["dbo.vcustomerorders", "dbo.customers", "dbo.orders"]));
    assert_eq!(lineage(&host, "[dbo].[usp_RefreshSales]", "upstream").await, set(&["dbo.orders", "dbo.usp_logrun"]));
    assert_eq!(
        lineage(&host, "dbo.orders", "downstream").await,
        set(&["dbo.vcustomerorders", "dbo.vbigorders", "dbo.salessummary", "dbo.usp_refreshsales", "dbo.ordersarchive"])
    );
    assert_eq!(lineage(&host, "dbo.CustomerDim", "upstream").await, set(&["dbo.customers"]));
    assert_eq!(lineage(&host, "dbo.vBigOrders#Total", "upstream").await, set(&["dbo.vcustomerorders#total", "dbo.orders#total"]));
    let (_, procedure) = get(&host, "/api/v1/lineage/dbo.usp_refreshsales?direction=upstream&depth=1").await;
    assert_eq!(procedure["root"]["kind"], "FunctionOrProcedure");
    assert!(procedure["root"]["properties"]["definition"].as_str().unwrap().contains("INSERT INTO dbo.SalesSummary"));
}

/// What SSMS's "Generate Scripts" writes, uploaded as a person would (dialect detected): every table
/// is a node, procedures load what they write, keys are there, nothing is a warning. On the node
/// with its embedded store (the parsing is the same on every host; the script's 1,500 items would
/// take the local DynamoDB server past a request's 30 s).
#[tokio::test]
async fn a_generated_ssms_script_is_read_whole() {
    let host = Deployment::start(HostKind::NodeOnSqlite, NodeOptions::default()).await;
    let script = std::fs::read_to_string(fixture_folder("real").join("tsql_ssms_oltp.sql")).unwrap();
    let response = upload(&host, &[("AdventureBikes.sql".to_owned(), script)], &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let result: Value = response.json().await.unwrap();
    let file = &result["results"][0];
    assert_eq!((file["status"].as_str(), file["dialect"].as_str()), (Some("processed"), Some("tsql")), "{result}");
    assert_eq!(file["warnings_total"], 0, "{file}");
    let (_, graph) = get(&host, "/api/v1/graph/stats").await;
    assert!(graph["node_types"]["Table"].as_u64().unwrap() >= 30, "{graph}");
    assert!(graph["node_types"]["FunctionOrProcedure"].as_u64().unwrap() >= 20, "{graph}");
    // A procedure is upstream of the table it loads, with what it reads.
    let upstream = lineage(&host, "sales.invoice", "upstream").await;
    assert!(upstream.contains("sales.usp_generateinvoices") && upstream.contains("sales.rental"), "{upstream:?}");
    let (status, rental) = get(&host, "/api/v1/lineage/Sales.Rental?direction=both&depth=1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(rental["edges"].as_array().unwrap().iter().any(|edge| edge["kind"] == "READS_FROM"), "{rental}");
}

/// `INSERT INTO t SELECT …` without a column list, uploaded after `t` was: its columns are filled in
/// the order `t` declares them (not the order a store happens to list them in).
async fn an_insert_without_columns_fills_a_table_of_an_earlier_upload_by_position(kind: HostKind) {
    let host = Deployment::start(kind, NodeOptions::default()).await;
    let definition = vec![("t.sql".to_owned(), "CREATE TABLE mart.t (zeta INT, beta INT, alpha INT);".to_owned())];
    assert_eq!(upload(&host, &definition, &[("dialect", "generic")]).await.status(), StatusCode::OK);
    let load = vec![("load.sql".to_owned(), "INSERT INTO mart.t SELECT x, y, z FROM raw.s;".to_owned())];
    assert_eq!(upload(&host, &load, &[("dialect", "generic")]).await.status(), StatusCode::OK);
    for (column, source) in [("zeta", "x"), ("beta", "y"), ("alpha", "z")] {
        let upstream = lineage(&host, &format!("mart.t%23{column}"), "upstream").await;
        assert_eq!(upstream, set(&[format!("raw.s#{source}").as_str()]), "{column}");
    }
}

/// Chains of operators `sqlparser` nests as deep as they are long (one of 40,000 `::int` aborted
/// the node): each answered, and the host still healthy.
async fn operator_chains_never_bring_the_host_down(kind: HostKind) {
    let host = Deployment::start(kind, NodeOptions::default()).await;
    let client = reqwest::Client::new();
    for chain in ["::int", " << 1", "->1", " ILIKE 'a'", " XOR 1", " AT TIME ZONE 'UTC'"] {
        let sql = format!("SELECT 1{} FROM t;\nSELECT a FROM u;", chain.repeat(40_000));
        let response = client
            .post(host.url("/api/v1/ingest"))
            .json(&json!({"project_id": "chains", "files": [{"filename": "chain.sql", "content": sql}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{chain}");
        let result: Value = response.json().await.unwrap();
        assert_eq!(result["results"][0]["status"], "processed", "{chain}: {result}");
        let (status, health) = get(&host, "/health").await;
        assert_eq!(status, StatusCode::OK, "{chain}: {health}");
    }
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "{body}");
    assert!(body["detail"].as_str().is_some_and(|detail| !detail.is_empty()), "{body}");
    assert!(body["request_id"].as_str().is_some(), "{body}");
}

async fn bad_uploads_get_clear_answers_and_store_nothing(kind: HostKind) {
    let host =
        Deployment::start(kind, NodeOptions::default().env("INGEST_MAX_FILE_BYTES", 2048).env("INGEST_MAX_REQUEST_BYTES", 8192)).await;
    let good = ("good.sql".to_owned(), "CREATE TABLE t (a INT);".to_owned());
    // Files, form fields, the answer expected.
    type Case<'a> = (Vec<(String, String)>, Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (vec![good.clone()], vec![("dialect", "cobol")], StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
        (vec![good.clone(), ("empty.sql".into(), "  \n\t".into())], vec![], StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
        (
            vec![good.clone(), ("big.sql".into(), format!("-- {}", "x".repeat(3000)))],
            vec![],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (vec![], vec![("project_id", "p")], StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
        (vec![good.clone()], vec![("project_id", "../etc")], StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
    ];
    for (files, fields, status, code) in cases {
        let response = upload(&host, &files, &fields).await;
        assert_eq!(response.status(), status, "{fields:?}");
        assert_error(&response.json().await.unwrap(), code);
    }
    // A binary file.
    let form = Form::new().part("files", Part::bytes(vec![0x89, b'P', b'N', b'G', 0, 0, 0xff]).file_name("logo.png"));
    let response = reqwest::Client::new().post(host.url("/api/v1/files/upload")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("binary"), "{body}");
    // The whole upload over the limit.
    let many: Vec<(String, String)> =
        (0..6).map(|index| (format!("f{index}.sql"), format!("CREATE TABLE t{index} (a INT); -- {}", "y".repeat(1800)))).collect();
    let response = upload(&host, &many, &[]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Not a multipart body, malformed JSON, a wrong JSON shape.
    let client = reqwest::Client::new();
    let response = client
        .post(host.url("/api/v1/files/upload"))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_error(&response.json().await.unwrap(), "malformed_multipart");
    let response =
        client.post(host.url("/api/v1/ingest")).header("content-type", "application/json").body("{\"files\": [").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = client.post(host.url("/api/v1/ingest")).json(&json!({"files": [{"name": "x"}]})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // File names that would forge lines in logs and listings: NUL, CR/LF, other control characters.
    for name in ["a\u{0}.sql", "a.sql\r\nINFO forged line", "tab\tname.sql"] {
        let body = json!({"files": [{"filename": name, "content": "CREATE TABLE t (a INT);"}]});
        let response = client.post(host.url("/api/v1/ingest")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["field"], "files[0].filename", "{body}");
    }
    // Queries out of range, an unknown node with the closest names.
    for path in [
        "/api/v1/search?q=",
        "/api/v1/search?q=a&limit=0",
        "/api/v1/lineage/t?depth=0",
        "/api/v1/lineage/t?direction=sideways",
        "/api/v1/files?limit=5000",
    ] {
        let (status, body) = get(&host, path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
    }
    // Nothing of the refused uploads was kept.
    let (_, graph) = get(&host, "/api/v1/graph/stats").await;
    assert_eq!(graph, json!({"nodes": 0, "edges": 0, "node_types": {}, "relationship_types": {}}));
    let (_, files) = get(&host, "/api/v1/files").await;
    assert_eq!(files["total"], 0);

    upload(&host, &[good], &[]).await;
    let (status, body) = get(&host, "/api/v1/lineage/tt").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["hint"].as_str().unwrap().contains('t'), "{body}");
}

/// `count` statements nothing can read, one a line: a warning on each of lines 1 to `count`.
fn unreadable(count: usize) -> String {
    "FROBNICATE x;\n".repeat(count)
}

/// The lines of a list of warnings.
fn lines_of(warnings: &Value) -> Vec<u64> {
    warnings.as_array().unwrap().iter().map(|warning| warning["line"].as_u64().unwrap()).collect()
}

async fn every_warning_of_an_upload_is_paged_back_in_order(kind: HostKind) {
    let host = Deployment::start(kind, NodeOptions::default()).await;
    let response = upload(&host, &[("frobnicate.sql".to_owned(), unreadable(250))], &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let result: Value = response.json().await.unwrap();
    let file = &result["results"][0];
    assert_eq!(file["status"], "processed", "{result}");
    // The answer stays bounded: the first 100, the total, and where the rest are.
    assert_eq!(lines_of(&file["warnings"]), (1..=100).collect::<Vec<_>>(), "{file}");
    assert!(file["warnings"][0]["message"].as_str().unwrap().starts_with("statement skipped"), "{file}");
    assert_eq!(file["warnings_total"], 250);
    let file_id = file["file_id"].as_str().unwrap();
    let url = file["warnings_url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/api/v1/files/{file_id}/warnings?project_id=default"));

    // The route pages every one back, in line order.
    let mut lines = Vec::new();
    loop {
        let (status, page) = get(&host, &format!("{url}&offset={}&limit=100", lines.len())).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!((page["file_id"].as_str(), page["project_id"].as_str()), (Some(file_id), Some("default")));
        assert_eq!((page["filename"].as_str(), page["total"].as_u64()), (Some("frobnicate.sql"), Some(250)));
        assert_eq!((page["offset"].as_u64(), page["limit"].as_u64()), (Some(lines.len() as u64), Some(100)));
        let got = lines_of(&page["warnings"]);
        if got.is_empty() {
            break;
        }
        assert!(got.len() <= 100);
        lines.extend(got);
    }
    assert_eq!(lines, (1..=250).collect::<Vec<_>>());
    let (_, whole) = get(&host, &format!("{url}&limit=1000")).await;
    assert_eq!(lines_of(&whole["warnings"]), lines, "one page of 1,000 holds them all");
    let (_, default_page) = get(&host, &format!("/api/v1/files/{file_id}/warnings")).await;
    assert_eq!((default_page["offset"].as_u64(), default_page["limit"].as_u64()), (Some(0), Some(100)), "{default_page}");
    assert_eq!(lines_of(&default_page["warnings"]), (1..=100).collect::<Vec<_>>());

    // The listing says the same, and the statistics count every warning.
    let (_, files) = get(&host, "/api/v1/files").await;
    let listed = &files["files"][0];
    assert_eq!((listed["id"].as_str(), listed["warnings_total"].as_u64()), (Some(file_id), Some(250)), "{files}");
    assert_eq!(listed["warnings"].as_array().unwrap().len(), 100);
    assert_eq!(listed["warnings_url"], url.as_str());
    let (_, stats) = get(&host, "/api/v1/files/stats").await;
    assert_eq!(stats["total_warnings"], 250, "{stats}");

    // A file with a few warnings lists them all, with no link.
    let few: Value = upload(&host, &[("few.sql".to_owned(), unreadable(3))], &[]).await.json().await.unwrap();
    assert_eq!((few["results"][0]["warnings_total"].as_u64(), few["results"][0].get("warnings_url")), (Some(3), None), "{few}");

    // An unknown file is a 404 with a hint; bad parameters are 422s naming the field.
    for path in [format!("/api/v1/files/{file_id}/warnings?project_id=other"), "/api/v1/files/no-such-file/warnings".to_owned()] {
        let (status, body) = get(&host, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_error(&body, "not_found");
        assert!(body["hint"].as_str().is_some_and(|hint| hint.contains("/api/v1/files")), "{body}");
    }
    for (query, field) in [("limit=0", "limit"), ("limit=1001", "limit"), ("offset=-1", "offset"), ("project_id=..%2F", "project_id")] {
        let (status, body) = get(&host, &format!("/api/v1/files/{file_id}/warnings?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_error(&body, "validation_error");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let (status, body) = get(&host, "/api/v1/files/not%20an%20id/warnings").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "file_id");
}

#[tokio::test]
async fn dashboards_see_an_upload_progress_and_the_next_stats_show_it() {
    for backend in [false, true] {
        let options = NodeOptions::default().env("STATS_INTERVAL_SECONDS", 1);
        let node = TestNode::start_with(if backend { options.dynamodb(&support::aws::fresh_table()) } else { options }).await;
        let mut dashboard = node.dashboard("/api/v1/ws/dashboard").await;
        let files: Vec<Value> =
            fixture("warehouse").into_iter().map(|(filename, content)| json!({"filename": filename, "content": content})).collect();
        let result: Value = reqwest::Client::new()
            .post(node.url("/api/v1/ingest"))
            .json(&json!({"files": files}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let nodes = result["total_nodes_created"].as_u64().unwrap();

        let started = dashboard.next_of_type("ingestion_started").await;
        assert_eq!(started["data"]["ingestion_id"], result["ingestion_id"]);
        assert_eq!(started["data"]["total_files"], 3);
        let progress = dashboard.next_of_type("ingestion_progress").await;
        assert_eq!(progress["data"]["ingestion_id"], result["ingestion_id"]);
        assert!(progress["data"]["percent"].as_u64().unwrap() <= 100);
        let complete = dashboard.next_of_type("ingestion_complete").await;
        assert_eq!(complete["data"]["files_processed"], 3);
        assert_eq!(complete["data"]["total_nodes_created"], nodes);
        // A tick computed just before the ingestion finished may still be on its way: the one after
        // it shows the new counts.
        let mut stats = dashboard.next_of_type("stats_update").await;
        if stats["data"]["totalNodes"] != nodes {
            stats = dashboard.next_of_type("stats_update").await;
        }
        assert_eq!(stats["data"]["totalNodes"], nodes, "backend dynamodb: {backend}");
        assert_eq!(stats["data"]["filesProcessed"], 3);
        assert_eq!(stats["data"]["databaseTables"], 5);

        // The ingestion is in the activity feed.
        let recent =
            node.poll_json("/api/v1/activity/recent?type=ingestion", |items| items.as_array().is_some_and(|items| !items.is_empty())).await;
        assert!(recent[0]["message"].as_str().unwrap().contains("3 file(s)"), "{recent}");
    }
}

fn cli_binary() -> PathBuf {
    support::node_binary().with_file_name("tributary")
}

#[tokio::test]
async fn the_cli_ingests_folders_into_a_server_or_a_database_file() {
    let node = TestNode::start().await;
    let output = std::process::Command::new(cli_binary())
        .args(["ingest", "--server", &node.url(""), "--project", "cli"])
        .arg(fixture_folder("warehouse"))
        .arg(fixture_folder("tsql"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("4 processed, 0 skipped"), "{stdout}");
    assert!(stdout.contains("warnings: 1") && stdout.contains("03_gold.sql:29"), "{stdout}");
    let graph: Value = reqwest::get(node.url("/api/v1/graph/stats")).await.unwrap().json().await.unwrap();
    let nodes_line = stdout.lines().find(|line| line.trim_start().starts_with("nodes:")).unwrap();
    assert!(nodes_line.contains(&format!("{} new", graph["nodes"])), "{stdout} vs {graph}");

    // A file with more warnings than an answer lists: how many more, and where they all are.
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("unreadable.sql"), unreadable(150)).unwrap();
    let output = std::process::Command::new(cli_binary()).args(["ingest", "--server", &node.url("")]).arg(folder.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("warnings: 150\n"), "{stdout}");
    let shown = stdout.lines().filter(|line| line.contains("unreadable.sql:") && line.contains(": statement skipped")).count();
    assert_eq!(shown, 20, "{stdout}");
    assert!(stdout.contains("unreadable.sql:20: statement skipped") && stdout.contains("… and 130 more"), "{stdout}");
    let link = stdout.lines().find_map(|line| line.trim().strip_prefix("all 150 warnings of ")).unwrap_or_else(|| panic!("{stdout}"));
    let url = link.split(": ").nth(1).unwrap();
    assert!(url.starts_with(&node.url("/api/v1/files/")), "{stdout}");
    let all: Value = reqwest::get(format!("{url}&limit=1000")).await.unwrap().json().await.unwrap();
    assert_eq!(lines_of(&all["warnings"]), (1..=150).collect::<Vec<_>>());

    // Straight into a database file, then served by a node started on it.
    let folder = tempfile::tempdir().unwrap();
    let db = folder.path().join("kb.db");
    let sql = folder.path().join("sql");
    std::fs::create_dir(&sql).unwrap();
    std::fs::write(sql.join("a.sql"), "CREATE TABLE a (x INT); CREATE VIEW v AS SELECT x FROM a;").unwrap();
    std::fs::write(sql.join("empty.sql"), "").unwrap();
    std::fs::write(sql.join("notes.txt"), "not collected").unwrap();
    let output = std::process::Command::new(cli_binary()).args(["ingest", "--db"]).arg(&db).arg(&sql).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "an empty file fails the run: {stdout}");
    assert!(stdout.contains("1 processed") && stdout.contains("empty.sql: empty"), "{stdout}");
    assert!(!stdout.contains("notes.txt"), "{stdout}");
    let served = TestNode::start_with(NodeOptions::default().db(&db)).await;
    let graph: Value = reqwest::get(served.url("/api/v1/lineage/v?direction=upstream")).await.unwrap().json().await.unwrap();
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 2, "{graph}");

    // A server that is not there.
    let output = std::process::Command::new(cli_binary()).args(["ingest", "--server", "http://127.0.0.1:9"]).arg(&sql).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
}
