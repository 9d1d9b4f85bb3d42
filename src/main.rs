//! The `minify` command: parse flags, run the library, print a paragraph on failure, exit with
//! the documented code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use minify::cli::{exit, exit_code, Cli, Command};
use minify::docker::Bollard;

fn main() -> ExitCode {
    // docker-slim's global flags and refused flags are handled before clap sees the line.
    let argv = match minify::cli::slim::rewrite_args(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(error) => {
            eprintln!("minify: error: {error}");
            return ExitCode::from(exit_code(&error) as u8);
        }
    };
    let cli = Cli::parse_from(argv);
    let filter = if cli.verbose {
        "minify=debug,info"
    } else {
        "minify=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = match run(cli) {
        Ok(code) => code,
        Err(error) => match error.downcast_ref::<minify::Error>() {
            // minify's messages already say their sources' (see `minify::error`).
            Some(error) => {
                eprintln!("minify: error: {}", error.paragraph());
                exit_code(error)
            }
            None => {
                eprintln!("minify: error: {error:#}");
                exit::FAILURE
            }
        },
    };
    ExitCode::from(code as u8)
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Lint(args) => Ok(minify::cli::lint::run(args)?),
        Command::Xray(args) => Ok(minify::cli::xray::run(args)?),
        Command::Report(args) => Ok(minify::cli::xray::run_report(args)?),
        Command::Verify(args) => Ok(runtime.block_on(async {
            minify::run::install_interrupt_handlers()?;
            minify::cli::run_verify(&args).await
        })?),
        Command::Gc => Ok(runtime.block_on(minify::cli::run_gc())?),
        Command::Probes(minify::cli::ProbesCommand::Convert(args)) => {
            print!("{}", minify::cli::run_convert(&args)?);
            Ok(exit::OK)
        }
        Command::Build(args) => {
            // Flags are checked before any daemon or kernel work starts.
            let options = args.validate()?;
            if args.gates.ci {
                args.gates.gates()?;
            }
            let spinner = Spinner::new();
            let report = runtime.block_on(async {
                // Before any daemon or kernel work: a signal from here on ends in cleanup
                // and exit 130.
                minify::run::install_interrupt_handlers()?;
                let docker = Bollard::connect().await?;
                minify::pipeline::build(
                    &docker,
                    &minify::sense::KernelSensors,
                    &options,
                    &|phase| spinner.set(phase),
                )
                .await
            });
            spinner.finish();
            let report = report?;
            eprint!("{}", report.summary());
            eprintln!("report: {}", options.report_path.display());
            if cli.verbose {
                for (phase, ms) in &report.timings.phases {
                    eprintln!("  {phase:<22} {:>8.3}s", *ms as f64 / 1000.0);
                }
            }
            if args.gates.ci {
                return Ok(minify::cli::xray::gate_built_image(
                    &report.result.name,
                    &args.gates,
                    args.surface_gates(&report),
                )?);
            }
            Ok(exit::OK)
        }
    }
}

/// A spinner on stderr when it is a terminal; silent otherwise (CI logs stay clean).
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn new() -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Spinner(Some(bar))
    }

    fn set(&self, phase: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(phase.to_string());
        }
        tracing::debug!(phase, "phase");
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
