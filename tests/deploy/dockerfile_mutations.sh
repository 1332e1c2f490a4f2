#!/usr/bin/env bash
# Shows that deploy/docker/check_dockerfile.py and runtime-libs.sh catch what they claim to:
# each mutation of the real Dockerfile (or library list) must be reported with its message.
#   tests/deploy/dockerfile_mutations.sh PATH/TO/crabcached
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
docker_dir="$root/deploy/docker"
server="${1:?usage: $0 PATH/TO/crabcached}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

expect_dockerfile_problem() {  # SED-EXPRESSION EXPECTED-MESSAGE
  sed -e "$1" "$docker_dir/Dockerfile" >"$work/Dockerfile"
  if cmp -s "$work/Dockerfile" "$docker_dir/Dockerfile"; then
    echo "FAIL mutation '$1' changed nothing (the Dockerfile moved on?)" >&2
    failed=$((failed + 1))
    return
  fi
  local out
  out="$(python3 "$docker_dir/check_dockerfile.py" --root "$root" --dockerfile "$work/Dockerfile")" && true
  if grep -qF -- "$2" <<<"$out"; then
    passed=$((passed + 1))
  else
    echo "FAIL mutation '$1' was not reported as \"$2\":" >&2
    sed 's/^/    /' <<<"$out" >&2
    failed=$((failed + 1))
  fi
}

expect_dockerfile_problem 's/^USER 65532:65532$/USER root/' "must be a numeric non-root uid"
expect_dockerfile_problem '/^USER /d' "the runtime stage sets no USER"
expect_dockerfile_problem 's/^EXPOSE 8000 50051 9090$/EXPOSE 8000 50051/' "EXPOSE"
expect_dockerfile_problem 's#^COPY tools/install-deps.sh tools/packages.txt tools/#COPY tools/install-deps.sh tools/no-such-file tools/#' \
  "COPY source tools/no-such-file does not exist"
expect_dockerfile_problem 's#^COPY tools/install-deps.sh tools/packages.txt tools/#COPY docs/architecture.md tools/packages.txt tools/#' \
  "is excluded by .dockerignore"
expect_dockerfile_problem 's#^ENTRYPOINT .*#ENTRYPOINT /usr/local/bin/crabcached#' "ENTRYPOINT must be exec-form"
expect_dockerfile_problem 's#^COPY --from=build /rootfs/ /#COPY --from=builder /rootfs/ /#' "names no earlier stage"
expect_dockerfile_problem 's#^USER 65532:65532#RUN echo hi\nUSER 65532:65532#' "RUN in the runtime stage"
# shellcheck disable=SC2016  # ${BUILD_IMAGE} is Dockerfile text, not shell.
expect_dockerfile_problem 's#^FROM ${BUILD_IMAGE} AS build#FROM ${BUILD_IMAGE} AS compile#' "stages are"
expect_dockerfile_problem 's#^ARG BUILD_IMAGE=debian:bookworm#ARG BUILD_IMAGE=ubuntu:24.04#' "is not Debian 12"
expect_dockerfile_problem 's#--target crabcached crabcache-cli#--target crabcached#' "does not build --target crabcache-cli"
expect_dockerfile_problem 's#org.opencontainers.image.revision=#org.opencontainers.image.commit=#' \
  "org.opencontainers.image.revision missing"
expect_dockerfile_problem 's#^ARG VERSION=.*#ARG VERSION=9.9.9#' "versions differ"
expect_dockerfile_problem 's#-DCRABCACHE_SCRIPT_TESTS=OFF#-DCRABCACHE_SCRIPT_TEST=OFF#' \
  "passes -DCRABCACHE_SCRIPT_TEST, which no CMakeLists.txt declares"

# The library list: one library dropped, one foreign library added.
expect_libs_problem() {  # DESCRIPTION TRANSFORM-COMMAND EXPECTED-MESSAGE
  eval "$2" <"$docker_dir/runtime-libs.txt" >"$work/runtime-libs.txt"
  local out
  out="$("$docker_dir/runtime-libs.sh" check "$work/runtime-libs.txt" "$server" 2>&1)" && true
  if grep -qF -- "$3" <<<"$out"; then
    passed=$((passed + 1))
  else
    echo "FAIL library list mutation ($1) was not reported as \"$3\":" >&2
    sed 's/^/    /' <<<"$out" >&2
    failed=$((failed + 1))
  fi
}
expect_libs_problem "drop libprotobuf" "grep -v '^libprotobuf'" "> libprotobuf.so."
expect_libs_problem "add libfoo" "cat - <(echo 'libfoo.so.1 libfoo1')" "< libfoo.so.1 libfoo1"
expect_libs_problem "no base line" "grep -v '^base '" "has no 'base' line"

echo "dockerfile mutations: $passed passed, $failed failed"
((failed == 0))
