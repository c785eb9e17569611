// Reference neural-net ops: masked/causal softmax and its gradient, layernorm, rmsnorm, rotary embeddings,
// gather and scatterAdd. Rows are the last axis unless said otherwise.
import type { OpDesc } from '../../../tensor/backend.js';
import { isFloat } from '../../../tensor/dtype.js';
import { numel } from '../access.js';
import type { KernelContext } from './context.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

/**
 * Softmax (or log-softmax) in place over row[start, start+len), counting only entries where
 * `keep(j)`; hidden entries give 0 (-Inf for log). A fully hidden row is all 0 (all -Inf for log).
 */
export function softmaxRow(
  row: Float64Array, start: number, len: number, keep: (j: number) => boolean, log: boolean,
): void {
  let max = -Infinity;
  let any = false;
  for (let j = 0; j < len; j++) {
    if (!keep(j)) continue;
    any = true;
    const v = row[start + j]!;
    if (v > max || Number.isNaN(v)) max = v;
  }
  const hidden = log ? -Infinity : 0;
  if (!any) {
    row.fill(hidden, start, start + len);
    return;
  }
  let sum = 0;
  for (let j = 0; j < len; j++) if (keep(j)) sum += Math.exp(row[start + j]! - max);
  const logSum = Math.log(sum);
  for (let j = 0; j < len; j++) {
    const at = start + j;
    if (!keep(j)) row[at] = hidden;
    else row[at] = log ? row[at]! - max - logSum : Math.exp(row[at]! - max) / sum;
  }
}

export function softmax(ctx: KernelContext<Op<'softmax'>>): void {
  const { log, causal, masked } = ctx.op;
  ctx.expectArity(masked ? 2 : 1, 1);
  const x = ctx.input(0);
  const rank = x.shape.length;
  if (rank < (causal ? 2 : 1)) ctx.fail(`x needs rank >= ${causal ? 2 : 1}`);
  ctx.expectShape(ctx.output(0), x.shape, 'output');
  if (masked) ctx.expectShape(ctx.input(1), x.shape, 'mask (broadcast)');
  const k = x.shape[rank - 1]!;
  const q = causal ? x.shape[rank - 2]! : 1;
  const data = ctx.read(0);
  const mask = masked ? ctx.read(1) : null;
  const rows = k === 0 ? 0 : data.length / k;
  for (let r = 0; r < rows; r++) {
    const start = r * k;
    const limit = causal ? (r % q) + (k - q) : Infinity; // last visible key for this query
    softmaxRow(data, start, k, (j) => j <= limit && (!mask || mask[start + j] !== 0), log);
  }
  ctx.write(0, data);
}

/** dx = y ⊙ (dy − Σ_row y ⊙ dy): a softmax's gradient from its output y, rows the last axis (f64 sums). */
export function softmaxBackward(ctx: KernelContext<Op<'softmaxBackward'>>): void {
  ctx.expectArity(2, 1);
  const y = ctx.input(0);
  if (y.shape.length === 0) ctx.fail('y needs rank >= 1');
  ctx.expectShape(ctx.input(1), y.shape, 'dy');
  ctx.expectShape(ctx.output(0), y.shape, 'output');
  for (const v of [...ctx.inputs, ...ctx.outputs]) if (!isFloat(v.dtype)) ctx.fail(`softmaxBackward works on float tensors, got ${v.dtype}`);
  const k = y.shape[y.shape.length - 1]!;
  const yv = ctx.read(0);
  const g = ctx.read(1);
  const rows = k === 0 ? 0 : yv.length / k;
  for (let r = 0; r < rows; r++) {
    const start = r * k;
    let s = 0;
    for (let j = start; j < start + k; j++) s += yv[j]! * g[j]!;
    for (let j = start; j < start + k; j++) g[j] = yv[j]! * (g[j]! - s);
  }
  ctx.write(0, g);
}

/** Reads the optional [d] parameter vectors that follow x, in the order given by the flags. */
function readParams(ctx: KernelContext, flags: boolean[], d: number): (Float64Array | null)[] {
  let next = 1;
  return flags.map((present, i) => {
    if (!present) return null;
    const at = next++;
    if (numel(ctx.input(at).shape) !== d) ctx.fail(`parameter ${i} must have ${d} elements`);
    return ctx.read(at);
  });
}

