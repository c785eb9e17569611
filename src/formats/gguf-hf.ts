// GGUF <-> Hugging Face: which architectures map (gguf-arch-llama.ts, gguf-arch-gpt.ts declare
// them), and the plans built from their rules: every HF tensor a GGUF file serves (its GGUF tensor,
// expert slice and layout change), every GGUF tensor an HF checkpoint converts to, the config from
// GGUF metadata and the metadata from a config.
// Not for: reading or writing tensor data (gguf-weights.ts, gguf-convert.ts).
import type { MetadataValue } from '@huggingface/gguf';
import type { GgufWriteValue } from './gguf-write.js';
import { GgufMeta, HfConfig, type GgufArchSpec, type Layout, type TensorRule, type TensorShapes } from './gguf-arch.js';
import { GEMMA, LLAMA, QWEN2, QWEN2MOE } from './gguf-arch-llama.js';
import { GPT2, GPTNEOX } from './gguf-arch-gpt.js';

/** llama.cpp's `general.architecture` -> its mapping. */
export const GGUF_ARCHITECTURES: Record<string, GgufArchSpec> = {
  llama: LLAMA, qwen2: QWEN2, qwen2moe: QWEN2MOE, gemma: GEMMA, gpt2: GPT2, gptneox: GPTNEOX,
};

const supported = () => Object.keys(GGUF_ARCHITECTURES).join(', ');

export function ggufArch(arch: string, source = 'GGUF'): GgufArchSpec {
  const spec = GGUF_ARCHITECTURES[arch];
  if (!spec) throw new Error(`${source}: GGUF architecture '${arch}' is not supported (supported: ${supported()})`);
  return spec;
}

/** The GGUF architecture llama.cpp's converter writes for an HF model_type. */
export function ggufArchOfModelType(modelType: string): string {
  const hit = Object.entries(GGUF_ARCHITECTURES).find(([, s]) => s.modelTypes.includes(modelType));
  if (!hit) {
    const all = Object.values(GGUF_ARCHITECTURES).flatMap((s) => s.modelTypes).join(', ');
    throw new Error(`GGUF conversion: model_type '${modelType}' is not supported (supported: ${all})`);
  }
  return hit[0];
}

/** One HF tensor as a GGUF file holds it. */
export interface ServedTensor {
  gguf: string;
  /** Index along the leading (expert) axis of a stacked 3-D GGUF tensor. */
  expert?: number;
  layout?: Layout;
  isBias: boolean;
}

const SUFFIX = /\.(weight|bias)$/;

/** Every HF tensor name a GGUF file of `arch` serves, from its tensor names and shapes. */
export function planHfTensors(arch: string, shapes: TensorShapes): Map<string, ServedTensor> {
  const spec = ggufArch(arch);
  const out = new Map<string, ServedTensor>();
  for (const [name, shape] of shapes) {
    const suffix = SUFFIX.exec(name)?.[1];
    if (!suffix) continue;
    const stem = name.slice(0, -suffix.length - 1);
    const blk = /^blk\.(\d+)\.(.+)$/.exec(stem);
    const rule = (blk ? spec.block : spec.top).find((r) => r.gguf === (blk ? blk[2] : stem));
    if (!rule) continue;
    const hf = (blk ? spec.blockPrefix.replace('{i}', blk[1]!) : '') + rule.hf;
    const s = { gguf: name, layout: rule.layout, isBias: suffix === 'bias' };
    if (!hf.includes('{e}')) out.set(`${hf}.${suffix}`, s);
    else for (let e = 0; e < shape[0]!; e++) out.set(`${hf.replace('{e}', String(e))}.${suffix}`, { ...s, expert: e });
  }
  return out;
}

/** Throws naming the first GGUF tensor an architecture needs that the file lacks. */
export function checkRequiredTensors(arch: string, shapes: TensorShapes, blocks: number, source: string): void {
  const spec = ggufArch(arch);
  const need = (name: string) => {
    if (!shapes.has(name)) throw new Error(`${source}: GGUF tensor '${name}' is missing (architecture '${arch}' needs it)`);
  };
  for (const r of spec.top) if (r.required) need(`${r.gguf}.weight`);
  for (let i = 0; i < blocks; i++) for (const r of spec.block) if (r.required) need(`blk.${i}.${r.gguf}.weight`);
}

/** One GGUF tensor an HF checkpoint converts to: its HF sources (E of them when experts stack). */
export interface ConvertedTensor {
  gguf: string;
  sources: string[];
  layout?: Layout;
  isBias: boolean;
}

