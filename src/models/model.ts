// The shape every architecture shares: embed -> blocks -> final norm -> unembed, with positions
// from the attention mask (so left and right padding give each sequence its own positions), a KV
// cache, start/stop layers, and the hook points. One file per architecture fills in the parts.
import { tensor } from '../ops/creation.js';
import { noGrad } from '../autograd/tape.js';
import { HookRecorder, Hooks, NO_HOOKS, hookLayer, type HookFilter, type HookFn } from './hook-point.js';
import { tidy } from '../tensor/engine.js';
import type { SumAndNorm } from './layers/norm.js';
import { ShapeError } from '../tensor/errors.js';
import { fmtShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Backend } from '../tensor/backend.js';
import type { KVCache } from './layers/kv-cache.js';
import { WeightMap } from './weights.js';
import type { Linear } from './layers/linear.js';
import type { Mlp } from './layers/mlp.js';
import { tryFusedChain, type FusedBlockParts } from './layers/fused-block.js';
import { tryFusedDecode, type FusedHeadParts } from './layers/fused-decode.js';

/** The parts of a block that activation sparsity reaches (src/sparsity). */
export interface SparsityParts {
  /** The dense MLP (absent in attention-only and mixture-of-experts blocks). */
  mlp?: Mlp;
  /** The attention's query projection, where it is a separate matrix (not a fused qkv). */
  q?: Linear;
  /** Every projection of the attention's input: q, k, v, or one fused qkv. */
  attnIn?: Linear[];
  /** The attention's output projection. */
  o?: Linear;
}

/** What every architecture reports about itself. */
export interface ModelDims {
  arch: string;
  nLayers: number;
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  dHead: number;
  dMlp: number;
  vocabSize: number;
  nCtx: number;
  /** Mixture-of-experts blocks: number of experts. */
  nExperts?: number;
  expertsPerToken?: number;
}

export interface ForwardOptions {
  /** u8 or number [batch, past + pos]: 1 for real tokens, 0 for padding (cached positions included). */
  attentionMask?: Tensor | readonly (readonly number[])[];
  cache?: KVCache;
  hooks?: Hooks;
  /** Start at this block with `input` as the residual [batch, pos, d_model] instead of token ids. */
  startAtLayer?: number;
  /** Stop before this block and return the residual stream [batch, pos, d_model]. */
  stopAtLayer?: number;
  /** 'last': final norm and logits for the last position only ([batch, 1, vocab]), as generation needs. */
  logits?: 'all' | 'last';
}

/** Per-call state handed to the architecture's parts. */
export interface ForwardContext {
  hooks: Hooks;
  backend: Backend;
  batch: number;
  pos: number;
  /** Index of the first position of this call (tokens already cached). */
  past: number;
  positions: Tensor; // i32 [batch, pos]
  positionsHost: Int32Array;
  keyMask?: Tensor; // u8 [batch, past + pos]
  keyMaskHost?: Uint8Array;
  cache?: KVCache;
  /** The hook points inside block `layer` (from hookPoints), for parts that fuse what no hook sees. */
  blockHookNames?: (layer: number) => readonly string[];
  /** A residual sum with the next norm computed with it (layers/norm.ts `addThenNorm`), until that norm takes it. */
  normAhead?: SumAndNorm;
  /** Blocks before this index run op by op: the backend declined to run them fused in this forward. */
  opByOpBefore?: number;
}

export interface HookPointInfo {
  name: string;
  /** Symbolic dims as TransformerLens names them, with sizes where they are fixed. */
  shape: string[];
}

