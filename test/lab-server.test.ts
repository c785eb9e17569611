// The `actlab lab` server on localhost with the induction organism: the token, path roots
// (traversal, symlinks out), body caps, malformed JSON, bad arguments, N clients × M requests with
// no error and no leaked tensor, and cancellation of a generation when its client goes away. The
// served numbers must equal the views run in-process.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLabServer, type LabServer } from '../src/cli/lab-server.js';
import { capture } from './helpers/capture.js';
import { organismDir } from '../src/cli/lab-server.js';
import { labModel } from '../src/lab/model.js';
import { runView } from '../src/lab/views.js';
import { loadModel } from '../src/models/load.js';
import { liveTensors } from '../src/tensor/live.js';

const PROMPT = '1 5 9 12 30 7 5 9 12 30';

describe('lab server', () => {
  let lab: LabServer;
  let base: string;
  const root = mkdtempSync(join(tmpdir(), 'actlab-lab-'));
  const page = join(root, 'page');
  const models = join(root, 'models');

  beforeAll(async () => {
    mkdirSync(page);
    mkdirSync(models);
    writeFileSync(join(page, 'index.html'), '<!doctype html><title>lab</title>');
    writeFileSync(join(root, 'secret.txt'), 'not for the lab');
    symlinkSync(join(root, 'secret.txt'), join(models, 'escape.bin'));
    lab = await startLabServer({ port: 0, dirs: [models], staticDir: page, model: 'induction', maxBodyBytes: 4096 });
    base = `http://127.0.0.1:${lab.port}`;
  }, 60_000);
  afterAll(async () => {
    await lab?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const api = (path: string, body?: unknown, token: string | null = lab.token, raw?: string) =>
    fetch(`${base}/api/${path}${token === null ? '' : `${path.includes('?') ? '&' : '?'}token=${token}`}`, body === undefined && raw === undefined
      ? {} : { method: 'POST', body: raw ?? JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });

  /** The final result of an NDJSON view answer, and its events. */
  async function view(name: string, args: unknown): Promise<{ status: number; result?: Record<string, unknown>; events: Record<string, unknown>[]; error?: string }> {
    const r = await api(`view/${name}`, args);
    if (r.headers.get('content-type')?.includes('json') && !r.headers.get('content-type')?.includes('ndjson')) return { status: r.status, events: [], error: ((await r.json()) as { error: string }).error };
    const events = (await r.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    return { status: r.status, events, result: events.find((e) => e.type === 'result')?.value as Record<string, unknown> };
  }

  it('serves the page without a token and refuses the API without the right one', async () => {
    expect((await fetch(`${base}/`)).status).toBe(200);
    const missing = await api('models', undefined, null);
    expect(missing.status).toBe(401);
    console.log(`missing token: ${missing.status} ${JSON.stringify(await missing.json())}`);
    const wrong = await api('models', undefined, 'x'.repeat(48));
    expect(wrong.status).toBe(403);
    // A page left open from an earlier run: the message says what to do.
    expect(((await wrong.json()) as { error: string }).error).toMatch(/wrong token.*open the URL it printed/);
    expect((await api('models')).status).toBe(200);
  });

  it('refuses paths outside its folders (.., absolute, symlinks out, static traversal)', async () => {
    for (const path of ['../secret.txt', join(root, 'secret.txt'), '/etc/passwd', 'escape.bin', `${models}/../secret.txt`]) {
      const r = await api('load', { path });
      const msg = ((await r.json()) as { error: string }).error;
      console.log(`load ${path}: ${r.status} ${msg}`);
      expect(r.status).toBe(403);
      expect(msg).toMatch(/outside the folders/);
    }
    const f = await api(`file?path=${encodeURIComponent('../secret.txt')}`);
    expect(f.status).toBe(403);
    for (const p of ['/..%2f..%2fsecret.txt', '/../secret.txt', '/%2e%2e/secret.txt']) {
      const r = await fetch(`${base}${p}`);
      expect(r.status).toBe(404);
    }
    expect((await fetch(`${base}/%E0%A4%A`)).status).toBe(400);
    expect((await fetch(`${base}/`)).status).toBe(200);
    // The folders a view reads (activation stores, SAEs) are held to the same rule.
    for (const [v, args] of [['neurons', { store: '../' }], ['features', { sae: '/etc' }], ['features', { sae: 'escape.bin', store: '.' }]] as const) {
      const r = await view(v, args);
      console.log(`view ${v} ${JSON.stringify(args)}: ${r.status} ${r.error}`);
      expect(r.status).toBe(403);
      expect(r.error).toMatch(/outside the folders/);
    }
    const missing = await view('features', { sae: 'no-such-sae' });
    expect(missing.status).toBe(404);
    const notSae = await view('features', { sae: '.' });
    expect(notSae.status).toBe(422);
    expect(notSae.error).toMatch(/^sae: /);
  });

  it('answers oversized bodies, malformed JSON, unknown views and bad arguments with 4xx and keeps serving', async () => {
    const big = await api('view/tokens', undefined, lab.token, JSON.stringify({ prompt: '1 '.repeat(5000) }));
    expect(big.status).toBe(413);
    const bad = await api('view/tokens', undefined, lab.token, '{"prompt": ');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/not valid JSON/);
    expect((await api('view/nope', {})).status).toBe(400);
    expect((await api('view/tokens', [1, 2])).status).toBe(400);
    const range = await view('ablate', { prompt: PROMPT, layer: 7, unit: 0 });
    expect(range.status).toBe(400);
    expect(range.error).toMatch(/layer: 7 is out of range/);
    const notIds = await view('tokens', { prompt: 'hello there' });
    expect(notIds.status).toBe(400);
    expect(notIds.error).toMatch(/token ids/);
    const long = await view('steer', { prompt: PROMPT, positives: ['1 5'], negatives: ['1 9'], layer: 0, strength: 1, max_new_tokens: 100_000 });
    expect(long.status).toBe(400);
    expect(long.error).toMatch(/max_new_tokens/);
    expect((await fetch(`${base}/api/view/tokens?token=${lab.token}`)).status).toBe(405);
    const ok = await view('tokens', { prompt: PROMPT });
    expect(ok.status).toBe(200);
  }, 60_000);

  it('gives the numbers the views give in-process', async () => {
    const m = await loadModel(organismDir('induction'), { backend: 'js' });
    const local = labModel(m, 'induction');
    try {
      for (const [name, args] of [['tokens', { prompt: PROMPT }], ['attention', { prompt: PROMPT }], ['ablate', { prompt: PROMPT, layer: 1, unit: 2 }], ['lens', { prompt: PROMPT }]] as const) {
        const served = await view(name, args);
        const here = JSON.parse(JSON.stringify(await runView(local, name, args)));
        expect(served.result, name).toEqual(here);
      }
    } finally {
      m.model.dispose();
    }
  }, 60_000);

  it('N clients × M requests at once: every answer right, in order per client, nothing leaked', async () => {
    await view('tokens', { prompt: PROMPT });
    const before = liveTensors();
    const N = 4;
    const M = 5;
    const expected = (await view('tokens', { prompt: PROMPT })).result!;
    const clients = Array.from({ length: N }, async (_, c) => {
      const out: unknown[] = [];
      for (let i = 0; i < M; i++) {
        const args = (c + i) % 2 === 0 ? { prompt: PROMPT } : { prompt: PROMPT, layer: c % 2, unit: i % 4 };
        const r = await view((c + i) % 2 === 0 ? 'tokens' : 'ablate', args);
        expect(r.status).toBe(200);
        out.push(r.result);
        if ((c + i) % 2 === 0) expect(r.result).toEqual(expected);
      }
      return out;
    });
    const all = await Promise.all(clients);
    expect(all.flat().length).toBe(N * M);
    const after = liveTensors();
    console.log(`${N}×${M} requests: live tensors ${before.tensors} -> ${after.tensors}, bytes ${before.bytes} -> ${after.bytes}`);
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toBe(before.bytes);
    expect(lab.pending()).toBe(0);
  }, 120_000);

  it('answers queued requests in the order they came, one job at a time', async () => {
    const done: string[] = [];
    const jobs = [
      ['steer', { prompt: PROMPT, positives: ['1 5 9'], negatives: ['1 30 7'], layer: 1, strength: 2, max_new_tokens: 30 }],
      ['tokens', { prompt: PROMPT }],
      ['attention', { prompt: PROMPT }],
      ['ablate', { prompt: PROMPT, layer: 0, unit: 1 }],
    ] as const;
    const started: Promise<void>[] = [];
    for (const [i, [name, args]] of jobs.entries()) {
      started.push(view(name, args).then((r) => { expect(r.status).toBe(200); done.push(`${i}:${name}`); }));
      // Send the next one only once this one is in the queue (or already answered).
      while (lab.pending() + done.length < i + 1) await new Promise((ok) => setTimeout(ok, 5));
    }
    await Promise.all(started);
    console.log(`completion order: ${done.join(' ')}`);
    expect(done).toEqual(jobs.map(([name], i) => `${i}:${name}`));
  }, 120_000);

  it('cancels a generation when its client disconnects, and keeps serving', async () => {
    const before = lab.stats();
    const ac = new AbortController();
    const r = await fetch(`${base}/api/view/steer?token=${lab.token}`, {
      method: 'POST', signal: ac.signal,
      body: JSON.stringify({ prompt: PROMPT, positives: ['1 5 9', '1 5 12'], negatives: ['1 30 7', '1 30 9'], layer: 0, strength: 4, max_new_tokens: 36 }),
    });
    const reader = r.body!.getReader();
    let text = '';
    while (!text.includes('"type":"token"')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    ac.abort();
    await reader.cancel().catch(() => undefined);
    // The next request is queued behind the generation; it is answered once the generation stopped.
    const next = await view('tokens', { prompt: PROMPT });
    expect(next.status).toBe(200);
    const after = lab.stats();
    console.log(`cancel: first event ${text.split('\n')[0]}; stats ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
    expect(after.cancelled).toBe(before.cancelled + 1);
    expect(lab.pending()).toBe(0);
  }, 120_000);

  it('refuses to start on a port in use, or with a model that does not load, and says which option is wrong', async () => {
    // The port the shared server holds: a second server there fails with advice, not EADDRINUSE alone.
    const busy = await startLabServer({ port: lab.port, staticDir: page }).then((l) => l.close().then(() => null), (e: Error) => e.message);
    console.log(`port in use: ${busy}`);
    expect(busy).toMatch(new RegExp(`--port ${lab.port}: 127\\.0\\.0\\.1:${lab.port} is already in use.*--port 0`));
    // A --model that is not a model: the error names it and the server stops listening (else the
    // command would print the error and then hang, serving nothing).
    const bad = join(models, 'notes.bin');
    writeFileSync(bad, 'not a model');
    const free = await startLabServer({ port: 0, staticDir: page });
    const port = free.port;
    await free.close();
    const failed = await startLabServer({ port, staticDir: page, dirs: [models], model: bad }).then((l) => l.close().then(() => null), (e: Error) => e.message);
    console.log(`bad model: ${failed}`);
    expect(failed).toMatch(/notes\.bin/);
    const again = await startLabServer({ port, staticDir: page });
    expect(again.port).toBe(port);
    await again.close();
  }, 60_000);

  it('actlab lab --help says how to open the page, with examples', async () => {
    const r = await capture(['lab', '--help']);
    expect(r.code).toBe(0);
    for (const want of [/--model <M>/, /--dir <folder\.\.\.>/, /--port <n>.*0 picks a free one/, /token, new at every run/, /Examples:\n\s+actlab lab /, /docs\/lab\.md/]) expect(r.out).toMatch(want);
  });
});
