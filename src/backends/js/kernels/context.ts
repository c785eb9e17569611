// What every reference kernel receives: its op, its views, dense f64 reads of the inputs, a
// writer for the outputs, and one way to fail with a message naming op, shapes and dtypes.
import { splitAt } from '../../../tensor/shape.js';
export { splitAt };
import type { BackendBuffer, OpDesc, View } from '../../../tensor/backend.js';
import { describeView, opParams } from '../../../tensor/backend.js';
import { readView, writeView } from '../access.js';

export class KernelContext<O extends OpDesc = OpDesc> {
  constructor(
    readonly op: O,
    readonly inputs: readonly View[],
    readonly outputs: readonly View[],
    private readonly bytesOf: (b: BackendBuffer) => Uint8Array,
  ) {}

  /** Input `i` as a dense row-major f64 array. */
  read(i: number): Float64Array {
    return readView(this.bytesOf(this.input(i).buffer), this.input(i));
  }

  /** Writes row-major `values` into output `j`, converting to its dtype. */
  write(j: number, values: ArrayLike<number>): void {
    writeView(this.bytesOf(this.output(j).buffer), this.output(j), values);
  }

  /** Output `j` as written so far, dense f64 (values as stored: rounded to its dtype). */
  readOutput(j: number): Float64Array {
    return readView(this.bytesOf(this.output(j).buffer), this.output(j));
  }

  input(i: number): View {
    const v = this.inputs[i];
    if (!v) this.fail(`missing input ${i}`);
    return v;
  }

  output(j: number): View {
    const v = this.outputs[j];
    if (!v) this.fail(`missing output ${j}`);
    return v;
  }

  /** Throws unless exactly `nIn` inputs and `nOut` outputs were given. */
  expectArity(nIn: number, nOut: number): void {
    if (this.inputs.length !== nIn || this.outputs.length !== nOut) {
      this.fail(`expected ${nIn} input(s) and ${nOut} output(s)`);
    }
  }

  /** Throws unless `v` has exactly this shape. */
  expectShape(v: View, shape: readonly number[], what: string): void {
    if (v.shape.length !== shape.length || v.shape.some((s, i) => s !== shape[i])) {
      this.fail(`${what} must have shape [${shape.join(',')}], got [${v.shape.join(',')}]`);
    }
  }

  fail(detail: string): never {
    const ins = this.inputs.map(describeView).join(', ');
    const outs = this.outputs.map(describeView).join(', ');
    throw new Error(
      `js reference: op '${this.op.op}'${opParams(this.op)}: ${detail} (inputs: ${ins || 'none'}; outputs: ${outs || 'none'})`,
    );
  }
}

/** Normalizes a possibly negative axis against `rank`, or fails. */
export function normAxis(ctx: KernelContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) ctx.fail(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

