#!/usr/bin/env bash
# Checks deploy/docker/ offline: this machine has no Docker engine, so the image is not built
# here; what can go wrong in it is checked instead (make test runs this through CTest).
#
#   deploy/docker/verify.sh PATH/TO/crabcached [PATH/TO/crabcache-cli]
#
# 1. check_dockerfile.py: stages, COPY sources vs .dockerignore, the runtime stage's user,
#    ports, entrypoint, labels, versions.
# 2. runtime-libs.sh check: runtime-libs.txt (the shared libraries copied into the image, on top
#    of those of the distroless base) is exactly the ldd closure of the built binaries. The image
#    build runs the same check on its own binaries before staging the libraries.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ $# -lt 1 ]]; then
  echo "usage: $0 PATH/TO/crabcached [PATH/TO/crabcache-cli]" >&2
  exit 2
fi
status=0
python3 "$here/check_dockerfile.py" || status=1
"$here/runtime-libs.sh" check "$here/runtime-libs.txt" "$@" || status=1
if ((status == 0)); then
  echo "verify.sh: Dockerfile and runtime library list OK"
fi
exit "$status"
