// Weight upload, part of bench/webgpu-model.ts: a GPT-2-small f32 checkpoint (bench/gpt2-checkpoint.ts,
// 475 MiB) loaded from disk onto the GPU with actlab's loadModel, timed to the end of the GPU's
// copies (median of 3 loads, the file in the page cache after the first), beside PyTorch reading
// the same file (safetensors' load_file) and moving it with .to('cuda') (bench/gpu_torch.py load).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { loadModel } from '../src/models/load.js';
import type { Backend } from '../src/tensor/backend.js';
import { GPT2_SMALL, writeGpt2Checkpoint } from './gpt2-checkpoint.js';

export interface LoadRow { bench: 'model'; model: string; impl: string; metric: string; T: number; value: number; ms?: number; note?: string }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchLoad(be: Backend, root: string, emit: (r: LoadRow) => void, o: { peers: boolean; runs?: number }): Promise<void> {
  const dir = join(root, 'bench', '.cache', 'gpt2-small-f32');
  const bytes = await writeGpt2Checkpoint(dir, GPT2_SMALL);
  const stats = (be as { rt?: { stats?: { writes: number; writeBytes: number } } }).rt?.stats;
  const ts: number[] = [];
  let writes = 0;
  for (let r = 0; r < (o.runs ?? 3); r++) {
    const w0 = stats?.writes ?? 0;
    const t0 = performance.now();
    const { model } = await loadModel(dir, { backend: be });
    await be.flush();
    ts.push(performance.now() - t0);
    writes = (stats?.writes ?? 0) - w0;
    model.dispose();
    await be.flush();
  }
  const ms = median(ts);
  emit({
    bench: 'model', model: 'gpt2-small', impl: 'actlab-webgpu', metric: 'load_s', T: 0, value: ms / 1e3, ms,
    note: `${(bytes / 2 ** 20).toFixed(0)} MiB file, ${writes} buffer writes; runs ${ts.map((t) => (t / 1e3).toFixed(2)).join(', ')} s`,
  });
  if (!o.peers) return;
  const py = spawnSync('python3', [join(root, 'bench', 'gpu_torch.py'), 'load', dir], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (py.status === 0) for (const line of py.stdout.trim().split('\n')) emit(JSON.parse(line) as LoadRow);
  else console.error(`PyTorch load peer skipped: ${(py.stderr || py.error?.message || '').trim().split('\n').pop()}`);
}
