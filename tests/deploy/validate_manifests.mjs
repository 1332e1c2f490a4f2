// Validates rendered Kubernetes manifests offline against the API's schemas.
//
//   node tests/deploy/validate_manifests.mjs FILE.yaml...
//
// Each object is checked twice:
//  1. kubernetes-models' validate(): the JSON schemas of the Kubernetes API (types, formats,
//     enums, required fields, quantities), e.g. a string `replicas` or "1 GB" as a memory limit.
//     ServiceMonitor comes from @kubernetes-models/prometheus-operator.
//  2. Unknown fields: those schemas allow extra properties (the API server's strict field
//     validation does not), so a misindented template key would pass unnoticed. The walker below
//     follows the models' type declarations (*.d.ts, which list every field of every type) and
//     rejects any key they do not declare.
// Exit status 1 on any problem; every problem is printed with its object and path.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);

// apiVersion -> [package, module path inside it].
function modelModule(apiVersion) {
  if (apiVersion === "monitoring.coreos.com/v1") {
    return ["@kubernetes-models/prometheus-operator", "monitoring.coreos.com/v1"];
  }
  return ["kubernetes-models", apiVersion]; // "v1", "apps/v1", "policy/v1", ...
}

function packageDir(pkg) {
  return path.dirname(require.resolve(`${pkg}/package.json`));
}

// --- Type declarations: interface name -> {prop -> type text}, with the file's imports. ----------

const declCache = new Map();

function parseDecl(file) {
  if (declCache.has(file)) return declCache.get(file);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g)) {
    for (const name of m[1].split(",").map((s) => s.trim())) {
      imports.set(name, m[2]);
    }
  }
  // The first interface of the file is the type itself (the class that follows repeats it).
  const body = text.match(/export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)\n\}/);
  let props = null;
  if (body) {
    props = new Map();
    // Strip comments and line breaks, then read the `"name"?: Type;` members in order. An
    // inline map type `{ [key: string]: T; }` is cut at its `;`, which is harmless: it is not a
    // declared type, so its values are not walked.
    const members = body[1].replace(/\/\*[\s\S]*?\*\//g, "").replace(/\s+/g, " ");
    for (const m of members.matchAll(/"([^"]+)"\??: ([^;]+);/g)) {
      props.set(m[1], m[2].trim());
    }
  }
  const decl = { file, imports, props };
  declCache.set(file, decl);
  return decl;
}

function resolveImport(fromFile, spec) {
  let target;
  if (spec.startsWith(".")) {
    target = path.resolve(path.dirname(fromFile), spec);
  } else {
    const parts = spec.split("/");
    const pkgName = spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
    const rest = parts.slice(spec.startsWith("@") ? 2 : 1).join("/");
    target = path.join(packageDir(pkgName), rest);
  }
  return target.replace(/\.js$/, "") + ".d.ts";
}

// Reports keys of `value` that its declared type does not have, recursively.
function checkUnknown(decl, value, where, problems) {
  if (!decl.props || value === null || typeof value !== "object" || Array.isArray(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const type = decl.props.get(key);
    if (type === undefined) {
      problems.push(`${where}.${key}: unknown field (not in ${path.basename(decl.file, ".d.ts")})`);
      continue;
    }
    const arrayOf = type.match(/^Array<(\w+)>$/);
    const ref = arrayOf ? arrayOf[1] : type;
    if (!decl.imports.has(ref)) continue; // A scalar, an enum, a map or an inline type.
    const childDecl = parseDecl(resolveImport(decl.file, decl.imports.get(ref)));
    if (arrayOf && Array.isArray(child)) {
      child.forEach((item, i) => checkUnknown(childDecl, item, `${where}.${key}[${i}]`, problems));
    } else {
      checkUnknown(childDecl, child, `${where}.${key}`, problems);
    }
  }
}

// --- Main -------------------------------------------------------------------------------------

async function validateObject(obj, label, problems) {
  if (!obj || typeof obj !== "object" || !obj.apiVersion || !obj.kind) {
    problems.push(`${label}: not a Kubernetes object (no apiVersion/kind)`);
    return;
  }
  const [pkg, mod] = modelModule(obj.apiVersion);
  let Model;
  try {
    Model = (await import(`${pkg}/${mod}`))[obj.kind];
  } catch (e) {
    Model = undefined;
  }
  if (!Model) {
    problems.push(`${label}: no schema for ${obj.apiVersion} ${obj.kind}`);
    return;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    problems.push(`${label}: ${e.message}`);
  }
  const decl = parseDecl(path.join(packageDir(pkg), mod, `${obj.kind}.d.ts`));
  checkUnknown(decl, obj, label, problems);
}

async function main() {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: validate_manifests.mjs FILE.yaml...");
    process.exit(2);
  }
  const problems = [];
  let count = 0;
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
      if (doc.errors.length) {
        problems.push(`${file}: YAML error: ${doc.errors[0].message}`);
        continue;
      }
      const obj = doc.toJS();
      if (obj === null) continue; // An empty document (a template that rendered nothing).
      const label = `${file}: ${obj.kind}/${obj.metadata?.name}`;
      await validateObject(obj, label, problems);
      count++;
    }
  }
  for (const p of problems) console.error(`FAIL ${p}`);
  if (count === 0) problems.push("no objects found");
  console.log(`validated ${count} objects from ${files.length} file(s): ${problems.length} problem(s)`);
  process.exit(problems.length ? 1 : 0);
}

await main();
