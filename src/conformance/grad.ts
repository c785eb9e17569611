// The conformance matrix in `grad` mode: for each differentiable f32 variant of cases.ts, the loss
// L = Σ outᵢ·rᵢ (r random, zero where an output is not finite) is differentiated with the tape and
// (i) compared with central finite differences on the reference backend, at a sample of input
// elements (elements where the left and right differences disagree sit on a kink, e.g. relu at 0,
// and are skipped and counted), under a per-op tolerance on the relative error; and
// (ii) the gradient computed on the backend under test is compared with the reference backend's
// under an NMSE budget.
import type { Backend } from '../tensor/backend.js';
import { clearTape, grad, noGrad, NoGradientError, tapeMark } from '../autograd/tape.js';
import { Rng } from '../ops/creation.js';
import { abs, add, gt, mul, where } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { isFloat } from '../tensor/dtype.js';
import { tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import type { Variant } from './cases.js';
import { makeInput, selectVariants, values, type ConformanceOptions } from './runner.js';

export interface GradCaseResult {
  backend: string;
  op: string;
  label: string;
  status: 'pass' | 'fail' | 'error' | 'unsupported';
  /** Worst relative error of the analytic gradient against finite differences (reference backend). */
  fdErr: number;
  fdTol: number;
  /** Input elements checked by finite differences, and those skipped on a kink. */
  checked: number;
  kinks: number;
  /** Worst NMSE of the test backend's gradients against the reference backend's. */
  nmse: number;
  budget: number;
  detail?: string;
}

/** Relative-error tolerance against finite differences, per op (f32 forward, step h ≈ 1e-2). */
const FD_TOL: Record<string, number> = { default: 1e-2, attention: 2e-2, layernorm: 2e-2, rmsnorm: 2e-2, softmax: 2e-2 };
const SAMPLES = 12;

/**
 * Ops with no gradient: fill and random make values from no input; adamw is an optimizer step,
 * outside autograd; geluBackward, layernormBackward and softmaxBackward are gradient rules' own
 * ops (no second derivatives).
 */
export const NO_GRADIENT: ReadonlySet<string> = new Set(['fill', 'random', 'adamw', 'geluBackward', 'layernormBackward', 'softmaxBackward']);

/** Variants whose gradient is checked: f32 inputs only, no NaN/Inf inputs, ops that have a gradient. */
export function gradVariants(opts: ConformanceOptions = {}): Variant[] {
  return selectVariants(opts).filter((v) => v.op === 'dequantize' || !NO_GRADIENT.has(v.op) && !v.inputs.some((s) => s.special)
    && v.inputs.some((s) => isFloat(s.dtype)) && v.inputs.every((s) => !isFloat(s.dtype) || s.dtype === 'f32'));
}

type Vals = number[][];

/** Float inputs that are tables, not values: no gradient is defined for them (rope's inverse frequencies, maskedMatmul's mask). */
const CONSTANT_INPUTS: Record<string, number[]> = { rope: [2], maskedMatmul: [2] };

function floatInputs(v: Variant): number[] {
  const skip = CONSTANT_INPUTS[v.op] ?? [];
  return v.inputs.map((s, i) => (isFloat(s.dtype) && !skip.includes(i) ? i : -1)).filter((i) => i >= 0);
}

/** Host loss Σ r·out in float64 (no tape). */
function hostLoss(v: Variant, b: Backend, vals: Vals, r: Float64Array[]): number {
  return noGrad(() => tidy(() => {
    const outs = v.run(v.inputs.map((s, i) => makeInput(s, b, vals[i]!)));
    let L = 0;
    outs.forEach((o, k) => {
      const rk = r[k];
      if (!rk) return;
      const d = o.dataSync();
      for (let i = 0; i < d.length; i++) if (rk[i]) L += rk[i]! * d[i]!;
    });
    return L;
  }));
}

/**
 * Analytic gradients of Σ r·out with respect to the float inputs, read back to the host
 * (asynchronously, so that backends without synchronous reads, such as WebGPU, are checked too).
 */
async function analytic(v: Variant, b: Backend, vals: Vals, r: Float64Array[], fi: number[]): Promise<Float32Array[]> {
  const mark = tapeMark();
  let grads: Tensor[] | null;
  try {
    grads = tidy(() => {
      const xs = v.inputs.map((s, i) => makeInput(s, b, vals[i]!));
      for (const i of fi) xs[i]!.requireGrad();
      const outs = v.run(xs);
      let loss: Tensor | null = null;
      outs.forEach((o, k) => {
        const rk = r[k];
        if (!rk || o.size === 0) return;
        const rt = Tensor.from(Float32Array.from(rk), o.shape, 'f32', b);
        // r is exactly 0 only where the output is not finite (a normal draw is never 0).
        const finite = rk.includes(0) ? where(gt(abs(rt), 0), o, 0) : o;
        const term = sum(mul(finite, rt).reshape([-1]), 0);
        loss = loss ? add(loss, term) : term;
      });
      const l = loss as Tensor | null;
      return !l || !l.requiresGrad ? null : grad(l, fi.map((i) => xs[i]!));
    });
  } finally {
    clearTape(mark - 1);
  }
  if (!grads) return fi.map((i) => new Float32Array(vals[i]!.length)); // empty outputs
  try {
    return await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array));
  } finally {
    for (const g of grads) g.dispose();
  }
}

