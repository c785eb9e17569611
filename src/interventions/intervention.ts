// The intervention model: one plain-data (JSON) description for every change made to activations
// during a forward pass — steering, ablation, clamping, patching in a stored value. An
// intervention names
//   hook      a hook point glob ('blocks.3.hook_resid_post', 'blocks.*.attn.hook_z'),
//   positions which token positions ('all', 'prompt', 'generated', 'last', a list, a slice),
//   unit      which part of the activation (the whole vector, heads, neurons/dims, experts),
//   op        what to do there (add, set, scale, project_out, zero, mean, resample, clamp, interpolate).
// This file holds the schema, its parser (clear errors naming the field) and JSON round-tripping.
// Compiling against a model (shape checks, hooks) is `apply.ts`; vectors by reference are
// `vector-ref.ts`; the math of each op is `operations.ts`.

/**
 * A vector (or tensor) argument: a bare number array (1-D), `{ shape, data }` inline, or a
 * reference `{ file, tensor }` to a tensor of a safetensors file (path relative to the JSON file's
 * folder when loaded with `loadInterventions`). A reference must be resolved (`resolveVectors`)
 * before the intervention is compiled.
 */
export type VectorRef = number[] | Float32Array | { shape: number[]; data: number[] | Float32Array } | { file: string; tensor: string };
/** A number or a vector; numbers may be written 'inf' / '-inf' in JSON (which has no infinities). */
export type ValueRef = number | VectorRef;

/**
 * Which token positions an intervention touches. Positions are each sequence's own (padding not
 * counted, so a left-padded row is addressed like the same prompt alone).
 * - 'all': every position;
 * - 'prompt': positions of a call with no cached tokens (the prompt pass of `generate`, or any
 *   plain `forward`); 'generated': positions of calls that extend a KV cache (generation steps);
 * - 'last': the last position of each call (the last prompt token, then every generated token);
 * - a list of positions (≥ 0); a slice `{ start, end?, step? }` (end exclusive, open when absent).
 */
export type PositionSpec = 'all' | 'prompt' | 'generated' | 'last' | number[] | { start: number; end?: number; step?: number };

/**
 * Which part of the activation. 'all' is the whole activation at a position; `heads` selects
 * along the head axis (hook_q/k/v/z/result: [batch, pos, head, ...]; hook_pattern/attn_scores:
 * [batch, head, query, key]); `dims` (alias `neurons`) along the last axis (d_model, d_mlp,
 * d_head, n_experts); `experts` the experts of an MoE layer: along n_experts at the router hooks,
 * or, at `mlp.experts.{e}.*` hook points, only the listed experts' points.
 */
export type UnitSpec = 'all' | { heads: number[] } | { dims: number[] } | { neurons: number[] } | { experts: number[] };

export type Operation =
  /** x + strength · vector. */
  | { op: 'add'; vector: VectorRef; strength?: number }
  /** x := value (broadcast). */
  | { op: 'set'; value: ValueRef }
  /** x · factor. */
  | { op: 'scale'; factor: number }
  /** x − (x·v̂) v̂ along the last axis (v̂ = vector / |vector|); `strength` (default 1) scales the removed part. */
  | { op: 'project_out'; vector: VectorRef; strength?: number }
  /** x := 0. */
  | { op: 'zero' }
  /** x := value (a precomputed mean, e.g. from `meanActivation`); without one, the mean over this call's real tokens. */
  | { op: 'mean'; value?: VectorRef }
  /**
   * x := the activation of another input. With `source` ([n, ...feature]) each (row, position)
   * takes a row of it chosen by a hash of (seed, row, position); without, each batch row takes the
   * next row's activation at the same position (needs a batch of 2 or more).
   */
  | { op: 'resample'; source?: VectorRef; seed?: number }
  /** min(max(x, min), max). */
  | { op: 'clamp'; min?: number; max?: number }
  /** x + alpha · (target − x): alpha 0 keeps x, 1 is the target. */
  | { op: 'interpolate'; target: ValueRef; alpha: number };

export type InterventionOp = Operation['op'];
export const INTERVENTION_OPS: readonly InterventionOp[] = ['add', 'set', 'scale', 'project_out', 'zero', 'mean', 'resample', 'clamp', 'interpolate'];

export type Intervention = { hook: string; positions?: PositionSpec; unit?: UnitSpec; name?: string } & Operation;

/** The JSON form of a list of interventions, as `actlab steer --interventions FILE` reads it. */
export interface InterventionFile {
  format: 'actlab.interventions';
  version: 1;
  interventions: Intervention[];
}

export class InterventionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InterventionError';
  }
}

const KEYS: Record<InterventionOp, string[]> = {
  add: ['vector', 'strength'], set: ['value'], scale: ['factor'], project_out: ['vector', 'strength'], zero: [],
  mean: ['value'], resample: ['source', 'seed'], clamp: ['min', 'max'], interpolate: ['target', 'alpha'],
};
const COMMON = ['hook', 'positions', 'unit', 'name', 'op'];

