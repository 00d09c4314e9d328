//! The `paved` binary: parse arguments, run a command, turn the outcome into
//! an exit code (PRODUCT.md section 8). Everything else lives in libraries.

mod check;
mod cli;
mod config_file;
mod explain;
mod report;
mod serve;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use paved_core::eval::Engine;
use paved_core::profile::Mode;

use cli::{CheckArgs, Cli, Color, Command, FailOn};

// Loading builds many small nodes and frees them soon after: mimalloc is
// markedly faster than the system allocator at that (see bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes: 0 clean, 1 a Deny finding (or Warn with `--fail-on warn`), 2 bad input or configuration.
const EXIT_FINDINGS: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run(cli: Cli) -> miette::Result<u8> {
    let cwd = std::env::current_dir().map_err(|e| miette::miette!("cannot read the working directory: {e}"))?;
    let (config, config_path) = config_file::load(cli.global.config.as_deref(), &cwd)?;
    if let Command::Serve(args) = &cli.command {
        return serve::run(args, &cli.global, config_path);
    }
    let engine = Engine::new(&config, cli.global.profile.as_deref(), Mode::Enforce)
        .map_err(|e| miette::miette!(code = "paved::config", "{e}"))?;
    let stdout = std::io::stdout();
    match cli.command {
        Command::Check(args) => check(&args, &cli.global, &engine),
        Command::Policies => {
            let mut out = stdout.lock();
            explain::policies(&mut out, &engine, cli.global.format).map_err(io_error)?;
            Ok(0)
        }
        Command::Explain { policy } => {
            let mut out = stdout.lock();
            match explain::explain(&mut out, &engine, &policy).map_err(io_error)? {
                true => Ok(0),
                false => Err(miette::miette!(
                    code = "paved::unknown-policy",
                    help = "`paved policies` lists every policy",
                    "no policy {policy:?}"
                )),
            }
        }
        Command::Serve(_) => unreachable!("handled above"),
    }
}

fn io_error(e: std::io::Error) -> miette::Report {
    miette::miette!("cannot write output: {e}")
}

/// Standard output as a plain file: `Stdout` is line-buffered, which scans all
/// output for newlines again; reports are already written in large blocks.
fn stdout_file() -> Box<dyn Write> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}

fn check(args: &CheckArgs, global: &cli::Global, engine: &Engine) -> miette::Result<u8> {
    let limits = paved_yaml::Limits::default();
    let (inputs, missing) = check::inputs(&args.paths);
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let out = std::io::BufWriter::with_capacity(64 * 1024, stdout_file());
    let options = report::TextOptions { color, verbose: global.verbose > 0 };
    let mut reporter = report::reporter(global.format, Box::new(out), options);
    let mut summary = check::Summary::default();
    let now = paved_core::Timestamp::now();
    let written = (|| {
        for m in &missing {
            summary.add(m);
            reporter.file(m)?;
        }
        check::run(&inputs, engine, &limits, now, reporter.as_mut(), &mut summary)?;
        reporter.finish(&summary)
    })();
    match written {
        // The reader went away (`paved check | head`): stop quietly, as ripgrep does.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
        Err(e) => return Err(io_error(e)),
        Ok(()) => {}
    }
    drop(reporter);
    Ok(if summary.problems > 0 {
        EXIT_BAD_INPUT
    } else if summary.deny > 0 || (args.fail_on == FailOn::Warn && summary.warn > 0) {
        EXIT_FINDINGS
    } else {
        0
    })
}