/** llama.cpp name of an HF tensor under `arch`, with the rule and expert index. */
function matchHf(spec: GgufArchSpec, name: string): { gguf: string; rule: TensorRule; expert?: number } | undefined {
  const suffix = SUFFIX.exec(name)?.[1];
  if (!suffix) return undefined;
  const stem = name.slice(0, -suffix.length - 1);
  for (const r of spec.top) if (r.hf === stem) return { gguf: `${r.gguf}.${suffix}`, rule: r };
  const pattern = (x: string) => x.replace(/\./g, '\\.').replace('{i}', '(\\d+)').replace('{e}', '(\\d+)');
  for (const r of spec.block) {
    const m = new RegExp(`^${pattern(spec.blockPrefix + r.hf)}$`).exec(stem);
    if (m) return { gguf: `blk.${m[1]}.${r.gguf}.${suffix}`, rule: r, expert: r.hf.includes('{e}') ? Number(m[2]) : undefined };
  }
  return undefined;
}

/** The GGUF tensors (in HF order, experts stacked) an HF checkpoint of `config` converts to. */
export function planGgufTensors(arch: string, hfNames: readonly string[], config: Record<string, unknown>): ConvertedTensor[] {
  const spec = ggufArch(arch);
  const c = new HfConfig(config);
  const out = new Map<string, ConvertedTensor & { experts?: string[] }>();
  for (const name of hfNames) {
    if (spec.skip?.(name, c)) continue;
    const hit = matchHf(spec, name);
    if (!hit) throw new Error(`GGUF conversion: HF tensor '${name}' has no llama.cpp name in architecture '${arch}'`);
    const t = out.get(hit.gguf) ?? { gguf: hit.gguf, sources: [], layout: hit.rule.layout, isBias: hit.gguf.endsWith('.bias') };
    if (hit.expert === undefined) t.sources.push(name);
    else (t.experts ??= [])[hit.expert] = name;
    out.set(hit.gguf, t);
  }
  return [...out.values()].map((t) => {
    if (!t.experts) return t;
    const n = c.num(['num_local_experts', 'num_experts']);
    const missing = Array.from({ length: n }, (_, e) => e).filter((e) => !t.experts![e]);
    if (missing.length) throw new Error(`GGUF conversion: '${t.gguf}' stacks ${n} experts but expert ${missing[0]} is missing`);
    return { gguf: t.gguf, sources: t.experts, layout: t.layout, isBias: t.isBias };
  });
}

/** llama.cpp tensor name -> HF name under `arch` (expert tensors: the stem with `{e}`); unknown names come back unchanged. */
export function ggufToHfName(name: string, arch = 'llama'): string {
  const suffix = SUFFIX.exec(name)?.[1];
  if (!suffix) return name;
  const spec = ggufArch(arch);
  const stem = name.slice(0, -suffix.length - 1);
  const blk = /^blk\.(\d+)\.(.+)$/.exec(stem);
  const rule = (blk ? spec.block : spec.top).find((r) => r.gguf === (blk ? blk[2] : stem));
  return rule ? `${(blk ? spec.blockPrefix.replace('{i}', blk[1]!) : '') + rule.hf}.${suffix}` : name;
}

/** HF name -> llama.cpp tensor name (the inverse of `ggufToHfName`). */
export function hfToGgufName(name: string, arch = 'llama'): string {
  return matchHf(ggufArch(arch), name)?.gguf ?? name;
}

/** GGUF metadata -> an HF-style config.json object, for the architecture the file names. */
export function ggufToHfConfig(meta: Record<string, MetadataValue>, shapes: TensorShapes, source = 'GGUF'): Record<string, unknown> {
  const arch = String(meta['general.architecture'] ?? '');
  const cfg = ggufArch(arch, source).toConfig(new GgufMeta(meta, arch, source), shapes);
  const num = (v: MetadataValue | undefined) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined);
  for (const k of ['bos', 'eos', 'padding'] as const) {
    const v = num(meta[`tokenizer.ggml.${k}_token_id`]);
    if (v !== undefined) cfg[`${k === 'padding' ? 'pad' : k}_token_id`] = v;
  }
  if (meta['general.name'] !== undefined) cfg._name_or_path = String(meta['general.name']);
  return cfg;
}

/** An HF config -> GGUF metadata (what llama.cpp's converter writes), for the GGUF writer. */
export function hfConfigToGgufMetadata(config: Record<string, unknown>): { arch: string; kv: Record<string, GgufWriteValue> } {
  const arch = ggufArchOfModelType(String(config.model_type));
  const kv: Record<string, GgufWriteValue> = { 'general.architecture': arch };
  for (const [k, v] of Object.entries(GGUF_ARCHITECTURES[arch]!.toMetadata(new HfConfig(config)))) kv[`${arch}.${k}`] = v;
  return { arch, kv };
}
