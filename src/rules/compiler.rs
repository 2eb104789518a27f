//! The yara-x compiler as fpgate sets it up: no colour, includes only from
//! the sandboxed directories, the `--define`s and the standard externals;
//! a compile's result with its diagnostics (each placed in its rule).

use super::{CompileOptions, DefineValue, Source};
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::PathBuf;
use yara_x::{Compiler, Rules, SourceCode};

/// The rule a diagnostic lies in, by its file and line.
pub fn attach_rule(d: &mut Diagnostic, sources: &[Source]) {
    let (Some(file), Some(line)) = (d.file.as_deref(), d.line) else {
        return;
    };
    d.rule = sources
        .iter()
        .filter(|s| s.origin == file)
        .flat_map(|s| s.info.rules.iter())
        .find(|r| (r.line as u64..=r.end_line as u64).contains(&line))
        .map(|r| r.identifier.clone());
}

/// Compile with yara-x: the rules and their warnings, or every error.
/// Diagnostics that point at a file `allowed` refuses are not echoed.
pub fn compile_now(
    label: &'static str,
    sources: &[Source],
    include_dirs: &[PathBuf],
    opts: &CompileOptions,
    declared_std: &BTreeSet<&'static str>,
    allowed: &dyn Fn(&str) -> bool,
) -> Result<(Rules, Vec<Diagnostic>)> {
    let mut compiler = new_compiler(include_dirs, opts, declared_std)?;

    for s in sources.iter().filter(|s| !s.included) {
        // Errors are collected by the compiler; keep adding files so the user
        // sees every broken file at once, not one per run.
        let _ = compiler
            .new_namespace(&s.namespace)
            .add_source(SourceCode::from(s.bytes.as_slice()).with_origin(s.origin.as_str()));
    }
    let errors: Vec<Diagnostic> = compiler
        .errors()
        .iter()
        .map(|e| Diagnostic::from_yarax("error", e, allowed))
        .collect();
    let warnings: Vec<Diagnostic> = compiler
        .warnings()
        .iter()
        .map(|w| {
            let mut d = Diagnostic::from_yarax("warning", w, allowed);
            attach_rule(&mut d, sources);
            d
        })
        .collect();
    if !errors.is_empty() {
        return Err(Error::Compile {
            ruleset: label,
            errors,
            warnings,
        });
    }
    Ok((compiler.build(), warnings))
}

/// What besides the source text a compile depends on: the definitions and
/// the declared standard externals (part of every compile-related key).
pub fn hash_context(h: &mut Sha256, opts: &CompileOptions, declared_std: &BTreeSet<&'static str>) {
    h.update(serde_json::to_vec(&opts.defines).unwrap_or_default());
    h.update(format!(
        "relaxed_re_syntax {} ignored_modules {:?}\n",
        opts.relaxed_re_syntax, opts.ignored_modules
    ));
    for e in declared_std {
        h.update(format!("extern {e}\n"));
    }
}

/// A compiler with fpgate's settings: no colour, includes only from the
/// sandboxed directories, the `--define`s and the standard externals.
pub fn new_compiler<'a>(
    include_dirs: &[PathBuf],
    opts: &CompileOptions,
    declared_std: &BTreeSet<&'static str>,
) -> Result<Compiler<'a>> {
    let mut compiler = Compiler::new();
    compiler.colorize_errors(false);
    // Before any source: yara-x refuses the switch on a non-empty compiler.
    compiler.relaxed_re_syntax(opts.relaxed_re_syntax);
    for m in &opts.ignored_modules {
        compiler.ignore_module(m.as_str());
    }
    // Without include directories yara-x would look in the current
    // directory, outside the sandbox.
    for d in include_dirs {
        compiler.add_include_dir(d);
    }
    if include_dirs.is_empty() {
        compiler.enable_includes(false);
    }
    for d in &opts.defines {
        let r = match &d.value {
            DefineValue::Bool(b) => compiler.define_global(&d.name, *b),
            DefineValue::Int(i) => compiler.define_global(&d.name, *i),
            DefineValue::Float(f) => compiler.define_global(&d.name, *f),
            DefineValue::Str(s) => compiler.define_global(&d.name, s.as_str()),
        };
        r.map_err(|e| Error::usage(format!("--define {}: {e}", d.name)))?;
    }
    for ext in declared_std {
        compiler
            .define_global(ext, "")
            .map_err(|e| Error::internal(format!("external `{ext}`: {e}")))?;
    }
    Ok(compiler)
}