function nmse(ref: Float32Array, got: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(got[i]!) && !Object.is(ref[i], got[i])) return Infinity;
    num += (ref[i]! - got[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return num === 0 ? 0 : num / (den || 1);
}

async function runGradVariant(v: Variant, ref: Backend, test: Backend | null, seed: number): Promise<GradCaseResult | null> {
  const fdTol = FD_TOL[v.op] ?? FD_TOL.default!;
  // RMSNorm over one channel: y = w·x/sqrt(x² + eps), whose gradient w·eps/(x² + eps)^1.5 is the
  // difference of two nearly equal terms; f32 backends agree with the f64 reference only loosely.
  const illConditioned = v.op === 'rmsnorm' && /\bd=1\b/.test(v.label);
  const budget = illConditioned ? 1e-3 : Math.max(1e-8, 10 * v.budget);
  const base = { backend: test?.name ?? ref.name, op: v.op, label: v.label, fdTol, budget };
  const rng = new Rng(seed);
  const vals: Vals = v.inputs.map((s) => values(s, s.shape.reduce((p, d) => p * d, 1), rng));
  const fi = floatInputs(v);
  if (v.op === 'dequantize') {
    // No gradient: asking for one must name the op.
    try {
      tidy(() => {
        const xs = v.inputs.map((s, i) => makeInput(s, ref, vals[i]!).requireGrad());
        const y = v.run(xs)[0]!;
        grad(sum(y.reshape([-1]), 0), xs);
      });
      return { ...base, status: 'fail', fdErr: NaN, checked: 0, kinks: 0, nmse: NaN, detail: 'a gradient through dequantize did not throw' };
    } catch (e) {
      const ok = e instanceof NoGradientError && e.message.includes('dequantize');
      return { ...base, status: ok ? 'pass' : 'fail', fdErr: 0, checked: 0, kinks: 0, nmse: 0, detail: ok ? undefined : String(e) };
    } finally {
      clearTape();
    }
  }
  // The projection r, from the reference outputs (zero where an output is not finite).
  let r: Float64Array[];
  try {
    r = noGrad(() => tidy(() => {
      const outs = v.run(v.inputs.map((s, i) => makeInput(s, ref, vals[i]!)));
      return outs.map((o) => {
        if (!isFloat(o.dtype)) return undefined as unknown as Float64Array;
        if (o.dtype !== 'f32') throw new Error('skip');
        const d = o.dataSync();
        return Float64Array.from(d, (x) => (Number.isFinite(x) ? rng.normal() : 0));
      });
    }));
  } catch (e) {
    if ((e as Error).message === 'skip') return null;
    return { ...base, status: 'error', fdErr: NaN, checked: 0, kinks: 0, nmse: NaN, detail: `reference forward failed: ${(e as Error).message}` };
  }
  if (!r.some((x) => x)) return null; // no float output: comparisons, arg*, casts to int
  let refGrads: Float32Array[];
  try {
    refGrads = await analytic(v, ref, vals, r, fi);
  } catch (e) {
    return { ...base, status: 'error', fdErr: NaN, checked: 0, kinks: 0, nmse: NaN, detail: `reference gradient failed: ${(e as Error).stack ?? e}` };
  }
  // (i) finite differences on the reference backend.
  let worst = 0;
  let checked = 0;
  let kinks = 0;
  let where0 = '';
  const L0 = hostLoss(v, ref, vals, r);
  if (v.finiteDifferences !== false) fi.forEach((inp, k) => {
    const g = refGrads[k]!;
    const n = g.length;
    if (n === 0) return;
    let rms = 0;
    for (const x of g) rms += x * x;
    rms = Math.sqrt(rms / n);
    const picks = n <= SAMPLES ? [...Array(n).keys()] : Array.from({ length: SAMPLES }, () => rng.int(n));
    for (const j of picks) {
      const x0 = vals[inp]![j]!;
      const h = Math.max(1e-3, Math.min(1e-2, 0.1 * Math.abs(x0)));
      const at = (x: number) => {
        const copy = vals.map((a) => a);
        copy[inp] = [...vals[inp]!];
        copy[inp]![j] = x;
        return hostLoss(v, ref, copy, r);
      };
      // Evaluate at representable f32 points so the step is exactly what the op sees.
      const xp = Math.fround(x0 + h);
      const xm = Math.fround(x0 - h);
      const Lp = at(xp);
      const Lm = at(xm);
      const dR = (Lp - L0) / (xp - x0);
      const dL = (L0 - Lm) / (x0 - xm);
      const scale = Math.max(Math.abs(dR), Math.abs(dL), rms, 1e-6);
      if (Math.abs(dR - dL) > 0.2 * scale) { kinks++; continue; }
      const num = (Lp - Lm) / (xp - xm);
      const err = Math.abs(g[j]! - num) / (Math.abs(num) + 0.1 * rms + 1e-3);
      checked++;
      if (err > worst) { worst = err; where0 = `input ${inp} element ${j}: analytic ${g[j]}, numeric ${num}`; }
    }
  });
  const fdOk = v.finiteDifferences === false || (worst <= fdTol && (checked > 0 || fi.every((i) => vals[i]!.length === 0) || kinks > 0));
  // (ii) the backend under test against the reference.
  let worstN = 0;
  if (test && test !== ref) {
    try {
      const got = await analytic(v, test, vals, r, fi);
      got.forEach((g, k) => { worstN = Math.max(worstN, nmse(refGrads[k]!, g)); });
    } catch (e) {
      const err = e as Error;
      const status = err.name === 'UnsupportedOpError' ? 'unsupported' : 'error';
      return { ...base, status, fdErr: worst, checked, kinks, nmse: NaN, detail: err.stack ?? String(err) };
    }
  }
  const ok = fdOk && worstN <= budget;
  return { ...base, status: ok ? 'pass' : 'fail', fdErr: worst, checked, kinks, nmse: worstN, detail: ok ? undefined : `${fdOk ? '' : `finite differences: ${where0}; `}${worstN > budget ? `nmse ${worstN} vs reference` : ''}` };
}

/** Runs the grad matrix: finite differences on `ref`, and `test` (when given) against `ref`. */
export async function runGradConformance(ref: Backend, test: Backend | null, opts: ConformanceOptions = {}): Promise<GradCaseResult[]> {
  const out: GradCaseResult[] = [];
  // a case's inputs depend on its op and its place among that op's cases only: cases added to one
  // op leave every other op's draws as they were
  const nth = new Map<string, number>();
  for (const v of gradVariants(opts)) {
    const k = nth.get(v.op) ?? 0;
    nth.set(v.op, k + 1);
    const r = await runGradVariant(v, ref, test, (opts.seed ?? 1) * 7919 + opSeed(v.op) + k);
    if (r) out.push(r);
  }
  return out;
}

/** A fixed number per op name (FNV-1a), spacing the ops' seeds apart. */
function opSeed(op: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < op.length; i++) h = Math.imul(h ^ op.charCodeAt(i), 0x01000193) >>> 0;
  return (h % 100_000) * 1000;
}

