// The demo page: wires the controls to the model. Loads the default model (a small CLIP this
// project trained, served beside the page) on open; every image source ends in `classify`.
import { COLOURS, drawingPad } from "./draw.js";
import { imageInputs } from "./inputs.js";
import { parseLabels, templateChoices, templatesFor } from "./labels.js";
import { classifyTimed, forgetCachedWeights, loadModel } from "./model.js";
import { duration, megabytes, setBusy, showModel, showResult } from "./results.js";

const $ = (id) => document.getElementById(id);
const state = {
  defaults: null, // models/default.json, written by the build
  model: null, // { clip, spec, requested (backend choice), loadMs, bytes, weightsDeleted }: the model in use
  loading: null, // the load in progress (a promise of state.model)
  image: null, // { input: Blob | canvas, url, source }: what was classified last
  run: 0, // the newest classification: older ones finishing late are not shown
};

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// ---- model -------------------------------------------------------------------------------

/** The default model in the weights file chosen in the list (f16 or int8). */
function defaultSpec() {
  const d = state.defaults;
  const file = d.files.find((f) => f.dtype === $("default-weights").value) ?? d.files[0];
  // A URL the worker resolves the same way: relative ones would resolve against its script.
  const weights = new URL(file.url, document.baseURI).href;
  return { weights, sha256: file.sha256, name: `the default model (${d.name})`, about: `${d.description}, ${file.about}` };
}

/** The list of the default model's weights files, with their sizes. */
function weightsChoices(files) {
  $("default-weights").replaceChildren(...files.map((f) => new Option(`Default model, ${f.dtype} (${megabytes(f.bytes)})`, f.dtype)));
}

const READING = { network: "Downloading weights", cache: "Reading weights from this browser's cache", memory: "Reading weights" };

function progress(loaded, total, source) {
  const bar = $("weights-progress");
  bar.classList.remove("done");
  if (total) bar.value = loaded / total;
  else bar.removeAttribute("value"); // unknown size: indeterminate
  $("model-status").textContent = `${READING[source] ?? "Loading weights"}: ${megabytes(loaded)}${total ? ` of ${megabytes(total)}` : ""}…`;
}

const loadControls = () => [$("load-own"), $("load-default"), $("default-weights"), $("backend"), $("clear-weights")];

/** Loads a model ({ weights, model, sha256, name }); on failure the previous one stays in use. */
async function useModel(spec) {
  for (const c of loadControls()) c.disabled = true;
  const backend = $("backend").value;
  showError("");
  $("weights-progress").value = 0;
  $("model-status").textContent = `Loading ${spec.name}…`;
  let bytes = 0;
  const loading = loadModel({ ...spec, backend }, (loaded, total, source) => {
    bytes = loaded;
    progress(loaded, total, source);
  }).then(({ clip, loadMs }) => ({ clip, spec, requested: backend, loadMs, bytes }));
  state.loading = loading;
  try {
    const model = await loading;
    state.model?.clip.dispose();
    state.model = model;
    $("weights-progress").value = 1;
    $("weights-progress").classList.add("done");
    const threads = model.clip.threads === 1 ? "one thread" : `${model.clip.threads} threads`;
    const why = model.clip.threadsReason && model.clip.backend !== "webgpu" ? ` (${model.clip.threadsReason})` : "";
    const runsOn = model.clip.backend === "webgpu" ? "WebGPU" : `the CPU on ${threads}${why}`;
    const about = spec.about ? `, ${spec.about}` : "";
    const from = { cache: " from this browser's cache", network: " from the network", memory: " from the file" }[model.clip.stats.weights.source] ?? "";
    $("model-status").textContent = `Ready: ${spec.name}${about}. ${megabytes(bytes)} loaded in ${duration(model.loadMs)}${from}, running on ${runsOn}.`;
    showModel(model);
    const w = model.clip.stats.weights;
    if (w.source !== "memory") {
      $("weights-cache").textContent = w.cached
        ? "Weights are kept in this browser's Cache Storage: the next visit reads them from disk."
        : `Weights are not cached in this browser: ${w.reason}.`;
    }
    document.body.dataset.ready = "true";
    if (state.image) classify();
  } catch (e) {
    showError(`Could not load ${spec.name}: ${e.message}`);
    $("model-status").textContent = state.model ? `Still using ${state.model.spec.name}.` : "No model loaded.";
    if (state.model) $("backend").value = state.model.requested;
    $("weights-progress").classList.add("done");
  } finally {
    if (state.loading === loading) state.loading = null;
    for (const c of loadControls()) c.disabled = false;
  }
}

/** The own-weights form as a model spec, or an Error saying what is missing. */
async function ownSpec() {
  const url = $("weights-url").value.trim();
  const file = $("weights-file").files[0];
  const name = $("model-name").value.trim();
  const config = $("config-file").files[0];
  if (!url && !file) throw new Error("Give a weights URL or choose a weights file.");
  if (url && file) throw new Error("Give either a weights URL or a weights file, not both.");
  if (name && config) throw new Error("Give either a model name or a config file, not both.");
  return { weights: file ?? new URL(url, document.baseURI).href, model: config ? await config.text() : name || undefined, name: file ? file.name : url };
}

