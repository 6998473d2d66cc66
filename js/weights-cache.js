// Weights: downloaded (streamed, with progress), checked, and kept in the browser's Cache Storage
// so that the next visit reads them from disk instead of the network.
//
// Why Cache Storage rather than the origin-private file system (OPFS): it is keyed by URL (what a
// download is), it exists in the same form in pages and in workers (OPFS's fast synchronous
// handles only in dedicated workers, and its writable streams arrived late in Safari), responses
// stream back in chunks (progress while reading), it is where transformers.js and service workers
// keep model files, so developers know where to look (DevTools > Application > Cache Storage,
// "clip-burn-weights"), and "Clear site data" empties it. Both share the origin's quota and are
// evicted together under storage pressure unless the page calls navigator.storage.persist().

/** The Cache Storage cache that holds the weights. */
export const WEIGHTS_CACHE = "clip-burn-weights";
// Cache keys: a URL that names the weights' URL and the expected SHA-256 (a query, because Cache
// Storage ignores fragments), on a host that cannot exist (.invalid), so no key is ever mistaken
// for a real resource of the page's origin or answers a real request.
const KEY_BASE = "https://clip-burn.invalid/weights";

function toError(e) {
  return e instanceof Error ? e : new Error(String(e));
}

/** "QuotaExceededError: ..." for DOMExceptions, the message for other errors. */
function describe(e) {
  if (e && typeof e === "object" && e.name && e.name !== "Error" && e.message) return `${e.name}: ${e.message}`;
  return toError(e).message || String(e?.name ?? e);
}

function megabytes(n) {
  return `${(n / 1e6).toFixed(1)} MB`;
}

export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** An expected SHA-256 as 64 lower-case hex digits (null if none), or an Error naming what is wrong. */
export function normaliseSha256(sha256) {
  if (sha256 == null || sha256 === "") return null;
  const hex = typeof sha256 === "string" ? sha256.trim().toLowerCase() : "";
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new Error(`sha256 must be the 64 hexadecimal digits of a SHA-256 digest, got ${JSON.stringify(String(sha256))}`);
  }
  return hex;
}

/** The URL that relative URLs mean here: the page's (its <base>), or a worker's script. */
function base() {
  if (typeof document !== "undefined" && document.baseURI) return document.baseURI;
  return globalThis.location?.href;
}

/** `url` (string or URL) as an absolute URL without a fragment (never sent to the server). */
export function absoluteUrl(url) {
  const u = new URL(url instanceof URL ? url.href : String(url), base());
  u.hash = "";
  return u.href;
}

/** The Cache Storage key of the weights at `url` (absolute) expected to have `sha256` (or null). */
export function cacheKey(url, sha256) {
  const key = new URL(KEY_BASE);
  key.searchParams.set("url", url);
  if (sha256) key.searchParams.set("sha256", sha256);
  return key.href;
}

/** The CacheStorage, or { reason } why there is none. */
function cacheStorage() {
  let storage;
  try {
    storage = globalThis.caches;
  } catch (e) {
    return { reason: `Cache Storage is not accessible (${describe(e)})` };
  }
  if (storage == null || typeof storage.open !== "function") {
    const insecure = globalThis.isSecureContext === false;
    return {
      reason: insecure
        ? "Cache Storage is not available: the page is not a secure context (serve it over https, or from localhost)"
        : "Cache Storage is not available in this browser",
    };
  }
  return { storage };
}

/** The weights cache, or { reason } why it cannot be used (no Cache Storage, private browsing, ...). */
async function openCache() {
  const { storage, reason } = cacheStorage();
  if (!storage) return { reason };
  try {
    return { cache: await storage.open(WEIGHTS_CACHE) };
  } catch (e) {
    return { reason: `Cache Storage could not be opened (${describe(e)}; private browsing?)` };
  }
}

