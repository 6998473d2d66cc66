// A static file server on 127.0.0.1 with no dependencies: serves the built demo page
// (`node serve.js`, port 8080 or $PORT), and any folder for the browser tests (`serve`). Pages
// are cross-origin isolated (COOP/COEP below): the npm package's CPU path then runs on several
// threads (README, "Threads").
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
  ".wasm": "application/wasm", ".json": "application/json", ".txt": "text/plain; charset=utf-8",
  ".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".svg": "image/svg+xml",
};

async function fileFor(root, url) {
  const path = normalize(decodeURIComponent(new URL(url, "http://x").pathname));
  let file = join(root, path);
  if (file !== root && !file.startsWith(root + sep)) return null;
  const info = await stat(file).catch(() => null);
  if (info?.isDirectory()) file = join(file, "index.html");
  return (await stat(file).catch(() => null))?.isFile() ? file : null;
}

/** The headers that make a page cross-origin isolated (shared memory, wasm threads). */
export const ISOLATION = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };

/**
 * Serves `root` on 127.0.0.1:`port` (0: any free port); resolves to { server, url }. `onRequest`
 * sees every request (the tests count downloads with it). `isolated: false` leaves out the
 * isolation headers (the tests of the single-threaded fallback).
 */
export async function serve(root, port = 0, { onRequest, isolated = true } = {}) {
  const server = createServer(async (req, res) => {
    onRequest?.(req);
    const file = await fileFor(root, req.url).catch(() => null);
    if (!file) return res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    const body = await readFile(file);
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "content-length": body.length, "cache-control": "no-cache", ...(isolated ? ISOLATION : {}) });
    res.end(body);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "dist");
  const port = Number(process.env.PORT ?? 8080);
  if (!(await stat(join(root, "index.html")).catch(() => null))) {
    console.error(`error: ${root}/index.html is missing: build the page first (npm run build, or scripts/demo.sh)`);
    process.exit(1);
  }
  try {
    const { url } = await serve(root, port);
    console.log(`clip-burn demo: ${url}/  (Ctrl+C stops)`);
  } catch (e) {
    console.error(e.code === "EADDRINUSE" ? `error: port ${port} is in use: set PORT to another one` : `error: ${e.message}`);
    process.exit(1);
  }
}
