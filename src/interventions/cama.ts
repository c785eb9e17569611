// Context-aware mean ablation (CAMA) and attention-based peeking (ABP), from "All for One: LLMs
// Solve Mental Math at the Last Token With Information Transferred From Other Tokens" (Mamidanna,
// Rai, Yao, Zhou; EMNLP 2025, arXiv 2509.09650).
//   CAMA replaces the activation of the token x_t at position t by its context-aware mean,
//     x̃_t = E_{x' ~ P(x | x_t)} [ a(x', t) ],
//   the mean of that activation over the task's inputs x' that have the same token at position
//   t: what the token itself contributes stays, what it gathered from its context goes. (When no
//   reference input has that token there, the mean over all inputs at position t is used.)
//   ABP restricts attention: in 'peek' layers only the last token attends to the other tokens
//   (every other query sees only itself); in 'self' layers every token sees only itself. The
//   paper's All-for-One subgraph is CAMA at the residual entering layer L_wait, 'peek' for the
//   next L_transfer layers and 'self' for the rest.
// Hooks act on the ids of the batch they are made for (CAMA's mean depends on the token), so a
// caller runs `camaHooks(table, ids)` around the forward pass of exactly those ids; as an
// ablation method (`camaAblation`, `actlab ablate --method cama`) the sweep makes them per batch.
import { noGrad } from '../autograd/tape.js';
import type { HookFilter, HookFn, HookPoint } from '../models/hook-point.js';
import { runWithCache } from '../hooks/run.js';
import { tensor } from '../ops/creation.js';
import { where } from '../ops/elementwise.js';
import type { CausalLM } from '../models/model.js';
import { assertHookNames } from '../hooks/patterns.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AblationMethod } from './ablation.js';
import { InterventionError } from './intervention.js';

interface Acc { sum: Float64Array; n: number }

/** Per hook point: sums of the activation per (position, token) and per position, over a reference set. */
export class CamaTable {
  private constructor(
    /** name -> feature size, feature shape */
    readonly features: Map<string, number[]>,
    private readonly byToken: Map<string, Map<string, Acc>>,
    private readonly byPos: Map<string, Map<number, Acc>>,
  ) {}

  /** Runs `model` over `data` (token id sequences) and gathers the context-aware means at `names` ([batch, pos, ...] hook points). */
  static build(model: CausalLM, data: readonly (readonly number[])[], names: readonly string[]): CamaTable {
    if (data.length === 0) throw new Error('CAMA: the reference set is empty');
    assertHookNames(names, model.hookPoints().map((h) => h.name), 'CAMA', model.dims.arch);
    for (const n of names) if (/hook_pattern$|hook_attn_scores$|\.experts\.\d+\./.test(n)) throw new Error(`CAMA: '${n}' has no [batch, pos, ...] layout; use a residual, MLP or per-head (hook_z, hook_result) point`);
    const features = new Map<string, number[]>();
    const byToken = new Map(names.map((n) => [n, new Map<string, Acc>()]));
    const byPos = new Map(names.map((n) => [n, new Map<number, Acc>()]));
    noGrad(() => {
      for (const seq of data) {
        if (seq.length === 0) throw new Error('CAMA: a reference sequence has no tokens');
        const x = tensor(seq, [1, seq.length], 'i32', { backend: model.backend });
        const r = runWithCache(model, x, { names });
        for (const n of names) {
          const t = r.cache.get(n);
          const feat = t.shape.slice(2);
          features.set(n, feat);
          const F = feat.reduce((a, b) => a * b, 1);
          const d = t.dataSync();
          seq.forEach((tok, p) => {
            for (const [m, key] of [[byToken.get(n)!, `${p}:${tok}`], [byPos.get(n)!, p]] as const) {
              const acc = (m as Map<unknown, Acc>).get(key) ?? { sum: new Float64Array(F), n: 0 };
              for (let j = 0; j < F; j++) acc.sum[j]! += d[p * F + j]!;
              acc.n++;
              (m as Map<unknown, Acc>).set(key, acc);
            }
          });
        }
        r.logits.dispose(); r.cache.dispose(); x.dispose();
      }
    });
    return new CamaTable(features, byToken, byPos);
  }

  /** The context-aware mean of `name` for token `token` at position `pos` (flattened feature). */
  mean(name: string, pos: number, token: number): Float32Array {
    const acc = this.byToken.get(name)?.get(`${pos}:${token}`) ?? this.byPos.get(name)?.get(pos);
    if (!acc) throw new Error(`CAMA: no reference activation of '${name}' at position ${pos} (the reference sequences are shorter)`);
    return Float32Array.from(acc.sum, (s) => s / acc.n);
  }

  /** The CAMA replacement of `name` for a batch of ids: [batch, pos, ...feature]. */
  replacement(name: string, ids: readonly (readonly number[])[], like: Tensor): Tensor {
    const feat = this.features.get(name);
    if (!feat) throw new Error(`CAMA: '${name}' is not in this table (have ${[...this.features.keys()].join(', ')})`);
    const F = feat.reduce((a, b) => a * b, 1);
    const T = ids[0]!.length;
    const out = new Float32Array(ids.length * T * F);
    ids.forEach((row, b) => row.forEach((tok, p) => out.set(this.mean(name, p, tok), (b * T + p) * F)));
    return tensor(out, [ids.length, T, ...feat], like.dtype, { backend: like.backend });
  }
}

/**
 * Hooks that replace the activation at the table's hook points (or only `names`) by its CAMA
 * value, for a forward pass over exactly `ids`. `unit` restricts it to some heads (axis 2 of
 * hook_z / hook_result) or dims (the last axis).
 */
