//! Helpers shared by the end-to-end tests: running fpgate, reading its
//! reports, and `Project`, the builder of throwaway projects.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The project root (where `rules/` and `corpus/` live).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fpgate` run from the project root, with a hard time limit so a hang
/// fails the test instead of the CI run, and without CI/NO_COLOR leaking in.
pub fn fpgate() -> Command {
    let mut c = Command::cargo_bin("fpgate").expect("binary built");
    c.current_dir(root())
        .timeout(Duration::from_secs(120))
        .env_remove("NO_COLOR")
        .env_remove("GITHUB_ACTIONS")
        .env("FPGATE_CACHE", test_cache());
    c
}

/// One results cache per test process, shared by its tests (which run in
/// parallel, so this also exercises concurrent runs sharing a cache). The
/// caches of test processes that have ended are removed on first use.
pub fn test_cache() -> PathBuf {
    static CLEANED: std::sync::Once = std::sync::Once::new();
    let base = std::env::temp_dir().join("fpgate-test-caches");
    CLEANED.call_once(|| {
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok();
            if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    });
    base.join(std::process::id().to_string())
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("fpgate ran");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn write(path: &Path, content: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

/// (rule identifier, path) pairs of one class of a JSON report.
pub fn pairs(report: &Value, class: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in report["false_positives"][class]
        .as_array()
        .expect("class list")
    {
        for p in f["paths"].as_array().unwrap() {
            out.push((
                f["rule"]["identifier"].as_str().unwrap().to_string(),
                p.as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort();
    out
}

/// Reasons of the unscanned entries, keyed by path suffix.
pub fn unscanned(report: &Value) -> Vec<(String, String)> {
    report["unscanned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["path"].as_str().unwrap().to_string(),
                u["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Run fpgate from `dir` as an unprivileged user when the tests run as root
/// (root reads files whatever their mode, which would hide the case under
/// test). The binary is copied into `dir`, which must be readable by all.
pub fn run_unprivileged(dir: &Path, args: &[&str]) -> Run {
    if unsafe { libc::geteuid() } != 0 {
        return run(fpgate().current_dir(dir).args(args));
    }
    let bin = dir.join("fpgate-test-bin");
    std::fs::copy(assert_cmd::cargo::cargo_bin("fpgate"), &bin).unwrap();
    let mut c = Command::new("setpriv");
    c.current_dir(dir)
        .timeout(Duration::from_secs(60))
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(args);
    run(&mut c)
}

/// Make a path readable (and, for directories, listable) by everyone.
pub fn open_up(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = if path.is_dir() { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Copy the directory tree `from` to `to` (created).
pub fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dst = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// The oracle: a plain sequential yara-x loop over every regular file under
/// `corpus`, with the rule files of the directory `rules` (sorted, one
/// namespace) and the per-file external variables fpgate sets, paths shown
/// relative to `base`. Returns the sorted (rule, path) pairs.
pub fn oracle_pairs(rules: &Path, corpus: &Path, base: &Path) -> Vec<(String, String)> {
    let mut compiler = yara_x::Compiler::new();
    for ext in ["filename", "filepath", "extension"] {
        compiler.define_global(ext, "").unwrap();
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(rules)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        compiler
            .add_source(std::fs::read_to_string(f).unwrap().as_str())
            .unwrap();
    }
    let rules = compiler.build();
    let mut scanner = yara_x::Scanner::new(&rules);
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(corpus).sort_by_file_name() {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(base).unwrap();
        let ext = rel
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy().to_lowercase()))
            .unwrap_or_default();
        scanner
            .set_global("filename", rel.file_name().unwrap().to_str().unwrap())
            .unwrap()
            .set_global("filepath", rel.to_str().unwrap())
            .unwrap()
            .set_global("extension", ext.as_str())
            .unwrap();
        let results = scanner.scan_file(entry.path()).unwrap();
        for rule in results.matching_rules() {
            out.push((rule.identifier().to_string(), rel.display().to_string()));
        }
    }
    out.sort();
    out
}

/// Set every file's mtime an hour back (ctime stays now: racy files are
/// not remembered by the stat cache, so tests wait that out by design).
pub fn age(dir: &Path) {
    let st = std::process::Command::new("find")
        .arg(dir)
        .args([
            "-type",
            "f",
            "-exec",
            "touch",
            "-d",
            "1 hour ago",
            "{}",
            "+",
        ])
        .status()
        .unwrap();
    assert!(st.success());
}

/// A throwaway project: files written under one temporary directory (rule
/// files, a corpus, a config), and fpgate run inside it.
///
/// ```ignore
/// let p = Project::new()
///     .file("rules/r.yar", "rule A { condition: true }")
///     .corpus(&[("a.bin", b"MZ")]);
/// let r = p.run(&["scan", "--no-config", "--rules", "rules", "--corpus", "corpus"]);
/// ```
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Write `data` to `rel` (parent directories made).
    pub fn file(self, rel: &str, data: impl AsRef<[u8]>) -> Project {
        write(&self.dir.path().join(rel), data.as_ref());
        self
    }

    /// Write (or rewrite) `data` to `rel` in a project already built.
    pub fn file_ref(&self, rel: &str, data: impl AsRef<[u8]>) {
        write(&self.dir.path().join(rel), data.as_ref());
    }

    /// Write each `(name, data)` under the directory `dir`.
    pub fn files(mut self, dir: &str, files: &[(&str, &[u8])]) -> Project {
        for (name, data) in files {
            self = self.file(&format!("{dir}/{name}"), data);
        }
        self
    }

    /// Write each `(name, data)` under `corpus/`.
    pub fn corpus(self, files: &[(&str, &[u8])]) -> Project {
        self.files("corpus", files)
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the project.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `fpgate ARGS...`, run in the project directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = fpgate();
        c.current_dir(self.path()).args(args);
        c
    }

    /// Run `fpgate ARGS...` in the project directory.
    pub fn run(&self, args: &[&str]) -> Run {
        run(&mut self.cmd(args))
    }

    /// Run `git ARGS...` in the project directory (which it may make a
    /// repository of); a failure fails the test.
    pub fn git(&self, args: &[&str]) {
        let out = std::process::Command::new("git")
            .current_dir(self.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
