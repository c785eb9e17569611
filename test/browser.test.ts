// The library in a browser: test/browser/entry.ts bundled with esbuild, served from a local
// cross-origin-isolated page (the wasm backend needs SharedArrayBuffer) and opened in Debian's
// headless Chromium through playwright-core. A tiny GPT-2 runs on wasm, and on WebGPU when the
// browser offers an adapter (with the GPU off, --enable-unsafe-webgpu gives SwiftShader's), and
// must match the reference backend. Skips, saying so, where /usr/bin/chromium is absent
// (apt-get install chromium).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const CHROMIUM = process.env.ACTLAB_CHROMIUM ?? '/usr/bin/chromium';
const have = existsSync(CHROMIUM);
if (!have) console.log(`browser tests skipped: ${CHROMIUM} not found (apt-get install chromium)`);

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu',
];

describe.skipIf(!have)('browser (Chromium)', () => {
  let server: Server | undefined;
  const profile = mkdtempSync(join(tmpdir(), 'actlab-chromium-'));
  afterAll(() => { server?.close(); rmSync(profile, { recursive: true, force: true }); });

  it('runs a model on wasm (and WebGPU where offered) identical to the reference', async () => {
    const esbuild = await import('esbuild');
    const bundle = await esbuild.build({
      entryPoints: [new URL('./browser/entry.ts', import.meta.url).pathname],
      bundle: true, format: 'esm', platform: 'browser', write: false, target: 'es2022',
      external: ['node:*', 'webgpu'], logLevel: 'error',
    });
    const js = bundle.outputFiles[0]!.text;
    const html = '<!doctype html><meta charset="utf-8"><title>actlab</title><script type="module" src="/app.js"></script>';
    server = createServer((req, res) => {
      const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
      if (req.url === '/app.js') res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' }).end(js);
      else res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(html);
    });
    await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', ok));
    const port = (server.address() as { port: number }).port;
    const { chromium } = await import('playwright-core');
    const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
    try {
      const page = ctx.pages()[0] ?? await ctx.newPage();
      const logs: string[] = [];
      page.on('console', (m) => logs.push(m.text()));
      page.on('pageerror', (e) => logs.push(String(e)));
      await page.goto(`http://127.0.0.1:${port}/`);
      const out = await page.evaluate(async () => await (window as unknown as { __actlab: Promise<unknown> }).__actlab) as
        { results?: { backend: string; ok: boolean; detail: string; maxDiff?: number }[]; webgpu?: string; error?: string };
      console.log(`browser: isolated page, WebGPU: ${out.webgpu}`);
      for (const r of out.results ?? []) console.log(`  ${r.backend}: ${r.ok ? 'ok' : 'FAILED'} max |diff| vs js ${r.maxDiff?.toExponential(2)} (${r.detail})`);
      if (out.error || logs.length) console.log(out.error ?? '', logs.join('\n'));
      expect(out.error).toBeUndefined();
      expect(out.results?.find((r) => r.backend === 'wasm')?.ok).toBe(true);
      for (const r of out.results ?? []) expect(r.ok, `${r.backend}: ${r.detail}`).toBe(true);
    } finally {
      await ctx.close();
    }
  }, 120_000);
});
