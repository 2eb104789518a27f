#!/usr/bin/env bash
# What the results cache buys, on real rules and a real corpus:
#   benches/incremental.sh [RULES] [CORPUS] [THREADS] [RUNS]
# Times `fpgate scan` (median of RUNS each) for
#   cold      - empty cache (every file read, hashed, scanned with every rule)
#   warm      - nothing changed since the last run
#   one-rule  - one rule edited (its condition gains `filesize >= 0 and`)
#   +1% files - 1% new files (copies of corpus files with bytes appended)
# and `fpgate gate` (the pull-request gate: baseline = the rules, candidate =
# the rules with that one edit) for
#   gate-cold     - empty cache
#   gate-one-rule - the cache of an earlier gate of the unedited rules
# Each edited/added run starts from a copy of the warm cache, so every run
# measures the same situation. The OS page cache is warm in every case.
set -euo pipefail

RULES=${1:-rules/released}
CORPUS=${2:-corpus}
THREADS=${3:-2}
RUNS=${4:-3}

cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/fpgate
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cp -r "$RULES" "$WORK/rules"
NEW="$CORPUS/.fpgate-bench-new"
rm -rf "$NEW"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# run CACHE_DIR LABEL: prints wall seconds; checks the cache statistics.
run() {
    local start end
    start=$(date +%s.%N)
    "$BIN" scan --rules "$WORK/rules" --corpus "$CORPUS" -j "$THREADS" \
        --cache "$1" --format json -q -o "$WORK/report.json" || test $? -eq 1
    end=$(date +%s.%N)
    python3 - "$WORK/report.json" "$2" >&2 <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["timings"]["cache"]
print(f"  {sys.argv[2]:9} files={r['corpus']['files']} unread={c['files_unread']} "
      f"read={c['files_read_not_scanned']} changed-rules={c['files_scanned_changed_rules']} "
      f"all-rules={c['files_scanned_all_rules']} changed={c['changed_rules']}")
EOF
    echo "$end - $start" | bc
}

declare -A TIMES
for i in $(seq "$RUNS"); do
    rm -rf "$WORK/cold"
    TIMES[cold]+="$(run "$WORK/cold" cold) "
done
cp -r "$WORK/cold" "$WORK/warm"
run "$WORK/warm" warm >/dev/null
for i in $(seq "$RUNS"); do
    TIMES[warm]+="$(run "$WORK/warm" warm) "
done

# One rule edited: the first rule file's first condition.
FIRST=$(find "$WORK/rules" -name '*.yar*' | sort | head -1)
cp "$FIRST" "$WORK/first.orig"
python3 - "$FIRST" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p, encoding="utf-8").read()
s = re.sub(r"condition:", "condition: filesize >= 0 and", s, count=1)
open(p, "w", encoding="utf-8").write(s)
EOF
for i in $(seq "$RUNS"); do
    rm -rf "$WORK/edit"; cp -r "$WORK/warm" "$WORK/edit"
    TIMES[one-rule]+="$(run "$WORK/edit" one-rule) "
done
cp "$WORK/first.orig" "$FIRST"

# 1% new files.
TOTAL=$(find "$CORPUS" -type f | wc -l)
ADD=$(( (TOTAL + 99) / 100 ))
mkdir -p "$NEW"
trap 'rm -rf "$WORK" "$NEW"' EXIT
find "$CORPUS" -type f -size +1k | sort | awk -v n="$ADD" -v t="$TOTAL" 'NR % int(t/n) == 0' | head -n "$ADD" |
    while read -r f; do
        out="$NEW/$(echo "$f" | tr '/' '_')"
        cp "$f" "$out" && printf 'fpgate bench: new content' >> "$out"
    done
echo "added $(find "$NEW" -type f | wc -l) new files to $TOTAL" >&2
for i in $(seq "$RUNS"); do
    rm -rf "$WORK/grow"; cp -r "$WORK/warm" "$WORK/grow"
    TIMES[+1%-files]+="$(run "$WORK/grow" +1%-files) "
done
rm -rf "$NEW"

# The pull-request gate.
rm -rf "$WORK/base"; cp -r "$WORK/rules" "$WORK/base"
gate() {
    local start end
    start=$(date +%s.%N)
    "$BIN" gate --no-config --baseline "$WORK/base" --candidate "$WORK/rules" --corpus "$CORPUS" -j "$THREADS" \
        --cache "$1" --format json -q -o "$WORK/report.json" || test $? -eq 1
    end=$(date +%s.%N)
    python3 - "$WORK/report.json" "$2" >&2 <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["timings"]["cache"]
print(f"  {sys.argv[2]:13} files={r['corpus']['files']} unread={c['files_unread']} "
      f"changed-rules={c['files_scanned_changed_rules']} all-rules={c['files_scanned_all_rules']} "
      f"changed={c['changed_rules']} full-rules-loaded={c.get('full_rules_loaded')} "
      f"compile={r['timings']['compile_seconds']}s")
EOF
    echo "$end - $start" | bc
}
rm -rf "$WORK/gwarm"
gate "$WORK/gwarm" gate-warm-up >/dev/null
python3 - "$FIRST" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p, encoding="utf-8").read()
s = re.sub(r"condition:", "condition: filesize >= 0 and", s, count=1)
open(p, "w", encoding="utf-8").write(s)
EOF
for i in $(seq "$RUNS"); do
    rm -rf "$WORK/gcold"
    TIMES[gate-cold]+="$(gate "$WORK/gcold" gate-cold) "
    rm -rf "$WORK/gedit"; cp -r "$WORK/gwarm" "$WORK/gedit"
    TIMES[gate-one-rule]+="$(gate "$WORK/gedit" gate-one-rule) "
done
cp "$WORK/first.orig" "$FIRST"

echo
echo "rules: $RULES   corpus: $CORPUS ($TOTAL files, $(du -sh "$CORPUS" | cut -f1))   threads: $THREADS   runs: $RUNS"
for k in cold warm one-rule +1%-files gate-cold gate-one-rule; do
    # shellcheck disable=SC2086
    printf '%-10s median %7.3fs   (runs: %s)\n' "$k" "$(echo ${TIMES[$k]} | tr ' ' '\n' | median)" "${TIMES[$k]}"
done
