// The decode GEMV on GGML blocks with 8-bit activations (W4A8 / W8A8, ggml's q8 activations as the
// wasm kernels and llama.cpp use them): y [M, N] = x [M, K] · Wᵀ for M <= 8 and q4_0, q4_k, q8_0.
//   1. x is rounded to 8 bits per 32 values (one thread per block): XQ [M·K/4] packed i8 and XS
//      [M·K/32] (d, d·Σq) per block, in temporaries.
//   2. T lanes per group of RR weight rows; each lane takes every T-th unit of the rows (q4_0 /
//      q8_0: a 32-value block, q4_k: 64 values, the low and high nibbles of 32 bytes), multiplies
//      codes and x's bytes four at a time with `dot4I8Packed` (one integer instruction where the
//      GPU has it), applies the block's scales once to the integer sums, and the lanes of a row
//      are summed through subgroup shuffles (where the adapter has subgroups) and workgroup memory.
// The integer form moves the nibble unpacking off the float units: per 8 weights two masks, one
// shift and two packed dot products, instead of eight conversions and eight multiply-adds.
// Error against the reference's f32 product: x's rounding only (QMATMUL_BUDGET in
// src/conformance/cases.ts); the weights' values are exact.
// Not for: other block types or M > 8 (quant.ts: f32 activations), the WGSL decoders (quant-wgsl.ts).
import type { QuantType } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, type Dense, type OpContext } from './context.js';
import { PRELUDE, cdiv, lines, outBinding, storers } from '../wgsl.js';

/** The block types with an 8-bit-activation GEMV. */
export const A8_GEMV_TYPES = new Set<QuantType>(['q4_0', 'q4_k', 'q8_0']);

/**
 * Choices of the decode GEMV, for benchmarks that compare them in one run: `path` 'a8' (this
 * file) or 'f32' (quant.ts's kernel on unrounded x); `lanes` per row (at most this many; fewer
 * for short rows), `rows` per lane, `vec4` 16-byte loads of q4_k's codes where aligned, `subgroups`
 * shuffles in the lane sums (when the adapter has them).
 */
export const QGEMV_TUNING = { path: 'a8' as 'a8' | 'f32', lanes: 32, rows: 2, vec4: true, subgroups: true };

/** True when this adapter compiles the packed 8-bit dot product and pack builtins. */
export function hasPackedDot(ctx: OpContext): boolean {
  const feats = (ctx.rt.handle.gpu as { wgslLanguageFeatures?: ReadonlySet<string> }).wgslLanguageFeatures;
  return !!feats?.has('packed_4x8_integer_dot_product');
}

