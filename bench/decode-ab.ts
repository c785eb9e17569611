// Decode settings side by side: the same GGUF model loaded once per mode (each on its own wasm
// backend and native GEMM, made under the mode's environment variables and native-GEMM policy), then
// greedy decode runs of every mode interleaved in one process, so that a change in the machine's
// load reaches all alike. Prints per mode the wall ms/token (min, p25, median over runs) and CPU
// ms/token, and the second mode's per-run ratios to the first.
// Usage: npm run build && node dist/bench/decode-ab.js [--model FILE] [--threads 2] [--steps 32] [--runs 3]
//   [--modes 'name:ENV=1,ENV2=x:{"policyKey":false};name2::{}']
//   e.g. --modes 'plain:;spin:ACTLAB_NATIVE_DECODE_SPIN=1' or 'head:;apart::{"decodeHead":false}'
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { loadModel } from '../src/models/load.js';
import { tensor } from '../src/ops/creation.js';
import { greedyTokenSync } from '../src/models/generate.js';
const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const file = opt('model', 'bench/.cache/quant/gpt2s-Q8_0.gguf');
const threads = Number(opt('threads', '2'));
const steps = Number(opt('steps', '32'));
const runs = Number(opt('runs', '3'));
const modeSpecs = opt('modes', 'plain:;spin:ACTLAB_NATIVE_DECODE_SPIN=1').split(';').map((m) => { const [name, env, ...rest] = m.split(':'); const pol = rest.join(':'); return { name: name!, pol: pol ? JSON.parse(pol) : {}, env: Object.fromEntries((env ?? '').split(',').filter(Boolean).map((kv) => kv.split('='))) as Record<string, string> }; });
const modes: { name: string; pol: object; env: Record<string, string>; be: Awaited<ReturnType<typeof createWasmBackend>>; model: Awaited<ReturnType<typeof loadModel>>["model"]; ms: number[]; cpus: number[]; cpu: number }[] = [];
for (const m of modeSpecs) {
  const saved = { ...process.env };
  Object.assign(process.env, m.env);
  const be = await createWasmBackend({ threads });
  if (be.native.gemm) Object.assign(be.native.policy, m.pol);
  const { model } = await loadModel(file, { backend: be, memoryBudget: 0 });
  // warm (creates sessions under this env)
  const kv = new KVCache(); let next = 1;
  for (let s = 0; s < 4; s++) { const t = tensor([next], [1, 1], 'i32', { backend: be }); next = greedyTokenSync(model.forward(t, { cache: kv, logits: 'last' })); t.dispose(); }
  kv.dispose();
  for (const k of Object.keys(m.env)) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
  modes.push({ ...m, be, model, ms: [] as number[], cpus: [] as number[], cpu: 0 });
}
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };
for (let r = 0; r < runs; r++) {
  for (const m of modes) {
    const kv = new KVCache(); let next = 1;
    const c0 = cpu(); const t0 = performance.now();
    for (let s = 0; s < steps; s++) { const t = tensor([next], [1, 1], 'i32', { backend: m.be }); next = greedyTokenSync(m.model.forward(t, { cache: kv, logits: 'last' })); t.dispose(); }
    m.ms.push((performance.now() - t0) / steps); m.cpus.push((cpu() - c0) / steps); m.cpu += (cpu() - c0) / steps / runs;
    kv.dispose();
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const q = (xs: number[], f: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * f)]!;
for (const m of modes) console.log(`${m.name}: min ${q(m.ms, 0).toFixed(2)} p25 ${q(m.ms, 0.25).toFixed(2)} median ${med(m.ms).toFixed(2)} ms/token, CPU ${m.cpu.toFixed(2)} ms/token`);
const pairs = modes[1] ? modes[0]!.ms.map((x, i) => modes[1]!.ms[i]! / x) : [];
const cpairs = modes[1] ? modes[0]!.cpus.map((x, i) => modes[1]!.cpus[i]! / x) : [];
for (const m of modes) console.log(`${m.name}: CPU per run min ${q(m.cpus, 0).toFixed(2)} p25 ${q(m.cpus, 0.25).toFixed(2)} median ${med(m.cpus).toFixed(2)}`);
if (cpairs.length) console.log(`CPU ${modes[1]!.name} / ${modes[0]!.name} per run: p25 ${q(cpairs, 0.25).toFixed(3)} median ${med(cpairs).toFixed(3)} p75 ${q(cpairs, 0.75).toFixed(3)}`);
if (pairs.length) console.log(`${modes[1]!.name} / ${modes[0]!.name} per run: p25 ${q(pairs, 0.25).toFixed(2)} median ${med(pairs).toFixed(2)} p75 ${q(pairs, 0.75).toFixed(2)}`);
