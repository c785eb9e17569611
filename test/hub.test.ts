// The Hub client against a local HTTP server that serves a hub-shaped folder (no network, no
// ../shared): download, cache re-use offline, resume after a cut connection, sha256 and 404 errors.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { resolveModel } from '../src/hub/resolve.js';
import { HubFileNotFoundError, HubIntegrityError, HubInterruptedError, HubOfflineError } from '../src/hub/errors.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { SafetensorsFile, writeSafetensors } from '../src/formats/safetensors.js';
import { HttpSource } from '../src/io/http.js';

let root: string; // the served folder: <root>/<id>/<file>
let endpoint: string;
let server: Server;
const log: { method: string; url: string; range?: string }[] = [];
const behaviour = { cutAfter: 0 as number, cutFile: '', badSha: '' };

beforeAll(async () => {
  await al.setDefaultBackend('js');
  delete process.env.HF_HUB_OFFLINE;
  delete process.env.HF_TOKEN;
  root = await mkdtemp(join(tmpdir(), 'actlab-hub-'));
  const store = new NodeFileStore();
  // A tiny random model, one file and sharded.
  const w = {
    'model.embed_tokens.weight': al.randn([64, 256], { seed: 1 }),
    'model.norm.weight': al.randn([256], { seed: 2 }),
    'lm_head.weight': al.randn([64, 256], { seed: 3 }),
  };
  const config = JSON.stringify({ model_type: 'llama', hidden_size: 256, vocab_size: 64 });
  for (const id of ['tiny/model', 'tiny/sharded']) await mkdir(join(root, id), { recursive: true });
  await writeFile(join(root, 'tiny/model/config.json'), config);
  await writeFile(join(root, 'tiny/model/generation_config.json'), JSON.stringify({ bos_token_id: 1 }));
  await writeSafetensors(store, join(root, 'tiny/model/model.safetensors'), w, { metadata: { format: 'pt' } });
  await writeFile(join(root, 'tiny/sharded/config.json'), config);
  await writeSafetensors(store, join(root, 'tiny/sharded/model-00001-of-00002.safetensors'), { 'model.embed_tokens.weight': w['model.embed_tokens.weight'] });
  await writeSafetensors(store, join(root, 'tiny/sharded/model-00002-of-00002.safetensors'), { 'model.norm.weight': w['model.norm.weight'], 'lm_head.weight': w['lm_head.weight'] });
  await writeFile(join(root, 'tiny/sharded/model.safetensors.index.json'), JSON.stringify({
    metadata: {}, weight_map: {
      'model.embed_tokens.weight': 'model-00001-of-00002.safetensors',
      'model.norm.weight': 'model-00002-of-00002.safetensors', 'lm_head.weight': 'model-00002-of-00002.safetensors',
    },
  }));
  for (const t of Object.values(w)) t.dispose();

  server = createServer((req, res) => {
    log.push({ method: req.method!, url: req.url!, range: req.headers.range });
    const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(decodeURIComponent(req.url!.split('?')[0]!));
    const path = m ? join(root, m[1]!, m[3]!) : '';
    if (!m || !existsSync(path)) { res.writeHead(404).end('Entry not found'); return; }
    const body = readFileSync(path);
    const sha = createHash('sha256').update(body).digest('hex');
    const etag = behaviour.badSha === m[3] ? '0'.repeat(64) : sha;
    const headers: Record<string, string | number> = { ETag: `"${etag}"`, 'Accept-Ranges': 'bytes' };
    if (req.method === 'HEAD') { res.writeHead(200, { ...headers, 'Content-Length': body.length }).end(); return; }
    let start = 0;
    const r = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (r) start = Number(r[1]);
    const part = body.subarray(start);
    res.writeHead(r ? 206 : 200, {
      ...headers, 'Content-Length': part.length, ...(r ? { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (behaviour.cutFile === m[3] && behaviour.cutAfter > 0) {
      behaviour.cutFile = '';
      res.write(part.subarray(0, behaviour.cutAfter), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(part);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
  await rm(root, { recursive: true, force: true });
});

let cacheDir: string;
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'actlab-cache-'));
  log.length = 0;
  Object.assign(behaviour, { cutAfter: 0, cutFile: '', badSha: '' });
});

describe('resolveModel', () => {
  it('downloads a model into the cache, then re-uses it offline', async () => {
    const seen: string[] = [];
    const r = await resolveModel('tiny/model', { endpoint, cacheDir, onProgress: (p) => { if (p.done) seen.push(p.file); } });
    expect(r.source).toBe('hub');
    expect(r.dir).toBe(join(cacheDir, 'tiny', 'model', 'main'));
    expect(r.weightFiles).toEqual(['model.safetensors']);
    expect(seen).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    expect(await readFile(join(r.dir, 'model.safetensors'))).toEqual(await readFile(join(root, 'tiny/model/model.safetensors')));
    const f = await SafetensorsFile.open(await NodeFileSource.open(join(r.dir, 'model.safetensors')));
    expect(f.info('lm_head.weight').shape).toEqual([64, 256]);
    await f.close();

    // Offline by option: no request at all.
    log.length = 0;
    const again = await resolveModel('tiny/model', { endpoint, cacheDir, offline: true });
    expect(again).toMatchObject({ source: 'cache', dir: r.dir });
    expect(log).toHaveLength(0);
    // Offline because the server is unreachable (a closed port): the cache still answers.
    const dead = await resolveModel('tiny/model', { endpoint: 'http://127.0.0.1:9', cacheDir });
    expect(dead.source).toBe('cache');
    // HF_HUB_OFFLINE=1 works the same.
    process.env.HF_HUB_OFFLINE = '1';
    try {
      expect((await resolveModel('tiny/model', { endpoint, cacheDir })).source).toBe('cache');
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
  });

  it('downloads a sharded model (index + shards)', async () => {
    const r = await resolveModel('tiny/sharded', { endpoint, cacheDir });
    expect(r.weightFiles.sort()).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    for (const f of r.weightFiles) expect(existsSync(join(r.dir, f))).toBe(true);
  });

  it('resumes after the connection is cut mid-file, with a Range request', async () => {
    const total = statSync(join(root, 'tiny/model/model.safetensors')).size;
    Object.assign(behaviour, { cutFile: 'model.safetensors', cutAfter: 20000 });
    const err = await resolveModel('tiny/model', { endpoint, cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubInterruptedError);
    expect(String(err)).toMatch(/model\.safetensors.*interrupted.*run again to resume/);
    const dir = join(cacheDir, 'tiny', 'model', 'main');
    const part = statSync(join(dir, 'model.safetensors.part')).size;
    expect(part).toBeGreaterThan(0);
    expect(part).toBeLessThan(total);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);

    log.length = 0;
    const r = await resolveModel('tiny/model', { endpoint, cacheDir });
    expect(log.find((l) => l.method === 'GET' && l.url.endsWith('model.safetensors'))?.range).toBe(`bytes=${part}-`);
    expect(await readFile(join(r.dir, 'model.safetensors'))).toEqual(await readFile(join(root, 'tiny/model/model.safetensors')));
    expect(existsSync(join(dir, 'model.safetensors.part'))).toBe(false);
  });

  it('refuses a file whose sha256 does not match the ETag, keeping nothing under its name', async () => {
    behaviour.badSha = 'model.safetensors';
    const err = await resolveModel('tiny/model', { endpoint, cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubIntegrityError);
    expect(String(err)).toMatch(/tiny\/model: model\.safetensors failed verification: sha256 [0-9a-f]{64} does not match the expected 0{64}/);
    const dir = join(cacheDir, 'tiny', 'model', 'main');
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    expect(existsSync(join(dir, 'model.safetensors.part'))).toBe(false);
  });

  it('gives a clear error for a required file that is not there (404)', async () => {
    const err = await resolveModel('nobody/nothing', { endpoint, cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubFileNotFoundError);
    expect(String(err)).toContain(`nobody/nothing: config.json not found at ${endpoint}/nobody/nothing/resolve/main/config.json`);
  });

  it('gives a clear error when offline and not cached', async () => {
    const err = await resolveModel('tiny/model', { endpoint, cacheDir, offline: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubOfflineError);
    expect(String(err)).toContain(`tiny/model: config.json is not in the cache (${join(cacheDir, 'tiny', 'model', 'main', 'config.json')})`);
    const dead = await resolveModel('tiny/model', { endpoint: 'http://127.0.0.1:9', cacheDir }).catch((e: unknown) => e);
    expect(dead).toBeInstanceOf(HubOfflineError);
    expect(String(dead)).toMatch(/the Hub is unreachable \(cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it('HttpSource reads a remote file by range requests (what the browser uses for URLs)', async () => {
    const url = `${endpoint}/tiny/model/resolve/main/model.safetensors`;
    const src = await HttpSource.open(url);
    const f = await SafetensorsFile.open(src);
    expect(f.info('model.norm.weight').shape).toEqual([256]);
    const t = await f.load('model.norm.weight', al.getBackend());
    const local = await SafetensorsFile.open(await NodeFileSource.open(join(root, 'tiny/model/model.safetensors')));
    expect(Array.from(t.dataSync())).toEqual(Array.from((await local.load('model.norm.weight', al.getBackend())).dataSync()));
    expect(log.filter((l) => l.method === 'GET').every((l) => /^bytes=\d+-\d+$/.test(l.range ?? ''))).toBe(true);
    await local.close();
  });

  it('uses a local folder as is', async () => {
    const r = await resolveModel(join(root, 'tiny/sharded'));
    expect(r).toMatchObject({ source: 'local', dir: join(root, 'tiny/sharded') });
    expect(r.weightFiles).toHaveLength(2);
    await expect(resolveModel(join(root, 'no/such/dir'))).rejects.toThrow(/no such folder/);
  });
});
