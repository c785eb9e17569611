// Native wasm kernels vs the reference fallback, on the same wasm buffers, for the shapes of
// GPT-2 small (d_model 768, 12 heads of 64, d_mlp 3072, T = 128 / 512, decode with 640 cached keys).
// Prints µs per op (median) for native (all threads and 1 thread) and the reference kernels.
// Usage: npm run build && node dist/bench/wasm-ops.js [--quick] [--filter softmax] [--threads N]
import type { OpDesc, View } from '../src/tensor/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { f32ToF16Bits } from '../src/tensor/dtype.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const filter = args.includes('--filter') ? args[args.indexOf('--filter') + 1]! : '';
const threads = args.includes('--threads') ? Number(args[args.indexOf('--threads') + 1]) : undefined;

interface Case { name: string; op: OpDesc; ins: View[]; outs: View[] }

function strides(shape: readonly number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

function tensor(be: WasmBackend, dtype: View['dtype'], shape: number[], fill: (i: number) => number = () => Math.random() * 2 - 1): View {
  const n = shape.reduce((p, s) => p * s, 1);
  const bytes = dtype === 'u8' ? 1 : dtype === 'f16' ? 2 : 4;
  const buf = be.alloc(n * bytes);
  const raw = new Uint8Array(n * bytes);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < n; i++) {
    const x = fill(i);
    if (dtype === 'f32') dv.setFloat32(i * 4, x, true);
    else if (dtype === 'i32') dv.setInt32(i * 4, x, true);
    else if (dtype === 'f16') dv.setUint16(i * 2, f32ToF16Bits(x), true);
    else raw[i] = x;
  }
  be.write(buf, 0, raw);
  return { buffer: buf, dtype, shape, strides: strides(shape), offset: 0 };
}

const permute = (v: View, p: number[]): View => ({ ...v, shape: p.map((i) => v.shape[i]!), strides: p.map((i) => v.strides[i]!) });

