// The analysis registry: every analysis is one declared value; the analyze command's options are
// derived from the declarations (a shared flag once, its help naming each analysis); runAnalysis
// loads and disposes the model it asks for and gives what the analysis function gives.
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { ANALYSIS_LIST, getAnalysis, runAnalysis, type AnalysisEnv } from '../src/analysis/registry.js';
import { analysisOptions } from '../src/cli/analyze.js';
import { collect } from '../src/analysis/acts.js';
import { sinkHookNames, sinksFromActs } from '../src/analysis/sinks.js';
import type { LoadedModel } from '../src/models/load.js';

const CONFIG = { model_type: 'llama', vocab_size: 32, max_position_embeddings: 16, hidden_size: 16, num_attention_heads: 2, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 24, rope_theta: 10000 };

describe('analysis registry', () => {
  it('declares each analysis once and derives one option per flag', () => {
    const names = ANALYSIS_LIST.map((a) => a.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(['massive', 'sinks', 'sparsity', 'voids', 'logit-lens', 'induction', 'experts', 'neurons', 'similarity']);
    const opts = analysisOptions();
    const flags = opts.map((o) => o.flags);
    expect(new Set(flags).size).toBe(flags.length);
    expect(opts.find((o) => o.flags === '--epsilon <x>')!.description).toBe('sinks: sink-head threshold (0.3); sparsity: |a| cut-off (0.01)');
    expect(opts.find((o) => o.flags === '--top-k <k>')!.description).toBe('logit-lens: top tokens; neurons: examples');
    expect(opts.find((o) => o.flags === '--seed <n>')!.description).toBe('random seed');
    expect(() => getAnalysis('nosuch')).toThrow(/unknown analysis 'nosuch' \(have massive, sinks/);
  });

  it('runs an analysis through an environment and disposes the model it loaded', async () => {
    const backend = await al.initBackend('js');
    let disposed = 0;
    const load = async (): Promise<LoadedModel> => {
      const model = al.randomModel(CONFIG, backend, { seed: 1 });
      const dispose = model.dispose.bind(model);
      model.dispose = () => { disposed++; dispose(); };
      return { model, config: CONFIG, format: 'hf', source: 'random', fileBytes: 0 } as unknown as LoadedModel;
    };
    const ids = [1, 4, 9, 4, 9, 2];
    const env: AnalysisEnv = {
      args: { model: 'random', epsilon: 0.2 }, load, backend: async () => backend, readFile: async () => new Uint8Array(), warn: () => {},
      checkContext: (m, n) => { if (n > m.model.dims.nCtx) throw new Error('too long'); }, promptIds: () => ({ ids }),
    };
    const r = await runAnalysis('sinks', env);
    const ref = await load();
    const expected = sinksFromActs(collect(ref.model, ids, sinkHookNames(ref.model)), 2, { epsilon: 0.2 });
    expect(r).toEqual(expected);
    expect(disposed).toBe(1);
    await expect(runAnalysis('experts', env)).rejects.toThrow(/not a mixture-of-experts model/);
    expect(disposed).toBe(2);
    await expect(runAnalysis('sinks', { ...env, args: {} })).rejects.toThrow(/sinks: give --model/);
    const ck = await runAnalysis('massive', { ...env, args: { checkpoint: ['a', 'b'] } }) as { checkpoints: { label: string }[] };
    expect(ck.checkpoints.map((c) => c.label)).toEqual(['a', 'b']);
    expect(disposed).toBe(4);
    ref.model.dispose();
  });
});
