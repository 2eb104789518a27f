#!/usr/bin/env bash
# Detection regression demo (`gate --positives`): a candidate that narrows a
# released rule until it no longer detects a known-bad sample is blocked, and
# the report names the sample and the patterns the baseline matched.
#
# The samples are harmless and generated here, in a temporary directory that
# is removed afterwards: the EICAR antivirus test file (written from two
# halves, so no file of this repository holds it whole) and a file carrying
# the strings of the example rule HackTool_Mimikatz_Strings. Nothing is
# committed that could trip an antivirus.
#
#   bash examples/positives-demo/run.sh            # exit 1: BLOCKED, 1 lost detection
#   bash examples/positives-demo/run.sh --format json
#
# FPGATE names the binary (default: fpgate on PATH).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fpgate=${FPGATE:-fpgate}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/positives/tools"
printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' \
  > "$work/positives/eicar.com"
{
  printf 'MZ\x90\x00'
  head -c 60 /dev/zero
  printf '%s' 'sekurlsa::logonpasswords lsadump::sam by gentilkiwi'
} > "$work/positives/tools/mimi.exe"

# The candidate: the released rules, with HackTool_Mimikatz_Strings narrowed
# from "two of its strings" to "all of them" (the quick fix for a false
# positive that ships a rule which no longer detects its tool).
cp -R "$root/rules/released" "$work/candidate"
released='(2 of ($m*) or (1 of ($m*) and 1 of ($b*)) or all of ($b*))'
narrowed='(all of ($m*) and all of ($b*))'
RELEASED=$released NARROWED=$narrowed perl -0pi -e 's/\Q$ENV{RELEASED}\E/$ENV{NARROWED}/' \
  "$work/candidate/hacktools.yar"
grep -qF "$narrowed" "$work/candidate/hacktools.yar"

cd "$work"
"$fpgate" gate --no-config --no-cache --baseline "$root/rules/released" --candidate candidate \
  --corpus "$root/corpus" --positives positives "$@"
