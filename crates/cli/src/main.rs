//! The `switchboard` binary: argument parsing and wiring only. Each command
//! lives in its own module; every error a person can cause ends as one
//! sentence on stderr and exit code 2 (usage, files) or 1 (findings).

mod check;
mod files;
mod fmt;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Switchboard: WhatsApp conversations as cards on department boards.
#[derive(Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check `.flow` workflow files and show every problem at once.
    Check {
        /// Files or folders (default: `workflows/`).
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Print only the diagnostics, not the summary of each pipe.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Rewrite `.flow` files in the one canonical layout.
    Fmt {
        /// Files or folders (default: `workflows/`).
        paths: Vec<PathBuf>,
        /// Only report files that would change (exit 1 if any).
        #[arg(long)]
        check: bool,
    },
}

/// How diagnostics are printed.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    /// rustc-style text with the source line and a caret.
    Human,
    /// One JSON object per diagnostic, one per line.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            paths,
            format,
            quiet,
        } => check::run(&paths, format == Format::Json, quiet),
        Command::Fmt { paths, check } => fmt::run(&paths, check),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
