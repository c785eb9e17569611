// Backward of the fused attention op, with matmul and softmax ops. Grouped-query heads are
// handled by viewing q [b, hq, tq, d] as [b, hkv, group·tq, d] (the heads of one kv head are
// adjacent), so no kv head is repeated in memory.
//   S = scale q kᵀ, P = softmax(S, masks), O = P v
//   dP = dO vᵀ (+ d probs), dS = P ⊙ (dP - rowsum(dP ⊙ P)), dq = scale dS k, dk = scale dSᵀ q, dv = Pᵀ dO
import { runsNatively, type OpDesc } from '../tensor/backend.js';
import * as E from '../ops/elementwise.js';
import { matmul } from '../ops/linalg.js';
import { softmax, softmaxBackward } from '../ops/nn.js';
import { softmaxGradComposed, type BackCtx, type Grad } from './rules.js';

export function attentionBackward(op: Extract<OpDesc, { op: 'attention' }>, c: BackCtx, g: Grad[]): Grad[] {
  // a token-major output's gradient [b, tq, hq, dv] is brought to head order first
  const gOut = g[0] && op.tokenMajor ? g[0].permute([0, 2, 1, 3]).contiguous() : g[0] ?? null;
  const gProbs = g[1] ?? null;
  const n = op.masked ? 4 : 3;
  const none = new Array<Grad>(n).fill(null);
  if (!gOut && !gProbs) return none;
  const [b, hq, tq, d] = c.inShape(0) as [number, number, number, number];
  const [, hkv, tk] = c.inShape(1) as [number, number, number, number];
  const dv = c.inShape(2)[3]!;
  const grp = hq / hkv;
  const q3 = c.input(0).reshape([b, hkv, grp * tq, d]);
  const k = c.input(1);
  const v = c.input(2);
  let P: import('../tensor/tensor.js').Tensor; // [b, hq, tq, tk]
  if (op.returnProbs) P = c.output(1);
  else {
    const S = E.mul(matmul(q3, k, { transB: true }).reshape([b, hq, tq, tk]), op.scale);
    P = softmax(S, { causal: op.causal, mask: op.masked ? c.input(3).reshape([b, 1, 1, tk]) : undefined });
  }
  const P3 = P.reshape([b, hkv, grp * tq, tk]);
  const gO3 = gOut ? gOut.reshape([b, hkv, grp * tq, dv]) : null;
  let dP = gO3 ? matmul(gO3, v, { transB: true }).reshape([b, hq, tq, tk]) : null;
  if (gProbs) dP = dP ? E.add(dP, gProbs) : gProbs;
  const dS = E.mul(runsNatively(P.backend, 'softmaxBackward') ? softmaxBackward(P, dP!) : softmaxGradComposed(P, dP!), op.scale);
  const dS3 = dS.reshape([b, hkv, grp * tq, tk]);
  const out: Grad[] = [
    c.needs(0) ? matmul(dS3, k).reshape([b, hq, tq, d]) : null,
    c.needs(1) ? matmul(dS3, q3, { transA: true }) : null,
    c.needs(2) ? (gO3 ? matmul(P3, gO3, { transA: true }) : E.mul(v, 0)) : null,
  ];
  if (op.masked) out.push(null);
  return out;
}
