// The embedding and attention-pattern kernels of the shakespeare-char training step, timed alone on
// the GPU (timestamps around each dispatch) at the step's shapes: scatterAdd of the b·t ids into
// the token (65 rows) and position (t rows) embedding gradients of 384, the masked softmax over
// [b, 6, t, t], and softmax's gradient as the fused op beside the composed rule it replaces
// (mul, row sum, sub, mul) in the same run. Each row: GPU µs per call (median of --reps), the
// dispatches of one call, and the bytes the call must read and write over that time.
// Usage: node dist/bench/webgpu-train-ops.js [--reps 10] [--batch 64] [--context 256] (small: smoke runs)
import '../src/backends/index.js';
import { softmaxGradComposed } from '../src/autograd/rules.js';
import { randn, tensor, zeros } from '../src/ops/creation.js';
import { scatterAdd, softmax, softmaxBackward } from '../src/ops/nn.js';
import { disposeBackends, initBackend, tidy } from '../src/tensor/engine.js';
import type { Tensor } from '../src/tensor/tensor.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? Number(args[i + 1]) : Number(d); };
const reps = opt('reps', '10');
const B = opt('batch', '64');
const T = opt('context', '256');
const H = 6, D = 384, V = 65;

const backend = (await initBackend('webgpu')) as WebGpuBackend;
const at = { backend };

/** GPU µs of one call of `f` (median over reps, after one untimed call) and its dispatch count. */
async function gpuTime(f: () => Tensor): Promise<{ us: number; dispatches: number }> {
  f().dispose();
  const us: number[] = [];
  let dispatches = 0;
  for (let r = 0; r < reps; r++) {
    backend.rt.startTiming();
    const y = f();
    const t = await backend.rt.stopTiming();
    y.dispose();
    us.push(t.reduce((a, d) => a + d.ms, 0) * 1e3);
    dispatches = t.length;
  }
  us.sort((a, b) => a - b);
  return { us: us[Math.floor(us.length / 2)]!, dispatches };
}

const n = B * T;
const grads = randn([n, D], { seed: 1, ...at });
const tokenIds = tensor(Int32Array.from({ length: n }, (_, i) => (i * 2654435761) % V), [n], 'i32', at);
const positionIds = tensor(Int32Array.from({ length: n }, (_, i) => i % T), [n], 'i32', at);
const tokenTable = zeros([V, D], 'f32', at);
const positionTable = zeros([T, D], 'f32', at);
const scores = randn([B, H, T, T], { seed: 2, ...at });
const causal = tensor(Uint8Array.from({ length: T * T }, (_, i) => (i % T <= Math.floor(i / T) ? 1 : 0)), [1, 1, T, T], 'u8', at);
const probs = softmax(scores, { mask: causal });
const dProbs = randn([B, H, T, T], { seed: 3, ...at });

const pattern = B * H * T * T * 4;
const rows: [string, string, number, () => Tensor][] = [
  ['scatterAdd, token embedding gradient', `[${V},${D}] <- ${n}`, n * D * 4 + n * 4 + 2 * V * D * 4, () => scatterAdd(tokenTable, tokenIds, grads)],
  ['scatterAdd, position embedding gradient', `[${T},${D}] <- ${n}`, n * D * 4 + n * 4 + 2 * T * D * 4, () => scatterAdd(positionTable, positionIds, grads)],
  ['softmax, causal mask [1,1,t,t]', `[${B},${H},${T},${T}]`, 2 * pattern + T * T, () => softmax(scores, { mask: causal })],
  ['softmaxBackward (fused)', `[${B},${H},${T},${T}]`, 3 * pattern, () => softmaxBackward(probs, dProbs)],
  ['softmax gradient, composed rule (peer)', `[${B},${H},${T},${T}]`, 3 * pattern, () => tidy(() => softmaxGradComposed(probs, dProbs))],
];

console.log(`WebGPU training-step kernels, ${backend.rt.handle.adapterInfo.description || backend.rt.handle.adapterInfo.device}: median of ${reps} calls`);
console.log('| op | shape | GPU µs | dispatches | GB/s (bytes it must move) |');
console.log('|---|---|---:|---:|---:|');
for (const [name, shape, bytes, f] of rows) {
  const { us, dispatches } = await gpuTime(f);
  console.log(`| ${name} | ${shape} | ${us.toFixed(1)} | ${dispatches} | ${(bytes / us / 1e3).toFixed(0)} |`);
}
for (const t of [grads, tokenIds, positionIds, tokenTable, positionTable, scores, causal, probs, dProbs]) t.dispose();
disposeBackends();
