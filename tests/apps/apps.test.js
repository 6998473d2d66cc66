// clip-burn in real web apps, the way a user gets it: `npm pack` the package (after
// scripts/build-wasm.sh), copy the apps here (tests/apps/) to a temporary folder, `npm ci` their
// pinned tools (package-lock.json: Vite 8, Vite 7, webpack 5, TypeScript; from the npm cache after
// the first run), `npm install` the tarball, then build and serve each app and open it in headless
// Chromium (Debian's, no WebGPU adapter: the CPU backend), where it classifies 4 example pictures of
// the default model (models/synth), as HTMLImageElement and as Blob, with Clip and with ClipWorker,
// loading the weights by a URL relative to the page. Apps:
//   - Vite 8: dev server, and production build (`vite build` + `vite preview`); its TypeScript
//     type-checks with `tsc --strict`;
//     the build also runs with workerUrl and wasmUrl from the exported entries (?override);
//   - Vite 7: dev server with the one setting README asks of it (optimizeDeps.exclude), and
//     production build with none;
//   - webpack 5 production build, no configuration for clip-burn;
//   - a page with no bundler (an import map to node_modules, a static server).
// The last two are served cross-origin isolated (web/serve.js): there the CPU path runs the
// threaded module and its pool workers as the bundler (or the import map) left them.
// Run by scripts/test-browser.sh (node --test tests/apps/).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { cp, mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "../browser/browser.js";
import { serve } from "../../web/serve.js";

const APPS = dirname(fileURLToPath(import.meta.url));
const ROOT = join(APPS, "../..");
const MODEL = join(ROOT, "models/synth");
const PICTURES = ["red_cross", "green_star", "cyan_ring", "brown_hexagon"];
const PAGE_TIMEOUT = 240_000;
const NPM_FLAGS = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"];

let work, apps, context;
const started = Date.now();

