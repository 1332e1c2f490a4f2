#!/usr/bin/env bash
# Builds and runs the Java client test (CacheClientTest.java) against a crabcached at HOST:PORT.
#   run.sh OUT_DIR HOST:PORT
# Offline, from Debian packages only: stubs by protoc (--java_out) and grpc_java_plugin
# (protobuf-compiler-grpc-java-plugin), compiled by javac against the jars in /usr/share/java
# (libgrpc-java, libprotobuf-java, libguava-java, libnetty-java, libperfmark-java, ...).
set -euo pipefail
out=$1
target=$2
root=$(cd "$(dirname "$0")/../../.." && pwd)
for tool in protoc grpc_java_plugin javac java; do
  command -v "$tool" >/dev/null ||
    { echo "java client test: $tool not found (tools/install-deps.sh test installs it)" >&2; exit 1; }
done
jars=(grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub
      protobuf guava perfmark-api geronimo-annotation-1.3-spec
      netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-common netty-handler
      netty-resolver netty-transport)
classpath=""
for jar in "${jars[@]}"; do
  [[ -f /usr/share/java/$jar.jar ]] ||
    { echo "java client test: /usr/share/java/$jar.jar is missing (tools/packages.txt [test])" >&2; exit 1; }
  classpath+=/usr/share/java/$jar.jar:
done

rm -rf "$out/src" "$out/classes"
mkdir -p "$out/src" "$out/classes"
# The command of docs/grpc.md, with gen/ in OUT_DIR/src.
protoc --proto_path="$root/proto" --java_out="$out/src" --grpc-java_out="$out/src" \
  --plugin=protoc-gen-grpc-java="$(command -v grpc_java_plugin)" crabcache/v1/cache.proto
find "$out/src" -name '*.java' -print0 |
  xargs -0 javac -Xlint:-options -nowarn -d "$out/classes" -cp "$classpath" \
    "$root/tests/polyglot/java/CacheClientTest.java"
java -cp "$out/classes:$classpath" CacheClientTest "$target"