export function camaHooks(table: CamaTable, ids: readonly (readonly number[])[], o: { names?: readonly string[]; unit?: { heads: number[] } | { dims: number[] } } = {}): [HookFilter, HookFn][] {
  const names = o.names ?? [...table.features.keys()];
  if (ids.length === 0 || ids.some((r) => r.length !== ids[0]!.length)) throw new Error('CAMA: the ids must be a non-empty batch of sequences of one length');
  return names.map((name) => [name, (x: Tensor) => {
    if (x.shape[0] !== ids.length || x.shape[1] !== ids[0]!.length) {
      throw new Error(`CAMA at '${name}': the hooks were made for ids [${ids.length}, ${ids[0]!.length}] but the activation is [${x.shape}] (generation steps are not supported)`);
    }
    const rep = table.replacement(name, ids, x);
    if (!o.unit) return rep;
    const axis = 'heads' in o.unit ? 2 : x.rank - 1;
    const idx = 'heads' in o.unit ? o.unit.heads : o.unit.dims;
    const m = new Uint8Array(x.shape[axis]!);
    for (const i of idx) {
      if (!Number.isInteger(i) || i < 0 || i >= m.length) throw new RangeError(`CAMA at '${name}': index ${i} is out of range for an axis of ${m.length}`);
      m[i] = 1;
    }
    const shape = x.shape.map((d, i) => (i === axis ? d : 1));
    return where(tensor(m, shape, 'u8', { backend: x.backend }), rep, x);
  }]);
}

export type AbpMode = 'peek' | 'self';

/**
 * ABP hooks on the attention scores of `layers`: 'peek' lets only the last query attend to other
 * tokens (the others see only themselves); 'self' lets every query see only itself.
 */
export function abpHooks(model: CausalLM, layers: readonly number[], mode: AbpMode = 'peek'): [HookFilter, HookFn][] {
  const L = model.dims.nLayers;
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= L) throw new RangeError(`ABP: layer ${l} is out of range; this model has ${L} blocks (0–${L - 1})`);
  return layers.map((l) => [`blocks.${l}.attn.hook_attn_scores`, (s: Tensor) => {
    const [, , tq, tk] = s.shape as [number, number, number, number];
    const keep = new Uint8Array(tq * tk);
    for (let i = 0; i < tq; i++) {
      const self = i + tk - tq;
      if (mode === 'peek' && i === tq - 1) for (let j = 0; j <= self; j++) keep[i * tk + j] = 1;
      else keep[i * tk + self] = 1;
    }
    return where(tensor(keep, [1, 1, tq, tk], 'u8', { backend: s.backend }), s, -Infinity);
  }]);
}

/** The All-for-One subgraph's hooks: CAMA at the residual entering `wait`, 'peek' for `transfer` layers, 'self' after. */
export function allForOneHooks(model: CausalLM, table: CamaTable, ids: readonly (readonly number[])[], wait: number, transfer: number): [HookFilter, HookFn][] {
  const L = model.dims.nLayers;
  if (wait < 0 || transfer < 0 || wait + transfer > L) throw new RangeError(`All-for-One: wait ${wait} + transfer ${transfer} must fit in ${L} blocks`);
  const name = `blocks.${wait}.hook_resid_pre`;
  const range = (a: number, b: number) => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
  return [
    ...(wait < L ? camaHooks(table, ids, { names: [name] }) : []),
    ...abpHooks(model, range(wait, wait + transfer), 'peek'),
    ...abpHooks(model, range(wait + transfer, L), 'self'),
  ];
}

/**
 * CAMA as an ablation method (`ablationSweep` / `actlab ablate --method cama`): the unit's
 * activation at each real token is replaced by its context-aware mean over the sweep's data.
 */
export const camaAblation: AblationMethod = {
  needs: [],
  prepare: (model, items, hooks) => {
    if (hooks.some((h) => /\.experts\.\d+\./.test(h))) throw new InterventionError("CAMA: site 'experts' has no [batch, pos, ...] layout (its rows are the tokens routed to one expert); use heads, neurons or layers");
    return CamaTable.build(model, items.map((i) => i.ids), hooks);
  },
  hooks: (u, c) => {
    const table = c.state as CamaTable;
    return u.hooks.map((name) => [name, (x: Tensor, hp: HookPoint) => {
      const [B, T] = x.shape as [number, number];
      const pos = hp.tokenPositions;
      const feat = x.shape.slice(2);
      const F = feat.reduce((a, b) => a * b, 1);
      const rep = new Float32Array(B * T * F);
      const real = new Uint8Array(B * T);
      for (let r = 0; r < B; r++) for (let t = 0; t < T; t++) {
        const p = pos ? pos[r * T + t]! : t;
        if (p < 0) continue; // padding keeps its activation
        real[r * T + t] = 1;
        rep.set(table.mean(name, p, c.ids[r]![t]!), (r * T + t) * F);
      }
      // Only the unit's part: a head (axis 2 of hook_z) or a neuron (last axis); a layer's whole output.
      const sel = new Uint8Array(B * T * F);
      const H = u.site === 'heads' ? x.shape[2]! : 1;
      const inner = F / H;
      for (let i = 0; i < B * T; i++) {
        if (!real[i]) continue;
        if (u.site === 'heads') sel.fill(1, i * F + u.unit * inner, i * F + (u.unit + 1) * inner);
        else if (u.site === 'neurons') sel[i * F + u.unit] = 1;
        else sel.fill(1, i * F, (i + 1) * F);
      }
      return where(tensor(sel, x.shape, 'u8', { backend: x.backend }), tensor(rep, x.shape, x.dtype, { backend: x.backend }), x);
    }]);
  },
};
