#!/usr/bin/env bash
# Checks of the Helm chart, run by CTest (label "deploy"); each mode is one test and takes
# seconds. helm comes from tools/fetch-helm.sh (the npm kubectl layer), node_modules of this
# folder from tools/install-deps.sh test (npm ci).
#
#   helm_checks.sh lint          helm lint --strict: default, all-features and minimal values
#   helm_checks.sh template      render all three, validate against the Kubernetes API schemas
#                                (validate_manifests.mjs) and the chart's promises (check_chart.mjs)
#   helm_checks.sh bad-values    every tests/deploy/bad-values/*.yaml must be refused, with the
#                                error its "# expect:" line names (see mode_bad_values)
#   helm_checks.sh prometheus    deploy/prometheus/prometheus.yml: promtool, and its relabelling
#                                applied to the rendered chart's pods (check_prometheus.mjs)
#   helm_checks.sh validator     the offline validator can fail: validate_manifests.mjs accepts
#                                tests/deploy/bad-manifests/valid.yaml and refuses every other
#                                file there with the message of its "# expect:" line (no helm)
#   helm_checks.sh flags CRABCACHED
#                                every flag the chart passes (all three value sets) exists in
#                                `crabcached --helpfull`; the default and minimal flags start a
#                                real server that exits 0 on SIGTERM
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/deploy"
chart="$root/helm/crabcache"
all_values="$chart/ci/all-features-values.yaml"
min_values="$chart/ci/minimal-values.yaml"
# Every mode but validator needs helm (fetched once, then found in tools/.cache/bin).
helm=""
if [[ "${1:-}" != validator ]]; then
  helm="$("$root/tools/fetch-helm.sh" --print)/helm"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

need_node_modules() {
  [[ -d "$here/node_modules/kubernetes-models" ]] ||
    fail "tests/deploy/node_modules is missing: run tools/install-deps.sh test"
}

render() {  # render NAME [helm args...] -> $work/NAME.yaml
  local name="$1"
  shift
  "$helm" template crabcache "$chart" --namespace cache "$@" >"$work/$name.yaml"
}

