//! Registry sources through each ecosystem's ordinary client, so a team's
//! own configuration (pip's index and mirror, npm's registry, apt's
//! sources, proxies) applies. None runs any of the package's code: pip
//! fetches one wheel (`--no-deps --only-binary=:all:`, never a source
//! build), npm packs a registry tarball (`--ignore-scripts`), apt-get
//! downloads a .deb without installing it. Each runs in its own empty
//! directory under the store's `tmp/`, with the coordinate checked by the
//! recipe's parser (no value can be read as an option), and is stopped
//! (its whole process group) after ten times the fetch timeout.

use super::{stream_to, Options};
use crate::corpus::recipe::{Source, Wheel};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Download `source` with its client into a fresh directory beside `part`,
/// then hash the one file it yields into `part`.
pub(super) fn to_file(
    source: &Source,
    tmp_dir: &Path,
    part: &Path,
    n: u64,
    opts: &Options,
) -> Result<(String, u64), String> {
    // Absolute: the client runs in it and is told it.
    let work = std::path::absolute(tmp_dir.join(format!("{}-{n}.d", std::process::id())))
        .map_err(|e| format!("{}: {e}", tmp_dir.display()))?;
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = run_client(source, &work, opts).and_then(|()| {
        let file = the_file(source, &work)?;
        let f = crate::corpus::store::open_regular(&file, false)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        stream_to(f, part).map_err(|e| format!("{}: {e}", part.display()))
    });
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run_client(source: &Source, work: &Path, opts: &Options) -> Result<(), String> {
    let mut cmd;
    match source {
        Source::Pypi(w) => {
            cmd =
                Command::new(std::env::var_os("FPGATE_PYTHON").unwrap_or_else(|| "python3".into()));
            cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                .args([
                    "--disable-pip-version-check",
                    "--no-input",
                    "--quiet",
                    "--dest",
                ])
                .arg(work)
                .args(pip_tags(w))
                .arg(format!("{}=={}", w.name, w.version));
        }
        Source::Npm { name, version } => {
            cmd = Command::new("npm");
            cmd.args(["pack", "--ignore-scripts", "--silent", "--pack-destination"])
                .arg(work)
                .arg(format!("{name}@{version}"));
        }
        Source::Deb {
            package,
            arch,
            version,
        } => {
            cmd = Command::new("apt-get");
            let pkg = match arch {
                Some(a) => format!("{package}:{a}={version}"),
                None => format!("{package}={version}"),
            };
            cmd.args(["download", "-q"]).arg(pkg);
        }
        Source::Url(_) => unreachable!("URLs are fetched over HTTP"),
    }
    cmd.current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let client = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {client}: {e} (is it installed?)"))?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = std::io::Read::read_to_end(&mut std::io::Read::take(s, 1 << 20), &mut text);
        }
        text
    });
    let limit = opts.timeout.saturating_mul(10);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Ok(st),
            Ok(None) if started.elapsed() > limit => {
                // SAFETY: signalling the process group this function spawned.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break Err(format!(
                    "{client} ran for more than {}s and was stopped",
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => break Err(format!("{client}: {e}")),
        }
    };
    let text = reader.join().unwrap_or_default();
    let status = status?;
    if status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&text);
    let tail: Vec<&str> = said.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail: Vec<String> = tail[tail.len().saturating_sub(6)..]
        .iter()
        .map(|l| match l.char_indices().nth(300) {
            Some((at, _)) => format!("{} ...", &l[..at]),
            None => l.to_string(),
        })
        .collect();
    let tail = tail.join("\n    ");
    let mut msg = format!("{client} failed ({status})");
    if !tail.is_empty() {
        msg.push_str(&format!(":\n    {tail}"));
    }
    if let Source::Deb { package, .. } = source {
        msg.push_str(&offered_versions(package));
    }
    Err(msg)
}

/// pip's selectors for exactly this wheel's tags.
fn pip_tags(w: &Wheel) -> Vec<String> {
    let mut args = Vec::new();
    for p in w.platform.split('.') {
        args.push("--platform".to_string());
        args.push(p.to_string());
    }
    // `cp311.cp312`: the last (newest) of the interpreters it names.
    let python = w.python.split('.').next_back().unwrap_or(&w.python);
    let (implementation, version) = python.split_at(
        python
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(python.len()),
    );
    // `py3`: any Python 3, so the running interpreter's version (pip reads
    // a lone `3` as 3.0, which no current package accepts).
    // `cp39` (of `cp39-abi3`, "CPython 3.9 and later"): pip would read
    // 3.9.0, which a Requires-Python of `!=3.9.0` excludes; the last patch
    // release of the minor version is what the tag means.
    if version.len() > 1 {
        args.push("--python-version".into());
        args.push(format!("{}.{}.99", &version[..1], &version[1..]));
    }
    if !implementation.is_empty() {
        args.push("--implementation".into());
        args.push(implementation.to_string());
    }
    for abi in w.abi.split('.') {
        args.push("--abi".into());
        args.push(abi.to_string());
    }
    args
}

/// The one file the client left in `work`: the pinned wheel's exact name
/// for pip (pip may choose another file of the same version: refused), the
/// one tarball or .deb otherwise.
fn the_file(source: &Source, work: &Path) -> Result<std::path::PathBuf, String> {
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(work)
        .map_err(|e| format!("{}: {e}", work.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    if let Source::Pypi(w) = source {
        let want = work.join(&w.file);
        if files.contains(&want) {
            return Ok(want);
        }
        let got: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        return Err(format!(
            "pip fetched {} instead of the pinned file {}",
            if got.is_empty() {
                "nothing".to_string()
            } else {
                got.join(", ")
            },
            w.file
        ));
    }
    match files.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("the client exited successfully but left no file".into()),
        _ => Err(format!("the client left {} files, not one", files.len())),
    }
}

/// What the Debian archive offers now for `package` (a pin Debian replaced
/// in a point release fails with this), as a sentence.
fn offered_versions(package: &str) -> String {
    let out = Command::new("apt-cache")
        .args(["madison", package])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let versions: Vec<String> = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split('|').nth(1).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
            .collect(),
        Err(_) => Vec::new(),
    };
    if versions.is_empty() {
        format!("\n    the archive offers no version of {package} now")
    } else {
        format!(
            "\n    the archive offers {package} {} now; re-pin with `fpgate corpus add --replace deb:{package}={}`",
            versions.join(", "),
            versions[0]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_is_asked_for_the_wheels_own_tags() {
        let w = |f: &str| match Source::parse("pypi", f).unwrap() {
            Source::Pypi(w) => w,
            _ => unreachable!(),
        };
        assert_eq!(
            pip_tags(&w("MarkupSafe-3.0.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")).join(" "),
            "--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --python-version 3.12.99 --implementation cp --abi cp312"
        );
        assert_eq!(
            pip_tags(&w("pip-24.3.1-py3-none-any.whl")).join(" "),
            "--platform any --implementation py --abi none"
        );
    }
}
