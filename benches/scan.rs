//! Benchmarks of the scan path on the bundled corpus: the candidate alone
//! (what `fpgate scan` does) and candidate + baseline (what `fpgate gate`
//! does), at 1 and 2 threads. Run with `cargo bench`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fpgate::corpus::{walk, WalkOptions};
use fpgate::engine::{scan_files, ScanOptions};
use fpgate::rules::{compile, CompileOptions, RulePath};
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::time::Duration;

fn bench_scan(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let copts = CompileOptions::default();
    let candidate = compile(
        "candidate",
        &[RulePath::plain(root.join("rules/candidate"))],
        &copts,
    )
    .unwrap();
    let baseline = compile(
        "baseline",
        &[RulePath::plain(root.join("rules/released"))],
        &copts,
    )
    .unwrap();
    let corpus = walk(&[root.join("corpus")], &WalkOptions::default()).unwrap();
    let bytes: u64 = corpus
        .files
        .iter()
        .map(|f| std::fs::metadata(f.path()).unwrap().len())
        .sum();

    let mut g = c.benchmark_group("bundled_corpus");
    g.throughput(Throughput::Bytes(bytes));
    g.measurement_time(Duration::from_secs(5));
    for threads in [1usize, 2] {
        let opts = ScanOptions {
            threads,
            timeout: Duration::from_secs(60),
            max_file_size: 256 << 20,
            follow_symlinks: false,
            profile: false,
            archives: Default::default(),
            signatures: None,
        };
        g.bench_function(format!("scan_candidate_{threads}t"), |b| {
            b.iter(|| {
                scan_files(
                    &corpus.files,
                    Vec::new(),
                    &[&candidate],
                    None,
                    &opts,
                    &ProgressBar::hidden(),
                )
            })
        });
        g.bench_function(format!("gate_candidate_baseline_{threads}t"), |b| {
            b.iter(|| {
                scan_files(
                    &corpus.files,
                    Vec::new(),
                    &[&candidate, &baseline],
                    None,
                    &opts,
                    &ProgressBar::hidden(),
                )
            })
        });
    }
    g.finish();

    c.bench_function("compile_candidate", |b| {
        b.iter(|| {
            compile(
                "candidate",
                &[RulePath::plain(root.join("rules/candidate"))],
                &copts,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
