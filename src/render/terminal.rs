//! A terminal's view of a run: ANSI styles (or none), numbers written for
//! people, and the one-line verdict every run ends with on the terminal.

use crate::corpus::Tier;
use crate::exit::Exit;
use crate::verdict::report::{Report, RunKind};

/// ANSI styling, or none.
#[derive(Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("1;32", s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// The last line: verdict, counts, files, bytes, throughput.
pub fn verdict_line(r: &Report, style: Style) -> String {
    let c = &r.verdict.counts;
    let word = match r.verdict.result {
        Exit::Blocked => style.red("BLOCKED"),
        Exit::Incomplete => style.yellow("INCOMPLETE"),
        Exit::Pass | Exit::Error => style.green("PASS"),
    };
    let what = if r.command != RunKind::Gate {
        format!(
            "{} match(es) ({} rule(s), {} file(s))",
            c.new, c.new_rules, c.new_files
        )
    } else {
        let mut w = format!(
            "{} new false positive(s) ({} rule(s), {} file(s)), {} persisting, {} fixed, {} excepted",
            c.new, c.new_rules, c.new_files, c.persisting, c.fixed, c.excepted
        );
        let crit = c.by_tier.get(&Tier::Critical);
        if let Some(t) = crit.filter(|t| t.new + t.persisting > 0) {
            w.push_str(&format!(", {} on critical files", t.new + t.persisting));
        }
        if c.blocking_warnings > 0 {
            w.push_str(&format!(", {} blocking warning(s)", c.blocking_warnings));
        }
        if c.exceptions_stale > 0 {
            w.push_str(&format!(", {} stale exception(s)", c.exceptions_stale));
        }
        if let Some(d) = &r.detections {
            w.push_str(&format!(
                ", {} lost detection(s) of {} known-bad sample(s)",
                d.counts.lost, d.samples
            ));
        }
        w
    };
    // Files answered from the results cache count as scanned (their
    // results are), but the speed figures then say little: say so.
    let cached = r
        .timings
        .cache
        .as_ref()
        .map(|s| s.files_unread + s.files_read_not_scanned)
        .filter(|n| *n > 0)
        .map(|n| format!(" ({n} answered from the results cache)"))
        .unwrap_or_default();
    // Members of archives are files too: say how many were.
    let a = &r.corpus.archives;
    let members = if a.members > 0 {
        format!(" ({} of them in {} archive(s))", a.members, a.archives)
    } else {
        String::new()
    };
    format!(
        "{word}: {what}, {} unscanned; scanned {} of {} files{members}{cached}, {} ({} unique) in {:.2}s, {:.1} MB/s, {} threads",
        c.unscanned,
        r.corpus.scanned_files,
        r.corpus.entries,
        human_bytes(r.corpus.bytes),
        r.corpus.unique_contents,
        r.timings.scan_seconds,
        r.timings.throughput_mb_per_s,
        r.timings.threads
    )
}

pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(group_digits(1899520), "1,899,520");
        assert_eq!(group_digits(12), "12");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
