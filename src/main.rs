//! The `pulse` binary: parses the command line and runs the library.

use anyhow::Context;
use clap::Parser;
use pulse::cli::{Cli, Command, ServeArgs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("pulse=info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Bench(args)) => pulse::bench::run(args).await,
        Some(Command::BenchWorker(args)) => pulse::bench::workers::worker_main(&args.spec).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Every client is an open file: use all the process may have before deriving the limit.
    pulse::config::raise_open_file_limit();
    let config = args.config().map_err(anyhow::Error::msg).context("invalid flags")?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    pulse::serve(listener, config, pulse::signal::shutdown()).await?;
    Ok(())
}