# NOTES.txt as `helm install` would print it -> $work/NAME.notes. helm template never renders
# NOTES.txt, so a copy of the chart wraps it in a define and emits it as a JSON string.
render_notes() {  # render_notes NAME [helm args...]
  local name="$1" copy="$work/notes-chart"
  shift
  if [[ ! -d "$copy" ]]; then
    cp -r "$chart" "$copy"
    { echo '{{- define "crabcache.testNotes" -}}'
      cat "$chart/templates/NOTES.txt"
      echo '{{- end }}'
      echo 'notes: {{ include "crabcache.testNotes" . | toJson }}'
    } >"$copy/templates/zz-notes.yaml"
  fi
  # node resolves "yaml" from the working directory: tests/deploy's node_modules.
  "$helm" template crabcache "$copy" --namespace cache --show-only templates/zz-notes.yaml "$@" |
    (cd "$here" && node --input-type=module -e '
      import { parse } from "yaml";
      import { readFileSync } from "node:fs";
      process.stdout.write(parse(readFileSync(0, "utf8")).notes);') >"$work/$name.notes"
}

notes_have() {  # NAME TEXT: the notes of render NAME contain TEXT
  grep -qF -- "$2" "$work/$1.notes" || fail "the $1 NOTES lack \"$2\":$(sed 's/^/    /' "$work/$1.notes")"
}

notes_lack() {  # NAME TEXT
  if grep -qF -- "$2" "$work/$1.notes"; then fail "the $1 NOTES contain \"$2\""; fi
}

# Every key of values.yaml has a comment line right above it (keys inside default list items,
# e.g. the topology constraints, are data, not values, and are exempt).
check_values_comments() {
  awk '
    BEGIN { listind = -1 }
    /^[[:space:]]*#/ { commented = 1; next }
    /^[[:space:]]*$/ { next }
    {
      match($0, /^ */); indent = RLENGTH
      if ($0 ~ /^ *- /) { listind = indent; commented = 0; next }
      if (listind >= 0 && indent > listind) { commented = 0; next }
      listind = -1
      if ($0 ~ /^ *[A-Za-z0-9_."-]+:/ && !commented) {
        printf "FAIL values.yaml:%d has no comment: %s\n", NR, $0 > "/dev/stderr"; bad++
      }
      commented = 0
    }
    END { exit bad > 0 }' "$chart/values.yaml" || fail "every value in values.yaml needs a comment"
  echo "values.yaml: every value has a comment"
}

mode_lint() {
  check_values_comments
  "$helm" lint --strict "$chart"
  "$helm" lint --strict "$chart" -f "$all_values"
  "$helm" lint --strict "$chart" -f "$min_values"
}

mode_template() {
  need_node_modules
  render default
  render all-features -f "$all_values"
  render minimal -f "$min_values"
  # A CPU limit equal to the CPU request: the documented way to the Guaranteed QoS class.
  render guaranteed --set resources.requests.cpu=2 --set resources.limits.cpu=2
  node "$here/validate_manifests.mjs" "$work/default.yaml" "$work/all-features.yaml" \
    "$work/minimal.yaml" "$work/guaranteed.yaml"
  # The default --max_memory is memory.limitPercent (70) of the limit. With a CPU request and no
  # CPU limit (default, minimal) or a limit above the request (all-features) pods are Burstable.
  node "$here/check_chart.mjs" "$work/default.yaml" --max-memory-percent 70 --qos Burstable
  node "$here/check_chart.mjs" "$work/all-features.yaml" --qos Burstable
  node "$here/check_chart.mjs" "$work/minimal.yaml" --qos Burstable
  node "$here/check_chart.mjs" "$work/guaranteed.yaml" --qos Guaranteed
  # One replica: the helm test pod has its one check and no init containers.
  render single --set replicaCount=1
  node "$here/validate_manifests.mjs" "$work/single.yaml"
  node "$here/check_chart.mjs" "$work/single.yaml"
  # --metrics_address follows config.address (IPv6 in brackets) unless metrics.address is set.
  expect_arg default --metrics_address=0.0.0.0:9090
  render ipv4-address --set config.address=10.0.0.7
  expect_arg ipv4-address --metrics_address=10.0.0.7:9090
  render ipv6-metrics --set config.address=:: --set metrics.address=:: --set ports.metrics=9100
  expect_arg ipv6-metrics --address=::
  expect_arg ipv6-metrics "--metrics_address=[::]:9100"
  render ipv6-dual-stack --set config.address=:: --set metrics.address=0.0.0.0
  expect_arg ipv6-dual-stack --metrics_address=0.0.0.0:9090
  node "$here/validate_manifests.mjs" "$work/ipv6-metrics.yaml"
  node "$here/check_chart.mjs" "$work/ipv6-metrics.yaml"
  # NOTES.txt: grpcurl -plaintext only against a plaintext port.
  render_notes default
  notes_have default "grpcurl -plaintext localhost:50051 grpc.health.v1.Health/Check"
  notes_lack default "-cacert"
  render_notes tls --set tls.enabled=true --set tls.secretName=crabcache-tls
  notes_lack tls "-plaintext localhost:50051"
  notes_have tls "grpcurl -plaintext localhost:50052 grpc.health.v1.Health/Check"
  notes_have tls "grpcurl -cacert ca.crt -servername"
  render_notes mtls -f "$all_values"
  notes_lack mtls "-plaintext localhost:50051"
  notes_have mtls "grpcurl -cacert ca.crt -cert client.crt -key client.key -servername"
  echo "NOTES.txt: plaintext grpcurl without TLS, TLS grpcurl (and the plaintext health port) with it"
  # Every optional object is really rendered when its feature is on.
  local kind
  for kind in StatefulSet Service PodDisruptionBudget ServiceAccount NetworkPolicy \
              ServiceMonitor Secret Pod; do
    grep -q "^kind: $kind$" "$work/all-features.yaml" || fail "all-features renders no $kind"
  done
  for kind in NetworkPolicy ServiceMonitor Secret; do
    if grep -q "^kind: $kind$" "$work/default.yaml"; then
      fail "default values render a $kind (it should be opt-in)"
    fi
  done
}

# Counts one fixture in the caller's passed/failed; a problem is printed with the output.
tally() {  # FILE PROBLEM OUTPUT ("" = as expected)
  if [[ -n "$2" ]]; then
    echo "FAIL $(basename "$1"): $2" >&2
    sed 's/^/    /' <<<"$3" >&2
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
}

mode_bad_values() {
  # "# rejected-by: schema" files break values.schema.json: helm template and helm lint must both
  # fail with the message. "# rejected-by: template" files pass the schema but hit a fail() in
  # the chart: helm template must fail with the message (helm lint runs templates in "lint
  # mode", where fail() is only an [INFO] line, so it is not asked to fail on those).
  local f expect kube by passed=0 failed=0 out rc
  for f in "$here"/bad-values/*.yaml; do
    expect="$(sed -n 's/^# expect: //p' "$f")"
    by="$(sed -n 's/^# rejected-by: \([a-z]*\).*/\1/p' "$f")"
    kube="$(sed -n 's/^# kube-version: //p' "$f")"
    [[ -n "$expect" && ( "$by" == schema || "$by" == template ) ]] ||
      fail "$f needs '# expect:' and '# rejected-by: schema|template' lines"
    local args=(-f "$f")
    if [[ -n "$kube" ]]; then args+=(--kube-version "$kube"); fi
    local problem=""
    rc=0
    out="$("$helm" template crabcache "$chart" "${args[@]}" 2>&1)" || rc=$?
    if ((rc == 0)); then
      problem="helm template accepted it"
    elif ! grep -qF -- "$expect" <<<"$out"; then
      problem="helm template refused it, but not with \"$expect\""
    elif [[ "$by" == schema ]]; then
      rc=0
      out="$("$helm" lint --strict "$chart" "${args[@]}" 2>&1)" || rc=$?
      if ((rc == 0)); then
        problem="helm lint accepted it"
      elif ! grep -qF -- "$expect" <<<"$out"; then
        problem="helm lint refused it, but not with \"$expect\""
      fi
    fi
    tally "$f" "$problem" "$out"
  done
  echo "bad values: $passed passed, $failed failed"
  ((failed == 0))
}

mode_validator() {
  # Exit status 1 alone would not do: node also exits 1 on an uncaught exception. Each refusal
  # must name the file's one defect.
  need_node_modules
  local f expect out rc passed=0 failed=0
  node "$here/validate_manifests.mjs" "$here/bad-manifests/valid.yaml" ||
    fail "validate_manifests.mjs refuses the control file bad-manifests/valid.yaml"
  for f in "$here"/bad-manifests/*.yaml; do
    [[ "$(basename "$f")" == valid.yaml ]] && continue
    expect="$(sed -n 's/^# expect: //p' "$f")"
    [[ -n "$expect" ]] || fail "$f needs an '# expect:' line"
    rc=0
    out="$(node "$here/validate_manifests.mjs" "$f" 2>&1)" || rc=$?
    local problem=""
    if ((rc != 1)) || ! grep -qF -- "$expect" <<<"$out"; then
      problem="exit $rc, expected 1 and \"$expect\""
    fi
    tally "$f" "$problem" "$out"
  done
  ((passed > 0)) || fail "no fixtures in tests/deploy/bad-manifests"
  echo "validator: $passed passed, $failed failed"
  ((failed == 0))
}

mode_prometheus() {
  need_node_modules
  command -v promtool >/dev/null || fail "promtool is missing (Debian package prometheus)"
  render default
  node "$here/check_prometheus.mjs" "$root/deploy/prometheus/prometheus.yml" "$work/default.yaml"
}

# The --name=value flags of the crabcached container in a rendered manifest, one per line.
container_args() {
  awk '
    /^kind: / { in_sts = ($2 == "StatefulSet") }
    in_sts && /^ +args:$/ { in_args = 1; next }
    in_args && /^ +- / { sub(/^ +- /, ""); gsub(/^"|"$/, ""); print; next }
    in_args { in_args = 0 }
  ' "$1"
}

expect_arg() {  # RENDER-NAME ARG: the crabcached container of $work/RENDER-NAME.yaml has ARG
  container_args "$work/$1.yaml" | grep -qxF -- "$2" ||
    fail "the $1 render passes no $2 (it passes: $(container_args "$work/$1.yaml" | tr '\n' ' '))"
}

# Starts crabcached with the flags of one render (ports moved to free ones on loopback, no
# shutdown delay) and waits
# for its ready file, then stops it with SIGTERM and expects exit status 0.
run_with_render_flags() {  # SERVER ARGS-FILE
  local server="$1" args_file="$2" arg run_args=()
  while read -r arg; do
    case "$arg" in
      --address=*) run_args+=(--address=127.0.0.1) ;;
      --port=* | --grpc_port=* | --health_port=*) run_args+=("${arg%%=*}=0") ;;
      --metrics_address=?*) run_args+=(--metrics_address=127.0.0.1:0) ;;
      # Nobody routes to this server: skip the load-balancer delay, keep the test fast.
      --shutdown_delay=*) run_args+=(--shutdown_delay=0s) ;;
      *) run_args+=("$arg") ;;
    esac
  done <"$args_file"
  rm -f "$work/ready.json"
  "$server" "${run_args[@]}" --ready_file="$work/ready.json" >"$work/server.log" 2>&1 &
  local pid=$! i
  for ((i = 0; i < 200; i++)); do  # At most 10 s.
    [[ -s "$work/ready.json" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ ! -s "$work/ready.json" ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    cat "$work/server.log" >&2
    fail "crabcached did not come up with the flags of $(basename "$args_file"): ${run_args[*]}"
  fi
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    cat "$work/server.log" >&2
    fail "crabcached exited $rc after SIGTERM (the chart's drain expects 0)"
  fi
  echo "flags: crabcached ran with the flags of $(basename "$args_file" .args) and exited 0 on SIGTERM"
}

mode_flags() {
  local server="${1:-}"
  [[ -x "$server" ]] || fail "usage: helm_checks.sh flags PATH/TO/crabcached"
  render default
  render all-features -f "$all_values"
  render minimal -f "$min_values"
  "$server" --helpfull >"$work/helpfull.txt" 2>&1 || true
  grep -qE -- "^ +--grpc_port \(" "$work/helpfull.txt" || fail "crabcached --helpfull lists no flags"
  # Flags the chart wires before crabcached defines them (space-separated, with a space at both
  # ends; empty now that the security flags exist). Each is allowed to be missing, loudly; once
  # crabcached defines it, this test fails until it is taken off the list, so it cannot go stale.
  local pending=" "
  local file arg name unknown=0 total=0 stale=0
  for name in $pending; do
    if grep -qE -- "^ +--${name} \(" "$work/helpfull.txt"; then
      echo "FAIL crabcached now defines --$name: remove it from the pending list in $0" >&2
      stale=$((stale + 1))
    else
      echo "NOTE crabcached does not define --$name yet (security issue); the chart wires it"
    fi
  done
  for file in default all-features minimal; do
    container_args "$work/$file.yaml" >"$work/$file.args"
    [[ -s "$work/$file.args" ]] || fail "no container args found in the $file render"
    while read -r arg; do
      name="${arg%%=*}"
      name="${name#--}"
      if [[ "$pending" == *" $name "* ]]; then
        continue
      fi
      total=$((total + 1))
      if ! grep -qE -- "^ +--${name} \(" "$work/helpfull.txt"; then
        echo "FAIL the chart ($file values) passes --$name, which crabcached does not define" >&2
        unknown=$((unknown + 1))
      fi
    done <"$work/$file.args"
  done
  ((unknown == 0 && stale == 0)) || fail "$unknown unknown flag(s), $stale stale pending flag(s)"
  echo "flags: all $total checked flags of the three renders exist in crabcached --helpfull"
  # The all-features render names Secret files that exist only in a pod; the other two run here.
  run_with_render_flags "$server" "$work/default.args"
  run_with_render_flags "$server" "$work/minimal.args"
  check_metrics_ipv6_refusal "$server"
}

# The chart refuses to derive an IPv6 --metrics_address from config.address because crabcached
# cannot serve /metrics on IPv6 (Debian's civetweb has no IPv6). Once it can, this fails, so that
# the refusal (crabcache.metricsAddress, bad-values/metrics-ipv6-from-address.yaml) is lifted.
check_metrics_ipv6_refusal() {  # SERVER
  local rc=0
  timeout 10 "$1" --address=127.0.0.1 --port=0 --grpc_port=0 --metrics_address="[::1]:0" \
    --max_memory=16Mi --ready_file="$work/ipv6.json" >"$work/ipv6.log" 2>&1 || rc=$?
  if [[ -s "$work/ipv6.json" ]] || ! grep -q "cannot serve metrics on \[::1\]:0" "$work/ipv6.log"; then
    cat "$work/ipv6.log" >&2
    fail "crabcached no longer refuses --metrics_address=[::1]:0 (exit $rc): lift the chart's IPv6 refusal"
  fi
  echo "flags: crabcached still cannot serve /metrics on IPv6 (exit $rc), as the chart assumes"
}

case "${1:-}" in
  lint) mode_lint ;;
  template) mode_template ;;
  bad-values) mode_bad_values ;;
  prometheus) mode_prometheus ;;
  validator) mode_validator ;;
  flags) mode_flags "${2:-}" ;;
  *) fail "usage: $0 lint|template|bad-values|prometheus|validator|flags CRABCACHED" ;;
esac
