// The plain-TypeScript backend: memory is ordinary Uint8Arrays and every op runs the reference
// kernels. Synchronous, slow, and the yardstick every other backend is tested against.
import type { Backend, BackendBuffer, OpDesc, OpName, View } from '../../tensor/backend.js';
import { checkByteRange, ownBuffer, settled } from '../../tensor/backend.js';
import { OP_NAMES } from '../../tensor/backend.js';
import { hasReferenceKernel, runReference } from './kernels.js';

export interface JsBuffer extends BackendBuffer {
  readonly backend: 'js';
  readonly bytes: Uint8Array;
  freed: boolean;
}

export class JsBackend implements Backend {
  readonly name = 'js';
  readonly synchronous = true;
  private live = 0;

  alloc(byteLength: number): JsBuffer {
    if (!Number.isInteger(byteLength) || byteLength < 0) throw new Error(`js backend: cannot allocate ${byteLength} bytes`);
    this.live += byteLength;
    return { backend: 'js', byteLength, bytes: new Uint8Array(byteLength), freed: false };
  }

  free(buffer: BackendBuffer): void {
    const b = this.own(buffer, 'free');
    b.freed = true;
    this.live -= b.byteLength;
  }

  write(buffer: BackendBuffer, byteOffset: number, bytes: Uint8Array): void {
    const b = this.own(buffer, 'write');
    this.checkRange(b, byteOffset, bytes.byteLength, 'write');
    b.bytes.set(bytes, byteOffset);
  }

  read(buffer: BackendBuffer, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    return settled(() => this.readSync(buffer, byteOffset, byteLength));
  }

  readSync(buffer: BackendBuffer, byteOffset: number, byteLength: number): Uint8Array {
    const b = this.own(buffer, 'read');
    this.checkRange(b, byteOffset, byteLength, 'read');
    return b.bytes.slice(byteOffset, byteOffset + byteLength);
  }

  supportsOp(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): boolean {
    return hasReferenceKernel(op) && [...inputs, ...outputs].every((v) => v.buffer.backend === 'js');
  }

  exec(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): void {
    runReference(op, inputs, outputs, (buf) => this.own(buf, `exec '${op.op}'`).bytes);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  memoryInUse(): number {
    return this.live;
  }

  info(): Record<string, string | number | boolean> {
    return { kind: 'plain TypeScript reference', precision: 'f64 accumulation', threads: 1 };
  }

  nativeOps(): readonly OpName[] {
    return OP_NAMES;
  }

  dispose(): void {
    this.live = 0;
  }

  private own(buffer: BackendBuffer, what: string): JsBuffer {
    return ownBuffer<JsBuffer>('js', buffer, 'bytes', what);
  }

  private checkRange(b: JsBuffer, byteOffset: number, byteLength: number, what: string): void {
    checkByteRange('js', b, byteOffset, byteLength, what);
  }
}

export function createJsBackend(): JsBackend {
  return new JsBackend();
}
