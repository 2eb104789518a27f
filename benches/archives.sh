#!/usr/bin/env bash
# Archives read in place (fpgate) against extracting them to disk and
# running the engine's reference CLI on the tree (`yr scan`, crate
# yara-x-cli), on the same rules and threads.
#
#   benches/archives.sh [RULES] [PACKAGES] [THREADS] [RUNS]
#
# RULES    a rule file or directory (default: ../shared/rulesets/reversinglabs-yara-rules/yara)
# PACKAGES a directory of packages: wheels and other zips, npm .tgz and
#          other tarballs, .deb (default: built here from corpus/, one zip,
#          one .tgz and one .deb per package directory)
# THREADS  worker threads for both tools (default: 2)
# RUNS     runs per side, interleaved (default: 5)
#
# Each run of the "extract + yr" side extracts every package into a fresh
# temporary tree (Python's zipfile and tarfile, dpkg-deb -x and -e), links
# the packages themselves into it (fpgate scans both: the archive files and
# their members), and runs one `yr scan -r` over it; the extraction is timed
# with it, and yr's scan alone is reported too. fpgate's side is `fpgate scan --no-cache` over the packages. Prints
# the median wall time of each side, the extraction's share, the ratio, the
# members each side saw and the bytes fpgate decoded.
#
# Needs `yr` on PATH or in $YR (cargo install --locked yara-x-cli --version 1.22.1).
set -euo pipefail
cd "$(dirname "$0")/.."
RULES=${1:-../shared/rulesets/reversinglabs-yara-rules/yara}
PACKAGES=${2:-}
THREADS=${3:-2}
RUNS=${4:-5}
YR=${YR:-$(command -v yr || true)}
[ -n "$YR" ] || { echo "yr not found: cargo install --locked yara-x-cli --version 1.22.1 (or set YR=...)" >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fpgate-target}"
cargo build --release --quiet
FPGATE="$CARGO_TARGET_DIR/release/fpgate"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ -z "$PACKAGES" ]; then
  PACKAGES="$WORK/packages"
  mkdir -p "$PACKAGES"
  for dir in corpus/*/*/; do
    name=$(basename "$dir")
    (cd "$dir" && zip -qr "$PACKAGES/$name.whl" .)
    tar czf "$PACKAGES/$name.tgz" -C "$dir" .
    mkdir -p "$WORK/deb/$name/DEBIAN" "$WORK/deb/$name/usr/lib/$name"
    cp -r "$dir". "$WORK/deb/$name/usr/lib/$name/"
    printf 'Package: %s\nVersion: 1\nArchitecture: all\nMaintainer: x <x@example.org>\nDescription: x\n' \
      "$(echo "$name" | tr 'A-Z_.' 'a-z--')" > "$WORK/deb/$name/DEBIAN/control"
    dpkg-deb -Zxz --root-owner-group -b "$WORK/deb/$name" "$PACKAGES/$name.deb" >/dev/null
  done
fi

python3 - "$FPGATE" "$YR" "$RULES" "$PACKAGES" "$THREADS" "$RUNS" "$WORK" <<'PY'
import json, os, shutil, statistics, subprocess, sys, tarfile, time, zipfile

fpgate, yr, rules, packages, threads, runs, work = sys.argv[1:8]
runs = int(runs)
pkgs = sorted(os.path.join(packages, n) for n in os.listdir(packages))

def extract(dst):
    n = 0
    for p in pkgs:
        out = os.path.join(dst, os.path.basename(p))
        os.makedirs(out)
        if p.endswith(".deb"):
            subprocess.run(["dpkg-deb", "-x", p, os.path.join(out, "data")], check=True)
            subprocess.run(["dpkg-deb", "-e", p, os.path.join(out, "control")], check=True)
        elif zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                z.extractall(out)
        elif tarfile.is_tarfile(p):
            with tarfile.open(p) as t:
                t.extractall(out, filter="data")
        else:
            shutil.copy(p, out)
    for _, _, names in os.walk(dst):
        n += len(names)
    return n

def fpgate_run():
    t = time.perf_counter()
    r = subprocess.run([fpgate, "scan", "--no-config", "--rules", rules, "--corpus", packages,
                        "-j", threads, "--format", "json", "--quiet", "--no-cache",
                        "--no-history", "--allow-incomplete"],
                       capture_output=True, check=False)
    wall = time.perf_counter() - t
    return wall, json.loads(r.stdout)

def extract_yr_run():
    tree = os.path.join(work, "tree")
    shutil.rmtree(tree, ignore_errors=True)
    t = time.perf_counter()
    members = extract(tree)
    extracted = time.perf_counter() - t
    # The packages themselves beside their members (hard links: no copy),
    # so one yr run, one compile, scans both.
    os.makedirs(os.path.join(tree, "_packages"))
    for p in pkgs:
        os.link(p, os.path.join(tree, "_packages", os.path.basename(p)))
    linked = time.perf_counter() - t
    s = time.perf_counter()
    subprocess.run([yr, "scan", "-r", "-p", threads, "-w", rules, tree],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scanned = time.perf_counter() - s
    return time.perf_counter() - t, linked, members, scanned

f, y, x, z = [], [], [], []
report = None
members = 0
for _ in range(runs):
    wall, report = fpgate_run()
    f.append(wall)
    wall, extracted, members, scanned = extract_yr_run()
    y.append(wall)
    x.append(extracted)
    z.append(scanned)
a = report["corpus"]["archives"]
size = sum(os.path.getsize(p) for p in pkgs)
print(f"packages: {len(pkgs)} ({size / 1e6:.1f} MB), rules: {rules}, threads: {threads}, runs: {runs}")
print(f"fpgate in place : median {statistics.median(f):.3f} s  ({a['members']} members of {a['archives']} archives, "
      f"{report['timings']['decoded_bytes'] / 1e6:.1f} MB decoded, {len(report['unscanned'])} unscanned)")
print(f"extract + yr    : median {statistics.median(y):.3f} s  ({members} files extracted; extraction {statistics.median(x):.3f} s, "
      f"yr over the tree and the packages {statistics.median(z):.3f} s)")
print(f"ratio fpgate / (extract + yr): {statistics.median(f) / statistics.median(y):.2f}; "
      f"fpgate / yr alone on the extracted tree: {statistics.median(f) / statistics.median(z):.2f}")
PY