async function readStream(body, total, onProgress, source) {
  const reader = body.getReader();
  const chunks = [];
  let loaded = 0;
  onProgress?.(0, total, source);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress?.(loaded, total, source);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Downloads `url` (streamed, with progress); errors name the URL. */
async function download(url, onProgress) {
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`could not download weights from ${url}: ${toError(e).message}`);
  }
  if (!res.ok) throw new Error(`could not download weights from ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  // Compressed transfers give the compressed length: only a plain one is the byte count.
  const encoded = (res.headers.get("content-encoding") ?? "identity") !== "identity";
  const total = encoded ? 0 : Number(res.headers.get("content-length")) || 0;
  let bytes;
  try {
    bytes = res.body ? await readStream(res.body, total, onProgress, "network") : new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new Error(`could not download weights from ${url}: ${toError(e).message}`);
  }
  if (total && bytes.length !== total) throw new Error(`weights from ${url} are truncated: ${bytes.length} of ${total} bytes`);
  return bytes;
}

/** Weights from a URL (streamed, with progress), an ArrayBuffer, a typed array, a Blob or a File; no cache. */
export async function fetchWeights(weights, onProgress) {
  if (weights instanceof ArrayBuffer) return new Uint8Array(weights);
  if (ArrayBuffer.isView(weights)) return new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength);
  if (typeof Blob !== "undefined" && weights instanceof Blob) return readStream(weights.stream(), weights.size, onProgress, "memory");
  if (typeof weights === "string" || weights instanceof URL) {
    let url;
    try {
      url = absoluteUrl(weights);
    } catch {
      url = String(weights); // fetch names what is wrong with it
    }
    return download(url, onProgress);
  }
  throw new TypeError("weights must be a URL, an ArrayBuffer, a typed array, a Blob or a File");
}

/** Why a cached copy cannot be used (null if it can). */
function cachedProblem(response, bytes, fingerprint, sha256) {
  const length = Number(response.headers.get("content-length"));
  if (length && length !== bytes.length) return `is truncated (${bytes.length} of ${length} bytes)`;
  if (sha256 && fingerprint !== sha256) return `failed the integrity check (expected SHA-256 ${sha256}, got ${fingerprint})`;
  const stored = response.headers.get("x-clip-burn-sha256");
  if (stored && stored !== fingerprint) return `is corrupt (SHA-256 ${fingerprint}, ${stored} when stored)`;
  return null;
}

/**
 * The weights of a `Clip.load`: { bytes, fingerprint, info, store, forget }. `info` is what
 * `clip.stats.weights` reports: { source: "network" | "cache" | "memory", cached, bytes, url?,
 * reason? }. For a download that may be cached, `store()` puts the bytes in Cache Storage (it
 * never rejects: a failure becomes `info.reason`) and `forget()` takes them out again (the model
 * did not load from them). Throws (an Error) when the weights cannot be had or fail `sha256`.
 */
export async function obtainWeights(weights, { sha256, cache = true, onProgress } = {}) {
  const expected = normaliseSha256(sha256);
  const integrity = (fingerprint) => {
    if (expected && fingerprint !== expected) {
      throw new Error(`weights failed the integrity check: expected SHA-256 ${expected}, got ${fingerprint}`);
    }
  };
  if (!(typeof weights === "string" || weights instanceof URL)) {
    const bytes = await fetchWeights(weights, onProgress);
    const fingerprint = await sha256Hex(bytes);
    integrity(fingerprint);
    return { bytes, fingerprint, info: { source: "memory", cached: false, bytes: bytes.length } };
  }

  let url;
  try {
    url = absoluteUrl(weights);
  } catch (e) {
    throw new Error(`could not download weights from ${weights}: not a URL (${toError(e).message})`);
  }
  const info = { source: "network", cached: false, bytes: 0, url };
  let store = null;
  if (cache === false) info.reason = "cache: false";
  else if (!/^https?:$/.test(new URL(url).protocol)) info.reason = `${new URL(url).protocol} URLs are not cached`;
  else store = await openCache();
  if (store?.reason) info.reason = store.reason;
  const key = cacheKey(url, expected);

  if (store?.cache) {
    try {
      const hit = await store.cache.match(key);
      if (hit) {
        const total = Number(hit.headers.get("content-length")) || 0;
        const bytes = await readStream(hit.body, total, onProgress, "cache");
        const fingerprint = await sha256Hex(bytes);
        const problem = cachedProblem(hit, bytes, fingerprint, expected);
        if (!problem) return { bytes, fingerprint, info: { source: "cache", cached: true, bytes: bytes.length, url } };
        await store.cache.delete(key).catch(() => {});
        info.reason = `the cached copy ${problem}: it was dropped and downloaded again`;
      }
    } catch (e) {
      info.reason = `reading the cached copy failed (${describe(e)}): downloaded again`;
    }
  }

  const bytes = await download(url, onProgress);
  const fingerprint = await sha256Hex(bytes);
  integrity(fingerprint); // nothing that fails it is stored
  info.bytes = bytes.length;
  if (!store?.cache) return { bytes, fingerprint, info };

  const { cache: c } = store;
  return {
    bytes,
    fingerprint,
    info,
    async store() {
      try {
        const estimate = await globalThis.navigator?.storage?.estimate?.().catch(() => null);
        if (estimate?.quota != null && estimate.usage != null && estimate.quota - estimate.usage < bytes.length) {
          throw new Error(`not enough storage quota: ${megabytes(bytes.length)} needed, ${megabytes(estimate.quota - estimate.usage)} free`);
        }
        const headers = {
          "content-type": "application/octet-stream",
          "content-length": String(bytes.length),
          "x-clip-burn-url": url,
          "x-clip-burn-sha256": fingerprint,
          "x-clip-burn-stored": new Date().toISOString(),
        };
        // A response of our own (no Vary, no cookies, no caching headers of the server's): the
        // key alone decides what matches. Chromium 156 refused a 605 MB Blob body (ViT-B-32's f32
        // safetensors: "UnknownError: Unexpected internal error") and took the same bytes
        // streamed in slices, which stores a 303 MB file about 1 s slower than a Blob: a Blob
        // first, a stream when it is refused for anything but the quota.
        await c.put(key, new Response(new Blob([bytes]), { headers })).catch((e) => {
          if (e?.name === "QuotaExceededError") throw e;
          return c.put(key, new Response(sliced(bytes), { headers }));
        });
        info.cached = true;
      } catch (e) {
        info.reason = `storing the weights in Cache Storage failed (${describe(e)})`;
      }
    },
    async forget() {
      if (!info.cached) return;
      await c.delete(key).catch(() => {});
      info.cached = false;
    },
  };
}

/** `bytes` as a ReadableStream of views of at most 8 MiB, one per pull. */
function sliced(bytes) {
  const SLICE = 64 << 20;
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(offset, offset + SLICE));
      offset += SLICE;
    },
  });
}

/** Entries of the weights cache: { url, sha256 (expected, or null), fingerprint, bytes, storedAt }. */
export async function cachedWeights() {
  const { storage } = cacheStorage();
  if (!storage) return [];
  try {
    if (!(await storage.has(WEIGHTS_CACHE))) return [];
    const c = await storage.open(WEIGHTS_CACHE);
    const out = [];
    for (const request of await c.keys()) {
      const params = new URL(request.url).searchParams;
      const response = await c.match(request);
      if (!response) continue; // deleted meanwhile
      out.push({
        url: params.get("url"),
        sha256: params.get("sha256"),
        fingerprint: response.headers.get("x-clip-burn-sha256"),
        bytes: Number(response.headers.get("content-length")) || 0,
        storedAt: response.headers.get("x-clip-burn-stored"),
      });
    }
    return out;
  } catch (e) {
    throw new Error(`could not list the weights cache: ${describe(e)}`);
  }
}

/**
 * Deletes cached weights: all of them, or those of `url` (relative URLs are the page's) under any
 * expected SHA-256. Resolves to whether anything was deleted.
 */
export async function clearWeightsCache(url) {
  const { storage } = cacheStorage();
  if (!storage) return false; // nothing can have been stored
  const target = url == null ? null : absoluteUrl(url);
  try {
    if (target == null) return await storage.delete(WEIGHTS_CACHE);
    if (!(await storage.has(WEIGHTS_CACHE))) return false;
    const c = await storage.open(WEIGHTS_CACHE);
    let deleted = false;
    for (const request of await c.keys()) {
      if (new URL(request.url).searchParams.get("url") === target) deleted = (await c.delete(request)) || deleted;
    }
    return deleted;
  } catch (e) {
    throw new Error(`could not clear the weights cache: ${describe(e)}`);
  }
}
