// Checks the promises of the crabcache chart on rendered manifests (any values):
//
//   node tests/deploy/check_chart.mjs RENDERED.yaml [--max-memory-percent N] [--qos CLASS]
//
// --qos: the QoS class Kubernetes gives the crabcached pods (Guaranteed, Burstable, BestEffort).
//
// Schemas say a manifest is well-formed; this says it does what docs/operations.md claims:
// selectors that really select the pods, probes on the right port, a grace period that covers
// the drain, --max_memory below the memory limit, the hardened security context, and so on.
// Exit status 1 with one line per broken promise.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const args = process.argv.slice(2);
const file = args[0];
const pctIndex = args.indexOf("--max-memory-percent");
const expectPercent = pctIndex >= 0 ? Number(args[pctIndex + 1]) : null;
const qosIndex = args.indexOf("--qos");
const expectQos = qosIndex >= 0 ? args[qosIndex + 1] : null;
if (!file) {
  console.error("usage: check_chart.mjs RENDERED.yaml [--max-memory-percent N] [--qos CLASS]");
  process.exit(2);
}

const objects = parseAllDocuments(readFileSync(file, "utf8"))
  .map((d) => d.toJS())
  .filter((o) => o);
const problems = [];
let checks = 0;
function expect(cond, message) {
  checks++;
  if (!cond) problems.push(message);
}
const ofKind = (kind) => objects.filter((o) => o.kind === kind);
const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels?.[k] === v);

