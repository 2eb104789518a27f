#!/usr/bin/env bash
# How fpgate scales with the number of corpus files: a synthetic corpus of
# N small files (plus the repository's real binaries) for each N, scanned
# with the repository's released rules.
#
#   benches/scale.sh [N...]            (default: 10000 100000 1000000)
#
# For each N: a cold scan (empty results cache), a warm scan (the same
# cache), and a 3-shard run (each shard with an empty cache, one after the
# other) merged with `fpgate merge`. Prints wall time, files/s, peak RSS and
# RSS per file, and the partial reports' size. The corpora are generated
# once under $SCALE_DIR (default /tmp/fpgate-scale) and kept for reruns.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fpgate-target}"
cargo build --release --quiet
FPGATE="$CARGO_TARGET_DIR/release/fpgate"
SCALE_DIR=${SCALE_DIR:-/tmp/fpgate-scale}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 100000 1000000)

python3 - "$FPGATE" "$SCALE_DIR" "${SIZES[@]}" <<'PY'
import os, shutil, subprocess, sys, time

fpgate, base = sys.argv[1], sys.argv[2]
sizes = [int(n) for n in sys.argv[3:]]
repo = os.getcwd()

def corpus(n):
    d = os.path.join(base, f"corpus-{n}")
    done = os.path.join(base, f".done-{n}")
    if os.path.exists(done):
        return d
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(os.path.join(repo, "corpus"), os.path.join(d, "real"))
    for i in range(n):
        sub = os.path.join(d, "gen", f"{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(sub, exist_ok=True)
        # Distinct small contents (so de-duplication saves nothing).
        with open(os.path.join(sub, f"f{i:07d}.bin"), "wb") as f:
            f.write(b"MZ" + i.to_bytes(8, "little") * 24 + b"synthetic clean file %d\n" % i)
    open(done, "w").close()
    return d

def measure(cmd):
    code = ("import resource,subprocess,sys,time\n"
            "t=time.perf_counter()\n"
            "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)\n"
            "w=time.perf_counter()-t\n"
            "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)\n")
    out = subprocess.run([sys.executable, "-c", code] + cmd, capture_output=True, text=True, check=True).stdout
    w, rss, rc = out.split()
    return float(w), int(rss) * 1024, int(rc)

rules = os.path.join(repo, "rules", "released")
print(f"{'files':>9}  {'run':<22} {'wall s':>8} {'files/s':>9} {'peak RSS MiB':>13} {'RSS B/file':>10}  exit")
for n in sizes:
    t0 = time.perf_counter()
    d = corpus(n)
    gen = time.perf_counter() - t0
    files = n + sum(len(fs) for _, _, fs in os.walk(os.path.join(d, "real")))
    cache = os.path.join(base, f"cache-{n}")
    shutil.rmtree(cache, ignore_errors=True)
    common = ["--no-config", "--rules", rules, "--corpus", d, "-j", "2", "--quiet",
              "--allow-incomplete", "--no-history", "--format", "json", "-o", "/dev/null"]
    rows = []
    for label in ["cold scan", "warm scan"]:
        w, rss, rc = measure([fpgate, "scan", *common, "--cache", cache])
        rows.append((label, w, rss, rc))
    parts = []
    shard_walls = []
    shard_rss = 0
    for k in range(1, 4):
        sc = os.path.join(base, f"cache-{n}-shard{k}")
        shutil.rmtree(sc, ignore_errors=True)
        part = os.path.join(base, f"part-{n}-{k}.json")
        cmd = [fpgate, "scan", *common[:-2], "--cache", sc, "--shard", f"{k}/3", "-o", part]
        w, rss, rc = measure(cmd)
        shard_walls.append(w)
        shard_rss = max(shard_rss, rss)
        parts.append(part)
    rows.append(("3 shards (slowest)", max(shard_walls), shard_rss, 0))
    w, rss, rc = measure([fpgate, "merge", *parts, "--format", "json", "-o", "/dev/null", "--quiet", "--no-history"])
    rows.append(("merge of 3", w, rss, rc))
    for label, w, rss, rc in rows:
        print(f"{files:>9}  {label:<22} {w:>8.2f} {files / w:>9.0f} {rss / 2**20:>13.1f} {rss / files:>10.0f}  {rc}")
    size = sum(os.path.getsize(p) for p in parts)
    print(f"{files:>9}  partial reports: {size / 2**20:.1f} MiB ({size / files:.0f} B/file); corpus generated in {gen:.0f}s")
    sys.stdout.flush()
PY
