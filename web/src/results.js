// The result panel: the classified image, ranked labels with probability bars, and timings.
const SHOWN = 10;
const $ = (id) => document.getElementById(id);

export function duration(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function percent(score) {
  return `${(score * 100).toFixed(score >= 0.9995 || score < 0.0005 ? 1 : 2)}%`;
}

function row({ label, score }) {
  const li = document.createElement("li");
  Object.assign(li.dataset, { label, score: String(score) });
  const name = Object.assign(document.createElement("span"), { className: "label", textContent: label, title: label });
  const bar = Object.assign(document.createElement("span"), { className: "bar" });
  bar.setAttribute("aria-hidden", "true");
  bar.append(Object.assign(document.createElement("span"), { style: `width: ${(score * 100).toFixed(2)}%` }));
  const pct = Object.assign(document.createElement("span"), { className: "pct", textContent: percent(score) });
  li.append(name, bar, pct);
  return li;
}

/** Marks the panel busy while a classification runs. */
export function setBusy(busy) {
  $("result").classList.toggle("busy", busy);
  $("result").setAttribute("aria-busy", String(busy));
}

/** Shows a ranking for `image` ({ url, source }), the timings of the run that made it, and its model. */
export function showResult(image, { ranked, textMs, imageMs, prompts, fromCache }, model) {
  const [top] = ranked;
  const more = ranked.length > SHOWN ? ` (top ${SHOWN} of ${ranked.length} labels shown)` : "";
  $("result-summary").textContent = `Result for ${image.source}: ${top.label}, ${percent(top.score)}${more}.`;
  $("result-image").src = image.url;
  $("result-source").textContent = image.source;
  $("result-figure").hidden = false;
  $("ranking").replaceChildren(...ranked.slice(0, SHOWN).map(row));
  showModel(model);
  $("t-image").textContent = duration(imageMs);
  $("t-text").textContent = duration(textMs);
  $("t-prompts").textContent = `${prompts} (${fromCache} from the cache, ${prompts - fromCache} encoded)`;
}

/**
 * Where the weights came from, in words: `weights` is the package's stats.weights ({ source,
 * cached, reason? }); `deleted`: the cached copy was deleted since.
 */
export function weightsOrigin({ source, cached, reason }, deleted = false) {
  if (source === "memory") return "a local file (not cached)";
  const from = source === "cache" ? "this browser's cache (no download)" : reason && cached ? `the network (${reason})` : "the network";
  if (deleted && cached) return `${from}; the cached copy was deleted`;
  if (source === "cache") return from;
  return cached ? `${from}; now cached for the next visit` : `${from}; not cached${reason ? `: ${reason}` : ""}`;
}

/** The backend and weight-load time of the model in use ({ clip, loadMs, bytes, weightsDeleted }). */
export function showModel({ clip: { backend, fallbackReason, stats }, loadMs, bytes, weightsDeleted }) {
  $("t-backend").textContent = backend === "webgpu" ? "WebGPU" : `CPU (WebAssembly)${fallbackReason ? `; WebGPU unavailable: ${fallbackReason}` : ""}`;
  $("t-backend").dataset.backend = backend;
  $("t-weights").textContent = `${duration(loadMs)} (${megabytes(bytes)})`;
  $("t-weights-source").textContent = weightsOrigin(stats.weights, weightsDeleted);
  $("t-weights-source").dataset.source = stats.weights.source;
}