/** One line per op: cases, failures, worst finite-difference error, worst NMSE against the reference. */
export function summarizeGrad(results: GradCaseResult[]): string {
  const byOp = new Map<string, GradCaseResult[]>();
  for (const r of results) byOp.set(`${r.backend} ${r.op}`, [...(byOp.get(`${r.backend} ${r.op}`) ?? []), r]);
  const lines = ['backend  op           pass  fail  unsup  max FD rel err (tol)   checked/kinks  worst NMSE'];
  for (const [k, rs] of byOp) {
    const [b, op] = k.split(' ');
    const n = (s: string) => rs.filter((r) => r.status === s).length;
    const fd = Math.max(0, ...rs.filter((r) => Number.isFinite(r.fdErr)).map((r) => r.fdErr));
    const nm = Math.max(0, ...rs.filter((r) => Number.isFinite(r.nmse)).map((r) => r.nmse));
    const ck = rs.reduce((s, r) => s + r.checked, 0);
    const kk = rs.reduce((s, r) => s + r.kinks, 0);
    lines.push(`${b!.padEnd(8)} ${op!.padEnd(12)} ${String(n('pass')).padStart(4)}  ${String(n('fail') + n('error')).padStart(4)}  ${String(n('unsupported')).padStart(5)}  ${fd.toExponential(2)} (${rs[0]!.fdTol.toExponential(0)})`.padEnd(68) + `${`${ck}/${kk}`.padStart(13)}  ${nm.toExponential(2)}`);
  }
  return lines.join('\n');
}