function num(v: unknown, where: string, o: { int?: boolean; min?: number } = {}): number {
  let x = v;
  if (x === 'inf' || x === '+inf' || x === 'Infinity') x = Infinity;
  if (x === '-inf' || x === '-Infinity') x = -Infinity;
  if (typeof x !== 'number' || Number.isNaN(x)) throw new InterventionError(`${where} must be a number, got ${JSON.stringify(v) ?? String(v)}`);
  if (o.int && !Number.isInteger(x)) throw new InterventionError(`${where} must be an integer, got ${x}`);
  if (o.min !== undefined && x < o.min) throw new InterventionError(`${where} must be ≥ ${o.min}, got ${x}`);
  return x;
}

function finite(v: unknown, where: string): number {
  const x = num(v, where);
  if (!Number.isFinite(x)) throw new InterventionError(`${where} must be finite, got ${x}`);
  return x;
}

function intList(v: unknown, where: string): number[] {
  if (!Array.isArray(v) || v.length === 0) throw new InterventionError(`${where} must be a non-empty list of integers, got ${JSON.stringify(v)}`);
  const out = v.map((x, i) => num(x, `${where}[${i}]`, { int: true, min: 0 }));
  if (new Set(out).size !== out.length) throw new InterventionError(`${where} lists an index twice: ${JSON.stringify(v)}`);
  return out;
}

function vectorRef(v: unknown, where: string): VectorRef {
  if (v instanceof Float32Array) {
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw new InterventionError(`${where}[${i}] is ${v[i]}; vectors must be finite`);
    return v;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) throw new InterventionError(`${where} is an empty vector`);
    return v.map((x, i) => finite(x, `${where}[${i}]`));
  }
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if ('file' in o || 'tensor' in o) {
      if (typeof o.file !== 'string' || o.file === '' || typeof o.tensor !== 'string' || o.tensor === '') {
        throw new InterventionError(`${where}: a reference needs a 'file' (safetensors path) and a 'tensor' name, got ${JSON.stringify(v)}`);
      }
      return { file: o.file, tensor: o.tensor };
    }
    if ('data' in o) {
      if (!Array.isArray(o.shape) || o.shape.length === 0) throw new InterventionError(`${where}.shape must be a non-empty list of sizes, got ${JSON.stringify(o.shape)}`);
      const shape = o.shape.map((x, i) => num(x, `${where}.shape[${i}]`, { int: true, min: 1 }));
      const data = vectorRef(o.data, `${where}.data`) as number[] | Float32Array;
      const n = shape.reduce((a, b) => a * b, 1);
      if (data.length !== n) throw new InterventionError(`${where}: shape [${shape}] needs ${n} values, data has ${data.length}`);
      return { shape, data };
    }
  }
  throw new InterventionError(`${where} must be a number list, { shape, data } or { file, tensor }, got ${JSON.stringify(v)}`);
}

function valueRef(v: unknown, where: string): ValueRef {
  if (typeof v === 'number' || typeof v === 'string') return num(v, where);
  return vectorRef(v, where);
}

function positionSpec(v: unknown, where: string): PositionSpec {
  if (v === undefined) return 'all';
  if (v === 'all' || v === 'prompt' || v === 'generated' || v === 'last') return v;
  if (Array.isArray(v)) return intList(v, where);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => !['start', 'end', 'step'].includes(k));
    if (extra.length) throw new InterventionError(`${where}: unknown slice field${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')} (a slice has start, end, step)`);
    const start = num(o.start ?? 0, `${where}.start`, { int: true, min: 0 });
    const out: { start: number; end?: number; step?: number } = { start };
    if (o.end !== undefined && o.end !== null) {
      out.end = num(o.end, `${where}.end`, { int: true, min: 0 });
      if (out.end <= start) throw new InterventionError(`${where}: slice end ${out.end} must be past start ${start}`);
    }
    if (o.step !== undefined) out.step = num(o.step, `${where}.step`, { int: true, min: 1 });
    return out;
  }
  throw new InterventionError(`${where} must be 'all', 'prompt', 'generated', 'last', a list of positions or { start, end, step }, got ${JSON.stringify(v)}`);
}

function unitSpec(v: unknown, where: string): UnitSpec {
  if (v === undefined || v === 'all') return 'all';
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && ['heads', 'dims', 'neurons', 'experts'].includes(keys[0]!)) {
      const k = keys[0] as 'heads';
      return { [k]: intList((v as Record<string, unknown>)[k], `${where}.${k}`) } as UnitSpec;
    }
  }
  throw new InterventionError(`${where} must be 'all', { heads: [...] }, { dims: [...] }, { neurons: [...] } or { experts: [...] }, got ${JSON.stringify(v)}`);
}

