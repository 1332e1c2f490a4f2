#!/usr/bin/env bash
# Installs what CrabCache needs and is missing, from tools/packages.txt (Debian 12) and the
# package.json files of the project (npm). Idempotent and quiet when nothing is missing.
#   tools/install-deps.sh build   # enough to build and run crabcached
#   tools/install-deps.sh test    # everything `make test` uses
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-test}"

missing=()
section=""
while read -r pkg cmd; do
  case "$pkg" in
    ""|"#"*) continue ;;
    "[build]") section=build; continue ;;
    "[test]") section=test; continue ;;
  esac
  if [[ "$want" == build && "$section" == test ]]; then continue; fi
  if [[ -n "${cmd:-}" ]] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    continue
  fi
  missing+=("$pkg")
done < tools/packages.txt

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [[ "$want" == test ]]; then
  # npm projects of the test suite: install when node_modules is missing or older than the
  # lock file.
  while read -r pj; do
    dir=$(dirname "$pj")
    if [[ ! -d "$dir/node_modules" || "$dir/package.json" -nt "$dir/node_modules" ||
          ( -f "$dir/package-lock.json" && "$dir/package-lock.json" -nt "$dir/node_modules" ) ]]; then
      echo "install-deps: npm install in $dir"
      if [[ -f "$dir/package-lock.json" ]]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
      else
        (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
      fi
      touch "$dir/node_modules"
    fi
  done < <(find tests deploy helm tools -name package.json -not -path '*/node_modules/*' 2>/dev/null)
fi
