// Builds the demo page into web/dist/: the page's own files (src/), the installed npm package
// `clip-burn` (the files it publishes, as any app would get them, with an import map from its
// `exports`), and the default model (models/synth/: weights as the f16 file and an int8 file made
// here with the native CLI, class names, templates, examples) with a manifest the page reads.
// Run `npm ci` here first (links the package from the repo root); the native CLI is found at
// $CLIP_BURN_BIN or in the cargo target dir (scripts/demo.sh builds it when missing).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const WEB = dirname(fileURLToPath(import.meta.url));
const MODEL = join(WEB, "../models/synth");
const PACKAGE = join(WEB, "node_modules/clip-burn");
const VENDOR = "vendor/clip-burn";

async function exists(path) {
  return stat(path).then(() => true, () => false);
}

/** Copies what the package publishes (its `files`) and returns the import map of its `exports`. */
async function vendorPackage(dist) {
  if (!(await exists(join(PACKAGE, "package.json")))) {
    throw new Error(`${PACKAGE} is missing: run \`npm ci\` in web/ first (scripts/demo.sh does)`);
  }
  const pkg = JSON.parse(await readFile(join(PACKAGE, "package.json"), "utf8"));
  for (const entry of pkg.files) {
    const from = join(PACKAGE, entry);
    if (!(await exists(from))) throw new Error(`clip-burn publishes ${entry}, which is missing: build the package first (scripts/build-wasm.sh)`);
    await cp(from, join(dist, VENDOR, entry), { recursive: true });
  }
  const imports = {};
  for (const [key, target] of Object.entries(pkg.exports)) {
    imports[key === "." ? pkg.name : `${pkg.name}/${key.slice(2)}`] = `./${VENDOR}/${target.default.replace(/^\.\//, "")}`;
  }
  return { imports };
}

function lines(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

/** The native CLI `clip-burn`: $CLIP_BURN_BIN, else the debug build in the cargo target dir. */
export function clipBurnBin() {
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/clip-burn/target");
  const bin = process.env.CLIP_BURN_BIN ?? join(target, "debug/clip-burn");
  if (!existsSync(bin)) {
    throw new Error(`the native CLI ${bin} is missing (it makes the demo's int8 weights): run scripts/demo.sh, which builds it, or set CLIP_BURN_BIN`);
  }
  return bin;
}

/** A weights file of the manifest: where it is, its size and digest. */
function weightsEntry(dtype, url, bytes, about) {
  return { dtype, url, bytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex"), about };
}

/**
 * Copies the default model, writes its int8 file (`clip-burn convert --dtype int8` of the f16
 * one) and models/default.json, which the page reads on start.
 */
async function defaultModel(dist) {
  const out = join(dist, "models/synth");
  await mkdir(join(out, "examples"), { recursive: true });
  const weights = await readFile(join(MODEL, "clip-synth.bpk"));
  await writeFile(join(out, "clip-synth.bpk"), weights);
  const int8Path = join(out, "clip-synth-int8.bpk");
  execFileSync(clipBurnBin(), ["--device", "cpu", "convert", "--weights", join(MODEL, "clip-synth.bpk"), "--dtype", "int8", "--out", int8Path], { stdio: "pipe" });
  const int8 = await readFile(int8Path);
  const examples = (await readdir(join(MODEL, "examples"))).filter((f) => f.endsWith(".png")).sort();
  for (const f of examples) await cp(join(MODEL, "examples", f), join(out, "examples", f));
  const manifest = {
    name: "synth",
    description: "a small CLIP trained from scratch by clip-burn train on 8 shapes in 8 colours (ModifiedResNet, 64 px)",
    // The first is loaded on start; the page lists each with its size.
    files: [
      weightsEntry("f16", "models/synth/clip-synth.bpk", weights, "f16 weights"),
      weightsEntry("int8", "models/synth/clip-synth-int8.bpk", int8, "int8 weights with a scale per output channel, widened to f32 on load"),
    ],
    labels: lines(await readFile(join(MODEL, "classnames.txt"), "utf8")),
    templates: lines(await readFile(join(MODEL, "templates.txt"), "utf8")),
    examples: examples.map((f) => ({ url: `models/synth/examples/${f}`, alt: f.replace(/\.png$/, "").replaceAll("_", " ") })),
  };
  await writeFile(join(dist, "models/default.json"), JSON.stringify(manifest, null, 2));
}

/** Writes the whole page to `dist` (default web/dist) and returns its path. */
export async function build(dist = join(WEB, "dist")) {
  await rm(dist, { recursive: true, force: true });
  await cp(join(WEB, "src"), dist, { recursive: true });
  const importMap = await vendorPackage(dist);
  const html = await readFile(join(dist, "index.html"), "utf8");
  if (!html.includes("<!-- importmap -->")) throw new Error("src/index.html lacks the <!-- importmap --> placeholder");
  const script = `<script type="importmap">${JSON.stringify(importMap)}</script>`;
  await writeFile(join(dist, "index.html"), html.replace("<!-- importmap -->", script));
  await defaultModel(dist);
  return dist;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dist = await build();
  console.log(`built ${dist}`);
}
