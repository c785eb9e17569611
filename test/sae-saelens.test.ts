// SAELens format: write and read back bit for bit (every architecture), read SAELens 6 and older
// cfg.json layouts and training layouts (log_threshold, topk_threshold), clear errors for unknown
// architectures, missing keys and wrong shapes; and the Hub release layout through a local server.
import { mkdtemp, mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { MemoryStore } from '../src/io/memory-store.js';
import { initSae } from '../src/sae/init.js';
import { loadSaeFromHub, loadSaeLens, saveSaeLens } from '../src/sae/saelens.js';
import { configToSaeLens, type SaeArchitecture, type SaeConfig } from '../src/sae/config.js';
import { writeSafetensors } from '../src/formats/safetensors.js';

beforeAll(async () => { await al.setDefaultBackend('js'); });

function cfgOf(arch: SaeArchitecture, extra: Partial<SaeConfig> = {}): SaeConfig {
  const t = arch.includes('transcoder');
  return {
    architecture: arch, d_in: 6, d_sae: 10, ...(t ? { d_out: 5 } : {}), ...(arch === 'topk' || arch === 'batchtopk' ? { k: 3 } : {}),
    apply_b_dec_to_input: !t, normalize_activations: 'none', dtype: 'float32',
    metadata: { hook_name: 'blocks.1.hook_resid_post', model_name: 'tiny' }, ...extra,
  };
}

const enc = (s: string) => new TextEncoder().encode(s);

describe('SAELens format', () => {
  for (const arch of ['standard', 'topk', 'batchtopk', 'jumprelu', 'transcoder', 'skip_transcoder', 'jumprelu_transcoder'] as SaeArchitecture[]) {
    it(`round trip of ${arch} is exact`, async () => {
      const store = new MemoryStore();
      const sae = initSae(cfgOf(arch), { seed: 4 });
      sae.param('b_enc').set(Float32Array.from({ length: 10 }, (_, i) => i * 0.125 - 0.3));
      await saveSaeLens(sae, 'a', { store, featureDensity: Float32Array.from({ length: 10 }, (_, i) => i / 10) });
      const back = await loadSaeLens('a', { store });
      expect(configToSaeLens(back.sae.cfg)).toEqual(configToSaeLens(sae.cfg));
      for (const [k, v] of sae.params) expect(Buffer.from(back.sae.param(k).buffer).equals(Buffer.from(v.buffer)), k).toBe(true);
      expect(back.logSparsity![3]).toBeCloseTo(Math.log10(0.3), 6);
      await saveSaeLens(back.sae, 'b', { store, logSparsity: back.logSparsity! });
      for (const f of ['cfg.json', 'sae_weights.safetensors', 'sparsity.safetensors']) {
        expect(Buffer.from(await store.readBytes(`b/${f}`)).equals(Buffer.from(await store.readBytes(`a/${f}`))), f).toBe(true);
      }
    });
  }

  it('reads a SAELens 6 cfg.json with its metadata and keeps unknown fields', async () => {
    const store = new MemoryStore();
    const cfg = {
      d_in: 6, d_sae: 10, dtype: 'float32', device: 'cpu', apply_b_dec_to_input: true, normalize_activations: 'none',
      reshape_activations: 'none', metadata: { sae_lens_version: '6.5.0', hook_name: 'blocks.0.hook_resid_pre', model_name: 'gpt2' },
      architecture: 'topk', k: 3, rescale_acts_by_decoder_norm: true, some_future_field: 7,
    };
    const sae = initSae(cfgOf('topk'), { seed: 1 });
    await saveSaeLens(sae, 'x', { store });
    await store.rename('x/sae_weights.safetensors', 'y/sae_weights.safetensors');
    await (await store.openAppend('y/cfg.json')).write(enc(JSON.stringify(cfg)));
    const back = await loadSaeLens('y', { store });
    expect(back.sae.cfg.architecture).toBe('topk');
    expect(back.sae.cfg.k).toBe(3);
    expect(back.sae.cfg.rescale_acts_by_decoder_norm).toBe(true);
    expect(back.sae.cfg.metadata.hook_name).toBe('blocks.0.hook_resid_pre');
    await saveSaeLens(back.sae, 'z', { store });
    const written = JSON.parse(new TextDecoder().decode(await store.readBytes('z/cfg.json')));
    expect(written).toEqual(cfg);
  });

  it('reads older layouts: hook_point, activation_fn_str topk, boolean normalize_activations, log_threshold', async () => {
    const store = new MemoryStore();
    const old = { d_in: 6, d_sae: 10, hook_point: 'blocks.2.hook_resid_pre', model_name: 'gpt2-small', activation_fn_str: 'topk', activation_fn_kwargs: { k: 4 }, normalize_activations: false, dtype: 'float32' };
    const sae = initSae(cfgOf('topk'), { seed: 2 });
    const js = al.getBackend('js');
    const T = (name: string, shape: number[]) => al.Tensor.from(sae.param(name), shape, 'f32', js);
    await writeSafetensors(store, 'o/sae_weights.safetensors', { W_enc: T('W_enc', [6, 10]), b_enc: T('b_enc', [10]), W_dec: T('W_dec', [10, 6]), b_dec: T('b_dec', [6]) });
    await (await store.openAppend('o/cfg.json')).write(enc(JSON.stringify(old)));
    const back = await loadSaeLens('o', { store });
    expect(back.sae.cfg.architecture).toBe('topk');
    expect(back.sae.cfg.k).toBe(4);
    expect(back.sae.cfg.normalize_activations).toBe('none');
    expect(back.sae.cfg.metadata.hook_name).toBe('blocks.2.hook_resid_pre');

    const jr = initSae(cfgOf('jumprelu'), { seed: 3, initThreshold: 0.25 });
    const J = (name: string, shape: number[]) => al.Tensor.from(jr.param(name), shape, 'f32', js);
    await writeSafetensors(store, 'j/sae_weights.safetensors', {
      W_enc: J('W_enc', [6, 10]), b_enc: J('b_enc', [10]), W_dec: J('W_dec', [10, 6]), b_dec: J('b_dec', [6]),
      log_threshold: al.Tensor.from(new Float32Array(10).fill(Math.log(0.25)), [10], 'f32', js),
    });
    await (await store.openAppend('j/cfg.json')).write(enc(JSON.stringify({ architecture: 'jumprelu', d_in: 6, d_sae: 10 })));
    const j = await loadSaeLens('j', { store });
    expect(j.sae.param('threshold')[0]).toBeCloseTo(0.25, 6);
  });

  it('bad folders: unknown architecture, missing keys, wrong shapes, no cfg.json', async () => {
    const store = new MemoryStore();
    const sae = initSae(cfgOf('standard'), { seed: 1 });
    await saveSaeLens(sae, 's', { store });
    const put = async (dir: string, cfg: unknown) => {
      await store.remove(`${dir}/cfg.json`);
      await (await store.openAppend(`${dir}/cfg.json`)).write(enc(JSON.stringify(cfg)));
    };
    await put('s', { architecture: 'gated', d_in: 6, d_sae: 10 });
    await expect(loadSaeLens('s', { store })).rejects.toThrow(/unknown SAE architecture 'gated'/);
    await put('s', { architecture: 'jumprelu', d_in: 6, d_sae: 10 });
    await expect(loadSaeLens('s', { store })).rejects.toThrow(/missing 'threshold' \[10\] for a jumprelu SAE/);
    await put('s', { architecture: 'standard', d_in: 7, d_sae: 10 });
    await expect(loadSaeLens('s', { store })).rejects.toThrow(/'W_enc' is \[6, 10\]; cfg.json .* needs \[7, 10\]/);
    await put('s', { architecture: 'standard', d_sae: 10 });
    await expect(loadSaeLens('s', { store })).rejects.toThrow(/'d_in' must be a positive number/);
    await expect(loadSaeLens('nowhere', { store })).rejects.toThrow(/no cfg.json/);
  });
});

describe('SAELens Hub release layout', () => {
  let root: string;
  let server: Server;
  let endpoint: string;
  const requests: string[] = [];
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'actlab-sae-hub-'));
    const store = new MemoryStore();
    await saveSaeLens(initSae(cfgOf('topk'), { seed: 7 }), 'r', { store });
    await mkdir(join(root, 'org/release/blocks.1.hook_resid_post'), { recursive: true });
    for (const f of ['cfg.json', 'sae_weights.safetensors']) await writeFile(join(root, 'org/release/blocks.1.hook_resid_post', f), await store.readBytes(`r/${f}`));
    server = createServer(async (req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const m = /^\/(\w+\/\w+)\/resolve\/main\/(.+)$/.exec(decodeURIComponent(req.url ?? ''));
      try {
        const body = await readFile(join(root, m![1]!, m![2]!));
        res.writeHead(200, { 'content-length': body.byteLength });
        res.end(req.method === 'HEAD' ? undefined : body);
      } catch {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.close();
    await rm(root, { recursive: true, force: true });
  });

  it('fetches cfg.json and weights of one SAE folder into the cache, then reads offline', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'actlab-sae-cache-'));
    try {
      const a = await loadSaeFromHub('org/release', 'blocks.1.hook_resid_post', { endpoint, cacheDir: cache });
      expect(a.sae.cfg.architecture).toBe('topk');
      expect(requests.some((r) => r.includes('blocks.1.hook_resid_post/sae_weights.safetensors'))).toBe(true);
      const b = await loadSaeFromHub('org/release', 'blocks.1.hook_resid_post', { endpoint: 'http://127.0.0.1:9', cacheDir: cache, offline: true });
      expect(Buffer.from(b.sae.param('W_dec').buffer).equals(Buffer.from(a.sae.param('W_dec').buffer))).toBe(true);
      await expect(loadSaeFromHub('org/release', 'blocks.9.hook_resid_post', { endpoint, cacheDir: cache })).rejects.toThrow(/cfg.json/);
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });
});