/** Rounds x [M, K] (K a multiple of 32) to 8 bits per 32 values: ggml's quantize_row_q8_0, plus d·Σq per block. */
function quantizeX(ctx: OpContext, blocks: number, xd: Dense): { xq: GPUBuffer; xs: GPUBuffer } {
  const xq = ctx.temp(blocks * 32).gpu;
  const xs = ctx.temp(blocks * 8).gpu;
  const k = ctx.kernel('qmatmul x to q8', () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> XQ: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> XS: array<vec2<f32>>;
@compute @workgroup_size(64)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let b = wg * 64u + li;
  if (b >= P[0]) { return; }
  var v: array<vec4<f32>, 8>;
  var amax = 0.0;
  for (var k = 0u; k < 8u; k++) {
    v[k] = X[P[1] + b * 8u + k];
    let a = abs(v[k]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  let d = amax / 127.0;
  let id = select(0.0, 1.0 / d, d > 0.0);
  var s = 0;
  var q: array<u32, 8>;
  for (var k = 0u; k < 8u; k++) {
    let t = v[k] * id;
    let r = vec4<i32>(sign(t) * floor(abs(t) + 0.5));   // roundf: halves away from zero
    s += r.x + r.y + r.z + r.w;
    q[k] = pack4xI8(r);
  }
  XQ[b * 2u] = vec4<u32>(q[0], q[1], q[2], q[3]);
  XQ[b * 2u + 1u] = vec4<u32>(q[4], q[5], q[6], q[7]);
  XS[b] = vec2<f32>(d, d * f32(s));
}`);
  ctx.run(k, [xd.gpu, xq, xs], new Params().u32(blocks, xd.offset / 4), [cdiv(blocks, 64)]);
  return { xq, xs };
}

/** WGSL of one unit of row i: reads W at byte address rb, unit u, adds to acc{m}_{i} for every m. */
function unitCode(type: QuantType, M: number, i: number, vec4: boolean): string {
  const acc = (m: number) => `acc${m}_${i}`;
  switch (type) {
    case 'q4_0': return `{
        let at = rb${i} + u * 18u; let wi = at >> 2u; let al = (at & 2u) == 0u;
        let w0 = W[wi]; let w1 = W[wi + 1u]; let w2 = W[wi + 2u]; let w3 = W[wi + 3u]; let w4 = W[wi + 4u];
        let c0 = select(w1, (w0 >> 16u) | (w1 << 16u), al); let c1 = select(w2, (w1 >> 16u) | (w2 << 16u), al);
        let c2 = select(w3, (w2 >> 16u) | (w3 << 16u), al); let c3 = select(w4, (w3 >> 16u) | (w4 << 16u), al);
        let d = unpack2x16float(select(w0 >> 16u, w0, al)).x;
        let l0 = c0 & NIB; let l1 = c1 & NIB; let l2 = c2 & NIB; let l3 = c3 & NIB;
        let h0 = (c0 >> 4u) & NIB; let h1 = (c1 >> 4u) & NIB; let h2 = (c2 >> 4u) & NIB; let h3 = (c3 >> 4u) & NIB;
${lines(M, (m) => `        {
          let s = (dot4I8Packed(l0, xa${m}.x) + dot4I8Packed(l1, xa${m}.y)) + (dot4I8Packed(l2, xa${m}.z) + dot4I8Packed(l3, xa${m}.w))
                + (dot4I8Packed(h0, xb${m}.x) + dot4I8Packed(h1, xb${m}.y)) + (dot4I8Packed(h2, xb${m}.z) + dot4I8Packed(h3, xb${m}.w));
          ${acc(m)} = ${acc(m)} + d * (xs${m}.x * f32(s) - 8.0 * xs${m}.y);
        }`)}
      }`;
    case 'q8_0': return `{
        let at = rb${i} + u * 34u; let wi = at >> 2u; let al = (at & 2u) == 0u;
        var w: array<u32, 9>;
        for (var k = 0u; k < 9u; k++) { w[k] = W[wi + k]; }
        let d = unpack2x16float(select(w[0] >> 16u, w[0], al)).x;
${lines(8, (k) => `        let c${k} = select(w[${k + 1}], (w[${k}] >> 16u) | (w[${k + 1}] << 16u), al);`)}
${lines(M, (m) => `        {
          let s = (dot4I8Packed(c0, xa${m}.x) + dot4I8Packed(c1, xa${m}.y)) + (dot4I8Packed(c2, xa${m}.z) + dot4I8Packed(c3, xa${m}.w))
                + (dot4I8Packed(c4, xb${m}.x) + dot4I8Packed(c5, xb${m}.y)) + (dot4I8Packed(c6, xb${m}.z) + dot4I8Packed(c7, xb${m}.w));
          ${acc(m)} = ${acc(m)} + d * xs${m}.x * f32(s);
        }`)}
      }`;
    case 'q4_k': return `{
        // u: pair of units 2j, 2j + 1 of super-block u / 4 (j = u % 4): the low and high nibbles of 32 bytes
        let at = rb${i} + (u >> 2u) * 144u; let j = u & 3u;
        let dm = unpack2x16float(W[at >> 2u]);
        let sa = scale_min_k4(at + 4u, 2u * j); let sb = scale_min_k4(at + 4u, 2u * j + 1u);
        let da = dm.x * f32(sa.x); let ma = dm.y * f32(sa.y); let db = dm.x * f32(sb.x); let mb = dm.y * f32(sb.y);
        let co = at + 16u + 32u * j;
        ${vec4 ? 'let ca = W4[co >> 4u]; let cb = W4[(co >> 4u) + 1u];' : 'let ca = vec4<u32>(W[co >> 2u], W[(co >> 2u) + 1u], W[(co >> 2u) + 2u], W[(co >> 2u) + 3u]); let cb = vec4<u32>(W[(co >> 2u) + 4u], W[(co >> 2u) + 5u], W[(co >> 2u) + 6u], W[(co >> 2u) + 7u]);'}
        let la = ca & vec4<u32>(NIB); let lb = cb & vec4<u32>(NIB);
        let ha = (ca >> vec4<u32>(4u)) & vec4<u32>(NIB); let hb = (cb >> vec4<u32>(4u)) & vec4<u32>(NIB);
${lines(M, (m) => `        {
          let s0 = (dot4I8Packed(la.x, xa${m}.x) + dot4I8Packed(la.y, xa${m}.y)) + (dot4I8Packed(la.z, xa${m}.z) + dot4I8Packed(la.w, xa${m}.w))
                 + (dot4I8Packed(lb.x, xb${m}.x) + dot4I8Packed(lb.y, xb${m}.y)) + (dot4I8Packed(lb.z, xb${m}.z) + dot4I8Packed(lb.w, xb${m}.w));
          let s1 = (dot4I8Packed(ha.x, xc${m}.x) + dot4I8Packed(ha.y, xc${m}.y)) + (dot4I8Packed(ha.z, xc${m}.z) + dot4I8Packed(ha.w, xc${m}.w))
                 + (dot4I8Packed(hb.x, xd${m}.x) + dot4I8Packed(hb.y, xd${m}.y)) + (dot4I8Packed(hb.z, xd${m}.z) + dot4I8Packed(hb.w, xd${m}.w));
          ${acc(m)} = ${acc(m)} + (da * xs${m}.x * f32(s0) - ma * xs${m}.y) + (db * xt${m}.x * f32(s1) - mb * xt${m}.y);
        }`)}
      }`;
    default: throw new Error(`no 8-bit-activation GEMV for ${type}`);
  }
}

/** WGSL loading x's bytes and scales of the unit(s) of lane step u for row m of x. */
function xCode(type: QuantType, m: number): string {
  // q4_k's step covers two 32-value blocks of x (2u, 2u + 1); the others one (u)
  if (type === 'q4_k') {
    return `let xi${m} = (${m}u * unitsX + 2u * u); let xa${m} = XQ[xi${m} * 2u]; let xb${m} = XQ[xi${m} * 2u + 1u]; let xc${m} = XQ[xi${m} * 2u + 2u]; let xd${m} = XQ[xi${m} * 2u + 3u]; let xs${m} = XS[xi${m}]; let xt${m} = XS[xi${m} + 1u];`;
  }
  return `let xi${m} = ${m}u * unitsX + u; let xa${m} = XQ[xi${m} * 2u]; let xb${m} = XQ[xi${m} * 2u + 1u]; let xs${m} = XS[xi${m}];`;
}

const SCALE_MIN_K4 = /* wgsl */ `
fn wb(o: u32) -> u32 { return (W[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu; }
/** Sub-block j's 6-bit scale and min from the 12 bytes at sb (ggml's get_scale_min_k4). */
fn scale_min_k4(sb: u32, j: u32) -> vec2<u32> {
  let qa = wb(sb + j); let qb = wb(sb + j + 4u); let qc = wb(sb + (j & 3u));
  if (j < 4u) { return vec2<u32>(qa & 63u, qb & 63u); }
  return vec2<u32>((qb & 15u) | ((qc >> 6u) << 4u), (qb >> 4u) | ((qa >> 6u) << 4u));
}`;

/** y [M, N] = x [M, K] · Wᵀ with x rounded to 8 bits per 32 values (M <= 8; K a multiple of the block). */
export function gemvA8(ctx: OpContext, type: QuantType, M: number, N: number, K: number, rowBytes: number, xd: Dense, wd: Dense, yd: Dense): void {
  const tune = QGEMV_TUNING;
  const { xq, xs } = quantizeX(ctx, (M * K) / 32, xd);
  const steps = type === 'q4_k' ? K / 64 : K / 32;
  // lanes per row: at most `lanes`, and at least 2 steps per lane on short rows
  const T = Math.max(4, Math.min(tune.lanes, 2 ** Math.ceil(Math.log2(Math.max(1, steps / 2)))));
  const RR = tune.rows;
  const R = (256 / T) * RR;
  const vec4 = type === 'q4_k' && tune.vec4 && wd.offset % 16 === 0;
  const sg = tune.subgroups && ctx.features.subgroups;
  const accs = M * RR;
  const key = `qmatmul gemv-a8 ${type} m${M} t${T} r${RR}${vec4 ? ' v4' : ''}${sg ? ' sg' : ''}`;
  const k = ctx.kernel(key, () => `${sg ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n' : ''}${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> XQ: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> XS: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> W: array<u32>;
${outBinding(4, 'y', 'f32')}
${vec4 ? '@group(0) @binding(5) var<storage, read> W4: array<vec4<u32>>;' : ''}
${storers('y', 'f32')}
const NIB: u32 = 0x0f0f0f0fu;
${type === 'q4_k' ? SCALE_MIN_K4 : ''}
var<workgroup> red: array<f32, ${accs * 256}>;
@compute @workgroup_size(256)
fn main(${BUILTINS}${sg ? ', @builtin(subgroup_size) sgs: u32' : ''}) {
  ${WG_INDEX}
  let N = P[0]; let steps = P[1]; let unitsX = P[2]; let rowBytes = P[3];
  let r = li / ${T}u; let t = li % ${T}u;
  let n0 = (wg * ${256 / T}u + r) * ${RR}u;
${lines(accs, (q) => `  var acc${Math.floor(q / RR)}_${q % RR} = 0.0;`)}
  if (n0 < N) {
    // rows past the end repeat the last one (their sums are not stored)
${lines(RR, (i) => `    let rb${i} = P[4] + min(n0 + ${i}u, N - 1u) * rowBytes;`)}
    for (var u = t; u < steps; u += ${T}u) {
${lines(M, (m) => `      ${xCode(type, m)}`)}
${lines(RR, (i) => `      ${unitCode(type, M, i, vec4)}`)}
    }
  }
  // the T lanes of a row: butterflies within the subgroup, then the subgroups' sums in workgroup memory
  let g = ${sg ? `min(${T}u, sgs)` : '1u'};
${lines(accs, (q) => `  var v${q} = acc${Math.floor(q / RR)}_${q % RR};`)}
${sg ? `  for (var s = 1u; s < g; s = s << 1u) {
${lines(accs, (q) => `    v${q} = v${q} + subgroupShuffleXor(v${q}, s);`)}
  }` : ''}
  if (t % g == 0u) {
${lines(accs, (q) => `    red[${q * 256}u + li] = v${q};`)}
  }
  workgroupBarrier();
  if (t == 0u) {
${lines(accs, (q) => `    var y${q} = 0.0;
    for (var j = 0u; j < ${T}u; j += g) { y${q} = y${q} + red[${q * 256}u + li + j]; }
    if (n0 + ${q % RR}u < N) { stf_y(P[5] + ${Math.floor(q / RR)}u * N + n0 + ${q % RR}u, y${q}); }`)}
  }
}`);
  const params = new Params().u32(N, steps, K / 32, rowBytes, wd.offset, yd.offset);
  const bufs = [xq, xs, wd.gpu, yd.gpu];
  if (vec4) bufs.push(wd.gpu);
  ctx.run(k, bufs, params, [cdiv(N, R)]);
}
