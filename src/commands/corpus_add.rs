//! `fpgate corpus add SOURCE`: fetch once, pin what came, append the entry.

use crate::cli::AddArgs;
use crate::corpus::recipe::{self, Artifact, Source};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::settings::recipe::RecipeCommand;

pub fn run(a: &AddArgs) -> Result<Exit> {
    let s = RecipeCommand::of(&a.recipe)?;
    let source = Source::of_argument(&a.source).map_err(Error::usage)?;
    let critical = match a.tier.as_deref() {
        None | Some("standard") => false,
        Some("critical") => true,
        Some(t) => {
            return Err(Error::usage(format!(
                "--tier {t:?}: a tier is critical or standard"
            )))
        }
    };
    let text = match std::fs::read_to_string(&s.path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::input(
                "recipe",
                s.path.display(),
                format!("cannot read {}: {e}", s.path.display()),
            ))
        }
    };
    let current = match &text {
        Some(t) => recipe::parse(t, &s.path)?,
        None => recipe::Recipe::default(),
    };
    let name = a.name.clone().unwrap_or_else(|| source.file_name());
    let existing = current.artifacts.iter().position(|x| x.name == name);
    if let (Some(i), false) = (existing, a.replace) {
        return Err(Error::usage(format!(
            "{}:{}: an artifact named {name:?} is already in the recipe; give --replace to re-pin it, or --name for another name",
            s.path.display(),
            current.artifacts[i].line
        )));
    }
    let mut artifact = Artifact {
        name: name.clone(),
        sha256: String::new(),
        source,
        critical,
        license: a.license.clone(),
        note: a.note.clone(),
        line: 0,
    };
    let opts = crate::fetch::Options {
        jobs: 1,
        timeout: s.timeout,
        offline: false,
    };
    let held = s.store.lock()?;
    let (sha, size, _) = crate::fetch::download(
        &crate::fetch::agent(&opts),
        &artifact,
        None,
        &s.store,
        &opts,
        &std::sync::atomic::AtomicU64::new(0),
    )
    .map_err(|m| {
        Error::input(
            "recipe",
            s.path.display(),
            format!("{}: {m}", artifact.source.spelled()),
        )
    })?;
    drop(held);
    artifact.sha256 = sha.clone();
    let with_name = name != artifact.source.file_name();
    let mut new_text = match (&text, existing) {
        (Some(t), Some(i)) => without_entry(t, current.artifacts[i].line).ok_or_else(|| {
            Error::usage(format!(
                "{}:{}: --replace edits [[artifact]] tables only; edit this entry by hand",
                s.path.display(),
                current.artifacts[i].line
            ))
        })?,
        (Some(t), None) => t.clone(),
        (None, _) => "# The clean corpus as code: `fpgate corpus fetch` downloads each artifact\n# into the corpus store and verifies it against its sha256 before use.\n".to_string(),
    };
    if !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    new_text.push('\n');
    new_text.push_str(&recipe::entry_text(&artifact, with_name));
    // What is written must parse back, with this entry in it.
    let check = recipe::parse(&new_text, &s.path)?;
    if !check
        .artifacts
        .iter()
        .any(|x| x.name == name && x.sha256 == sha)
    {
        return Err(Error::internal("the appended entry did not parse back"));
    }
    crate::render::output::write(Some(&s.path), new_text.as_bytes())?;
    let was = existing.map(|i| current.artifacts[i].sha256.as_str());
    let what = match was {
        Some(old) if old == sha => "re-pinned (unchanged)".to_string(),
        Some(old) => format!("re-pinned (was {old})"),
        None => "added".to_string(),
    };
    println!(
        "{what} {} = sha256 {sha} ({}) from {}",
        crate::util::escape::term(&name),
        crate::commands::corpus_fetch::mb(size),
        crate::util::escape::term(&artifact.source.spelled())
    );
    if !s.quiet {
        eprintln!(
            "fpgate: this pin is trust on first use: it says the file is what {} served now, not that it is clean or genuine; compare it with the publisher's own hash or signature before the gate relies on it",
            artifact.source.spelled()
        );
    }
    Ok(Exit::Pass)
}

/// The recipe's text without the `[[artifact]]` table whose keys start at
/// `line` (its header line up to the next table header). `None` when the
/// entry is not written as such a table.
fn without_entry(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let idx = line.checked_sub(1)?;
    let start = (0..=idx.min(lines.len().checked_sub(1)?))
        .rev()
        .find(|&i| lines[i].trim() == "[[artifact]]")?;
    let end = (start + 1..lines.len())
        .find(|&i| lines[i].trim_start().starts_with('['))
        .unwrap_or(lines.len());
    let mut out: String = lines[..start].concat();
    out.push_str(&lines[end..].concat());
    while out.ends_with("\n\n") {
        out.pop();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_entry_is_removed_whole() {
        let t = "# head\n\n[[artifact]]\nurl = \"a\"\n\n[[artifact]]\nurl = \"b\"\nsha256 = \"x\"\n\n[[artifact]]\nurl = \"c\"\n";
        assert_eq!(
            super::without_entry(t, 7).unwrap(),
            "# head\n\n[[artifact]]\nurl = \"a\"\n\n[[artifact]]\nurl = \"c\"\n"
        );
        assert_eq!(
            super::without_entry(t, 11).unwrap(),
            "# head\n\n[[artifact]]\nurl = \"a\"\n\n[[artifact]]\nurl = \"b\"\nsha256 = \"x\"\n"
        );
    }
}
