#!/usr/bin/env bash
# Compare `fpgate scan` with the engine's reference CLI, `yr scan` (crate
# yara-x-cli), on the same rules, files and threads.
#
#   benches/compare.sh [RULES] [CORPUS] [THREADS] [RUNS]
#
# RULES   a rule file or directory (default: ../shared/rulesets/reversinglabs-yara-rules/yara)
# CORPUS  a directory of files to scan (default: corpus/)
# THREADS worker threads for both tools (default: 2)
# RUNS    runs per tool, interleaved fpgate/yr/fpgate/yr... (default: 5)
#
# YR_ARGS  extra arguments for yr only, split on spaces: rules that use
#          external variables need them defined for yr (fpgate sets them per
#          file), e.g. YR_ARGS='-d filename="x" -d extension="x"' for rules/.
#
# Needs `yr` on PATH or in $YR (cargo install --locked yara-x-cli --version 1.22.1).
# Prints the median wall time of each tool, the ratio, MB/s, files/s, the
# peak RSS and the median CPU time (user + system) with its ratio. fpgate's
# time includes everything its gate needs: sha256 of every file,
# de-duplication and evidence; yr only scans.
set -euo pipefail
cd "$(dirname "$0")/.."
RULES=${1:-../shared/rulesets/reversinglabs-yara-rules/yara}
CORPUS=${2:-corpus}
THREADS=${3:-2}
RUNS=${4:-5}
YR=${YR:-$(command -v yr || true)}
[ -n "$YR" ] || { echo "yr not found: cargo install --locked yara-x-cli --version 1.22.1 (or set YR=...)" >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fpgate-target}"
cargo build --release --quiet
FPGATE="$CARGO_TARGET_DIR/release/fpgate"

python3 - "$FPGATE" "$YR" "$RULES" "$CORPUS" "$THREADS" "$RUNS" "${YR_ARGS:-}" <<'PY'
import os, statistics, subprocess, sys, time, resource

fpgate, yr, rules, corpus, threads, runs, yr_args = sys.argv[1:8]
runs = int(runs)
files = 0
size = 0
for root, _, names in os.walk(corpus):
    for n in names:
        p = os.path.join(root, n)
        if os.path.isfile(p) and not os.path.islink(p):
            files += 1
            size += os.path.getsize(p)

cmds = {
    "fpgate": [fpgate, "scan", "--no-config", "--rules", rules, "--corpus", corpus,
               "-j", threads, "--format", "json", "-o", "/dev/null", "--quiet",
               "--max-file-size", "4G", "--allow-incomplete",
               # engine against engine: no results cache (a warm cache skips the scan)
               "--no-cache", "--no-history"],
    "yr": [yr, "scan", "-r", "-p", threads, "-w"] + yr_args.split() + [rules, corpus],
}

def measure(cmd):
    # One child per measurement, so the children's peak RSS is this run's.
    code = ("import resource,subprocess,sys,time\n"
            "t=time.perf_counter()\n"
            "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)\n"
            "w=time.perf_counter()-t\n"
            "u=resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print(w, u.ru_maxrss, r.returncode, u.ru_utime+u.ru_stime)\n")
    out = subprocess.run([sys.executable, "-c", code] + cmd, capture_output=True, text=True, check=True).stdout
    w, rss, rc, cpu = out.split()
    return float(w), int(rss), int(rc), float(cpu)

# Warm the page cache once so neither tool pays for the first read.
for c in cmds.values():
    measure(c)
res = {k: [] for k in cmds}
for _ in range(runs):
    for k, c in cmds.items():
        res[k].append(measure(c))

print(f"corpus {corpus}: {files} files, {size/1e6:.1f} MB; rules {rules}; threads {threads}; {runs} runs each, interleaved")
med = {}
cpu = {}
for k, rs in res.items():
    walls = [r[0] for r in rs]
    m = statistics.median(walls)
    med[k] = m
    cpu[k] = statistics.median(r[3] for r in rs)
    rss = max(r[1] for r in rs)
    codes = sorted(set(r[2] for r in rs))
    print(f"{k:7s} median {m:7.3f}s  (min {min(walls):.3f}, max {max(walls):.3f})  "
          f"{size/1e6/m:8.1f} MB/s  {files/m:8.1f} files/s  peak RSS {rss/1024:.0f} MiB  "
          f"CPU {cpu[k]:.2f}s  exit {codes}")
print(f"ratio fpgate/yr = {med['fpgate']/med['yr']:.3f}  (below 1: fpgate is faster)")
# CPU (user + system, all threads): what the run costs a shared machine.
# fpgate also hashes every byte (sha256) and parses the rules beside the
# compiler on otherwise idle cores, so its CPU ratio is above its wall ratio.
print(f"CPU ratio fpgate/yr = {cpu['fpgate']/cpu['yr']:.3f}")
# Each round's two runs were taken back to back: their ratio is less exposed
# to a machine whose speed drifts between rounds.
paired = [a[0] / b[0] for a, b in zip(res["fpgate"], res["yr"])]
print(f"paired ratio (median of the rounds) = {statistics.median(paired):.3f}  "
      f"[{' '.join(f'{r:.2f}' for r in paired)}]")
PY
