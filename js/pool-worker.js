// One thread of the threaded module's CPU pool (threads.js): instantiates the module on the
// page's shared memory, then runs a rayon thread of a model's pool until that pool is dropped.
import init, { runPoolThread } from "../pkg-threads/clip_wasm.js";

self.onmessage = async ({ data: { module, memory, receiver } }) => {
  try {
    await init({ module_or_path: module, memory });
  } catch (e) {
    self.postMessage({ error: e?.message ?? String(e) });
    return;
  }
  self.postMessage({ ready: true });
  runPoolThread(receiver); // blocks this worker while the pool lives
  self.postMessage({ exited: true });
  self.close();
};