// Kubernetes quantities, as the API reads them.
function bytes(q) {
  if (typeof q === "number") return q;
  const m = String(q).match(/^([0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/);
  if (!m) throw new Error(`bad quantity ${q}`);
  const mult = { undefined: 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
                 Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  return Math.floor(Number(m[1]) * mult[m[2]]);
}
function millicores(q) {
  const m = String(q).match(/^([0-9.]+)(m?)$/);
  if (!m) throw new Error(`bad CPU quantity ${q}`);
  return Math.round(Number(m[1]) * (m[2] ? 1 : 1000));
}

// The pod's QoS class as the API server assigns it (pkg/apis/core/helper/qos): BestEffort without
// any CPU or memory request or limit; Guaranteed when every container (init ones too) has CPU and
// memory limits and its requests (which default to the limits) equal them; else Burstable.
function qosClass(spec) {
  const amount = { cpu: millicores, memory: bytes };
  let any = false;
  let guaranteed = true;
  for (const ctr of [...(spec.initContainers || []), ...spec.containers]) {
    const limits = ctr.resources?.limits || {};
    const requests = ctr.resources?.requests || {};
    for (const r of ["cpu", "memory"]) {
      const limit = limits[r] === undefined ? null : amount[r](limits[r]);
      const request = requests[r] === undefined ? limit : amount[r](requests[r]);
      if (limit || request) any = true;
      if (!limit || request !== limit) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

function seconds(d) {
  const m = String(d).match(/^(\d+)s$/);
  if (!m) throw new Error(`expected whole seconds, got ${d}`);
  return Number(m[1]);
}

// --- Every object carries the standard labels. ---------------------------------------------
const standard = ["app.kubernetes.io/name", "app.kubernetes.io/instance",
                  "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"];
for (const o of objects) {
  for (const l of standard) {
    expect(o.metadata?.labels?.[l], `${o.kind}/${o.metadata?.name}: label ${l} missing`);
  }
}

// --- StatefulSet, pods, Services. -------------------------------------------------------------
const sts = ofKind("StatefulSet");
expect(sts.length === 1, `expected one StatefulSet, found ${sts.length}`);
const set = sts[0];
const pod = set.spec.template;
const podLabels = pod.metadata.labels;
expect(matches(set.spec.selector.matchLabels, podLabels), "StatefulSet selector misses its pods");
const c = pod.spec.containers.find((x) => x.name === "crabcached");
expect(c, "no crabcached container");
const flags = Object.fromEntries(
  c.args.map((a) => {
    const m = a.match(/^--([a-z_]+)=(.*)$/);
    expect(m, `argument ${a} is not --name=value`);
    return m ? [m[1], m[2]] : [a, ""];
  }),
);
const portOf = (name) => c.ports.find((p) => p.name === name)?.containerPort;
expect(String(portOf("grpc")) === flags.grpc_port, "--grpc_port differs from the grpc container port");
expect(String(portOf("fastpath")) === flags.port, "--port differs from the fastpath container port");
if (flags.metrics_address) {
  expect(flags.metrics_address.endsWith(`:${portOf("metrics")}`),
         "--metrics_address differs from the metrics container port");
  // host:port, an IPv6 host in brackets (civetweb reads "::9090" as garbage).
  expect(/^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):\d+$/.test(flags.metrics_address),
         `--metrics_address=${flags.metrics_address} is not host:port or [IPv6]:port`);
}

const services = ofKind("Service");
const headless = services.find((s) => s.spec.clusterIP === "None");
const client = services.find((s) => s.spec.clusterIP !== "None");
expect(headless && headless.metadata.name === set.spec.serviceName,
       "the StatefulSet's serviceName is not a headless Service");
expect(client, "no client (ClusterIP/LoadBalancer/NodePort) Service");
for (const s of services) {
  expect(matches(s.spec.selector, podLabels), `Service ${s.metadata.name} does not select the pods`);
  for (const p of s.spec.ports) {
    expect(c.ports.some((cp) => cp.name === p.targetPort),
           `Service ${s.metadata.name} port ${p.name} targets no container port`);
  }
}
if (client) {
  const names = client.spec.ports.map((p) => `${p.name}:${p.port}`);
  for (const want of [`grpc:${portOf("grpc")}`, `fastpath:${portOf("fastpath")}`]) {
    expect(names.includes(want), `client Service lacks ${want} (has ${names})`);
  }
  if (flags.metrics_address) {
    expect(names.includes(`metrics:${portOf("metrics")}`), "client Service lacks the metrics port");
  }
}

// --- Probes: native gRPC on grpc.health.v1, plaintext port. ------------------------------------
const tls = "tls_cert" in flags;
const probePort = tls ? Number(flags.health_port) : portOf("grpc");
if (tls) {
  expect(flags.health_port && portOf("health") === Number(flags.health_port),
         "TLS on but no --health_port container port");
}
for (const kind of ["startupProbe", "readinessProbe", "livenessProbe"]) {
  expect(c[kind]?.grpc?.port === probePort,
         `${kind} must be a gRPC probe on port ${probePort}, is ${JSON.stringify(c[kind])}`);
}

// --- Shutdown: the grace period covers preStop + delay + drain. --------------------------------
const preStop = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
expect(!c.lifecycle?.preStop?.exec, "preStop exec needs a shell the image does not have");
const drain = preStop + seconds(flags.shutdown_delay) + seconds(flags.shutdown_grace);
expect(pod.spec.terminationGracePeriodSeconds > drain,
       `terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} <= ${drain}`);
// Health is NOT_SERVING from SIGTERM to exit. A kubelet that probes liveness on a terminating
// pod may see the first failure right after SIGTERM and kills at the failureThreshold-th, one
// period apart: that must come after the drain (delay + grace) is over.
const live = c.livenessProbe;
expect(live.periodSeconds * (live.failureThreshold - 1) >
         seconds(flags.shutdown_delay) + seconds(flags.shutdown_grace),
       "liveness could kill crabcached mid-drain (some kubelets probe terminating pods)");

// --- Memory: --max_memory derived from the limit, with headroom. --------------------------------
const limit = c.resources?.limits?.memory;
expect(limit, "no memory limit");
const maxMemory = Number(flags.max_memory);
expect(/^\d+$/.test(flags.max_memory), `--max_memory=${flags.max_memory} is not plain bytes`);
if (limit) {
  expect(maxMemory > 0 && maxMemory < bytes(limit),
         `--max_memory ${maxMemory} not below the ${limit} limit`);
  if (expectPercent !== null) {
    expect(maxMemory === Math.floor((bytes(limit) * expectPercent) / 100),
           `--max_memory ${maxMemory} != ${expectPercent}% of ${limit}`);
  }
}

if (expectQos !== null) {
  const qos = qosClass(pod.spec);
  expect(qos === expectQos, `the pods' QoS class is ${qos}, expected ${expectQos}`);
}

// --- Security. ------------------------------------------------------------------------------------
const psc = pod.spec.securityContext || {};
const sc = c.securityContext || {};
expect(psc.runAsNonRoot === true && psc.runAsUser > 0, "pod must run as a non-root uid");
expect(psc.seccompProfile?.type === "RuntimeDefault", "seccomp RuntimeDefault missing");
expect(sc.readOnlyRootFilesystem === true, "root filesystem not read-only");
expect(sc.allowPrivilegeEscalation === false, "privilege escalation allowed");
expect(JSON.stringify(sc.capabilities?.drop) === '["ALL"]', "capabilities not all dropped");
expect(pod.spec.automountServiceAccountToken === false, "service account token mounted");

// Flags that name files must point inside a mounted Secret.
for (const f of ["auth_token_file", "tls_cert", "tls_key", "tls_client_ca"]) {
  if (!(f in flags)) continue;
  const mount = c.volumeMounts.find((m) => flags[f].startsWith(`${m.mountPath}/`));
  const volume = mount && pod.spec.volumes.find((v) => v.name === mount.name);
  const item = volume?.secret?.items?.find((i) => flags[f] === `${mount.mountPath}/${i.path}`);
  expect(item && mount.readOnly, `--${f}=${flags[f]} is not a file of a read-only Secret mount`);
}

// --- Disruption budget, spreading, policy, monitoring. -----------------------------------------------
for (const pdb of ofKind("PodDisruptionBudget")) {
  expect(matches(pdb.spec.selector.matchLabels, podLabels), "PodDisruptionBudget misses the pods");
}
for (const t of pod.spec.topologySpreadConstraints || []) {
  expect(matches(t.labelSelector?.matchLabels, podLabels),
         `topology spread on ${t.topologyKey} does not select the pods`);
}
for (const np of ofKind("NetworkPolicy")) {
  expect(matches(np.spec.podSelector.matchLabels, podLabels), "NetworkPolicy misses the pods");
  const ports = np.spec.ingress.flatMap((r) => (r.ports || []).map((p) => p.port));
  for (const p of ["grpc", "fastpath"]) expect(ports.includes(p), `NetworkPolicy does not admit ${p}`);
  if (tls) expect(ports.includes("health"), "NetworkPolicy blocks the health port");
}
for (const sm of ofKind("ServiceMonitor")) {
  const selected = services.filter((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
  expect(selected.length === 1 && selected[0] === headless,
         "ServiceMonitor must select exactly the headless Service (one target per pod)");
}

// --- helm test: hook pod, hardened, one check per pod DNS name, in sequence. ---------------------
const tests = ofKind("Pod").filter((p) => p.metadata.annotations?.["helm.sh/hook"] === "test");
for (const t of tests) {
  for (const s of services) {
    expect(!matches(s.spec.selector, t.metadata.labels), `Service ${s.metadata.name} selects the test pod`);
  }
  for (const pdb of ofKind("PodDisruptionBudget")) {
    expect(!matches(pdb.spec.selector.matchLabels, t.metadata.labels), "the PDB counts the test pod");
  }
  const tsc = t.spec.securityContext || {};
  expect(tsc.runAsNonRoot === true, "test pod not non-root");
  expect(t.spec.restartPolicy === "Never", "test pod must not restart");
  // Checks run one after another (init containers, then the one container), so the pod requests
  // what one check does (the largest init container, not a sum) for any replica count.
  expect(t.spec.containers.length === 1,
         `helm test pod has ${t.spec.containers.length} containers; N checks must not run side by side`);
  const checks = [...(t.spec.initContainers || []), ...t.spec.containers];
  expect(checks.length === set.spec.replicas,
         `helm test runs ${checks.length} checks for ${set.spec.replicas} pods`);
  for (let i = 0; i < set.spec.replicas; i++) {
    const host = `${set.metadata.name}-${i}.${headless.metadata.name}`;
    const check = checks.find((x) => x.name === `health-${i}`);
    expect(check && JSON.stringify(check.command).includes(`${host}:`),
           `helm test does not check ${host} (container health-${i})`);
  }
}

for (const p of problems) console.error(`FAIL ${p}`);
console.log(`${file}: ${checks} checks on ${objects.length} objects, ${problems.length} failed` +
            `${tests.length ? "" : " (no helm test pod rendered)"}`);
process.exit(problems.length ? 1 : 0);
