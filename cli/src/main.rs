//! `tributary`: the command line (see the library for what each command does).

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = tributary_cli::Cli::parse();
    tributary_core::telemetry::init_for_tool("warn");
    match tributary_cli::run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    }
}
