// What an SAE (or transcoder) is: its architecture, sizes and input handling, in SAELens' own
// field names (cfg.json of SAELens 6), so a folder written by either library reads in the other.
// Not for: weights (sae.ts) or training settings (train.ts).

/** Inference architectures, as SAELens names them ('standard' is the ReLU SAE trained with L1). */
export const SAE_ARCHITECTURES = ['standard', 'topk', 'batchtopk', 'jumprelu', 'transcoder', 'skip_transcoder', 'jumprelu_transcoder'] as const;
export type SaeArchitecture = (typeof SAE_ARCHITECTURES)[number];

export type ActivationNormalization = 'none' | 'expected_average_only_in' | 'constant_norm_rescale' | 'layer_norm';
const NORMALIZATIONS: readonly ActivationNormalization[] = ['none', 'expected_average_only_in', 'constant_norm_rescale', 'layer_norm'];

export interface SaeConfig {
  architecture: SaeArchitecture;
  d_in: number;
  d_sae: number;
  /** Transcoders: the output width (the MLP output); an SAE reconstructs its input (d_out = d_in). */
  d_out?: number;
  /** TopK: active units per token; BatchTopK: the mean active units per token. */
  k?: number;
  /** Subtract b_dec from the input before encoding. */
  apply_b_dec_to_input: boolean;
  normalize_activations: ActivationNormalization;
  /** TopK: pre-activations scaled by the decoder row norms (SAELens' rescale_acts_by_decoder_norm). */
  rescale_acts_by_decoder_norm?: boolean;
  dtype: string;
  /** hook_name (and hook_name_out for transcoders), model_name, context_size, ... */
  metadata: Record<string, unknown>;
  /** Any other cfg.json fields, kept as read so a save writes them back unchanged. */
  extra?: Record<string, unknown>;
}

/** The architecture's weight names and shapes. */
export function weightShapes(c: SaeConfig): Record<string, number[]> {
  const dOut = c.d_out ?? c.d_in;
  const s: Record<string, number[]> = {
    W_enc: [c.d_in, c.d_sae],
    b_enc: [c.d_sae],
    W_dec: [c.d_sae, dOut],
    b_dec: [dOut],
  };
  if (c.architecture === 'jumprelu' || c.architecture === 'jumprelu_transcoder' || c.architecture === 'batchtopk') s.threshold = [c.d_sae];
  if (c.architecture === 'skip_transcoder') s.W_skip = [dOut, c.d_in];
  return s;
}

export function isTranscoder(c: SaeConfig): boolean {
  return c.architecture === 'transcoder' || c.architecture === 'skip_transcoder' || c.architecture === 'jumprelu_transcoder';
}

export function hookName(c: SaeConfig): string | undefined {
  const h = c.metadata.hook_name;
  return typeof h === 'string' ? h : undefined;
}

/** The output hook of a transcoder (where its reconstruction replaces the activation). */
export function hookNameOut(c: SaeConfig): string | undefined {
  const h = c.metadata.hook_name_out;
  return typeof h === 'string' ? h : hookName(c);
}

const LEGACY_METADATA = ['model_name', 'hook_name', 'hook_layer', 'hook_head_index', 'prepend_bos', 'context_size', 'dataset_path', 'model_class_name', 'hook_name_out', 'hook_layer_out', 'neuronpedia_id', 'sae_lens_training_version', 'model_from_pretrained_kwargs', 'seqpos_slice', 'exclude_special_tokens', 'dataset_trust_remote_code'];

/**
 * A cfg.json object (SAELens 6, or an older one with hook_point / activation_fn_str / a boolean
 * normalize_activations) as an SaeConfig; `where` names the file in errors.
 */
export function configFromSaeLens(raw: unknown, where: string): SaeConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where}: cfg.json is not a JSON object`);
  const r = { ...(raw as Record<string, unknown>) };
  const meta: Record<string, unknown> = r.metadata && typeof r.metadata === 'object' ? { ...(r.metadata as Record<string, unknown>) } : {};
  // Pre-6.0 layouts keep the metadata at the top level and name some fields differently.
  if (r.hook_point !== undefined && r.hook_name === undefined) r.hook_name = r.hook_point;
  for (const k of LEGACY_METADATA) if (r[k] !== undefined && meta[k] === undefined) meta[k] = r[k];
  let arch = r.architecture ?? 'standard';
  const act = r.activation_fn ?? r.activation_fn_str;
  const kwargs = (r.activation_fn_kwargs ?? {}) as Record<string, unknown>;
  if (arch === 'standard' && act === 'topk' && kwargs.k !== undefined) { arch = 'topk'; r.k = kwargs.k; }
  if (act !== undefined && act !== 'relu' && act !== 'topk' && arch === 'standard') {
    throw new Error(`${where}: activation function '${String(act)}' is not supported (relu or topk)`);
  }
  if (typeof arch !== 'string' || !(SAE_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new Error(`${where}: unknown SAE architecture '${String(arch)}' (actlab reads ${SAE_ARCHITECTURES.join(', ')})`);
  }
  const num = (k: string, required = true): number | undefined => {
    const v = r[k];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`${where}: '${k}' must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  let norm = r.normalize_activations;
  if (typeof norm === 'boolean') norm = norm ? 'expected_average_only_in' : 'none';
  if (norm === undefined || norm === null) norm = 'none';
  if (!(NORMALIZATIONS as readonly unknown[]).includes(norm)) throw new Error(`${where}: normalize_activations '${String(norm)}' is not one of ${NORMALIZATIONS.join(', ')}`);
  const c: SaeConfig = {
    architecture: arch as SaeArchitecture,
    d_in: num('d_in')!,
    d_sae: num('d_sae')!,
    apply_b_dec_to_input: r.apply_b_dec_to_input === undefined ? true : !!r.apply_b_dec_to_input,
    normalize_activations: norm as ActivationNormalization,
    dtype: typeof r.dtype === 'string' ? r.dtype : 'float32',
    metadata: meta,
  };
  if (arch === 'topk' || arch === 'batchtopk') c.k = num('k')!;
  if (arch === 'topk' && r.rescale_acts_by_decoder_norm !== undefined) c.rescale_acts_by_decoder_norm = !!r.rescale_acts_by_decoder_norm;
  if (isTranscoder(c)) c.d_out = num('d_out')!;
  const known = new Set(['architecture', 'd_in', 'd_sae', 'd_out', 'k', 'apply_b_dec_to_input', 'normalize_activations', 'dtype', 'metadata', 'rescale_acts_by_decoder_norm']);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (!known.has(k)) extra[k] = v;
  if (Object.keys(extra).length) c.extra = extra;
  return c;
}

/** The cfg.json object SAELens 6 writes for this config. */
export function configToSaeLens(c: SaeConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  out.d_in = c.d_in;
  out.d_sae = c.d_sae;
  out.dtype = c.dtype;
  out.device = (c.extra?.device as string | undefined) ?? 'cpu';
  out.apply_b_dec_to_input = c.apply_b_dec_to_input;
  out.normalize_activations = c.normalize_activations;
  out.reshape_activations = (c.extra?.reshape_activations as string | undefined) ?? 'none';
  out.metadata = { ...c.metadata };
  out.architecture = c.architecture;
  if (c.k !== undefined) out.k = c.k;
  if (c.rescale_acts_by_decoder_norm !== undefined) out.rescale_acts_by_decoder_norm = c.rescale_acts_by_decoder_norm;
  if (c.d_out !== undefined) out.d_out = c.d_out;
  for (const [k, v] of Object.entries(c.extra ?? {})) if (!(k in out)) out[k] = v;
  return out;
}
