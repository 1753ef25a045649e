//! The `pulse` binary: parses the command line and runs the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use pulse::cli::{Cli, Command, ServeArgs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("pulse=info")),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The error and its causes on one line; a backtrace helps nobody with a bad flag.
            eprintln!("pulse: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
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
    let listener = listen(args.addr).with_context(|| format!("cannot listen on {}", args.addr))?;
    pulse::serve(listener, config, pulse::signal::shutdown()).await?;
    Ok(())
}

/// Clients that arrive in a burst wait in the kernel's accept queue: make it as long as the
/// kernel allows (`net.core.somaxconn` caps it), not the 128 a plain bind asks for.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    const BACKLOG: u32 = 4096;
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
