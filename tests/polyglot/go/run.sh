#!/usr/bin/env bash
# Builds and runs the Go client test (cache_client_test.go) against a crabcached at HOST:PORT.
#   run.sh OUT_DIR HOST:PORT
# Offline, from Debian packages only: stubs by protoc with protoc-gen-go and protoc-gen-go-grpc,
# grpc-go and protobuf-go from /usr/share/gocode (golang-google-grpc-dev), built in GOPATH mode
# in OUT_DIR/gopath with its build cache in OUT_DIR/gocache (no module download).
set -euo pipefail
out=$1
target=$2
root=$(cd "$(dirname "$0")/../../.." && pwd)
for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null ||
    { echo "go client test: $tool not found (tools/install-deps.sh test installs it)" >&2; exit 1; }
done
[[ -d /usr/share/gocode/src/google.golang.org/grpc ]] ||
  { echo "go client test: golang-google-grpc-dev is not installed" >&2; exit 1; }

gopath=$out/gopath
rm -rf "$gopath"
gen=$gopath/src/github.com/crabcache/crabcache/gen/go  # Where the proto's go_package points.
mkdir -p "$gopath/src/crabcache.test/polyglot" "$gen"
# The command of docs/grpc.md, with gen/ inside the GOPATH.
protoc --proto_path="$root/proto" --go_out="$gen" --go_opt=paths=source_relative \
  --go-grpc_out="$gen" --go-grpc_opt=paths=source_relative crabcache/v1/cache.proto
cp "$root/tests/polyglot/go/cache_client_test.go" "$gopath/src/crabcache.test/polyglot/"
cd "$gopath/src/crabcache.test/polyglot"
export GO111MODULE=off GOPROXY=off GOENV=off GOFLAGS= GOPATH="$gopath:/usr/share/gocode" \
  GOCACHE="$out/gocache"
go test -count=1 -v . -args -target="$target"