function cases(be: WasmBackend): Case[] {
  const f = (shape: number[]) => tensor(be, 'f32', shape);
  const out: Case[] = [];
  const add = (name: string, op: OpDesc, ins: View[], outs: View[]) => { if (name.includes(filter)) out.push({ name, op, ins, outs }); };
  for (const T of [128, 512]) {
    for (const fn of ['gelu_tanh', 'gelu_erf', 'silu', 'exp'] as const) add(`unary ${fn} [${T},3072]`, { op: 'unary', fn }, [f([T, 3072])], [f([T, 3072])]);
    add(`binary add [${T},768]+[${T},768]`, { op: 'binary', fn: 'add' }, [f([T, 768]), f([T, 768])], [f([T, 768])]);
    const bias = f([3072]);
    add(`binary add [${T},3072]+bias[3072]`, { op: 'binary', fn: 'add' }, [f([T, 3072]), { ...bias, shape: [T, 3072], strides: [0, 1] }], [f([T, 3072])]);
    add(`binary mul [${T},768]*scalar`, { op: 'binary', fn: 'mul' }, [f([T, 768]), { ...f([1]), shape: [T, 768], strides: [0, 0] }], [f([T, 768])]);
    add(`copy permute [1,${T},12,64]->[1,12,${T},64]`, { op: 'copy' }, [permute(f([1, T, 12, 64]), [0, 2, 1, 3])], [f([1, 12, T, 64])]);
    add(`copy f32->f16 [${T},768]`, { op: 'copy' }, [f([T, 768])], [tensor(be, 'f16', [T, 768])]);
    add(`copy f16->f32 [${T},768]`, { op: 'copy' }, [tensor(be, 'f16', [T, 768])], [f([T, 768])]);
    add(`softmax causal [12,${T},${T}]`, { op: 'softmax', log: false, causal: true, masked: false }, [f([12, T, T])], [f([12, T, T])]);
    add(`layernorm [${T},768] w+b`, { op: 'layernorm', eps: 1e-5, hasWeight: true, hasBias: true }, [f([T, 768]), f([768]), f([768])], [f([T, 768])]);
    add(`rmsnorm [${T},768] w`, { op: 'rmsnorm', eps: 1e-5, offset: 0, hasWeight: true }, [f([T, 768]), f([768])], [f([T, 768])]);
    add(`rope half [1,${T},12,64]`, { op: 'rope', mode: 'half', rotaryDim: 64 },
      [f([1, T, 12, 64]), tensor(be, 'i32', [1, T], (i) => i), tensor(be, 'f32', [32], (i) => 10000 ** (-i / 32))], [f([1, T, 12, 64])]);
    add(`gather wte[50257,768] ids[${T}]`, { op: 'gather' }, [f([50257, 768]), tensor(be, 'i32', [1, T], (i) => (i * 7919) % 50257)], [f([1, T, 768])]);
    add(`reduce sum [${T},768]`, { op: 'reduce', fn: 'sum', axis: -1 }, [f([T, 768])], [f([T, 1])]);
    const qkv = (): View => permute(f([1, T, 12, 64]), [0, 2, 1, 3]);
    add(`attention causal T=${T} (permuted q,k,v)`, { op: 'attention', scale: 0.125, causal: true, masked: false, returnProbs: false },
      [qkv(), qkv(), qkv()], [f([1, 12, T, 64])]);
  }
  // decode: one query against 640 cached keys, k/v slices of a [1, 1024, 12, 64] cache viewed as [1, 12, 640, 64]
  const cache = (): View => ({ ...permute(f([1, 1024, 12, 64]), [0, 2, 1, 3]), shape: [1, 12, 640, 64] });
  add('attention decode tq=1 tk=640 (cache slices)', { op: 'attention', scale: 0.125, causal: true, masked: false, returnProbs: false },
    [f([1, 12, 1, 64]), cache(), cache()], [f([1, 12, 1, 64])]);
  add('reduce argmax logits [1,50257]', { op: 'reduce', fn: 'argmax', axis: -1 }, [f([1, 50257])], [tensor(be, 'i32', [1, 1])]);
  const blocks = (768 * 3072) / 32;
  add('dequantize q8_0 768x3072', { op: 'dequantize', type: 'q8_0' },
    [tensor(be, 'u8', [blocks * 34], (i) => (i % 34 === 1 ? 0x20 : (i * 37) & 0xff))], [f([768 * 3072])]);
  return out;
}

/** Median µs of `fn` over runs filling about `budgetMs` (at least 3 runs, 1 for slow ones). */
function time(fn: () => void, budgetMs: number): number {
  const t0 = performance.now();
  fn();
  const first = performance.now() - t0;
  if (first > budgetMs) return first * 1e3;
  const runs = Math.max(3, Math.min(300, Math.floor(budgetMs / Math.max(first, 1e-3))));
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    fn();
    ts.push(performance.now() - s);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)]! * 1e3;
}

const fmt = (us: number) => (us >= 1e4 ? `${(us / 1e3).toFixed(1)} ms` : `${us.toFixed(1)} µs`);

async function main(): Promise<void> {
  const be = await createWasmBackend({ threads });
  const be1 = await createWasmBackend({ threads: 1 });
  const budget = quick ? 100 : 400;
  console.log(`wasm backend: ${JSON.stringify(be.info())}`);
  console.log(`| op | native (${be.pool.threads} thr) | native (1 thr) | reference | speed-up |`);
  console.log('|---|---:|---:|---:|---:|');
  const list = cases(be);
  const list1 = cases(be1);
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    const c1 = list1[i]!;
    if (!be.isNative(c.op, c.ins, c.outs)) { console.log(`| ${c.name} | (not native) | | | |`); continue; }
    const tn = time(() => be.exec(c.op, c.ins, c.outs), budget);
    const t1 = time(() => be1.exec(c1.op, c1.ins, c1.outs), budget);
    const tr = time(() => be.runtime.runReference(c.op, c.ins, c.outs), quick ? 300 : 1500);
    console.log(`| ${c.name} | ${fmt(tn)} | ${fmt(t1)} | ${fmt(tr)} | ${(tr / tn).toFixed(0)}× |`);
  }
  be.dispose();
  be1.dispose();
}

await main();
