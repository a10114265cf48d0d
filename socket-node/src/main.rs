//! `tributary-node`: the whole of Tributary in one process, on the embedded store.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tributary_node::run(tributary_node::Cli::parse()).await
}
