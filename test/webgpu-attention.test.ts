// Prefill attention on WebGPU (attention-flash2.ts, the register-blocked kernel, and the older
// attention-flash.ts) against the js reference: causal and not, tq != tk, grouped-query heads, key
// masks with fully masked rows, head sizes 64, 80, 128 and odd, query counts off the tile, strided
// views, key runs split over workgroups, the row max through subgroups and through workgroup
// memory, and the tuning variants (16/32 query rows a workgroup, 1/2 rows a thread, no prefetch,
// query rows in registers, forced key runs). And the token-major output [b, tq, hq, dv] equals the head-major output permuted on js,
// wasm and WebGPU. Skips with the reason where there is no adapter (see webgpu-helpers.ts).
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { FLASH2_DEFAULTS, FLASH2_TUNING, flash2TileFits } from '../src/backends/webgpu/kernels/attention-flash2.js';
import { setFlashVersion } from '../src/backends/webgpu/kernels/attention.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend: probe, reason } = await openWebGpu();
if (!probe) console.log(`webgpu attention tests skipped: ${reason}`);
probe?.dispose();

/** Deterministic values in [-a, a). */
function values(n: number, seed: number, a = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = ((s / 2 ** 32) * 2 - 1) * a; }
  return out;
}

async function maxErr(a: Tensor, b: Tensor): Promise<{ err: number; scale: number }> {
  const x = await a.data();
  const y = await b.data();
  expect(x.length).toBe(y.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i]! - y[i]!);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return { err, scale };
}

interface Case { what: string; b: number; hq: number; hkv: number; tq: number; tk: number; d: number; dv: number; causal: boolean; mask?: 'some' | 'rows'; strided?: boolean }

const CASES: Case[] = [
  { what: 'gpt-2 shape causal', b: 1, hq: 4, hkv: 4, tq: 256, tk: 256, d: 64, dv: 64, causal: true },
  { what: 'causal t=200 (not a multiple of the tile)', b: 1, hq: 3, hkv: 3, tq: 200, tk: 200, d: 64, dv: 64, causal: true },
  { what: 'non-causal tq=70 < tk=150', b: 2, hq: 2, hkv: 2, tq: 70, tk: 150, d: 64, dv: 64, causal: false },
  { what: 'causal tq=40 < tk=97 gqa 4:1 masked d=80', b: 2, hq: 8, hkv: 2, tq: 40, tk: 97, d: 80, dv: 80, causal: true, mask: 'some' },
  { what: 'causal tq=90 > tk=30 (rows with no key)', b: 1, hq: 2, hkv: 2, tq: 90, tk: 30, d: 32, dv: 32, causal: true },
  { what: 'causal d=128', b: 1, hq: 2, hkv: 2, tq: 100, tk: 100, d: 128, dv: 128, causal: true },
  { what: 'odd d=5 dv=12, masked keys, non-causal', b: 1, hq: 2, hkv: 1, tq: 50, tk: 19, d: 5, dv: 12, causal: false, mask: 'some' },
  { what: 'd=36 dv=20 masked batch 2 fully (rows give 0)', b: 2, hq: 2, hkv: 2, tq: 33, tk: 33, d: 36, dv: 20, causal: true, mask: 'rows' },
  { what: 'strided q/k/v views of [b, t, h, d]', b: 2, hq: 4, hkv: 2, tq: 77, tk: 77, d: 64, dv: 64, causal: true, strided: true },
  { what: 'long keys (split in runs)', b: 1, hq: 2, hkv: 2, tq: 520, tk: 520, d: 64, dv: 64, causal: true },
];

function inputs(c: Case, be: al.Backend) {
  const mk = (shape: number[], seed: number) => al.tensor(values(shape.reduce((a, x) => a * x, 1), seed, 2), shape, 'f32', { backend: be });
  const view = (h: number, t: number, dd: number, seed: number) => (c.strided ? mk([c.b, t, h, dd], seed).transpose(1, 2) : mk([c.b, h, t, dd], seed));
  const q = view(c.hq, c.tq, c.d, 1);
  const k = view(c.hkv, c.tk, c.d, 2);
  const v = view(c.hkv, c.tk, c.dv, 3);
  let keyMask: Tensor | undefined;
  if (c.mask) {
    const m = new Uint8Array(c.b * c.tk);
    for (let i = 0; i < m.length; i++) m[i] = (i * 7) % 5 === 0 ? 0 : 1;
    if (c.mask === 'rows') m.fill(0, c.tk, 2 * c.tk); // the second sequence sees no key
    keyMask = al.tensor(m, [c.b, c.tk], 'u8', { backend: be });
  }
  return { q, k, v, keyMask };
}