export abstract class CausalLM {
  abstract readonly dims: ModelDims;
  abstract readonly backend: Backend;
  /** ids i32 [batch, pos] -> residual [batch, pos, d_model]; fires hook_embed (and hook_pos_embed). */
  protected abstract embed(ids: Tensor, c: ForwardContext): Tensor;
  /** One block: residual in, residual out; fires the block's hooks. */
  protected abstract block(layer: number, x: Tensor, c: ForwardContext): Tensor;
  /** Final norm (fires ln_final.*) and unembedding -> logits [batch, pos, vocab]. */
  protected abstract unembed(x: Tensor, c: ForwardContext): Tensor;
  /** Called before the blocks, once per forward (e.g. rotary tables for this length). */
  protected prepare(_c: ForwardContext): void {}
  /**
   * Block `layer` as parts a backend may run whole, with its neighbours, while no hook can
   * change anything inside (src/models/layers/fused-block.ts); undefined (the default): op by op only.
   */
  protected fusedBlockParts(_layer: number): FusedBlockParts | undefined {
    return undefined;
  }
  /**
   * The final norm and the unembedding (weight [vocab, d_model]) when `unembed` is exactly those
   * two, for a decode step to run them in its call; undefined (the default): `unembed` runs them.
   */
  protected fusedHeadParts(): FusedHeadParts | undefined {
    return undefined;
  }
  /** The hook points, recorded once (see hookPoints). */
  private recordedHookPoints?: HookPointInfo[];

  /**
   * The hook points this model fires (optional ones included), in firing order, with the shapes
   * their sites declare. Derived, not listed: one forward of one token with a HookRecorder, which
   * wants every point (so optional ones fire too) and changes nothing; kept for the model's life.
   */
  hookPoints(): HookPointInfo[] {
    if (!this.recordedHookPoints) {
      const rec = new HookRecorder();
      noGrad(() => {
        const ids = tensor([0], [1, 1], 'i32', { backend: this.backend });
        try {
          this.forward(ids, { hooks: rec }).dispose();
        } finally {
          ids.dispose();
        }
      });
      const undeclared = rec.points.filter((p) => !p.shape).map((p) => p.name);
      if (undeclared.length) throw new Error(`${this.dims.arch}: hook points fired without a declared shape: ${undeclared.join(', ')}`);
      this.recordedHookPoints = rec.points.map((p) => ({ name: p.name, shape: [...p.shape!] }));
    }
    return this.recordedHookPoints.map((h) => ({ name: h.name, shape: [...h.shape] }));
  }
  private hookNamesByLayer?: Map<number, string[]>;

  /** The names of the hook points inside block `layer` (hookPoints, by block). */
  blockHookNames(layer: number): readonly string[] {
    if (!this.hookNamesByLayer) {
      const m = new Map<number, string[]>();
      for (const { name } of this.hookPoints()) {
        const l = hookLayer(name);
        if (l !== null) m.set(l, [...(m.get(l) ?? []), name]);
      }
      this.hookNamesByLayer = m;
    }
    return this.hookNamesByLayer.get(layer) ?? [];
  }
  /** Frees the weights. */
  abstract dispose(): void;

  /** Block `layer`'s MLP and attention projections for activation sparsity; none unless the architecture lists them. */
  sparsityParts(_layer: number): SparsityParts {
    return {};
  }

  /**
   * Token ids i32 [batch, pos] (or a residual [batch, pos, d_model] with `startAtLayer`) ->
   * logits [batch, pos, vocab] (or the residual before `stopAtLayer`).
   */
  /** Hooks that apply to every call until removed (see `withHooks`). */
  readonly persistentHooks = new Hooks();
  /**
   * Blocks every forward pass skips (their residual passes through unchanged, their hooks do not
   * fire, their KV cache stays empty): layer skipping (src/interventions/layer-skip.ts). Change it
   * only between generations.
   */
  readonly skippedLayers = new Set<number>();

  /**
   * Runs `fn` with `hooks` added to every forward pass it makes (generation included), and removes
   * them afterwards, also when `fn` throws. Returns what `fn` returns (awaited if a Promise).
   */
  withHooks<T>(hooks: readonly (readonly [HookFilter, HookFn])[], fn: () => T): T {
    for (const [f, h] of hooks) this.persistentHooks.add(f, h);
    const remove = () => { for (const [, h] of hooks) this.persistentHooks.remove(h); };
    let out: T;
    try {
      out = fn();
    } catch (e) {
      remove();
      throw e;
    }
    if (out instanceof Promise) return out.finally(remove) as T;
    remove();
    return out;
  }

