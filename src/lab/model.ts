// A loaded model as the lab holds it: the model, a tokenizer (the checkpoint's, or the IdTokenizer
// when it has none) and a display name. Shared by the page's worker and the local server.
import type { LoadedModel } from '../models/load.js';
import { IdTokenizer } from './id-tokenizer.js';
import type { LabModel } from './views.js';

export function labModel(m: Pick<LoadedModel, 'model' | 'tokenizer' | 'config'>, name: string): LabModel {
  const bos = typeof m.config.bos_token_id === 'number' ? m.config.bos_token_id : null;
  return {
    model: m.model,
    tokenizer: m.tokenizer ?? new IdTokenizer(m.model.dims.vocabSize, bos),
    textTokenizer: !!m.tokenizer,
    name,
  };
}

/** The organisms the page offers to load by name; their folders hold config.json + model.safetensors. */
export const LAB_ORGANISMS = ['induction', 'modular-addition'] as const;
