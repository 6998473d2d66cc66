// Launches Debian's Chromium with playwright-core (never a downloaded browser).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const COMMON = ["--headless", "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];
// A WebGPU adapter without a GPU: SwiftShader through Vulkan.
const WEBGPU = ["--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader"];

/** `gpu`: true for a SwiftShader WebGPU adapter, false for no adapter at all (--disable-gpu). */
export async function launch({ gpu = false, userDataDir } = {}) {
  const dir = userDataDir ?? mkdtempSync(join(tmpdir(), "clip-burn-chromium-"));
  const args = [...COMMON, ...(gpu ? WEBGPU : ["--disable-gpu"])];
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args,
  });
  if (!userDataDir) {
    // A profile made here is removed with the browser: every test run would otherwise leave one.
    const close = context.close.bind(context);
    context.close = async (...args) => {
      try { await close(...args); } finally { rmSync(dir, { recursive: true, force: true }); }
    };
  }
  return { context, dir };
}

/** Runs `fn(page, context, errors)` on the test page (openPage) in a fresh browser launched with
 * `options` (as launch's), closed afterwards. */
export async function withPage(baseUrl, options, fn) {
  const { context } = await launch(options);
  try {
    const { page, errors } = await openPage(context, baseUrl);
    await fn(page, context, errors);
  } finally {
    await context.close();
  }
}

export async function openPage(context, baseUrl) {
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(`${baseUrl}/tests/browser/page.html`);
  await page.waitForFunction(() => window.ready === true);
  return { page, errors };
}
