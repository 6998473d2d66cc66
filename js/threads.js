// The CPU path on several cores: the threaded module (pkg-threads/, built with wasm atomics) and
// its pool of Web Workers (pool-worker.js), which share the module's memory. Pages that are not
// cross-origin isolated cannot share memory: they get the single-threaded CPU module (pkg-cpu/), and
// `clip.threadsReason` says why.
import initThreaded, * as threaded from "../pkg-threads/clip_wasm.js";

/**
 * The most threads a default load starts: each is a worker with its own instance of the module
 * and a stack; more than 8 was not measured (the benchmarks' machine has 2 cores).
 */
export const MAX_DEFAULT_THREADS = 8;
/** How long a pool worker may take to start before the load gives up on threads. */
const WORKER_START_MS = 30_000;

function cores() {
  const n = typeof navigator !== "undefined" ? navigator.hardwareConcurrency : undefined;
  return Number.isInteger(n) && n > 0 ? n : 1;
}

/** Why this page cannot run the threaded module, or null when it can. */
function sharedMemoryProblem() {
  if (globalThis.crossOriginIsolated !== true) {
    return "the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp; README, \"Threads\")";
  }
  if (typeof SharedArrayBuffer !== "function") return "this browser has no SharedArrayBuffer";
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch (e) {
    return `this browser cannot make shared WebAssembly memory: ${e?.message ?? e}`;
  }
  return null;
}

/** `Clip.load`'s `threads` option checked: a positive integer or undefined. */
export function checkThreads(value, where) {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${where}: threads must be a positive integer (the CPU path's worker threads), got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`);
  }
  return value;
}

/**
 * How many threads the CPU path should get: { threads, reason }; `reason` says why there are
 * fewer than asked (or than the default, all cores up to MAX_DEFAULT_THREADS), null otherwise.
 */
export function threadPlan(requested) {
  const available = cores();
  if (requested === 1) return { threads: 1, reason: "threads: 1 was asked for" };
  const problem = sharedMemoryProblem();
  if (problem) return { threads: 1, reason: problem };
  if (requested === undefined) {
    if (available === 1) return { threads: 1, reason: "navigator.hardwareConcurrency is 1" };
    return { threads: Math.min(available, MAX_DEFAULT_THREADS), reason: null };
  }
  if (requested > available) return { threads: available, reason: `${requested} threads were asked for, navigator.hardwareConcurrency is ${available}` };
  return { threads: requested, reason: null };
}

/**
 * `init` (a wasm-bindgen module's default export) run once per page (or worker), from the first
 * call's URL (undefined: the module's own); resolves to `exports`. A failure is not kept: a later
 * call tries again.
 */
export function instantiateOnce(init, exports) {
  let ready = null;
  return (wasmUrl) => {
    ready ??= init(wasmUrl ? { module_or_path: wasmUrl } : undefined).then(() => exports);
    ready.catch(() => (ready = null));
    return ready;
  };
}

/**
 * The threaded module. Its JS glue is imported statically (a few dozen kB; the .wasm is fetched
 * only when a pool starts): a dynamic import would make bundlers split the worker's code, which
 * Vite 7's default worker format (iife) refuses.
 */
const loadThreadedModule = instantiateOnce(initThreaded, threaded);

/** Starts one pool worker on the module's memory; resolves once it waits for its rayon thread. */
function startWorker(mod, receiver, exits) {
  return new Promise((resolve, reject) => {
    let worker;
    try {
      worker = new Worker(new URL("./pool-worker.js", import.meta.url), { type: "module" });
    } catch (e) {
      reject(new Error(`a pool worker could not be created: ${e?.message ?? e}`));
      return;
    }
    const timer = setTimeout(() => fail(`a pool worker did not start within ${WORKER_START_MS / 1000} s`), WORKER_START_MS);
    const fail = (message) => {
      clearTimeout(timer);
      worker.terminate();
      reject(new Error(message));
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      fail(`a pool worker failed to start: ${e.message || "its script could not be loaded"}`);
    };
    exits.push(
      new Promise((exited) => {
        worker.onmessage = ({ data }) => {
          if (data?.error) fail(`a pool worker failed to start: ${data.error}`);
          else if (data?.ready) {
            clearTimeout(timer);
            resolve(worker);
          } else if (data?.exited) exited();
        };
      }),
    );
    worker.postMessage({ module: mod.sharedModule(), memory: mod.sharedMemory(), receiver });
  });
}

/**
 * The threaded module with a pool of `threads` workers: { wasm, pool, exited }. `pool` goes to a
 * model (`inner.usePool(pool)`); freeing the model ends the workers, and `exited` resolves when
 * they all have. Throws (having stopped what it started) when the module or a worker fails.
 */
export async function startThreads(threads, wasmUrl) {
  const mod = await loadThreadedModule(wasmUrl).catch((e) => {
    throw new Error(`the threaded WebAssembly module failed to load: ${e?.message ?? e}`);
  });
  const starter = new mod.PoolStarter(threads);
  const exits = [];
  const started = await Promise.allSettled(Array.from({ length: threads }, () => startWorker(mod, starter.receiver(), exits)));
  const failed = started.find((s) => s.status === "rejected");
  if (failed) {
    // Dropping the starter closes the channel: the workers that did start stop waiting and exit.
    starter.free();
    throw failed.reason;
  }
  const pool = starter.build();
  return { wasm: mod, pool, exited: Promise.all(exits) };
}
