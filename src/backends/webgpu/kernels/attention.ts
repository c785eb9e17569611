// Fused scaled dot-product attention: y = softmax(q k^T * scale) v per (batch, head, query), with
// grouped-query heads, the causal offset, a key padding mask, and the probabilities written only
// when asked (a second pass recomputes the scores with the final max and sum). One workgroup per
// query row walks the keys in chunks of 64 with an online softmax (flash-attention style), so
// memory does not grow with the key length. q, k, v are read through their strides: views of a
// KV cache or of a fused qkv projection need no copy. Prefill takes the
// tiled kernel of attention-flash.ts instead (probabilities included).
import type { OpDesc, View } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, type OpContext } from './context.js';
import { MATH, PRELUDE, inBinding, loaders, outBinding, storers } from '../wgsl.js';
import { flashAttention, flashEligible, flashFits } from './attention-flash.js';
import { flash2Fits, flashAttention2, yStrides } from './attention-flash2.js';
import { envVar } from '../../../io/env.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;
const CH = 64;
export const ATTENTION_MAX_D = 512;

let flashVersion = envVar('ACTLAB_WEBGPU_FLASH_V') === '1' ? 1 : 2;
/** For comparisons: which prefill kernel serves (1: attention-flash.ts, 2: attention-flash2.ts where it fits); ACTLAB_WEBGPU_FLASH_V=1 sets 1. */
export function setFlashVersion(v: 1 | 2): void { flashVersion = v; }

