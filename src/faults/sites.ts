// Where faults and clipping go: hook point globs resolved against a model's hook points, and the
// default clipping sites (every MLP activation and attention output the model has).
import { matchHookPatterns } from '../hooks/patterns.js';
import type { CausalLM } from '../models/model.js';

/** Hook names matching the comma-separated globs; an error names `flag` and the closest names. */
export function hookGlobs(model: CausalLM, patterns: string, flag: string): string[] {
  try {
    return matchHookPatterns(patterns, model.hookPoints().map((h) => h.name));
  } catch (e) {
    throw new Error(`${flag}: ${(e as Error).message}`);
  }
}

/** ProAct clips activation-function outputs: the MLP activations, or the attention outputs of attention-only models. */
export function defaultClipSites(model: CausalLM): string {
  const names = model.hookPoints().map((h) => h.name);
  return names.some((n) => /^blocks\.\d+\.mlp\.hook_post$/.test(n)) ? 'blocks.*.mlp.hook_post' : 'blocks.*.attn.hook_z';
}
