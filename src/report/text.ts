// The terminal summary of an inspect report: the model and prompt, then one short block per
// analysis section (src/report/sections), the findings first.
import type { InspectJson } from './build.js';
import { q } from './sections/common.js';
import { REPORT_SECTIONS } from './sections/index.js';

export function reportText(r: InspectJson): string {
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  const d = r.model.dims;
  if (r.model.warning) { line(`!!! ${r.model.warning} !!!`); line(); }
  line(`actlab inspect — ${r.model.source}`);
  line(`  ${d.arch}: ${d.nLayers} blocks, d_model ${d.dModel}, ${d.nHeads} heads × ${d.dHead}, d_mlp ${d.dMlp}, vocab ${d.vocabSize}${d.nExperts ? `, ${d.nExperts} experts (top ${d.expertsPerToken})` : ''}`);
  line(`  prompt: ${r.prompt.ids.length} tokens${r.prompt.text !== undefined ? ` ${q(r.prompt.text.length > 70 ? r.prompt.text.slice(0, 70) + '…' : r.prompt.text)}` : ''}`);
  const blocks = REPORT_SECTIONS.map((s) => s.text(r)).filter((b): b is string[] => b !== null);
  for (const b of blocks) { line(); out.push(...b); }
  if (r.errors) { line(); for (const [k, e] of Object.entries(r.errors)) line(`section ${k} failed: ${e}`); }
  return out.join('\n');
}