export function attention(ctx: OpContext<Op<'attention'>>): void {
  const { scale, causal, masked, returnProbs } = ctx.op;
  const tokenMajor = !!ctx.op.tokenMajor;
  const [q, k, v] = ctx.inputs as [View, View, View];
  if (q.shape.length !== 4 || k.shape.length !== 4 || v.shape.length !== 4) ctx.fail('q, k, v must be 4-d');
  const [B, HQ, TQ, D] = q.shape as [number, number, number, number];
  const [, HKV, TK] = k.shape as [number, number, number, number];
  const DV = v.shape[3]!;
  if (HKV === 0 || HQ % HKV !== 0) ctx.fail(`hq=${HQ} must be a multiple of hkv=${HKV}`);
  if (D > ATTENTION_MAX_D || DV > ATTENTION_MAX_D) ctx.fail(`head dims ${D}/${DV} above ${ATTENTION_MAX_D}`);
  const rows = B * HQ * TQ;
  if (rows === 0) return;
  const md = masked ? ctx.dense(3) : null;
  const yd = ctx.denseOut(0);
  const pd = returnProbs ? ctx.denseOut(1) : null;
  if (flashEligible(TQ, D, DV)) {
    if (flashVersion === 2 && !pd && flash2Fits(ctx, q, k, v, D, DV)) return flashAttention2(ctx, q, k, v, md, yd, scale, causal, tokenMajor);
    // the row kernel below where no tile fits the device's workgroup memory (WebGPU's default 16 KiB, heads of 128)
    if (flashFits(D, DV, ctx.rt.device.limits.maxComputeWorkgroupStorageSize)) return flashAttention(ctx, q, k, v, md, yd, scale, causal, pd, tokenMajor);
  }
  const slots = Math.max(1, Math.ceil(DV / CH));
  const key = `attention ${q.dtype}${k.dtype}${v.dtype}>${yd.dtype} s${slots} ${causal ? 'c' : ''}${masked ? 'm' : ''}${returnProbs ? 'p' : ''}`;
  const kern = ctx.kernel(key, () => {
    let bi = 5;
    const mb = md ? bi++ : 0;
    const pb = pd ? bi++ : 0;
    return `${PRELUDE}${MATH}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'q')}
${inBinding(2, 'k')}
${inBinding(3, 'v')}
${outBinding(4, 'y', yd.dtype)}
${md ? inBinding(mb, 'mask') : ''}
${pd ? outBinding(pb, 'pr', pd.dtype) : ''}
${loaders('q', q.dtype)}
${loaders('k', k.dtype)}
${loaders('v', v.dtype)}
${storers('y', yd.dtype)}
${md ? loaders('mask', 'u8') : ''}
${pd ? storers('pr', pd.dtype) : ''}
var<workgroup> qv: array<f32, ${ATTENTION_MAX_D}>;
var<workgroup> pc: array<f32, ${CH}>;
fn sp(i: u32) -> i32 { return bitcast<i32>(P[i]); }
@compute @workgroup_size(${CH})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  // P: B HQ TQ D | HKV TK DV group | scale | q strides 4, q off | k strides 4, k off | v strides 4, v off | y off, mask off, probs off
  let HQ = P[1]; let TQ = P[2]; let D = P[3]; let TK = P[5]; let DV = P[6]; let group = P[7];
  let scale = bitcast<f32>(P[8]);
  if (wg >= P[0] * HQ * TQ) { return; }
  let i = wg % TQ; let h = (wg / TQ) % HQ; let b = wg / (TQ * HQ);
  let kvh = h / group;
  let qb = sp(13) + i32(b) * sp(9) + i32(h) * sp(10) + i32(i) * sp(11);
  let kb = sp(18) + i32(b) * sp(14) + i32(kvh) * sp(15);
  let vb = sp(23) + i32(b) * sp(19) + i32(kvh) * sp(20);
  for (var c = li; c < D; c += ${CH}u) { qv[c] = ldf_q(u32(qb + i32(c) * sp(12))); }
  workgroupBarrier();
  let limit = ${causal ? 'i32(i) + i32(TK) - i32(TQ)' : 'i32(TK) - 1'};
  var m = -inf_f32();
  var l = 0.0;
  var acc: array<f32, ${slots}>;
  for (var s = 0u; s < ${slots}u; s++) { acc[s] = 0.0; }
  for (var j0 = 0; j0 <= min(limit, i32(TK) - 1); j0 += ${CH}) {
    let j = j0 + i32(li);
    var sc = -inf_f32();
    var kept = j <= limit && j < i32(TK);
    ${md ? 'if (kept) { kept = ldb_mask(P[25] + b * TK + u32(j)) != 0u; }' : ''}
    if (kept) {
      let kr = kb + j * sp(16);
      var dot = 0.0;
      for (var c = 0u; c < D; c++) { dot = fma(qv[c], ldf_k(u32(kr + i32(c) * sp(17))), dot); }
      sc = dot * scale;
    }
    pc[li] = sc;
    workgroupBarrier();
    var cm = -inf_f32();
    for (var t = 0u; t < ${CH}u; t++) { cm = max(cm, pc[t]); }
    let nm = max(m, cm);
    workgroupBarrier();
    let live = nm != -inf_f32(); // no visible key yet: nothing changes
    let alpha = select(1.0, exp_safe(m - nm), live);
    pc[li] = select(0.0, exp_safe(sc - nm), kept && live);
    workgroupBarrier();
    var ps = 0.0;
    for (var t = 0u; t < ${CH}u; t++) { ps = ps + pc[t]; }
    l = l * alpha + ps;
    let nt = u32(min(${CH}, i32(TK) - j0));
    for (var s = 0u; s < ${slots}u; s++) {
      let d = li + s * ${CH}u;
      if (d < DV) {
        var a = acc[s] * alpha;
        for (var t = 0u; t < nt; t++) {
          let p = pc[t];
          if (p != 0.0) { a = fma(p, ldf_v(u32(vb + (j0 + i32(t)) * sp(21) + i32(d) * sp(22))), a); }
        }
        acc[s] = a;
      }
    }
    m = nm;
    workgroupBarrier();
  }
  let yb = P[24] + b * P[27] + h * P[28] + i * P[29];
  for (var s = 0u; s < ${slots}u; s++) {
    let d = li + s * ${CH}u;
    if (d < DV) { stf_y(yb + d, select(0.0, acc[s] / l, l > 0.0)); }
  }
  ${pd ? `
  let pb = P[26] + wg * TK;
  for (var j = li; j < TK; j += ${CH}u) {
    var p = 0.0;
    var kept = i32(j) <= limit;
    ${md ? 'if (kept) { kept = ldb_mask(P[25] + b * TK + j) != 0u; }' : ''}
    if (kept && l > 0.0) {
      let kr = kb + i32(j) * sp(16);
      var dot = 0.0;
      for (var c = 0u; c < D; c++) { dot = fma(qv[c], ldf_k(u32(kr + i32(c) * sp(17))), dot); }
      p = exp_safe(dot * scale - m) / l;
    }
    stf_pr(pb + j, p);
  }` : ''}
}`;
  });
  const p = new Params()
    .u32(B, HQ, TQ, D, HKV, TK, DV, HQ / HKV).f32(scale)
    .i32(...q.strides, q.offset, ...k.strides, k.offset, ...v.strides, v.offset)
    .u32(yd.offset, md?.offset ?? 0, pd?.offset ?? 0, ...yStrides(B, HQ, TQ, DV, tokenMajor));
  const bufs = [ctx.buffer(q), ctx.buffer(k), ctx.buffer(v), yd.gpu];
  if (md) bufs.push(md.gpu);
  if (pd) bufs.push(pd.gpu);
  ctx.run(kern, bufs, p, [rows]);
}