  /** Final norm and unembedding of any residual state [batch, pos, d_model] (the logit lens), without hooks. */
  logitsFromResidual(x: Tensor): Tensor {
    return tidy(() => this.unembed(x, { hooks: NO_HOOKS } as ForwardContext));
  }

  /**
   * The trainable tensors by their checkpoint (HF) names: the model's WeightMap. Tied weights
   * appear once. The model reads these very tensors, so updating them in place trains it.
   */
  parameters(): Map<string, Tensor> {
    // Every architecture keeps its WeightMap as a field (the constructor's `w` / `weights`).
    for (const v of Object.values(this)) if (v instanceof WeightMap) return v.entries();
    throw new Error(`${this.dims.arch}: this model keeps no WeightMap, so it has no parameters to list`);
  }

  /**
   * Bytes the weights take in memory, quantized blocks at their size, and how many weights are
   * held quantized (0 for a model of float tensors).
   */
  weightMemory(): { bytes: number; quantized: number } {
    for (const v of Object.values(this)) if (v instanceof WeightMap) return { bytes: v.bytes(), quantized: v.quantizedCount() };
    return { bytes: 0, quantized: 0 };
  }

  /** The checkpoint's config (config.json), as the architecture was built from it. */
  get hfConfig(): Record<string, unknown> {
    const c = (this as unknown as { config?: Record<string, unknown> }).config;
    if (!c) throw new Error(`${this.dims.arch}: this model does not keep its config`);
    return c;
  }

  /** The hook points with their sizes filled in where the model fixes them. */
  hookPointShapes(): { name: string; shape: (string | number)[] }[] {
    const d = this.dims;
    const size: Record<string, number> = {
      d_model: d.dModel, d_head: d.dHead, head_index: d.nHeads, kv_head_index: d.nKvHeads, d_mlp: d.dMlp, '1': 1,
      ...(d.nExperts ? { n_experts: d.nExperts } : {}), ...(d.expertsPerToken ? { experts_per_token: d.expertsPerToken } : {}),
    };
    return this.hookPoints().map((h) => ({ name: h.name, shape: h.shape.map((s) => size[s] ?? s) }));
  }

