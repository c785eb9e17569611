// Reference gradient of the layer norm (`layernormBackward`): the specification of the fused
// kernels. Each row's mean and variance are recomputed from x in f64, as `layernorm` computes them.
import type { OpDesc } from '../../../tensor/backend.js';
import { isFloat } from '../../../tensor/dtype.js';
import { numel } from '../access.js';
import type { KernelContext } from './context.js';
import { layerNormStats } from './nn.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

export function layernormBackward(ctx: KernelContext<Op<'layernormBackward'>>): void {
  const { eps, hasWeight } = ctx.op;
  ctx.expectArity(hasWeight ? 3 : 2, hasWeight ? 2 : 1);
  const x = ctx.input(0);
  if (x.shape.length === 0) ctx.fail('x needs rank >= 1');
  const d = x.shape[x.shape.length - 1]!;
  if (hasWeight && numel(ctx.input(1).shape) !== d) ctx.fail(`weight must have ${d} elements`);
  const dyAt = hasWeight ? 2 : 1;
  ctx.expectShape(ctx.input(dyAt), x.shape, 'dy');
  for (const v of ctx.outputs) ctx.expectShape(v, x.shape, 'output');
  for (const v of [...ctx.inputs, ...ctx.outputs]) if (!isFloat(v.dtype)) ctx.fail(`layernormBackward works on float tensors, got ${v.dtype}`);
  const xs = ctx.read(0);
  const w = hasWeight ? ctx.read(1) : null;
  const dy = ctx.read(dyAt);
  const dx = new Float64Array(xs.length);
  const dyXhat = hasWeight ? new Float64Array(xs.length) : null;
  const rows = d === 0 ? 0 : xs.length / d;
  for (let r = 0; r < rows; r++) {
    const s = r * d;
    const [mean, rstd] = layerNormStats(xs, s, d, eps);
    // ĝ = dy · w; the row means of ĝ and of ĝ · x̂
    let mg = 0;
    let mgx = 0;
    for (let j = 0; j < d; j++) {
      const g = w ? dy[s + j]! * w[j]! : dy[s + j]!;
      mg += g;
      mgx += g * (xs[s + j]! - mean) * rstd;
    }
    mg /= d;
    mgx /= d;
    for (let j = 0; j < d; j++) {
      const xhat = (xs[s + j]! - mean) * rstd;
      const g = w ? dy[s + j]! * w[j]! : dy[s + j]!;
      dx[s + j] = rstd * (g - mg - xhat * mgx);
      if (dyXhat) dyXhat[s + j] = dy[s + j]! * xhat;
    }
  }
  ctx.write(0, dx);
  if (dyXhat) ctx.write(1, dyXhat);
}
