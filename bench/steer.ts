// Benchmark: what steering costs during generation. stories260K (GGUF, ../shared/data) decodes
// greedily with and without a steering vector added at every step (blocks.2.hook_resid_post,
// every position), on actlab's wasm backend and, beside it in the same run, in llama.cpp with the
// same vector as a control vector (scripts/llamacpp/cvec_logits, libllama's
// llama_set_adapter_cvec), both on the same thread count, interleaved (actlab, then llama.cpp, per
// run) so that a busy machine slows both alike. Metric: decode ms/token over N one-token steps
// (median of the runs), and the steered/plain ratio.
// Usage: npm run bench:steer -- [--json] [--threads 1] [--runs 5] [--steps 128]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { writeControlVector } from '../src/interventions/control-vector.js';
import { withInterventions } from '../src/interventions/apply.js';
import { generate } from '../src/models/generate.js';
import { loadModel } from '../src/models/load.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const threads = Number(opt('threads', '1'));
const runs = Number(opt('runs', '5'));
const steps = Number(opt('steps', '128'));
const json = args.includes('--json');
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const gguf = join(root, '..', 'shared', 'data', 'stories260K-gguf', 'stories260K.gguf');
if (!existsSync(gguf)) throw new Error(`${gguf} is missing (../shared next to the repository)`);

const backend = await createWasmBackend({ threads });
const { model, tokenizer } = await loadModel(gguf, { backend });
const prompt = tokenizer!.encode('Once upon a time, there was a little girl named Lily.');
const D = model.dims.dModel;
const vector = Float32Array.from({ length: D }, (_, i) => Math.sin(i * 0.37));
const steer = [{ hook: 'blocks.2.hook_resid_post', op: 'add' as const, vector, strength: 0.5 }];

/** ms per decode step: generate `steps` + 1 tokens and subtract the prompt pass timed alone. */
function actlab(steered: boolean): number {
  const go = (n: number) => {
    const t0 = performance.now();
    if (steered) withInterventions(model, steer, () => generate(model, [prompt], { maxNewTokens: n }));
    else generate(model, [prompt], { maxNewTokens: n });
    return performance.now() - t0;
  };
  return (go(steps + 1) - go(1)) / steps;
}

const build = spawnSync('bash', [join(root, 'scripts', 'llamacpp', 'build.sh')], { encoding: 'utf8' });
const bin = build.status === 0 ? build.stdout.trim().split('\n').at(-1)! : null;
const cvec = join(mkdtempSync(join(tmpdir(), 'actlab-bench-steer-')), 'v.gguf');
await writeControlVector({ modelHint: 'llama', dModel: D, directions: new Map([[2, vector]]) }, cvec);
function llamacpp(steered: boolean): number | null {
  if (!bin) return null;
  const out = execFileSync(bin, [gguf, join(dirname(cvec), 'out'), prompt.join(','), '--gen', String(steps + 1), '--threads', String(threads), ...(steered ? ['--cvec', cvec, '--strength', '0.5'] : [])],
    { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: join(dirname(bin), 'lib') }, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out.trim().split('\n').at(-1)!).decode_ms / steps;
}

actlab(false); actlab(true); // warm up
const res: Record<string, number[]> = { 'actlab plain': [], 'actlab steered': [], 'llama.cpp plain': [], 'llama.cpp steered': [] };
for (let r = 0; r < runs; r++) {
  res['actlab plain']!.push(actlab(false));
  res['actlab steered']!.push(actlab(true));
  const a = llamacpp(false);
  const b = llamacpp(true);
  if (a !== null && b !== null) { res['llama.cpp plain']!.push(a); res['llama.cpp steered']!.push(b); }
}
const median = (xs: number[]) => (xs.length ? [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]! : NaN);
const m = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)]));
const rows = [
  { engine: `actlab wasm (${threads} thread${threads > 1 ? 's' : ''})`, plain: m['actlab plain']!, steered: m['actlab steered']! },
  { engine: bin ? `llama.cpp CPU (${threads} thread${threads > 1 ? 's' : ''})` : 'llama.cpp (not built: no headers)', plain: m['llama.cpp plain']!, steered: m['llama.cpp steered']! },
];
if (json) console.log(JSON.stringify({ model: 'stories260K', steps, runs, threads, rows }));
else {
  console.log(`stories260K greedy decode, ${steps} steps, median of ${runs} runs; steering: add at blocks.2.hook_resid_post (llama.cpp: direction.2)`);
  console.log('engine                          plain ms/tok  steered ms/tok  steered/plain');
  for (const r of rows) console.log(`${r.engine.padEnd(32)}${r.plain.toFixed(3).padStart(12)}${r.steered.toFixed(3).padStart(16)}${(r.steered / r.plain).toFixed(3).padStart(15)}`);
}
model.dispose();
process.exit(0);
