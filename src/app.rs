//! The entry point: parse the command line, resolve the command's settings,
//! run it, and turn its verdict or its error into the process exit code.
//! The one place exit codes are decided.

use crate::cli::{Cli, Command, CorpusCommand, ExceptionsCommand, OutputArgs};
use crate::commands;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::render::Format;
use crate::settings;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run fpgate with the process's arguments.
pub fn run() -> ExitCode {
    let cli = match parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => exit_code(Exit::Error),
            };
        }
    };
    match dispatch(&cli.command) {
        Ok(exit) => exit_code(exit),
        Err(e) => {
            let (name, json_to) = error_report(&cli.command);
            report_error(name, json_to, &e);
            exit_code(e.exit())
        }
    }
}

/// The command line, with `--version` naming the engine version the
/// verdicts depend on.
fn parse() -> std::result::Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let matches = cli_command().try_get_matches()?;
    Cli::from_arg_matches(&matches)
}

/// The command-line definition, as `--help`, completions and the man page
/// show it.
fn cli_command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().version(version())
}

/// `fpgate 0.1.0 (yara-x 1.22.1)`.
pub fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| format!("{} (yara-x {})", env!("CARGO_PKG_VERSION"), yara_x::VERSION))
}

fn exit_code(e: Exit) -> ExitCode {
    ExitCode::from(e.code() as u8)
}

/// Settings first (every refusal before any file is read), then the command.
fn dispatch(c: &Command) -> Result<Exit> {
    match c {
        Command::Scan(a) => commands::scan::run(&settings::Run::scan(a)?),
        Command::Gate(a) => commands::gate::run(&settings::Run::gate(a)?),
        Command::Check(a) if a.watch => {
            commands::check::watch(a, &|e| report_error("check", None, e))
        }
        Command::Check(a) => commands::check::run(&settings::Run::check(a)?),
        Command::Merge(a) => commands::merge::run(&settings::Merge::of(a)?),
        Command::Corpus(CorpusCommand::Index(a)) => {
            commands::corpus_index::run(&settings::Index::of(a)?)
        }
        Command::Corpus(CorpusCommand::Fetch(a)) => commands::corpus_fetch::run(a),
        Command::Corpus(CorpusCommand::Add(a)) => commands::corpus_add::run(a),
        Command::Exceptions(ExceptionsCommand::Add(a)) => {
            commands::exceptions_add::run(&settings::ExceptionsAdd::of(a)?)
        }
        Command::History(a) => commands::history::run(a),
        Command::Explain(a) => commands::explain::run(a),
        Command::Completions { shell } => commands::docs::completions(*shell, cli_command()),
        Command::Man { command } => commands::docs::man(cli_command(), command.as_deref()),
    }
}

/// The command's name, and where its JSON error report goes (if JSON was
/// asked for).
fn error_report(c: &Command) -> (&'static str, Option<Option<PathBuf>>) {
    match c {
        Command::Scan(a) => ("scan", json_target(&a.common.out)),
        Command::Gate(a) => ("gate", json_target(&a.common.out)),
        Command::Corpus(CorpusCommand::Index(_)) => ("corpus index", None),
        Command::Corpus(CorpusCommand::Fetch(_)) => ("corpus fetch", None),
        Command::Corpus(CorpusCommand::Add(_)) => ("corpus add", None),
        Command::Exceptions(_) => ("exceptions add", None),
        Command::Check(a) => ("check", json_target(&a.common.out)),
        Command::Merge(a) => ("merge", json_target(&a.out)),
        Command::History(_) => ("history", None),
        Command::Explain(a) => ("explain", json_target(&a.common.out)),
        Command::Completions { .. } => ("completions", None),
        Command::Man { .. } => ("man", None),
    }
}

/// Where a JSON error report goes, if JSON was asked for.
fn json_target(c: &OutputArgs) -> Option<Option<PathBuf>> {
    if c.format == Some(Format::Json) {
        return Some(c.output.clone());
    }
    c.reports
        .iter()
        .find(|t| t.format == Format::Json)
        .map(|t| t.path.clone())
}

/// An error ends the run without a verdict: say so on stderr, and when the
/// user asked for JSON, write a JSON error report so CI still has a file.
/// It carries the error's kind and facts (`error`) besides the message.
fn report_error(command: &str, json_to: Option<Option<PathBuf>>, e: &Error) {
    let diagnostics: Vec<crate::diagnostic::Diagnostic> = match e {
        Error::Compile {
            errors, warnings, ..
        } => {
            crate::render::emit::print_diagnostics(warnings);
            crate::render::emit::print_diagnostics(errors);
            errors.iter().chain(warnings.iter()).cloned().collect()
        }
        _ => Vec::new(),
    };
    eprintln!(
        "fpgate: error: {}",
        crate::util::escape::term_multiline(&e.to_string())
    );
    let Some(out) = json_to else { return };
    let v = serde_json::json!({
        "schema_version": crate::verdict::report::SCHEMA_VERSION,
        "tool": crate::verdict::report::Tool::current(),
        "command": command,
        "verdict": {
            "result": "error",
            "exit_code": e.exit().code(),
            "message": e.to_string(),
        },
        "error": e.to_json(),
        "diagnostics": diagnostics,
    });
    let mut s = serde_json::to_string_pretty(&v).expect("error report serialises");
    s.push('\n');
    if let Err(w) = crate::render::output::write(out.as_deref(), s.as_bytes()) {
        eprintln!("fpgate: error: {w}");
    }
}
