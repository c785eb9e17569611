// A hand-wired model organism with planted ground truth, for testing the analyses (and as the
// built-in fallback of `actlab inspect` when no trained default model is installed). Two
// attention-only-plus-ReLU-MLP blocks, no norms, every direction of the residual stream named:
//   TOK  [V]   one-hot of the token          POS  [N]  one-hot of the position
//   PREV [V]   the previous token (L0H0)     OUT  [V]  the predicted next token (L1H0)
//   ONE  [1]   constant 1                    MASS [1]  `massiveValue` on `massiveToken`, else 0
// Heads: L0H0 previous-token head (reads POS, copies TOK into PREV); L0H1 attention sink (every
// query attends to position 0, writes nothing); L1H0 induction head (query TOK matches key PREV,
// copies TOK into OUT); L1H1 attends to the current token and writes nothing. MLPs: `dMlp` ReLU
// units of which `activeUnits` are on for every token, writing nothing. Unembedding reads OUT
// ×10 (and TOK ×1, so the logit lens sees a weak "repeat" guess before the induction head).
import { add } from '../ops/elementwise.js';
import { tensor } from '../ops/creation.js';
import { gather } from '../ops/nn.js';
import { attend } from '../models/layers/attention.js';
import { project, type Linear } from '../models/layers/linear.js';
import { runMlp, type Mlp } from '../models/layers/mlp.js';
import { CausalLM, type ForwardContext, type ModelDims, type SparsityParts } from '../models/model.js';
import type { Backend } from '../tensor/backend.js';
import type { Tensor } from '../tensor/tensor.js';
import { blockHook, SHAPE } from '../models/hook-point.js';

/** A prompt for the planted model: BOS, eight tokens (with the massive token 5), the same eight again. */
export const PLANTED_PROMPT: readonly number[] = [1, 5, 9, 14, 22, 31, 17, 40, 12, 5, 9, 14, 22, 31, 17, 40, 12];

export interface PlantedOptions {
  vocab?: number;
  nCtx?: number;
  /** Token id whose embedding carries a massive entry in the MASS dimension (default 5; null: none). */
  massiveToken?: number | null;
  massiveValue?: number;
  dMlp?: number;
  activeUnits?: number;
  /** Attention logit of a planted match (default 30). */
  sharpness?: number;
}

export interface PlantedTruth {
  massive: { dim: number; token: number; value: number } | null;
  sinkHeads: { layer: number; head: number }[];
  inductionHeads: { layer: number; head: number }[];
  prevTokenHeads: { layer: number; head: number }[];
  /** Share of MLP units active for every token, in every layer. */
  mlpDensity: number;
}

export class PlantedInductionModel extends CausalLM {
  readonly dims: ModelDims;
  readonly truth: PlantedTruth;
  private readonly wte: Tensor;
  private readonly wpe: Tensor;
  private readonly attn: { q: Linear; k: Linear; v: Linear; o: Linear }[];
  private readonly mlps: Mlp[];
  private readonly wU: Tensor;
  private readonly owned: Tensor[] = [];