function run(c: Case, be: al.Backend, tokenMajor = false): Tensor {
  const { q, k, v, keyMask } = inputs(c, be);
  return al.attention(q, k, v, { causal: c.causal, keyMask, tokenMajor }).out;
}

describe.skipIf(!probe)('prefill attention on webgpu', () => {
  it('both kernels, both reductions, head- and token-major, match the js reference', async () => {
    const js = await al.initBackend('js');
    const gpu = await al.initBackend('webgpu');
    const f = (gpu as unknown as { handle: { features: { subgroups: boolean; subgroupMinSize: number } } }).handle.features;
    const kernels = () => [...(gpu as unknown as { rt: { pipelines: Map<string, { name: string }> } }).rt.pipelines.values()].map((k) => k.name);
    const wgBytes = (gpu as unknown as { rt: { device: GPUDevice } }).rt.device.limits.maxComputeWorkgroupStorageSize;
    console.log(`workgroup memory ${wgBytes} bytes`);
    console.log(`adapter subgroups ${f.subgroups}, smallest subgroup ${f.subgroupMinSize}`);
    const variants: [string, () => void][] = [
      ['flash2', () => { setFlashVersion(2); }],
      ['flash2 wg', () => { setFlashVersion(2); FLASH2_TUNING.reduce = 'wg'; }],
      ['flash2 no key runs', () => { setFlashVersion(2); FLASH2_TUNING.runTiles = 0; }],
      // the tuning variants: fewer query rows a workgroup, fewer rows a thread, no prefetch, forced key runs
      ['flash2 bq32 nt64 no prefetch, 3 key runs', () => { setFlashVersion(2); Object.assign(FLASH2_TUNING, { BQ: 32, NT: 64, prefetch: false, runs: 3 }); }],
      ['flash2 bq32 nt128 (2 rows a thread)', () => { setFlashVersion(2); Object.assign(FLASH2_TUNING, { BQ: 32, NT: 128 }); }],
      ['flash2 bq16 nt128 (1 row a thread) q in registers 2 key runs', () => { setFlashVersion(2); Object.assign(FLASH2_TUNING, { BQ: 16, NT: 128, qreg: true, runs: 2 }); }],
      ['flash1', () => { setFlashVersion(1); }],
    ];
    try {
      for (const c of CASES) {
        const ref = run(c, js);
        const refT = run(c, js, true);
        const { err: permErr } = await maxErr(refT.permute([0, 2, 1, 3]).contiguous(), ref);
        expect(permErr).toBe(0);
        for (const [name, set] of variants) {
          set();
          for (const tm of [false, true]) {
            const y = run(c, gpu, tm);
            const { err, scale } = await maxErr(y, tm ? refT : ref);
            console.log(`${name} ${c.what}${tm ? ' token-major' : ''}: max abs err ${err.toExponential(2)} (max |y| ${scale.toFixed(2)})`);
            expect(err).toBeLessThan(1e-5 * Math.max(1, scale));
            y.dispose();
          }
          if (name.startsWith('flash2') && flash2TileFits(f, wgBytes, c.d, c.dv)) {
            // the kernel that ran: flash2 wherever its tile fits the device's workgroup memory
            expect(kernels().some((n) => n.startsWith(`flash2 d${c.d}v${c.dv} `))).toBe(true);
          }
          Object.assign(FLASH2_TUNING, FLASH2_DEFAULTS);
        }
        ref.dispose(); refT.dispose();
      }
    } finally {
      setFlashVersion(2);
      Object.assign(FLASH2_TUNING, FLASH2_DEFAULTS);
      console.log(`kernels: ${kernels().filter((n) => n.startsWith('flash')).join('; ')}`);
    }
  }, 1_200_000);

  it('token-major output equals the head-major output permuted on wasm', async () => {
    const wasm = await al.initBackend('wasm');
    for (const c of [CASES[1]!, CASES[3]!, CASES[8]!, { ...CASES[2]!, tq: 3 }]) {
      const a = run(c, wasm);
      const t = run(c, wasm, true);
      expect(t.shape).toEqual([c.b, c.tq, c.hq, c.dv]);
      const { err } = await maxErr(t.permute([0, 2, 1, 3]).contiguous(), a);
      console.log(`wasm ${c.what}: token-major vs head-major max abs diff ${err}`);
      expect(err).toBe(0);
    }
  }, 300_000);
});
