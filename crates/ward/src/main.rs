//! The `ward` binary: parses the command line and runs one command. Errors print
//! as one line on stderr with a non-zero exit status.
#![forbid(unsafe_code)]

mod audit;
mod audit_sinks;
mod backup;
mod bootstrap;
mod cli;
mod commands;
mod config;
mod keys;
mod rules;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: request handling allocates many small,
/// short-lived objects across threads, where glibc's arena locks showed up in
/// profiles (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    ward_server::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