/** Deletes the weights kept in Cache Storage (the model in use stays loaded). */
async function forgetWeights() {
  showError("");
  try {
    const freed = await forgetCachedWeights();
    $("weights-cache").textContent = freed
      ? `Deleted ${megabytes(freed)} of cached weights: the next visit downloads them again.`
      : "No weights were cached.";
    if (state.model) {
      state.model.weightsDeleted = true;
      showModel(state.model);
    }
  } catch (e) {
    showError(e.message);
  }
}

// ---- classification ----------------------------------------------------------------------

/** Classifies `image` (or the last image again) against the labels and template shown. */
async function classify(image) {
  if (image) {
    if (state.image?.url.startsWith("blob:")) URL.revokeObjectURL(state.image.url);
    state.image = image;
  }
  if (!state.image) return;
  const labels = parseLabels($("labels").value);
  if (!labels.length) return showError("Give at least one label.");
  const templates = templatesFor($("template").value, state.defaults.templates);
  const run = ++state.run;
  const shown = state.image;
  showError("");
  setBusy(true);
  try {
    if (state.loading) await state.loading.catch(() => {});
    if (!state.model) throw new Error("no model is loaded");
    const result = await classifyTimed(state.model.clip, shown.input, labels, templates);
    if (run === state.run) showResult(shown, result, state.model);
  } catch (e) {
    if (run === state.run) showError(`Could not classify ${shown.source}: ${e.message}`);
  } finally {
    if (run === state.run) setBusy(false);
  }
}

function classifyFile(file, source) {
  classify({ input: file, url: URL.createObjectURL(file), source });
}

function classifyDrawing() {
  classify({ input: $("canvas"), url: $("canvas").toDataURL(), source: "your drawing" });
}

// ---- controls ----------------------------------------------------------------------------

function exampleButtons(examples) {
  const buttons = examples.map(({ url, alt }) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.append(Object.assign(document.createElement("img"), { src: url, alt: `example ${alt}`, width: 48, height: 48 }));
    button.addEventListener("click", async () => {
      for (const b of buttons) b.setAttribute("aria-pressed", String(b === button));
      try {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        classify({ input: await res.blob(), url, source: `example ${alt}` });
      } catch (e) {
        showError(`Could not fetch the example ${url}: ${e.message}`);
      }
    });
    return button;
  });
  $("examples").replaceChildren(...buttons);
}

function colourChoices() {
  $("colours").append(...COLOURS.map(([name, rgb], i) => {
    const label = document.createElement("label");
    const input = Object.assign(document.createElement("input"), { type: "radio", name: "colour", value: name, checked: i === 0 });
    const swatch = Object.assign(document.createElement("span"), { className: "swatch", style: `background: rgb(${rgb.join(",")})` });
    swatch.setAttribute("aria-hidden", "true");
    label.append(input, swatch, name);
    return label;
  }));
}

function drawSettings() {
  const colour = document.querySelector('input[name="colour"]:checked').value;
  return {
    colour: COLOURS.find(([name]) => name === colour)[1],
    tool: document.querySelector('input[name="tool"]:checked').value,
    size: Number($("brush-size").value),
  };
}

async function start() {
  const res = await fetch("models/default.json");
  if (!res.ok) throw new Error(`models/default.json: HTTP ${res.status} (was the page built with web/build.js?)`);
  state.defaults = await res.json();
  $("labels").value = state.defaults.labels.join("\n");
  $("template").replaceChildren(...templateChoices(state.defaults.templates).map(({ value, text }) => new Option(text, value)));
  $("examples-hint").textContent = `Pictures of the ${state.defaults.examples.length} colour-shape pairs the default model never saw in training.`;
  exampleButtons(state.defaults.examples);
  weightsChoices(state.defaults.files);
  colourChoices();

  const pad = drawingPad($("canvas"), $("cursor"), drawSettings, classifyDrawing);
  $("clear-drawing").addEventListener("click", pad.clear);
  $("classify-drawing").addEventListener("click", classifyDrawing);
  imageInputs({ fileInput: $("image-file"), dropzone: $("dropzone") }, classifyFile);
  $("classify").addEventListener("click", () => classify());
  $("template").addEventListener("change", () => classify());
  $("labels").addEventListener("keydown", (e) => e.key === "Enter" && (e.ctrlKey || e.metaKey) && classify());
  $("backend").addEventListener("change", () => useModel(state.model?.spec ?? defaultSpec()));
  $("load-default").addEventListener("click", () => useModel(defaultSpec()));
  $("default-weights").addEventListener("change", () => useModel(defaultSpec()));
  $("clear-weights").addEventListener("click", forgetWeights);
  $("own-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await useModel(await ownSpec());
    } catch (err) {
      showError(err.message);
    }
  });

  await useModel(defaultSpec());
}

start().catch((e) => showError(e.message));
