// What keeping quantized weights outside the wasm memory costs: qmatmul with the weight in the
// wasm memory (read where it lies) beside the same weight in host memory (copied in by row panels
// on every product, backend option heapWeightBytes: 0), decode (M = 1) and prefill (M = 128),
// same backend settings, same run.
// Usage: npm run build && node dist/bench/host-weights.js [--threads 2] [--n 4096] [--k 4096] [--json]
import '../src/backends/index.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { quantizeQ4_0, quantizeQ8_0 } from '../src/formats/gguf-quants.js';
import { Rng } from '../src/ops/creation.js';
import { qmatmul } from '../src/ops/quant.js';
import { QuantizedTensor } from '../src/tensor/quantized.js';
import { Tensor } from '../src/tensor/tensor.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const threads = Number(opt('threads', '2'));
const N = Number(opt('n', '4096'));
const K = Number(opt('k', '4096'));
const json = args.includes('--json');

function time(f: () => void, minMs = 400): number {
  for (let i = 0; i < 2; i++) f();
  const ts: number[] = [];
  const t0 = performance.now();
  while (ts.length < 5 || performance.now() - t0 < minMs) {
    const a = performance.now();
    f();
    ts.push(performance.now() - a);
  }
  return ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]!;
}

async function main(): Promise<void> {
  const r = new Rng(1);
  const w = Float32Array.from({ length: N * K }, () => r.normal());
  const blocks = { q8_0: quantizeQ8_0(w), q4_0: quantizeQ4_0(w) };
  const backends: [string, WasmBackend][] = [
    ['in wasm memory', await createWasmBackend({ threads })],
    ['host memory', await createWasmBackend({ threads, heapWeightBytes: 0 })],
  ];
  const rows: { type: string; M: number; where: string; ms: number; gbs: number }[] = [];
  for (const [type, raw] of Object.entries(blocks) as [keyof typeof blocks, Uint8Array][]) {
    for (const M of [1, 128]) {
      for (const [where, be] of backends) {
        const q = QuantizedTensor.fromBytes(raw, type, [N, K], be);
        const x = Tensor.from(Float32Array.from({ length: M * K }, () => r.normal()), [M, K], 'f32', be);
        const ms = time(() => qmatmul(x, q).dispose());
        rows.push({ type, M, where, ms, gbs: raw.byteLength / ms / 1e6 });
        if (json) console.log(JSON.stringify({ bench: 'host-weights', threads, N, K, ...rows.at(-1) }));
        x.dispose();
        q.dispose();
      }
    }
  }
  for (const [, be] of backends) be.dispose();
  if (json) return;
  console.log(`qmatmul [M, ${K}] x [${N}, ${K}]ᵀ on wasm, ${threads} threads`);
  console.log('| type | M | weight in | ms | weight GB/s | host / in memory |');
  console.log('|---|---:|---|---:|---:|---:|');
  for (const x of rows) {
    const base = rows.find((y) => y.type === x.type && y.M === x.M && y.where === 'in wasm memory')!;
    console.log(`| ${x.type} | ${x.M} | ${x.where} | ${x.ms.toFixed(2)} | ${x.gbs.toFixed(2)} | ${(x.ms / base.ms).toFixed(2)}x |`);
  }
}

await main();
