//! `tributary-ingest`: SQL ingestion, lineage, files and search, as a Lambda function behind the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary_core::cloud::run_http_function(tributary_core::http::routes::lineage::router()).await
}