  constructor(readonly backend: Backend, o: PlantedOptions = {}) {
    super();
    const V = o.vocab ?? 48;
    const N = o.nCtx ?? 64;
    const beta = o.sharpness ?? 30;
    const dMlp = o.dMlp ?? 8;
    const active = o.activeUnits ?? 2;
    const TOK = 0;
    const POS = V;
    const PREV = V + N;
    const ONE = 2 * V + N;
    const MASS = ONE + 1;
    const OUT = MASS + 1;
    const d = OUT + V;
    const dh = Math.max(N, V);
    const H = 2;
    this.dims = { arch: 'planted-induction', nLayers: 2, dModel: d, nHeads: H, nKvHeads: H, dHead: dh, dMlp, vocabSize: V, nCtx: N };
    const massiveToken = o.massiveToken === undefined ? 5 : o.massiveToken;
    const massiveValue = o.massiveValue ?? 500;
    this.truth = {
      massive: massiveToken === null ? null : { dim: MASS, token: massiveToken, value: massiveValue },
      sinkHeads: [{ layer: 0, head: 1 }], inductionHeads: [{ layer: 1, head: 0 }], prevTokenHeads: [{ layer: 0, head: 0 }],
      mlpDensity: active / dMlp,
    };
    const t = (data: Float32Array, shape: number[]) => { const x = tensor(data, shape, 'f32', { backend }); this.owned.push(x); return x; };
    const E = new Float32Array(V * d);
    for (let i = 0; i < V; i++) { E[i * d + TOK + i] = 1; E[i * d + ONE] = 1; }
    if (massiveToken !== null) E[massiveToken * d + MASS] = massiveValue;
    this.wte = t(E, [V, d]);
    const P = new Float32Array(N * d);
    for (let i = 0; i < N; i++) P[i * d + POS + i] = 1;
    this.wpe = t(P, [N, d]);
    // Per-head weights [H * dh, d] (out_in): set(w, head, headDim, residualDim, value).
    const proj = () => new Float32Array(H * dh * d);
    const set = (w: Float32Array, h: number, i: number, r: number, v: number) => { w[(h * dh + i) * d + r] = v; };
    const outW = () => new Float32Array(d * H * dh); // [d, H * dh]
    const setOut = (w: Float32Array, r: number, h: number, i: number, v: number) => { w[r * H * dh + h * dh + i] = v; };
    const lin = (w: Float32Array, out: number, inp: number): Linear => ({ layout: 'out_in', weight: t(w, [out, inp]) });
    // Block 0.
    const q0 = proj(); const k0 = proj(); const v0 = proj(); const o0 = outW();
    for (let i = 0; i < N; i++) set(q0, 0, i, POS + i, beta); // L0H0: query i looks for key i-1
    for (let j = 0; j + 1 < N; j++) set(k0, 0, j + 1, POS + j, 1);
    for (let i = 0; i < V; i++) { set(v0, 0, i, TOK + i, 1); setOut(o0, PREV + i, 0, i, 1); }
    set(q0, 1, 0, ONE, beta); // L0H1: every query looks for position 0
    set(k0, 1, 0, POS, 1);
    // Block 1.
    const q1 = proj(); const k1 = proj(); const v1 = proj(); const o1 = outW();
    for (let i = 0; i < V; i++) { set(q1, 0, i, TOK + i, beta); set(k1, 0, i, PREV + i, 1); set(v1, 0, i, TOK + i, 1); setOut(o1, OUT + i, 0, i, 1); }
    for (let i = 0; i < N; i++) { set(q1, 1, i, POS + i, beta); set(k1, 1, i, POS + i, 1); } // L1H1: attends to itself
    this.attn = [[q0, k0, v0, o0], [q1, k1, v1, o1]].map(([q, k, v, ow]) => ({
      q: lin(q!, H * dh, d), k: lin(k!, H * dh, d), v: lin(v!, H * dh, d), o: lin(ow!, d, H * dh),
    }));
    this.mlps = [0, 1].map(() => {
      const bias = Float32Array.from({ length: dMlp }, (_, u) => (u < active ? 1 : -1));
      return {
        in: { layout: 'out_in', weight: t(new Float32Array(dMlp * d), [dMlp, d]), bias: t(bias, [dMlp]) },
        out: { layout: 'out_in', weight: t(new Float32Array(d * dMlp), [d, dMlp]) }, act: 'relu',
      } satisfies Mlp;
    });
    const U = new Float32Array(V * d);
    for (let i = 0; i < V; i++) { U[i * d + OUT + i] = 10; U[i * d + TOK + i] = 1; }
    this.wU = t(U, [V, d]);
  }

  protected embed(ids: Tensor, c: ForwardContext): Tensor {
    const tok = c.hooks.at('hook_embed', gather(this.wte, ids), SHAPE.resid); // [batch, pos, d_model]
    const pos = c.hooks.at('hook_pos_embed', gather(this.wpe, c.positions), SHAPE.resid); // [batch, pos, d_model]
    return add(tok, pos);
  }

  protected block(i: number, x: Tensor, c: ForwardContext): Tensor {
    const h = c.hooks;
    const a = this.attn[i]!;
    const { nHeads, dHead } = this.dims;
    x = h.at(blockHook(i, 'hook_resid_pre'), x, SHAPE.resid); // [batch, pos, d_model]
    const xa = h.at(blockHook(i, 'hook_attn_in'), x, SHAPE.resid); // [batch, pos, d_model]
    const q = project(xa, a.q).reshape([c.batch, c.pos, nHeads, dHead]);
    const k = project(xa, a.k).reshape([c.batch, c.pos, nHeads, dHead]);
    const v = project(xa, a.v).reshape([c.batch, c.pos, nHeads, dHead]);
    const attnOut = h.at(blockHook(i, 'hook_attn_out'), attend(q, k, v, {
      hooks: h, prefix: blockHook(i, 'attn'), layer: i, cache: c.cache, keyMask: c.keyMask, keyMaskHost: c.keyMaskHost, scale: 1, output: a.o,
    }), SHAPE.resid); // [batch, pos, d_model]
    const mid = h.at(blockHook(i, 'hook_resid_mid'), add(x, attnOut), SHAPE.resid); // [batch, pos, d_model]
    const mlpIn = h.at(blockHook(i, 'hook_mlp_in'), mid, SHAPE.resid); // [batch, pos, d_model]
    const mlpOut = h.at(blockHook(i, 'hook_mlp_out'), runMlp(mlpIn, this.mlps[i]!, h, blockHook(i, 'mlp')), SHAPE.resid); // [batch, pos, d_model]
    return h.at(blockHook(i, 'hook_resid_post'), add(mid, mlpOut), SHAPE.resid); // [batch, pos, d_model]
  }

  protected unembed(x: Tensor): Tensor {
    return project(x, { layout: 'out_in', weight: this.wU }); // [batch, pos, vocab]
  }

  override sparsityParts(i: number): SparsityParts {
    return { mlp: this.mlps[i] };
  }

  dispose(): void {
    for (const x of this.owned) x.dispose();
    this.owned.length = 0;
  }
}