function seconds(t0) {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

function run(cmd, args, cwd) {
  const t0 = Date.now();
  try {
    const out = execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
    console.log(`  ${cmd} ${args.join(" ")} (${seconds(t0)})`);
    return out;
  } catch (e) {
    throw new Error(`${cmd} ${args.join(" ")} failed in ${cwd}:\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  }
}

/** The default model's files an app serves next to its page. */
async function addModel(dir) {
  await mkdir(join(dir, "examples"), { recursive: true });
  for (const f of ["clip-synth.bpk", "classnames.txt", "templates.txt"]) await cp(join(MODEL, f), join(dir, f));
  for (const p of PICTURES) await cp(join(MODEL, "examples", `${p}.png`), join(dir, "examples", `${p}.png`));
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "clip-burn-apps-"));
  apps = join(work, "apps");
  const [{ filename }] = JSON.parse(run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work], ROOT));
  for (const f of ["package.json", "package-lock.json", "shared", "vite", "webpack", "plain"]) {
    await cp(join(APPS, f), join(apps, f), { recursive: true, filter: (src) => !/[/\\](node_modules|dist)$/.test(src) });
  }
  run("npm", ["ci", ...NPM_FLAGS], apps);
  run("npm", ["install", "--no-save", ...NPM_FLAGS, join(work, filename)], apps);
  await addModel(join(apps, "vite/public"));
  await addModel(join(apps, "plain"));
  ({ context } = await launch({ gpu: false }));
});

after(async () => {
  await context?.close();
  if (work) await rm(work, { recursive: true, force: true });
  console.log(`consumer apps: ${seconds(started)} in all`);
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts a server process (a Vite CLI) and resolves once `url` answers. */
async function startProcess(args, cwd, url) {
  const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(" ")} exited (${child.exitCode}):\n${log}`);
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill();
      throw new Error(`${args.join(" ")} did not serve ${url} within 60 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { stop: () => child.kill(), log: () => log };
}

/** Opens the app in Chromium and returns what it computed (window.appResult). */
async function openApp(url, serverLog = () => "") {
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => r.status() >= 400 && !r.url().endsWith("/favicon.ico") && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  const t0 = Date.now();
  try {
    await page.goto(url);
    await page.waitForFunction(() => window.appResult !== undefined || window.appError !== undefined, null, { timeout: PAGE_TIMEOUT });
    const { result, error } = await page.evaluate(() => ({ result: window.appResult, error: window.appError }));
    if (error !== undefined) throw new Error(`the app failed: ${error}\n${problems.join("\n")}\n${serverLog()}`);
    console.log(`  ${url}: classified in ${seconds(t0)}`);
    return { result, problems };
  } catch (e) {
    if (e.message.startsWith("the app failed")) throw e;
    throw new Error(`${e.message}\n${problems.join("\n")}\n${serverLog()}`);
  } finally {
    await page.close();
  }
}

/**
 * Every picture's top-1 label, on the page and in the worker, as an image and as a Blob.
 * `isolated`: the server sends COOP/COEP (web/serve.js), so the CPU path runs the threaded module
 * as bundled; Vite's servers do not, so it runs on one thread and says why.
 */
function check({ result: r, problems }, { isolated = false } = {}) {
  for (const [where, rows] of [["Clip", r.inPage], ["ClipWorker", r.inWorker]]) {
    assert.equal(rows.length, 2 * PICTURES.length, where);
    for (const row of rows) assert.equal(row.label, row.picture.replace("_", " "), `${where}, ${row.picture} as ${row.kind}: ${JSON.stringify(row)}`);
  }
  r.inWorker.forEach((w, i) => assert.ok(Math.abs(w.score - r.inPage[i].score) < 1e-5, `worker and page agree: ${JSON.stringify([w, r.inPage[i]])}`));
  assert.equal(r.backend, "cpu", "no WebGPU adapter: the CPU");
  assert.equal(r.workerBackend, "cpu");
  assert.deepEqual(r.afterDispose, { backend: "cpu", disposed: true, error: "this Clip was disposed" });
  if (isolated) {
    assert.ok(r.threads.page >= 2 && r.threads.worker >= 2, `the threaded module, bundled: ${JSON.stringify(r.threads)}`);
    assert.equal(r.threads.pageReason, null);
  } else {
    assert.deepEqual([r.threads.page, r.threads.worker], [1, 1]);
    assert.match(r.threads.pageReason, /^the page is not cross-origin isolated/);
  }
  assert.deepEqual(problems, [], "no errors on the page, no failed requests");
}

test("Vite 8 app: TypeScript checks with --strict", () => {
  run(process.execPath, [join(apps, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], join(apps, "vite"));
});

test("Vite 8 app: dev server", { timeout: PAGE_TIMEOUT + 90_000 }, async () => {
  const url = `http://127.0.0.1:${await freePort()}/`;
  const server = await startProcess([join(apps, "node_modules/vite/bin/vite.js"), "--host", "127.0.0.1", "--port", new URL(url).port, "--strictPort"], join(apps, "vite"), url);
  try {
    check(await openApp(url, server.log));
  } finally {
    server.stop();
  }
});

test("Vite 8 app: production build (vite build + vite preview); also with workerUrl and wasmUrl from the exported entries", { timeout: 2 * PAGE_TIMEOUT + 180_000 }, async () => {
  run(process.execPath, [join(apps, "node_modules/vite/bin/vite.js"), "build"], join(apps, "vite"));
  const url = `http://127.0.0.1:${await freePort()}/`;
  const server = await startProcess([join(apps, "node_modules/vite/bin/vite.js"), "preview", "--host", "127.0.0.1", "--port", new URL(url).port, "--strictPort"], join(apps, "vite"), url);
  try {
    const plain = await openApp(url, server.log);
    check(plain);
    assert.deepEqual(plain.result.overrides, {});
    const overridden = await openApp(`${url}?override`, server.log);
    check(overridden);
    assert.match(overridden.result.overrides.workerUrl, /^\/assets\/worker-.*\.js$/, "clip-burn/worker-script?worker&url");
    assert.match(overridden.result.overrides.wasmUrl, /^\/assets\/clip_wasm_bg-.*\.wasm$/, "clip-burn/clip_wasm_bg.wasm?url");
  } finally {
    server.stop();
  }
});

test("Vite 7 app: production build (vite build + vite preview), no setting", { timeout: PAGE_TIMEOUT + 180_000 }, async () => {
  const vite7 = join(apps, "node_modules/vite7/bin/vite.js");
  run(process.execPath, [vite7, "build", "--outDir", "dist7"], join(apps, "vite"));
  const url = `http://127.0.0.1:${await freePort()}/`;
  const server = await startProcess([vite7, "preview", "--outDir", "dist7", "--host", "127.0.0.1", "--port", new URL(url).port, "--strictPort"], join(apps, "vite"), url);
  try {
    check(await openApp(url, server.log));
  } finally {
    server.stop();
  }
});

test("Vite 7 app: dev server with optimizeDeps.exclude", { timeout: PAGE_TIMEOUT + 90_000 }, async () => {
  const url = `http://127.0.0.1:${await freePort()}/`;
  const vite7 = join(apps, "node_modules/vite7/bin/vite.js");
  const server = await startProcess([vite7, "--config", "vite7.config.js", "--host", "127.0.0.1", "--port", new URL(url).port, "--strictPort"], join(apps, "vite"), url);
  try {
    check(await openApp(url, server.log));
  } finally {
    server.stop();
  }
});

test("webpack 5 app: production build", { timeout: PAGE_TIMEOUT + 180_000 }, async () => {
  const dir = join(apps, "webpack");
  run(process.execPath, ["build.js"], dir);
  await addModel(join(dir, "dist"));
  const { server, url } = await serve(join(dir, "dist"));
  try {
    check(await openApp(`${url}/`), { isolated: true });
  } finally {
    server.close();
  }
});

test("a page with no bundler (import map, static server)", { timeout: PAGE_TIMEOUT + 30_000 }, async () => {
  const { server, url } = await serve(apps);
  try {
    check(await openApp(`${url}/plain/`), { isolated: true });
  } finally {
    server.close();
  }
});
