// Checks deploy/prometheus/prometheus.yml:
//
//   node tests/deploy/check_prometheus.mjs PROMETHEUS.yml RENDERED_CHART.yaml
//
// 1. `promtool check config` accepts it. Debian's promtool is built without the Kubernetes
//    service discovery, so when it rejects kubernetes_sd_configs as an unknown field, the check
//    runs on a copy where each of them is swapped for an equivalent file_sd_configs: everything
//    else (relabel rules, regexes, label names, intervals) is still checked by promtool.
// 2. The "crabcache" job's relabel rules, applied to the targets Kubernetes' pod discovery would
//    produce for the rendered chart's pods, keep exactly one target per crabcached pod, on its
//    metrics port, labelled namespace/pod/release, and drop everything else (the fast path and
//    gRPC ports, the helm test pod).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";

const [configFile, chartFile] = process.argv.slice(2);
if (!configFile || !chartFile) {
  console.error("usage: check_prometheus.mjs PROMETHEUS.yml RENDERED_CHART.yaml");
  process.exit(2);
}
const problems = [];

// --- 1. promtool --------------------------------------------------------------------------------
function promtool(file) {
  const r = spawnSync("promtool", ["check", "config", file], { encoding: "utf8" });
  if (r.error) throw new Error(`cannot run promtool: ${r.error.message}`);
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}
const config = parse(readFileSync(configFile, "utf8"));
let result = promtool(configFile);
if (!result.ok && /field kubernetes_sd_configs not found/.test(result.out)) {
  const dir = mkdtempSync(path.join(tmpdir(), "crabcache-prom-"));
  const copy = structuredClone(config);
  for (const job of copy.scrape_configs) {
    if (job.kubernetes_sd_configs) {
      delete job.kubernetes_sd_configs;
      job.file_sd_configs = [{ files: [path.join(dir, "targets.json")] }];
    }
  }
  const copyFile = path.join(dir, "prometheus.yml");
  writeFileSync(copyFile, stringify(copy));
  result = promtool(copyFile);
  console.log("promtool here lacks Kubernetes discovery: checked a copy using file_sd_configs");
  rmSync(dir, { recursive: true, force: true });
}
if (!result.ok) problems.push(`promtool check config failed:\n${result.out}`);

// --- 2. Relabelling of the chart's pods ---------------------------------------------------------
// Prometheus' relabel semantics (regex anchored, default separator ";", replacement "$1").
function relabel(labels, rules) {
  for (const r of rules) {
    const re = new RegExp(`^(?:${r.regex ?? "(.*)"})$`);
    const value = (r.source_labels || []).map((l) => labels[l] ?? "").join(r.separator ?? ";");
    const action = r.action ?? "replace";
    if (action === "keep" && !re.test(value)) return null;
    if (action === "drop" && re.test(value)) return null;
    if (action === "replace") {
      const m = value.match(re);
      if (m) {
        const out = (r.replacement ?? "$1").replace(/\$(\d+)|\$\{(\d+)\}/g, (_, a, b) => m[a ?? b] ?? "");
        if (out === "") delete labels[r.target_label];
        else labels[r.target_label] = out;
      }
    } else if (!["keep", "drop"].includes(action)) {
      throw new Error(`relabel action ${action} not simulated here`);
    }
  }
  return labels;
}
const sanitize = (name) => name.replace(/[^a-zA-Z0-9_]/g, "_");

// The targets of `role: pod` discovery: one per declared container port.
function discover(pod, namespace) {
  const targets = [];
  for (const c of pod.spec.containers) {
    for (const p of c.ports || [{}]) {
      const t = {
        __address__: `10.0.0.1:${p.containerPort ?? 80}`,
        __meta_kubernetes_namespace: namespace,
        __meta_kubernetes_pod_name: pod.metadata.name,
        __meta_kubernetes_pod_phase: "Running",
        __meta_kubernetes_pod_node_name: "node-a",
        __meta_kubernetes_pod_container_name: c.name,
        __meta_kubernetes_pod_container_port_name: p.name ?? "",
        __meta_kubernetes_pod_container_port_number: String(p.containerPort ?? ""),
      };
      for (const [k, v] of Object.entries(pod.metadata.labels || {})) {
        t[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
      }
      for (const [k, v] of Object.entries(pod.metadata.annotations || {})) {
        t[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
      }
      targets.push(t);
    }
  }
  return targets;
}

const objects = parseAllDocuments(readFileSync(chartFile, "utf8")).map((d) => d.toJS()).filter((o) => o);
const set = objects.find((o) => o.kind === "StatefulSet");
const job = config.scrape_configs.find((j) => j.job_name === "crabcache");
if (!set) problems.push("no StatefulSet in the rendered chart");
if (!job || !job.kubernetes_sd_configs?.some((sd) => sd.role === "pod")) {
  problems.push('no "crabcache" job with pod discovery');
}
if (set && job) {
  const ns = set.metadata.namespace ?? "cache";
  const pods = [];
  for (let i = 0; i < set.spec.replicas; i++) {
    pods.push({ ...set.spec.template, metadata: { ...set.spec.template.metadata, name: `${set.metadata.name}-${i}` } });
  }
  const testPods = objects.filter((o) => o.kind === "Pod");
  const metricsPort = set.spec.template.spec.containers[0].ports.find((p) => p.name === "metrics").containerPort;
  const kept = [];
  for (const pod of [...pods, ...testPods]) {
    for (const t of discover(pod, ns)) {
      let out = null;
      try {
        out = relabel({ ...t }, job.relabel_configs || []);
      } catch (e) {
        problems.push(`relabelling failed: ${e.message}`);
      }
      if (out) kept.push(out);
    }
  }
  if (kept.length !== pods.length) {
    problems.push(`expected ${pods.length} targets (one per pod), relabelling kept ${kept.length}`);
  }
  for (const t of kept) {
    if (!t.__address__.endsWith(`:${metricsPort}`)) problems.push(`target ${t.__address__} is not the metrics port`);
    for (const l of ["namespace", "pod", "release"]) {
      if (!t[l]) problems.push(`target ${t.__address__} has no "${l}" label`);
    }
    if (!pods.some((p) => p.metadata.name === t.pod)) problems.push(`target for unexpected pod ${t.pod}`);
  }
  console.log(`relabelling keeps ${kept.length} of the chart's pod ports as targets`);
}

for (const p of problems) console.error(`FAIL ${p}`);
console.log(`prometheus config: ${problems.length ? "FAILED" : "ok"}`);
process.exit(problems.length ? 1 : 0);
