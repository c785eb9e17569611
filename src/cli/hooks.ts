// `actlab hooks`: every hook point of a model with its shape (TransformerLens' names).
import type { Command } from 'commander';
import { disposeBackends } from '../tensor/engine.js';
import { loadForCli, weightMemory, type ModelArgs } from './common.js';
import { action, modelOptions } from './options.js';

export function register(program: Command): void {
  modelOptions(program.command('hooks').description('List the hook points of a model with their shapes'), { dtype: true })
    .option('--json', 'print one JSON object')
    .action(action(hooksCommand));
}

export async function hooksCommand(a: ModelArgs & { json?: boolean }): Promise<number> {
  const m = await loadForCli(a);
  try {
    const points = m.model.hookPointShapes();
    const mem = weightMemory(m);
    if (a.json) {
      console.log(JSON.stringify({ model: m.source, arch: m.model.dims.arch, dims: m.model.dims, memory: mem.json, hook_points: points }));
    } else {
      const d = m.model.dims;
      console.log(`${m.source}: ${d.arch}, ${d.nLayers} blocks, d_model ${d.dModel}, ${d.nHeads} heads (${d.nKvHeads} kv) of ${d.dHead}, d_mlp ${d.dMlp}, vocab ${d.vocabSize}`);
      const w = Math.max(...points.map((p) => p.name.length));
      for (const p of points) console.log(`${p.name.padEnd(w)}  [${p.shape.join(', ')}]`);
      console.log(`${points.length} hook points`);
      console.log(mem.text);
    }
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}
