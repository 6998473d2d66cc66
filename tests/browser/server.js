// The browser tests' static file server: the repository root on 127.0.0.1, any free port
// (the demo page's server, web/serve.js).
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "../../web/serve.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");

/**
 * `onRequest(req)`: called for every request the server receives. Pages are cross-origin isolated
 * unless `isolated: false`.
 */
export function startServer({ onRequest, isolated } = {}) {
  return serve(ROOT, 0, { onRequest, isolated });
}
