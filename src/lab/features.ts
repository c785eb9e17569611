// The lab's SAE-features view: an SAE (a SAELens folder on disk; the server checks it lies inside
// the folders it serves) read over an activation store (a folder on disk, or a corpus harvested
// into memory at the SAE's hook) by the library's `featureViews`: per feature its density, top-
// activating contexts (with the feature's activation at every token of the window), its logit
// effects (the decoder direction through the final norm and unembedding) and a histogram.
// Not for: raw neurons (neurons.ts).
import { loadSaeLens } from '../sae/saelens.js';
import { featureViews } from '../sae/features.js';
import { saeSite } from '../sae/splice.js';
import { isTranscoder } from '../sae/config.js';
import { storeOf } from './neurons.js';
import { LabRequestError, int, str } from './request.js';
import type { LabContext, LabModel } from './views.js';

export async function featuresView(m: LabModel, a: Record<string, unknown>, ctx: LabContext = {}): Promise<Record<string, unknown>> {
  const dir = str(a.sae, 'sae', 4096);
  let loaded;
  try {
    loaded = await loadSaeLens(dir);
  } catch (e) {
    throw new LabRequestError(`sae: ${(e as Error).message}`, 422);
  }
  const sae = loaded.sae;
  try {
    if (isTranscoder(sae.cfg)) throw new LabRequestError(`sae: ${dir} is a transcoder (${sae.cfg.architecture}); the features view reads SAEs`);
    let site: string;
    try {
      site = saeSite(sae, a.site === undefined ? undefined : str(a.site, 'site'));
    } catch (e) {
      throw new LabRequestError(`sae: ${(e as Error).message}`);
    }
    const shape = m.model.hookPointShapes().find((h) => h.name === site)?.shape;
    if (!shape) throw new LabRequestError(`sae: it reads '${site}', which the loaded model does not have`);
    if (shape.at(-1) !== sae.dIn) throw new LabRequestError(`sae: it reads ${sae.dIn} values but '${site}' has ${shape.at(-1)}`);
    let features: number[] | undefined;
    if (a.features !== undefined) {
      if (!Array.isArray(a.features) || a.features.length === 0 || a.features.length > 32) throw new LabRequestError('features: expected a list of 1 to 32 feature indices');
      features = a.features.map((f, i) => int(f, `features[${i}]`, 0, sae.dSae - 1));
    }
    const source = await storeOf(m, a, [site], ctx);
    ctx.progress?.(1, 2, 'feature views');
    const r = await featureViews(sae, source, {
      features, top: int(a.top ?? 8, 'top', 1, 32), examples: int(a.examples ?? 8, 'examples', 1, 32),
      model: m.model, ...(m.textTokenizer ? { tokenizer: m.tokenizer } : {}),
    });
    ctx.progress?.(2, 2, 'feature views');
    return { sae: { architecture: sae.cfg.architecture, d_in: sae.dIn, d_sae: sae.dSae }, source: a.store !== undefined ? 'store' : 'corpus', contexts: source.contexts, ...r };
  } finally {
    sae.dispose();
  }
}
