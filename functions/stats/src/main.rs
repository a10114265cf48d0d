//! `tributary-stats`: scheduled every minute, sends `stats_update` ticks to every connection through `@connections`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tributary_core::cloud::run_stats_function().await
}