/** The layer norm's statistics of the row data[s .. s + d), in f64: its mean and 1 / √(variance + eps). */
export function layerNormStats(data: ArrayLike<number>, s: number, d: number, eps: number): [number, number] {
  let mean = 0;
  for (let j = 0; j < d; j++) mean += data[s + j]!;
  mean /= d;
  let variance = 0;
  for (let j = 0; j < d; j++) variance += (data[s + j]! - mean) ** 2;
  return [mean, 1 / Math.sqrt(variance / d + eps)];
}

export function layernorm(ctx: KernelContext<Op<'layernorm'>>): void {
  const { eps, hasWeight, hasBias } = ctx.op;
  ctx.expectArity(1 + Number(hasWeight) + Number(hasBias), 1);
  const x = ctx.input(0);
  if (x.shape.length === 0) ctx.fail('x needs rank >= 1');
  ctx.expectShape(ctx.output(0), x.shape, 'output');
  const d = x.shape[x.shape.length - 1]!;
  const [w, b] = readParams(ctx, [hasWeight, hasBias], d);
  const data = ctx.read(0);
  const rows = d === 0 ? 0 : data.length / d;
  for (let r = 0; r < rows; r++) {
    const s = r * d;
    const [mean, inv] = layerNormStats(data, s, d, eps);
    for (let j = 0; j < d; j++) {
      let y = (data[s + j]! - mean) * inv;
      if (w) y *= w[j]!;
      if (b) y += b[j]!;
      data[s + j] = y;
    }
  }
  ctx.write(0, data);
}

export function rmsnorm(ctx: KernelContext<Op<'rmsnorm'>>): void {
  const { eps, offset, hasWeight } = ctx.op;
  ctx.expectArity(hasWeight ? 2 : 1, 1);
  const x = ctx.input(0);
  if (x.shape.length === 0) ctx.fail('x needs rank >= 1');
  ctx.expectShape(ctx.output(0), x.shape, 'output');
  const d = x.shape[x.shape.length - 1]!;
  const [w] = readParams(ctx, [hasWeight], d);
  const data = ctx.read(0);
  const rows = d === 0 ? 0 : data.length / d;
  for (let r = 0; r < rows; r++) {
    const s = r * d;
    let ms = 0;
    for (let j = 0; j < d; j++) ms += data[s + j]! ** 2;
    const inv = 1 / Math.sqrt(ms / d + eps);
    for (let j = 0; j < d; j++) data[s + j] = data[s + j]! * inv * (w ? offset + w[j]! : 1);
  }
  ctx.write(0, data);
}

/** s = a + b, stored in s's dtype; y = the norm of s as stored (the 'layernorm' / 'rmsnorm' formulas). */
export function addNorm(ctx: KernelContext<Op<'addNorm'>>): void {
  const { kind, eps, offset, hasWeight, hasBias } = ctx.op;
  if (kind !== 'layer' && kind !== 'rms') ctx.fail(`unknown kind '${kind}'`);
  if (kind === 'rms' && hasBias) ctx.fail('rms norms have no bias');
  ctx.expectArity(2 + Number(hasWeight) + Number(hasBias), 2);
  const a = ctx.input(0);
  if (a.shape.length === 0) ctx.fail('a needs rank >= 1');
  ctx.expectShape(ctx.input(1), a.shape, 'b');
  ctx.expectShape(ctx.output(0), a.shape, 'output s');
  ctx.expectShape(ctx.output(1), a.shape, 'output y');
  const d = a.shape[a.shape.length - 1]!;
  const w = hasWeight ? ctx.read(2) : null;
  const bias = hasBias ? ctx.read(2 + Number(hasWeight)) : null;
  if ((w && w.length !== d) || (bias && bias.length !== d)) ctx.fail(`weight and bias must have ${d} elements`);
  const sum = ctx.read(0);
  const bv = ctx.read(1);
  for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + bv[i]!;
  ctx.write(0, sum);
  const data = ctx.readOutput(0);
  const rows = d === 0 ? 0 : data.length / d;
  for (let r = 0; r < rows; r++) {
    const s = r * d;
    let mean = 0;
    if (kind === 'layer') {
      for (let j = 0; j < d; j++) mean += data[s + j]!;
      mean /= d;
    }
    let q = 0;
    for (let j = 0; j < d; j++) q += (data[s + j]! - mean) ** 2;
    const inv = 1 / Math.sqrt(q / d + eps);
    for (let j = 0; j < d; j++) {
      let y = (data[s + j]! - mean) * inv;
      if (w) y *= kind === 'rms' ? offset + w[j]! : w[j]!;
      if (bias) y += bias[j]!;
      data[s + j] = y;
    }
  }
  ctx.write(1, data);
}

