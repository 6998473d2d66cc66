// What `npm publish` would ship: packs the package (`npm pack --dry-run`, after
// scripts/build-wasm.sh) and checks that the tarball holds exactly the files the package needs:
// its modules, their types, the wasm-bindgen glue and module, the licences and notices; that every
// `exports` target, `main` and `types` is in it; and that every relative import and
// `new URL(..., import.meta.url)` in the shipped JavaScript finds its file in it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

const EXPECTED = [
  "LICENSE-APACHE",
  "LICENSE-MIT",
  "README.md",
  "THIRD-PARTY-NOTICES.md",
  "js/index.d.ts",
  "js/index.js",
  "js/pool-worker.js",
  "js/threads.js",
  "js/weights-cache.js",
  "js/worker-client.d.ts",
  "js/worker-client.js",
  "js/worker.js",
  "package.json",
  "pkg-cpu/clip_wasm.d.ts",
  "pkg-cpu/clip_wasm.js",
  "pkg-cpu/clip_wasm_bg.wasm",
  "pkg-threads/clip_wasm.d.ts",
  "pkg-threads/clip_wasm.js",
  "pkg-threads/clip_wasm_bg.wasm",
  "pkg/clip_wasm.d.ts",
  "pkg/clip_wasm.js",
  "pkg/clip_wasm_bg.wasm",
];

function packList() {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const [info] = JSON.parse(out);
  return info;
}

test("the npm tarball holds exactly what the package needs", () => {
  const info = packList();
  const files = info.files.map((f) => f.path).sort();
  const missing = EXPECTED.filter((f) => !files.includes(f));
  assert.deepEqual(missing, [], `missing from the tarball${missing.some((f) => f.startsWith("pkg/")) ? " (build pkg/ first: scripts/build-wasm.sh)" : ""}: ${missing.join(", ")}`);
  assert.deepEqual(files, EXPECTED, "the tarball holds other files than the package needs");
  const sizes = Object.fromEntries(info.files.map((f) => [f.path, f.size]));
  for (const f of EXPECTED) assert.ok(sizes[f] > 0, `${f} is empty`);
  const wasm = readFileSync(join(ROOT, "pkg/clip_wasm_bg.wasm"));
  assert.deepEqual([...wasm.subarray(0, 4)], [0, 0x61, 0x73, 0x6d], "pkg/clip_wasm_bg.wasm is a WebAssembly module");
  console.log(`tarball ${info.filename}: ${info.files.length} files, ${(info.size / 1048576).toFixed(1)} MiB packed, ${(info.unpackedSize / 1048576).toFixed(1)} MiB unpacked`);
});

test("package.json: exports, main, types and the licence files name shipped files", () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const shipped = new Set(EXPECTED);
  const targets = [pkg.main, pkg.types];
  for (const [key, value] of Object.entries(pkg.exports)) {
    assert.ok(key === "." || key.startsWith("./"), `exports key ${key}`);
    const conditions = typeof value === "string" ? { default: value } : value;
    assert.ok(conditions.default, `exports["${key}"] has a default condition`);
    targets.push(...Object.values(conditions));
  }
  for (const t of targets) assert.ok(shipped.has(normalize(t)), `${t} (package.json) is not in the tarball`);
  assert.equal(pkg.exports["./worker"].default, "./js/worker-client.js");
  assert.equal(pkg.exports["./worker-script"].default, "./js/worker.js", "the worker's entry is exported, for workerUrl");
  for (const f of ["LICENSE-MIT", "LICENSE-APACHE", "THIRD-PARTY-NOTICES.md"]) assert.ok(pkg.files.includes(f), `files names ${f}`);
  assert.equal(pkg.license, "MIT OR Apache-2.0");
  assert.match(readFileSync(join(ROOT, "LICENSE-MIT"), "utf8"), /^MIT License/);
  assert.match(readFileSync(join(ROOT, "LICENSE-APACHE"), "utf8"), /Apache License\s+Version 2\.0, January 2004/);
  const notices = readFileSync(join(ROOT, "THIRD-PARTY-NOTICES.md"), "utf8");
  for (const needle of ["open_clip", "Copyright (c) 2021 OpenAI", "based in part on the work of the Independent JPEG Group", "zune-jpeg", "burn-flex"]) {
    assert.ok(notices.includes(needle), `THIRD-PARTY-NOTICES.md mentions ${needle}`);
  }
});

test("every relative module and asset the shipped JavaScript names is shipped", () => {
  const shipped = new Set(EXPECTED);
  for (const file of EXPECTED.filter((f) => f.endsWith(".js"))) {
    assert.ok(existsSync(join(ROOT, file)), `${file} is missing (build pkg/ first: scripts/build-wasm.sh)`);
    const src = readFileSync(join(ROOT, file), "utf8");
    const refs = [
      ...[...src.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["'](\.[^"']+)["']/g)].map((m) => m[1]),
      ...[...src.matchAll(/new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g)].map((m) => m[1]),
    ];
    for (const ref of refs) {
      const target = normalize(join(dirname(file), ref));
      assert.ok(shipped.has(target), `${file} names ${ref} (${target}), which is not in the tarball`);
    }
  }
});
