// Reference scaled dot-product attention with grouped-query heads, causal offset and key mask:
// y = softmax(q k^T * scale) v, per (batch, head). Fully masked query rows give zeros. y is
// [b, hq, tq, dv], or [b, tq, hq, dv] when the op asks for token-major output.
import type { OpDesc } from '../../../tensor/backend.js';
import type { KernelContext } from './context.js';
import { softmaxRow } from './nn.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

export function attention(ctx: KernelContext<Op<'attention'>>): void {
  const { scale, causal, masked, returnProbs, tokenMajor } = ctx.op;
  ctx.expectArity(masked ? 4 : 3, returnProbs ? 2 : 1);
  const [q, k, v] = [ctx.input(0), ctx.input(1), ctx.input(2)];
  if (q.shape.length !== 4 || k.shape.length !== 4 || v.shape.length !== 4) ctx.fail('q, k, v must be 4-d');
  const [B, HQ, TQ, D] = q.shape as [number, number, number, number];
  const [, HKV, TK] = k.shape as [number, number, number, number];
  const DV = v.shape[3]!;
  ctx.expectShape(k, [B, HKV, TK, D], 'k');
  ctx.expectShape(v, [B, HKV, TK, DV], 'v');
  if (HKV === 0 || HQ % HKV !== 0) ctx.fail(`hq=${HQ} must be a multiple of hkv=${HKV}`);
  if (masked) ctx.expectShape(ctx.input(3), [B, TK], 'keyMask');
  ctx.expectShape(ctx.output(0), tokenMajor ? [B, TQ, HQ, DV] : [B, HQ, TQ, DV], 'y');
  if (returnProbs) ctx.expectShape(ctx.output(1), [B, HQ, TQ, TK], 'probs');

  const Q = ctx.read(0);
  const K = ctx.read(1);
  const V = ctx.read(2);
  const mask = masked ? ctx.read(3) : null;
  const Y = new Float64Array(B * HQ * TQ * DV);
  const P = new Float64Array(B * HQ * TQ * TK);
  const group = HQ / HKV;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < HQ; h++) {
      const kvh = Math.floor(h / group);
      const kBase = (b * HKV + kvh) * TK;
      for (let i = 0; i < TQ; i++) {
        const qAt = ((b * HQ + h) * TQ + i) * D;
        const row = ((b * HQ + h) * TQ + i) * TK;
        for (let j = 0; j < TK; j++) {
          let s = 0;
          for (let c = 0; c < D; c++) s += Q[qAt + c]! * K[(kBase + j) * D + c]!;
          P[row + j] = s * scale;
        }
        const limit = causal ? i + (TK - TQ) : Infinity;
        softmaxRow(P, row, TK, (j) => j <= limit && (!mask || mask[b * TK + j] !== 0), false);
        const yAt = (tokenMajor ? (b * TQ + i) * HQ + h : (b * HQ + h) * TQ + i) * DV;
        for (let j = 0; j < TK; j++) {
          const p = P[row + j]!;
          if (p === 0) continue;
          for (let c = 0; c < DV; c++) Y[yAt + c] += p * V[(kBase + j) * DV + c]!;
        }
      }
    }
  }
  ctx.write(0, Y);
  if (returnProbs) ctx.write(1, P);
}