  forward(input: Tensor, o: ForwardOptions = {}): Tensor {
    // A recorder lists the model's own points: persistent hooks stay out of it.
    const hooks = o.hooks instanceof HookRecorder ? o.hooks : Hooks.merge(this.persistentHooks, o.hooks ?? NO_HOOKS);
    const start = o.startAtLayer ?? 0;
    const stop = o.stopAtLayer ?? this.dims.nLayers;
    if (start < 0 || stop > this.dims.nLayers || start > stop) {
      throw new RangeError(`forward: layers [${start}, ${stop}) out of range for ${this.dims.nLayers} blocks`);
    }
    if (start === 0 && (input.dtype !== 'i32' || input.rank !== 2)) {
      throw new ShapeError(`forward: expected token ids i32[batch, pos], got ${input.dtype}${fmtShape(input.shape)}`);
    }
    if (start > 0 && (input.rank !== 3 || input.shape[2] !== this.dims.dModel)) {
      throw new ShapeError(`forward: startAtLayer ${start} expects a residual [batch, pos, ${this.dims.dModel}], got ${fmtShape(input.shape)}`);
    }
    const [batch, pos] = input.shape as [number, number];
    const past = o.cache?.length ?? 0;
    hooks.position = past;
    return tidy(() => {
      const c = this.context(batch, pos, past, hooks, o);
      if (!hooks.empty) hooks.tokenPositions = tokenPositions(c);
      // On CPU backends the ids are checked here for a clear error; GPU backends check in their gather.
      if (start === 0 && input.rank === 2 && this.backend.synchronous) {
        const vocab = this.dims.vocabSize;
        for (const id of input.dataSync()) {
          if (id < 0 || id >= vocab) throw new RangeError(`forward: token id ${id} out of range for vocabulary of ${vocab}`);
        }
      }
      this.prepare(c);
      let x = start === 0 ? this.embed(input, c) : input.share();
      // a decode step that runs the last blocks natively may run the final norm and unembedding in the same call
      const head = stop === this.dims.nLayers && (pos === 1 || o.logits !== 'last') ? () => this.fusedHeadParts() : undefined;
      let logits: Tensor | undefined;
      for (let l = start; l < stop;) {
        if (this.skippedLayers.has(l)) { l++; continue; }
        // consecutive blocks no hook can change inside (read-only hooks fire after), in one backend call where it can
        const run = tryFusedDecode(l, stop, this.skippedLayers, x, c, (i) => this.fusedBlockParts(i), head) ?? tryFusedChain(l, stop, this.skippedLayers, x, c, (i) => this.fusedBlockParts(i));
        if (run && 'x' in run) { x = run.x; l = run.next; logits = (run as { logits?: Tensor }).logits; continue; }
        // declined (e.g. the weights' first use: packed on the next): those blocks op by op
        if (run) c.opByOpBefore = run.declined;
        x = this.block(l, x, c);
        l++;
      }
      if (stop < this.dims.nLayers) return x;
      o.cache?.commit();
      if (logits) return logits; // [batch, pos, d_vocab]
      if (o.logits === 'last' && pos > 1) x = x.narrow(1, pos - 1, 1);
      return this.unembed(x, c);
    });
  }

  private context(batch: number, pos: number, past: number, hooks: Hooks, o: ForwardOptions): ForwardContext {
    const total = past + pos;
    let maskHost: Uint8Array | undefined;
    if (o.attentionMask) {
      const m = o.attentionMask;
      maskHost = Array.isArray(m) ? Uint8Array.from((m as number[][]).flat()) : Uint8Array.from((m as Tensor).dataSync());
      const shape = Array.isArray(m) ? [m.length, (m[0] as number[] | undefined)?.length ?? 0] : (m as Tensor).shape;
      if (shape[0] !== batch || shape[1] !== total) {
        throw new ShapeError(`forward: attentionMask must be [${batch}, ${total}] (batch, cached + new positions), got ${fmtShape(shape)}`);
      }
    }
    // Positions count real tokens only, as transformers does from the mask (cumsum - 1; padding gets 1).
    const positionsHost = new Int32Array(batch * pos);
    for (let b = 0; b < batch; b++) {
      let seen = 0;
      for (let j = 0; j < total; j++) {
        const real = maskHost ? maskHost[b * total + j]! : 1;
        if (j >= past) positionsHost[b * pos + j - past] = real ? seen : 1;
        seen += real;
      }
    }
    return {
      hooks, backend: this.backend, batch, pos, past, cache: o.cache, blockHookNames: (l) => this.blockHookNames(l),
      positions: tensor(positionsHost, [batch, pos], 'i32', { backend: this.backend }),
      positionsHost,
      keyMask: maskHost ? tensor(maskHost, [batch, total], 'u8', { backend: this.backend }) : undefined,
      keyMaskHost: maskHost,
    };
  }
}

/** Each query position's place in its own sequence, -1 for padding ([batch * pos], row-major). */
function tokenPositions(c: ForwardContext): Int32Array {
  const out = Int32Array.from(c.positionsHost);
  if (!c.keyMaskHost) return out;
  const total = c.past + c.pos;
  for (let b = 0; b < c.batch; b++) {
    for (let j = 0; j < c.pos; j++) if (!c.keyMaskHost[b * total + c.past + j]) out[b * c.pos + j] = -1;
  }
  return out;
}