/**
 * Checks one intervention (plain data, e.g. parsed JSON) and returns it normalised (numbers
 * parsed, defaults left implicit). `where` names it in errors ('interventions[2]').
 */
export function parseIntervention(v: unknown, where = 'intervention'): Intervention {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new InterventionError(`${where} must be an object, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  if (typeof o.hook !== 'string' || o.hook.trim() === '') throw new InterventionError(`${where}.hook must name a hook point or glob (e.g. 'blocks.3.hook_resid_post'), got ${JSON.stringify(o.hook)}`);
  if (typeof o.op !== 'string' || !(INTERVENTION_OPS as string[]).includes(o.op)) {
    throw new InterventionError(`${where}.op must be one of ${INTERVENTION_OPS.join(', ')}, got ${JSON.stringify(o.op)}`);
  }
  const op = o.op as InterventionOp;
  const extra = Object.keys(o).filter((k) => !COMMON.includes(k) && !KEYS[op].includes(k));
  if (extra.length) throw new InterventionError(`${where}: '${op}' takes ${[...KEYS[op]].map((k) => `'${k}'`).join(', ') || 'no arguments'}; unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')}`);
  const base: { hook: string; positions?: PositionSpec; unit?: UnitSpec; name?: string } = { hook: o.hook.trim() };
  if (o.positions !== undefined) base.positions = positionSpec(o.positions, `${where}.positions`);
  if (o.unit !== undefined) base.unit = unitSpec(o.unit, `${where}.unit`);
  if (o.name !== undefined) base.name = String(o.name);
  const w = (k: string) => `${where}.${k}`;
  const need = (k: string) => {
    if (o[k] === undefined) throw new InterventionError(`${where}: '${op}' needs '${k}'`);
    return o[k];
  };
  switch (op) {
    case 'add':
    case 'project_out': {
      const r = { ...base, op, vector: vectorRef(need('vector'), w('vector')) } as Intervention & { strength?: number };
      if (o.strength !== undefined) r.strength = finite(o.strength, w('strength'));
      return r;
    }
    case 'set': return { ...base, op, value: valueRef(need('value'), w('value')) };
    case 'scale': return { ...base, op, factor: finite(need('factor'), w('factor')) };
    case 'zero': return { ...base, op };
    case 'mean': return o.value === undefined ? { ...base, op } : { ...base, op, value: vectorRef(o.value, w('value')) };
    case 'resample': {
      const r: Intervention = { ...base, op };
      if (o.source !== undefined) r.source = vectorRef(o.source, w('source'));
      if (o.seed !== undefined) r.seed = num(o.seed, w('seed'), { int: true, min: 0 });
      return r;
    }
    case 'clamp': {
      const r: Intervention = { ...base, op };
      if (o.min !== undefined) r.min = num(o.min, w('min'));
      if (o.max !== undefined) r.max = num(o.max, w('max'));
      if (r.min === undefined && r.max === undefined) throw new InterventionError(`${where}: 'clamp' needs 'min', 'max' or both`);
      if (r.min !== undefined && r.max !== undefined && r.min > r.max) throw new InterventionError(`${where}: clamp min ${r.min} is above max ${r.max}`);
      return r;
    }
    case 'interpolate': return { ...base, op, target: valueRef(need('target'), w('target')), alpha: finite(need('alpha'), w('alpha')) };
  }
}

/** Parses an `InterventionFile` object or a bare list of interventions. */
export function parseInterventions(v: unknown, where = 'interventions'): Intervention[] {
  let list = v;
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const f = v as Record<string, unknown>;
    if (f.format !== 'actlab.interventions') throw new InterventionError(`${where}: expected { format: 'actlab.interventions', version: 1, interventions: [...] } or a list, got format ${JSON.stringify(f.format)}`);
    if (f.version !== 1) throw new InterventionError(`${where}: version ${JSON.stringify(f.version)} is not supported (this actlab reads version 1)`);
    list = f.interventions;
    where = `${where}.interventions`;
  }
  if (!Array.isArray(list)) throw new InterventionError(`${where} must be a list, got ${JSON.stringify(list)}`);
  return list.map((x, i) => parseIntervention(x, `${where}[${i}]`));
}

/** Plain JSON-ready data: Float32Arrays become number lists, infinities 'inf' / '-inf'. */
export function interventionsToJSON(list: readonly Intervention[]): InterventionFile {
  const plain = (x: unknown): unknown => {
    if (x instanceof Float32Array) return Array.from(x);
    if (typeof x === 'number' && !Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
    if (Array.isArray(x)) return x.map(plain);
    if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
    return x;
  };
  return { format: 'actlab.interventions', version: 1, interventions: list.map((i) => plain(i) as Intervention) };
}