export function rope(ctx: KernelContext<Op<'rope'>>): void {
  ctx.expectArity(3, 1);
  const { mode, rotaryDim: r } = ctx.op;
  const x = ctx.input(0);
  if (x.shape.length !== 4) ctx.fail('x must be [b, t, h, d]');
  const [B, T, H, D] = x.shape as [number, number, number, number];
  if (!Number.isInteger(r) || r < 0 || r % 2 !== 0 || r > D) ctx.fail(`rotaryDim ${r} must be even and <= d=${D}`);
  ctx.expectShape(ctx.input(1), [B, T], 'positions');
  if (numel(ctx.input(2).shape) !== r / 2) ctx.fail(`invFreq must have rotaryDim/2 = ${r / 2} elements`);
  ctx.expectShape(ctx.output(0), x.shape, 'output');
  if (mode !== 'half' && mode !== 'interleaved') ctx.fail(`unknown mode '${mode}'`);
  const data = ctx.read(0);
  const pos = ctx.read(1);
  const invFreq = ctx.read(2);
  const half = r / 2;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let bt = 0; bt < B * T; bt++) {
    for (let i = 0; i < half; i++) {
      const angle = pos[bt]! * invFreq[i]!;
      cos[i] = Math.cos(angle);
      sin[i] = Math.sin(angle);
    }
    for (let h = 0; h < H; h++) {
      const s = (bt * H + h) * D;
      for (let i = 0; i < half; i++) {
        const [p, q] = mode === 'half' ? [s + i, s + i + half] : [s + 2 * i, s + 2 * i + 1];
        const a = data[p]!;
        const b = data[q]!;
        data[p] = a * cos[i]! - b * sin[i]!;
        data[q] = b * cos[i]! + a * sin[i]!;
      }
    }
  }
  ctx.write(0, data);
}

/** Checks that every id is an integer row index of a table with `n` rows. */
function checkIds(ctx: KernelContext, ids: Float64Array, n: number): void {
  for (const id of ids) {
    if (!(Number.isInteger(id) && id >= 0 && id < n)) ctx.fail(`id ${id} out of range for a table of ${n} rows`);
  }
}

export function gather(ctx: KernelContext<Op<'gather'>>): void {
  ctx.expectArity(2, 1);
  const table = ctx.input(0);
  if (table.shape.length === 0) ctx.fail('table needs rank >= 1');
  const rowShape = table.shape.slice(1);
  ctx.expectShape(ctx.output(0), [...ctx.input(1).shape, ...rowShape], 'output');
  const n = table.shape[0]!;
  const rowLen = numel(rowShape);
  const ids = ctx.read(1);
  checkIds(ctx, ids, n);
  const t = ctx.read(0);
  const y = new Float64Array(ids.length * rowLen);
  for (let i = 0; i < ids.length; i++) y.set(t.subarray(ids[i]! * rowLen, (ids[i]! + 1) * rowLen), i * rowLen);
  ctx.write(0, y);
}

export function scatterAdd(ctx: KernelContext<Op<'scatterAdd'>>): void {
  ctx.expectArity(3, 1);
  const target = ctx.input(0);
  if (target.shape.length === 0) ctx.fail('target needs rank >= 1');
  const rowShape = target.shape.slice(1);
  if (ctx.input(1).shape.length !== 1) ctx.fail('ids must be 1-d');
  const m = ctx.input(1).shape[0]!;
  ctx.expectShape(ctx.input(2), [m, ...rowShape], 'src');
  ctx.expectShape(ctx.output(0), target.shape, 'output');
  const n = target.shape[0]!;
  const rowLen = numel(rowShape);
  const ids = ctx.read(1);
  checkIds(ctx, ids, n);
  const y = ctx.read(0);
  const src = ctx.read(2);
  for (let i = 0; i < m; i++) {
    const to = ids[i]! * rowLen;
    for (let j = 0; j < rowLen; j++) y[to + j] += src[i * rowLen + j]!;
  }
  ctx.write(0, y);
}
