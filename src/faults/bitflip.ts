// Fault injection: single-bit flips in f32 values, as soft errors in memory flip them. A fault
// model is a rate and a bit position: with `bit` fixed, each value's bit `bit` flips with
// probability `rate`; with no bit, each of the 32 bits of each value flips with probability `rate`
// (a bit error rate). Positions come from a seeded Bernoulli process (geometric gaps between
// faults), so a run is reproducible and costs O(faults), not O(bits).
// Sites: the weights (`injectWeightFaults`: f32 parameters by checkpoint name, changed in place,
// `restore()` puts every value back) or any hook point (`activationFaultHook`).
// Bit numbering: 0 is the mantissa's lowest bit, 23..30 the exponent, 31 the sign.
import { Rng } from '../ops/creation.js';
import { Tensor } from '../tensor/tensor.js';
import type { HookFn } from '../models/hook-point.js';
import type { CausalLM } from '../models/model.js';

export interface FaultSpec {
  /** Probability of a flip per value (with `bit`) or per bit (without). */
  rate: number;
  /** The bit that flips (0..31); absent: any bit. */
  bit?: number;
  seed?: number;
}

export function checkFaultSpec(s: FaultSpec, where = 'faults'): void {
  if (!(s.rate >= 0 && s.rate <= 1)) throw new RangeError(`${where}: rate must be in [0, 1], got ${s.rate}`);
  if (s.bit !== undefined && !(Number.isInteger(s.bit) && s.bit >= 0 && s.bit <= 31)) {
    throw new RangeError(`${where}: bit must be a whole number in 0..31 (0 = lowest mantissa bit, 23..30 exponent, 31 sign), got ${s.bit}`);
  }
}

const scratch = new DataView(new ArrayBuffer(4));

/** `v` (as f32) with bit `bit` flipped (a NaN result comes back as JavaScript's NaN, its payload lost). */
export function flipF32Bit(v: number, bit: number): number {
  scratch.setFloat32(0, v, true);
  scratch.setUint32(0, (scratch.getUint32(0, true) ^ (1 << bit)) >>> 0, true);
  return scratch.getFloat32(0, true);
}

/** Gap to the next success of a Bernoulli(rate) process (0 = the very next trial). */
function gap(rng: Rng, rate: number): number {
  if (rate >= 1) return 0;
  return Math.floor(Math.log(1 - rng.uniform()) / Math.log(1 - rate));
}

/**
 * Flips bits of `data` in place (on its bits, so a NaN a flip makes keeps its payload); returns the
 * indices of the values changed (in order, a value may repeat).
 */
export function flipBitsInPlace(data: Float32Array, s: FaultSpec, rng: Rng): number[] {
  checkFaultSpec(s);
  const changed: number[] = [];
  if (s.rate === 0 || data.length === 0) return changed;
  const u = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const trials = s.bit === undefined ? data.length * 32 : data.length;
  for (let t = gap(rng, s.rate); t < trials; t += 1 + gap(rng, s.rate)) {
    const i = s.bit === undefined ? Math.floor(t / 32) : t;
    const b = s.bit === undefined ? t % 32 : s.bit;
    u[i] = (u[i]! ^ (1 << b)) >>> 0;
    changed.push(i);
  }
  return changed;
}

export interface WeightFaults {
  /** Bits flipped. */
  flips: number;
  /** f32 values in the tensors that were eligible. */
  values: number;
  /** Parameter names that got at least one flip. */
  tensors: string[];
  /** Puts every changed weight back. */
  restore(): void;
}

/**
 * Flips bits in the model's f32 parameters whose checkpoint name matches `names` (all by default),
 * in place. Throws when no f32 parameter matches (quantized weights are not covered).
 */
export function injectWeightFaults(model: CausalLM, s: FaultSpec & { names?: RegExp }): WeightFaults {
  checkFaultSpec(s, 'weight faults');
  const rng = new Rng(s.seed ?? 0);
  const params = [...model.parameters()].filter(([n, t]) => (!s.names || s.names.test(n)) && t.dtype === 'f32');
  if (!params.length) throw new Error(`weight faults: no f32 parameter matches ${s.names ?? 'any name'} (quantized weights are not covered)`);
  const saved: { t: Tensor; orig: Float32Array }[] = [];
  const tensors: string[] = [];
  let flips = 0;
  let values = 0;
  for (const [name, t] of params) {
    values += t.size;
    if (!t.isContiguous) throw new Error(`weight faults: parameter ${name} is not contiguous`);
    const data = (t.dataSync() as Float32Array).slice();
    const orig = data.slice();
    const changed = flipBitsInPlace(data, s, rng);
    if (!changed.length) continue;
    flips += changed.length;
    tensors.push(name);
    write(t, data);
    saved.push({ t, orig });
  }
  let restored = false;
  return {
    flips, values, tensors,
    restore() {
      if (restored) return;
      restored = true;
      for (const { t, orig } of saved) write(t, orig);
    },
  };
}

function write(t: Tensor, data: Float32Array): void {
  t.backend.write(t.view().buffer, t.offset * 4, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** A hook that flips bits of the activation at its hook point (a fresh seeded stream per hook); `flips()` counts them. */
export function activationFaultHook(s: FaultSpec): HookFn & { flips(): number } {
  checkFaultSpec(s, 'activation faults');
  const rng = new Rng(s.seed ?? 0);
  let count = 0;
  const hook: HookFn = (a) => {
    if (a.dtype !== 'f32') throw new Error(`activation faults: the activation is ${a.dtype}; only f32 is covered`);
    const data = (a.dataSync() as Float32Array).slice();
    const changed = flipBitsInPlace(data, s, rng);
    if (!changed.length) return;
    count += changed.length;
    return Tensor.from(data, a.shape, 'f32', a.backend);
  };
  return Object.assign(hook, { flips: () => count });
}
