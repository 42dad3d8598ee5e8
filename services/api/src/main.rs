//! `cairn-api`: the HTTP API as its own process.
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    cairn_platform::telemetry::init("info");
    let settings = match cairn_platform::Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cairn-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cairn_api::run(settings, cairn_platform::Shutdown::on_os_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cairn-api failed");
            ExitCode::FAILURE
        }
    }
}
