//! `cairn-correlator` as its own process.
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    cairn_platform::telemetry::init("info");
    let settings = match cairn_platform::Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cairn-correlator: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cairn_correlator::run(settings, cairn_platform::Shutdown::on_os_signals()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cairn-correlator failed");
            ExitCode::FAILURE
        }
    }
}
