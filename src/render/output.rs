//! Where output goes and how it looks: stdout or an atomically written file,
//! colour and the progress bar decided once, by pure functions.

use crate::error::{Error, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// Colour on stdout: `always` wins, `never` and `NO_COLOR` (any non-empty
/// value) turn it off, `auto` colours only a terminal.
pub fn use_color(choice: ColorChoice, stdout_is_tty: bool, no_color_env: Option<&str>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stdout_is_tty && no_color_env.is_none_or(|v| v.is_empty()),
    }
}

/// The progress bar is for a person watching: stderr must be a terminal and
/// the run must not be in CI (the `CI` variable set to anything).
pub fn show_progress(stderr_is_tty: bool, ci_env: Option<&str>, quiet: bool) -> bool {
    stderr_is_tty && ci_env.is_none() && !quiet
}

/// Write `content` to stdout (`None` or `-`) or to a file. Files are written
/// to a temporary sibling and renamed, so a reader never sees half a report.
/// A closed stdout (`fpgate ... | head`) is not an error.
pub fn write(path: Option<&Path>, content: &[u8]) -> Result<()> {
    match path {
        None => write_stdout(content),
        Some(p) if p.as_os_str() == "-" => write_stdout(content),
        Some(p) => write_file(p, content),
    }
}

/// Append to a file (the GitHub step summary), creating it if needed.
pub fn append(p: &Path, content: &[u8]) -> Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .and_then(|mut f| f.write_all(content))
        .map_err(|e| Error::Output {
            path: p.display().to_string(),
            source: e,
        })
}

fn write_stdout(content: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(content).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Output {
            path: "stdout".into(),
            source: e,
        }),
    }
}

fn write_file(p: &Path, content: &[u8]) -> Result<()> {
    let err = |e| Error::Output {
        path: p.display().to_string(),
        source: e,
    };
    if p.is_dir() {
        return Err(err(std::io::Error::other("is a directory")));
    }
    // A device or FIFO (`/dev/null`, `/dev/stdout`, a pipe) is written in
    // place: renaming a temporary file over it would replace the device.
    if std::fs::metadata(p).is_ok_and(|m| !m.is_file()) {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .and_then(|mut f| f.write_all(content))
            .map_err(err);
    }
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.fpgate-{}.tmp", std::process::id()));
    let res = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(content).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, p));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(err)
}

/// A progress bar on stderr, or a hidden one (see `show_progress`).
pub fn progress_bar(len: u64, quiet: bool) -> ProgressBar {
    bar(
        len,
        quiet,
        "{spinner} scanning [{bar:30}] {pos}/{len} files {per_sec} eta {eta}",
    )
}

/// `corpus fetch`'s progress: artifacts downloaded, the current one's
/// name (on a terminal only, as the scan's).
pub fn fetch_bar(len: u64, quiet: bool) -> ProgressBar {
    let pb = bar(
        len,
        quiet,
        "{spinner} fetching [{bar:30}] {pos}/{len} {wide_msg}",
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

fn bar(len: u64, quiet: bool, template: &str) -> ProgressBar {
    let show = show_progress(
        std::io::stderr().is_terminal(),
        std::env::var("CI").ok().as_deref(),
        quiet,
    );
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_decision() {
        assert!(use_color(ColorChoice::Auto, true, None));
        assert!(!use_color(ColorChoice::Auto, true, Some("1")));
        assert!(use_color(ColorChoice::Auto, true, Some("")));
        assert!(!use_color(ColorChoice::Auto, false, None));
        assert!(use_color(ColorChoice::Always, false, Some("1")));
        assert!(!use_color(ColorChoice::Never, true, None));
    }

    #[test]
    fn progress_decision() {
        assert!(show_progress(true, None, false));
        assert!(!show_progress(true, Some("true"), false));
        assert!(!show_progress(false, None, false));
        assert!(!show_progress(true, None, true));
    }

    #[test]
    fn file_write_is_atomic_and_refuses_directories() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.json");
        write(Some(&p), b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        assert!(write(Some(d.path()), b"x").is_err());
        // Devices are written in place, never replaced.
        write(Some(Path::new("/dev/null")), b"discard").unwrap();
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
        let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }
}
