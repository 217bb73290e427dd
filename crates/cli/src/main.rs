//! The `switchboard` binary: argument parsing and wiring only. Each command
//! lives in its own module; every error a person can cause ends as one
//! sentence on stderr and exit code 2 (usage, files) or 1 (findings).

mod accounts;
mod check;
mod fmt;
mod serve;
mod simulate;
mod template;
mod test;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: fewer cycles in allocation than glibc's malloc under the
/// server's many small, short-lived, cross-thread allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Play a scripted conversation against a workflow on a virtual clock,
    /// and show what happens to each card and why.
    Simulate {
        /// The workflow: a `.flow` file (or a folder of them).
        file: PathBuf,
        /// The scripted conversation: one JSON event per line, in time order.
        #[arg(long)]
        events: PathBuf,
        /// Print one JSON object `{"cards":[…],"log":[…]}` instead of the timeline.
        #[arg(long)]
        json: bool,
    },
    /// Run the workflow tests (`*.test.jsonl`) kept next to the workflows.
    Test {
        /// Files or folders (default: `workflows/`).
        paths: Vec<PathBuf>,
    },
    /// Run the server: WhatsApp webhook, engine, timers, outbound sender.
    Serve {
        /// Try everything with no Meta account: a fake WhatsApp API in the
        /// same process and demo secrets.
        #[arg(long)]
        demo: bool,
    },
    /// Apply the database migrations (serve also does it at start).
    Migrate,
    /// Manage the people who log in.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens for scripts and integrations.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Share whole workflows between teams as template files.
    #[command(subcommand)]
    Template(TemplateCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a login, or update the one with that e-mail.
    Add {
        /// The e-mail they log in with.
        email: String,
        /// The name shown.
        #[arg(long)]
        name: String,
        /// admin, manager or agent.
        #[arg(long)]
        role: String,
        /// Read the password from stdin (otherwise one is made up and printed).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new API token (the last word) acting with a user's rights.
    Create {
        /// The user's e-mail.
        #[arg(long)]
        user: String,
        /// What the token is for.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Write one self-contained file with a template and those it is built from.
    Export {
        /// The template's name.
        name: String,
        /// Write to this file instead of printing.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Where to look for templates (default: `workflows/`).
        paths: Vec<PathBuf>,
    },
    /// Add a shared template file to `workflows/templates/`.
    Import {
        /// The file another team exported.
        file: PathBuf,
        /// The workflows folder to add it to.
        #[arg(long, default_value = "workflows")]
        into: PathBuf,
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
        Command::Test { paths } => test::run(&paths),
        Command::Simulate { file, events, json } => simulate::run(&file, &events, json),
        Command::Template(TemplateCommand::Export { name, out, paths }) => {
            template::export(&name, out.as_deref(), &paths)
        }
        Command::Template(TemplateCommand::Import { file, into }) => template::import(&file, &into),
        Command::Serve { demo } => serve::serve(demo),
        Command::Migrate => serve::migrate(),
        Command::User(UserCommand::Add {
            email,
            name,
            role,
            password_stdin,
        }) => accounts::add_user(&email, &name, &role, password_stdin),
        Command::Token(TokenCommand::Create { user, name }) => accounts::create_token(&user, &name),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
