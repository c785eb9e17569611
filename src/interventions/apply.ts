// Interventions applied to a model: `compileInterventions` checks a list against the model (hook
// globs, layer and head ranges, vector widths) before anything runs, and turns it into hooks. Use
//   withInterventions(model, list, () => generate(...))      // scoped: forward, runWithCache, generate
//   const h = addInterventions(model, list); ...; h.remove() // until removed
//   runWithHooks(model, ids, { hooks: compiled.hooks })       // one call
// Order: the interventions apply in list order at each hook point; hooks registered later (a
// call's own hooks, runWithCache's cache) see the intervened activation. Removing them leaves the
// model as it was (its logits are bit-identical to before).
import type { HookFilter, HookFn, HookPoint } from '../models/hook-point.js';
import { closestHookNames, globToRegExp } from '../hooks/patterns.js';
import { tensor } from '../ops/creation.js';
import type { CausalLM } from '../models/model.js';
import { keep, tidy } from '../tensor/engine.js';
import type { DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { InterventionError, parseIntervention, type Intervention, type PositionSpec } from './intervention.js';
import { replacement, select, type Layout, type OpCall, type OpConstants } from './operations.js';
import { denseOf, denseValue, type DenseVector } from './vector-ref.js';

/** One intervention at one hook point, checked against the model. */
interface Site {
  name: string;
  lay: Layout;
  /** Absolute axis the unit selects along, and the selected indices (null: the whole activation). */
  unitAxis: number | null;
  unitIdx: number[] | null;
  /** Host constants in the full feature shape, before upload. */
  host: { vector?: DenseVector; direction?: DenseVector; source?: DenseVector; value?: number };
  consts: Map<string, OpConstants>;
}

interface Compiled {
  spec: Intervention;
  call: OpCall;
  sites: Map<string, Site>;
}

/** A list of interventions compiled for one model: its hooks, in list order. */
export class CompiledInterventions {
  readonly hooks: [HookFilter, HookFn][];
  private disposed = false;

  constructor(readonly model: CausalLM, private readonly items: Compiled[]) {
    this.hooks = items.map((c) => [(n: string) => c.sites.has(n), (x: Tensor, hp: HookPoint) => this.apply(c, x, hp)]);
  }

  /** The hook point names each intervention matched, in list order. */
  get matches(): string[][] {
    return this.items.map((c) => [...c.sites.keys()]);
  }

  private apply(c: Compiled, x: Tensor, hp: HookPoint): Tensor | void {
    if (this.disposed) throw new InterventionError('these interventions were disposed; compile them again');
    const site = c.sites.get(hp.name)!;
    return tidy(() => applyAt(c, site, x, hp));
  }

  /** Frees the device copies of the vectors. */
  dispose(): void {
    this.disposed = true;
    for (const c of this.items) for (const s of c.sites.values()) {
      for (const k of s.consts.values()) for (const t of [k.vector, k.direction, k.source]) t?.dispose();
      s.consts.clear();
    }
  }
}

/** Checks `list` against `model` and compiles it (throws InterventionError naming the problem). */
export function compileInterventions(model: CausalLM, list: readonly unknown[]): CompiledInterventions {
  const points = model.hookPointShapes();
  const items = list.map((raw, i) => compileOne(model, points, parseIntervention(raw, `interventions[${i}]`), `interventions[${i}]`));
  return new CompiledInterventions(model, items);
}

/** Runs `fn` with the interventions applied to every forward pass it makes, then removes them. */
export function withInterventions<T>(model: CausalLM, list: readonly unknown[], fn: () => T): T {
  const c = compileInterventions(model, list);
  let out: T;
  try {
    out = model.withHooks(c.hooks, fn);
  } catch (e) {
    c.dispose();
    throw e;
  }
  if (out instanceof Promise) return out.finally(() => c.dispose()) as T;
  c.dispose();
  return out;
}

/** Applies the interventions to every forward pass until `remove()` is called. */
export function addInterventions(model: CausalLM, list: readonly unknown[]): { compiled: CompiledInterventions; remove: () => void } {
  const c = compileInterventions(model, list);
  for (const [f, h] of c.hooks) model.persistentHooks.add(f, h);
  return {
    compiled: c,
    remove: () => {
      for (const [, h] of c.hooks) model.persistentHooks.remove(h);
      c.dispose();
    },
  };
}

function matchNames(model: CausalLM, names: string[], glob: string, where: string): string[] {
  const re = globToRegExp(glob);
  const hit = names.filter((n) => re.test(n));
  if (hit.length) return hit;
  const L = model.dims.nLayers;
  const layer = /(?:^|\.)blocks\.(\d+)\./.exec(glob);
  if (layer && Number(layer[1]) >= L) throw new InterventionError(`${where}.hook '${glob}': layer ${layer[1]} is out of range; this ${model.dims.arch} model has ${L} blocks (0–${L - 1})`);
  const ex = /\.experts\.(\d+)\./.exec(glob);
  if (ex && model.dims.nExperts !== undefined && Number(ex[1]) >= model.dims.nExperts) {
    throw new InterventionError(`${where}.hook '${glob}': expert ${ex[1]} is out of range; this model has ${model.dims.nExperts} experts`);
  }
  throw new InterventionError(`${where}.hook '${glob}' matches no hook point of this ${model.dims.arch} model; closest: ${closestHookNames(glob, names).map((n) => `'${n}'`).join(', ')}`);
}

function layoutOf(shape: (string | number)[]): Layout {
  if (shape[0] !== 'batch') {
    return { batchAxis: null, posAxis: null, featAxes: shape.map((_, i) => i).slice(1), feat: shape.slice(1) };
  }
  const posAxis = shape.findIndex((s) => s === 'pos' || s === 'query_pos');
  const featAxes = shape.map((_, i) => i).filter((i) => i !== 0 && i !== posAxis);
  return { batchAxis: 0, posAxis, featAxes, feat: featAxes.map((i) => shape[i]!) };
}

const fmt = (s: readonly (number | string)[]) => `[${s.join(', ')}]`;

function compileOne(model: CausalLM, points: { name: string; shape: (string | number)[] }[], spec: Intervention, where: string): Compiled {
  const shapes = new Map(points.map((p) => [p.name, p.shape]));
  let names = matchNames(model, points.map((p) => p.name), spec.hook, where);
  const unit = spec.unit ?? 'all';
  const expertUnit = typeof unit === 'object' && 'experts' in unit ? unit.experts : null;
  if (expertUnit) {
    const nE = model.dims.nExperts;
    if (!nE) throw new InterventionError(`${where}.unit: experts need a mixture-of-experts model; this ${model.dims.arch} model has none`);
    const bad = expertUnit.find((e) => e >= nE);
    if (bad !== undefined) throw new InterventionError(`${where}.unit.experts: expert ${bad} is out of range; this model has ${nE} experts (0–${nE - 1})`);
    // At per-expert hook points the unit keeps only the listed experts' points.
    names = names.filter((n) => {
      const m = /\.experts\.(\d+)\./.exec(n);
      return !m || expertUnit.includes(Number(m[1]));
    });
    if (!names.length) throw new InterventionError(`${where}: '${spec.hook}' has no hook point of experts ${expertUnit.join(', ')}`);
  }
  const call: OpCall = { op: spec.op };
  if (spec.op === 'add' || spec.op === 'project_out') call.strength = spec.strength ?? 1;
  if (spec.op === 'scale') call.factor = spec.factor;
  if (spec.op === 'clamp') { call.min = spec.min; call.max = spec.max; }
  if (spec.op === 'interpolate') call.alpha = spec.alpha;
  if (spec.op === 'resample') call.seed = spec.seed ?? 0;
  const sites = new Map<string, Site>();
  for (const name of names) {
    const shape = shapes.get(name)!;
    const at = `${where} at '${name}' ${fmt(shape)}`;
    if (name.endsWith('hook_expert_indices')) throw new InterventionError(`${at}: expert indices are integers; intervene on hook_router_logits (e.g. set an expert's logit to -inf to deactivate it)`);
    const lay = layoutOf(shape);
    const pos = spec.positions ?? 'all';
    if (lay.posAxis === null && pos !== 'all') throw new InterventionError(`${at}: this hook point has no position axis (its rows are the tokens routed to one expert), so positions must be 'all'`);
    const { unitAxis, unitIdx } = unitOf(name, shape, lay, spec, at);
    sites.set(name, { name, lay, unitAxis, unitIdx, host: hostConstants(spec, lay, shape, unitAxis, unitIdx, at), consts: new Map() });
  }
  return { spec, call, sites };
}

function unitOf(name: string, shape: (string | number)[], lay: Layout, spec: Intervention, at: string): { unitAxis: number | null; unitIdx: number[] | null } {
  const unit = spec.unit ?? 'all';
  if (unit === 'all') return { unitAxis: null, unitIdx: null };
  let axis: number;
  let idx: number[];
  let what: string;
  if ('heads' in unit) {
    axis = shapeHeadAxis(shape);
    if (axis < 0) throw new InterventionError(`${at}: unit 'heads' needs a hook point with a head axis (attn.hook_q/k/v/z/result/pattern/attn_scores)`);
    idx = unit.heads;
    what = 'head';
  } else if ('experts' in unit) {
    if (lay.batchAxis === null) return { unitAxis: null, unitIdx: null }; // a per-expert point, kept by name
    if (!name.endsWith('hook_router_logits')) {
      throw new InterventionError(`${at}: unit 'experts' selects along n_experts (mlp.hook_router_logits) or picks mlp.experts.{e}.* hook points`);
    }
    axis = shape.length - 1;
    idx = unit.experts;
    what = 'expert';
  } else {
    axis = shape.length - 1;
    idx = 'dims' in unit ? unit.dims : unit.neurons;
    what = 'dim';
  }
  const size = shape[axis]!;
  if (typeof size !== 'number') throw new InterventionError(`${at}: the last axis (${size}) varies from call to call, so a unit cannot select along it`);
  const bad = idx.find((i) => i >= size);
  if (bad !== undefined) throw new InterventionError(`${at}: ${what} index ${bad} is out of range; the axis has ${size} (0–${size - 1})`);
  return { unitAxis: axis, unitIdx: idx };
}

/** The head axis of a hook shape as model.hookPointShapes() gives it (sizes filled in), or -1. */
function shapeHeadAxis(shape: (string | number)[]): number {
  // [batch, pos, head, d] for q/k/v/z/result; [batch, head, query_pos, key_pos] for patterns.
  if (shape[1] === 'pos' && shape.length === 4) return 2;
  if (shape[2] === 'query_pos') return 1;
  return -1;
}

/** Whether `v` (a shape) equals a suffix of `feat`. */
function isSuffix(v: readonly number[], feat: readonly (number | string)[]): boolean {
  return v.length <= feat.length && v.every((d, i) => feat[feat.length - v.length + i] === d);
}

/**
 * A vector argument in the hook's feature shape (a suffix of it, broadcast from the right). With a
 * unit selection it may also be full width along the unit axis (indexed by unit), or one row per
 * selected unit (in the order listed), which is embedded into the full shape with zeros elsewhere
 * (masked out anyway).
 */
function embed(v: DenseVector, lay: Layout, shape: (string | number)[], unitAxis: number | null, unitIdx: number[] | null, at: string, field: string): DenseVector {
  const feat = lay.feat;
  if (feat.some((d) => typeof d !== 'number') || lay.featAxes.some((a, i) => i > 0 && a !== lay.featAxes[i - 1]! + 1) || lay.featAxes.at(-1) !== shape.length - 1) {
    throw new InterventionError(`${at}: '${field}' must be a number here (the feature axes ${fmt(feat)} vary or are not the trailing axes)`);
  }
  const f = feat as number[];
  const want = `a suffix of ${fmt(f)}`;
  if (unitAxis === null || unitIdx === null) {
    if (!isSuffix(v.shape, f)) throw new InterventionError(`${at}: '${field}' has shape ${fmt(v.shape)}; it must be ${want} (width ${f.at(-1)})`);
    return v;
  }
  const k = lay.featAxes.indexOf(unitAxis); // the unit's place among the feature axes
  const after = f.slice(k + 1);
  if (isSuffix(v.shape, after) && !(v.shape.length === after.length + 1)) return v; // the same for every selected unit
  const full = [f[k]!, ...after];
  if (isSuffix(v.shape, full) && v.shape.length === full.length) return v; // full width, indexed by unit
  const per = [unitIdx.length, ...after];
  if (v.shape.length !== per.length || !v.shape.every((d, i) => d === per[i])) {
    throw new InterventionError(`${at}: '${field}' has shape ${fmt(v.shape)}; with ${unitIdx.length} selected unit(s) it must be ${fmt(per)} (one row per selected unit), ${fmt(full)} (full width) or ${after.length ? fmt(after) : 'a number'} (shared)`);
  }
  const inner = after.reduce((a, b) => a * b, 1);
  const data = new Float32Array(full.reduce((a, b) => a * b, 1));
  unitIdx.forEach((u, r) => data.set(v.data.subarray(r * inner, (r + 1) * inner), u * inner));
  return { shape: full, data };
}

function hostConstants(spec: Intervention, lay: Layout, shape: (string | number)[], unitAxis: number | null, unitIdx: number[] | null, at: string): Site['host'] {
  const vec = (v: Parameters<typeof denseOf>[0], field: string) => embed(denseOf(v, `${at}.${field}`), lay, shape, unitAxis, unitIdx, at, field);
  switch (spec.op) {
    case 'add': {
      const v = vec(spec.vector, 'vector');
      const s = spec.strength ?? 1;
      return { vector: { shape: v.shape, data: v.data.map((x) => x * s) } };
    }
    case 'set':
    case 'interpolate': {
      const raw = spec.op === 'set' ? spec.value : spec.target;
      const d = denseValue(raw, at);
      return typeof d === 'number' ? { value: d } : { vector: vec(d, spec.op === 'set' ? 'value' : 'target') };
    }
    case 'mean': return spec.value ? { vector: vec(spec.value, 'value') } : {};
    case 'project_out': {
      const v = vec(spec.vector, 'vector');
      const D = v.shape.at(-1)!;
      const data = Float32Array.from(v.data);
      let any = false;
      for (let r = 0; r < data.length / D; r++) {
        const row = data.subarray(r * D, (r + 1) * D);
        const n = Math.hypot(...row);
        if (n > 0) { any = true; for (let i = 0; i < D; i++) row[i]! /= n; }
      }
      if (!any) throw new InterventionError(`${at}: project_out needs a non-zero direction`);
      return { direction: { shape: v.shape, data } };
    }
    case 'resample': {
      if (!spec.source) return {};
      if (lay.batchAxis !== null && lay.posAxis !== 1) throw new InterventionError(`${at}: resampling from a source needs a [batch, pos, ...] (or per-expert) hook point`);
      const s = denseOf(spec.source, `${at}.source`);
      const f = lay.feat as number[];
      if (s.shape.length !== f.length + 1 || !f.every((d, i) => s.shape[i + 1] === d)) {
        throw new InterventionError(`${at}: 'source' has shape ${fmt(s.shape)}; it must be [n, ${f.join(', ')}] (n stored activations)`);
      }
      return { source: s };
    }
    default: return {};
  }
}

/** The site's constants on `x`'s backend and dtype (uploaded once, kept until dispose). */
function constantsFor(site: Site, x: Tensor): OpConstants {
  const key = `${x.backend.name}:${x.dtype}`;
  let k = site.consts.get(key);
  if (k) return k;
  const up = (d: DenseVector, shape = d.shape) => keep(tidy(() => {
    const t = tensor(d.data, shape, 'f32', { backend: x.backend });
    return x.dtype === 'f32' ? t : t.cast(x.dtype as DType);
  }));
  k = {};
  if (site.host.vector) k.vector = up(site.host.vector);
  if (site.host.direction) k.direction = up(site.host.direction);
  if (site.host.source) k.source = up(site.host.source, [site.host.source.shape[0]!, site.host.source.data.length / site.host.source.shape[0]!]);
  if (site.host.value !== undefined) k.value = site.host.value;
  site.consts.set(key, k);
  return k;
}

/** Per (row, pos): the token position of the sequence, -1 for padding ([B * P]). */
function rowPositions(hp: HookPoint, B: number, P: number): Int32Array {
  const tp = hp.tokenPositions;
  if (!tp) return Int32Array.from({ length: B * P }, (_, i) => hp.position + (i % P));
  if (tp.length === B * P) return tp;
  const full = tp.length / B;
  if (Number.isInteger(full) && full > P) { // logits: 'last' narrowed the positions to the last P
    return Int32Array.from({ length: B * P }, (_, i) => tp[Math.floor(i / P) * full + full - P + (i % P)]!);
  }
  throw new InterventionError(`at '${hp.name}': ${tp.length} token positions for a [${B}, ${P}] activation`);
}

/** Whether the position spec selects (row, pos): null = every position, false = none. */
function positionMask(spec: PositionSpec, hp: HookPoint, rows: Int32Array, P: number): Uint8Array | null | false {
  if (spec === 'all') return null;
  if (spec === 'prompt') return hp.position === 0 ? null : false;
  if (spec === 'generated') return hp.position > 0 ? null : false;
  const m = new Uint8Array(rows.length);
  if (spec === 'last') {
    for (let i = 0; i < rows.length; i++) m[i] = i % P === P - 1 ? 1 : 0;
  } else if (Array.isArray(spec)) {
    const s = new Set(spec);
    for (let i = 0; i < rows.length; i++) m[i] = s.has(rows[i]!) ? 1 : 0;
  } else {
    const { start, end, step = 1 } = spec;
    for (let i = 0; i < rows.length; i++) {
      const p = rows[i]!;
      m[i] = p >= start && (end === undefined || p < end) && (p - start) % step === 0 ? 1 : 0;
    }
  }
  return m.includes(1) ? m : false;
}

function applyAt(c: Compiled, site: Site, x: Tensor, hp: HookPoint): Tensor | void {
  const { lay } = site;
  let posMask: Uint8Array | null = null;
  let rows: Int32Array | undefined;
  if (lay.batchAxis !== null && lay.posAxis !== null) {
    const B = x.shape[lay.batchAxis]!;
    const P = x.shape[lay.posAxis]!;
    rows = rowPositions(hp, B, P);
    const pm = positionMask(c.spec.positions ?? 'all', hp, rows, P);
    if (pm === false) return;
    posMask = pm;
  }
  if (c.call.op === 'resample' && !site.host.source && x.shape[0]! < 2) {
    throw new InterventionError(`${c.spec.hook} at '${hp.name}': resampling without a source takes another batch row's activation, and this batch has 1 row; give a 'source'`);
  }
  const k = constantsFor(site, x);
  const mask = maskTensor(x, lay, posMask, site.unitAxis, site.unitIdx);
  const real = c.call.op === 'mean' && !k.vector && rows ? realWeights(x, lay, rows) : undefined;
  return select(mask, replacement(x, lay, c.call, k, { real, rows }), x);
}

/** u8 mask in x's rank (1 on unrelated axes) over the selected positions and units, or null. */
function maskTensor(x: Tensor, lay: Layout, pos: Uint8Array | null, unitAxis: number | null, unitIdx: number[] | null): Tensor | null {
  if (!pos && unitAxis === null) return null;
  const shape = x.shape.map((d, i) => (i === unitAxis || (pos && (i === lay.batchAxis || i === lay.posAxis)) ? d : 1));
  const U = unitAxis === null ? 1 : x.shape[unitAxis]!;
  const units = new Uint8Array(U).fill(unitAxis === null ? 1 : 0);
  for (const u of unitIdx ?? []) units[u] = 1;
  const m = new Uint8Array(shape.reduce((a, b) => a * b, 1));
  // Row-major index over `shape`: the position part (b, p) and the unit part u.
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const B = pos ? x.shape[lay.batchAxis!]! : 1;
  const P = pos ? x.shape[lay.posAxis!]! : 1;
  for (let b = 0; b < B; b++) for (let p = 0; p < P; p++) {
    if (pos && !pos[b * P + p]) continue;
    for (let u = 0; u < U; u++) {
      if (!units[u]) continue;
      const i = (pos ? b * strides[lay.batchAxis!]! + p * strides[lay.posAxis!]! : 0) + (unitAxis === null ? 0 : u * strides[unitAxis]!);
      m[i] = 1;
    }
  }
  return tensor(m, shape, 'u8', { backend: x.backend });
}

/** Weights of the in-call mean: 1/count at the call's real tokens (padding excluded), in x's rank and dtype. */
function realWeights(x: Tensor, lay: Layout, rows: Int32Array): Tensor {
  const shape = x.shape.map((d, i) => (i === lay.batchAxis || i === lay.posAxis ? d : 1));
  const w = new Float32Array(rows.length);
  let n = 0;
  for (let i = 0; i < rows.length; i++) if (rows[i]! >= 0) { w[i] = 1; n++; }
  for (let i = 0; i < w.length; i++) w[i]! /= Math.max(n, 1);
  // rows is [B, P] row-major and the batch axis comes before the position axis, so the order matches.
  const t = tensor(w, shape, 'f32', { backend: x.backend });
  return x.dtype === 'f32' ? t : t.cast(x.dtype as DType);
}
