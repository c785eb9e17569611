// Weight fake quantization of a loaded f32 model, in place: each packable matrix replaced by the
// values its format gives back (quantize, then dequantize), so any forward pass, hook or analysis
// sees the quantized model. The values equal those of the packed checkpoint (src/quantize/write.ts);
// the products differ only where a backend's packed kernel rounds activations (wasm: 8 bits per
// 32 values). `restore` puts the f32 weights back.
import type { CausalLM } from '../models/model.js';
import { tensor } from '../ops/creation.js';
import { assign } from '../ops/layout.js';
import type { Tensor } from '../tensor/tensor.js';
import { fakeQuantizeWeights, weightFormat, type ActlabQuantType } from '../quant/formats.js';
import { layoutBlock } from '../quant/group.js';
import { packRole, transpose2 } from './write.js';

/** Replaces one parameter's values by `values` (HF layout); returns the old values. */
export function setParameter(p: Tensor, values: Float32Array): Float32Array {
  const old = (p.dataSync() as Float32Array).slice();
  const t = tensor(values, p.shape, 'f32', { backend: p.backend });
  assign(p, t);
  t.dispose();
  return old;
}

/** The fake-quantized values (HF layout) of parameter `name` in `type`, or null when its rows do not divide. */
export function fakeQuantParameter(name: string, p: Tensor, type: ActlabQuantType, config: Record<string, unknown>, values = p.dataSync() as Float32Array): Float32Array | null {
  const role = packRole(name, p.shape, config);
  const [rows, cols] = role.transposed ? [p.shape[1]!, p.shape[0]!] : [p.shape[0]!, p.shape[1]!];
  if (cols % layoutBlock(weightFormat(type).layout).values) return null;
  const w = role.transposed ? transpose2(values, p.shape[0]!, p.shape[1]!) : values;
  const q = fakeQuantizeWeights(type, w, rows, cols, { what: `tensor '${name}'` });
  return role.transposed ? transpose2(q, rows, cols) : q;
}

export interface FakeQuantResult {
  /** name -> the format applied. */
  applied: Record<string, ActlabQuantType>;
  /** Matrices left f32 because their rows are not whole blocks. */
  skipped: string[];
  /** Puts the f32 weights back. */
  restore(): void;
}

/** Fake-quantizes every packable matrix of `model` with `typeFor(name)` (null: leave it f32). */
export function fakeQuantizeModel(model: CausalLM, config: Record<string, unknown>, typeFor: (name: string) => ActlabQuantType | null): FakeQuantResult {
  const params = model.parameters();
  const saved: [Tensor, Float32Array][] = [];
  const applied: Record<string, ActlabQuantType> = {};
  const skipped: string[] = [];
  const seen = new Set<Tensor>();
  for (const [name, p] of params) {
    if (seen.has(p) || !packRole(name, p.shape, config).pack) continue;
    seen.add(p); // tied weights are quantized once
    const type = typeFor(name);
    if (!type) continue;
    const q = fakeQuantParameter(name, p, type, config);
    if (!q) { skipped.push(name); continue; }
    saved.push([p, setParameter(p, q)]);
    applied[name] = type;
  }
  return { applied, skipped, restore: () => { for (const [p, v] of saved) setParameter(p, v); } };
}
