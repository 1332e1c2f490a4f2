#!/usr/bin/env bash
# The shared libraries the runtime image must hold, checked against `ldd` of the real binaries.
#
#   runtime-libs.sh check LIST BINARY...       exit 1 (with a diff) unless LIST matches ldd
#   runtime-libs.sh stage LIST DEST BINARY...  check, then copy the listed libraries into
#                                              DEST/usr/lib/<multiarch>/ (used by the Dockerfile)
#   runtime-libs.sh print BINARY...            print a LIST body for these binaries
#
# LIST (deploy/docker/runtime-libs.txt) has two kinds of lines:
#   base PKG...        Debian packages whose libraries the runtime base image already provides
#   SONAME PKG         a library copied into the image, with the Debian package that ships it
# Every library in the ldd closure of the binaries must come from a `base` package or be listed,
# and every listed library must be in the closure: nothing missing, nothing extra.
# Needs ldd and dpkg (Debian 12), so it runs on the build machine and in the build stage.
set -euo pipefail

die() {
  echo "runtime-libs: $*" >&2
  exit 1
}

# "soname path" for every library in the closure of the given binaries, sorted and unique.
closure() {
  local bin
  for bin in "$@"; do
    [[ -x "$bin" ]] || die "not an executable: $bin"
    ldd "$bin" >/dev/null 2>&1 || die "ldd cannot read $bin (not a dynamic executable?)"
    if ldd "$bin" | grep -q "not found"; then
      ldd "$bin" | grep "not found" >&2
      die "$bin has unresolved libraries"
    fi
    ldd "$bin" | awk '
      $1 ~ /^linux-vdso/ { next }          # provided by the kernel
      $2 == "=>" { print $1, $3; next }    # libfoo.so.1 => /path (0x...)
      $1 ~ /^\// { n = split($1, p, "/"); print p[n], $1 }  # the dynamic loader
    '
  done | sort -u
}

# The expected LIST body ("SONAME PKG" lines of non-base libraries) for the binaries. All owners
# are looked up in one dpkg-query call (one call per library takes seconds). With merged /usr,
# ldd may report /lib/... where dpkg registered /usr/lib/... (or the other way round), so each
# library is looked up under both spellings, of its path and of its symlink target.
expected() {
  local base_pkgs="$1"
  shift
  local libs candidates owners
  libs="$(closure "$@")"
  candidates="$(while read -r so path; do
    for c in "$path" "$(readlink -f "$path")"; do
      printf '%s %s\n%s %s\n%s %s\n' "$so" "$c" "$so" "${c#/usr}" "$so" "/usr${c#/usr}"
    done
  done <<<"$libs")"
  # dpkg-query prints "pkg[:arch]: /path" per owned path; unowned ones only go to stderr.
  owners="$(awk '{ print $2 }' <<<"$candidates" | sort -u | xargs dpkg-query -S 2>/dev/null || true)"
  awk -v base=" $base_pkgs " '
    FNR == NR {                      # owners: "pkg[:arch]: /path"
      split($0, kv, ": ")
      pkg = kv[1]; sub(/:.*/, "", pkg)
      owner[kv[2]] = pkg
      next
    }
    !($1 in found) && ($2 in owner) { found[$1] = owner[$2] }
    { seen[$1] = 1 }
    END {
      for (so in seen) {
        if (!(so in found)) { print "runtime-libs: no Debian package owns " so > "/dev/stderr"; bad = 1; continue }
        if (index(base, " " found[so] " ")) continue
        print so, found[so]
      }
      exit bad
    }' <(echo "$owners") <(echo "$candidates") | sort -u
}

list_base() { awk '$1 == "base" { for (i = 2; i <= NF; i++) printf "%s ", $i }' "$1"; }
list_libs() { awk '!/^#/ && NF && $1 != "base" { print $1, $2 }' "$1" | sort -u; }

check() {
  local list="$1"
  shift
  [[ -f "$list" ]] || die "no list file $list"
  local base want have
  base="$(list_base "$list")"
  [[ -n "$base" ]] || die "$list has no 'base' line"
  want="$(expected "$base" "$@")"
  have="$(list_libs "$list")"
  if [[ "$want" != "$have" ]]; then
    echo "runtime-libs: $list does not match ldd of $*" >&2
    echo "  lines starting with '>' are needed but not listed; '<' listed but not needed:" >&2
    diff <(echo "$have") <(echo "$want") | grep '^[<>]' | sed 's/^/  /' >&2 || true
    echo "  regenerate with: $0 print $*" >&2
    return 1
  fi
}

case "${1:-}" in
  check)
    [[ $# -ge 3 ]] || die "usage: $0 check LIST BINARY..."
    list="$2"
    shift 2
    check "$list" "$@"
    echo "runtime-libs: $(list_libs "$list" | wc -l) copied libraries match ldd of $*"
    ;;
  stage)
    [[ $# -ge 4 ]] || die "usage: $0 stage LIST DEST BINARY..."
    list="$2"
    dest="$3"
    shift 3
    check "$list" "$@"
    libdir="$dest/usr/lib/$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH)"
    mkdir -p "$libdir"
    closure "$@" | while read -r so path; do
      if list_libs "$list" | grep -q "^${so//./\\.} "; then
        cp -L "$path" "$libdir/$so"
      fi
    done
    echo "runtime-libs: staged $(find "$libdir" -type f | wc -l) libraries in $libdir"
    ;;
  print)
    [[ $# -ge 2 ]] || die "usage: $0 print BINARY..."
    shift
    expected "${RUNTIME_BASE_PACKAGES:-libc6 libgcc-s1 libstdc++6 libgomp1 libssl3}" "$@"
    ;;
  *)
    die "usage: $0 check|stage|print ..."
    ;;
esac
