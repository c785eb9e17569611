// The one shared WebAssembly.Memory of the wasm backend and its JavaScript-side allocator:
// 64-byte aligned blocks, a sorted free list with coalescing for reuse, growth on demand (up to
// 65536 pages = 4 GiB). Every kernel module of every thread imports this memory.
// Not for: typed tensors (buffers are raw byte ranges; src/backends/wasm/backend.ts wraps them).

export const PAGE_BYTES = 65536;
export const MAX_PAGES = 65536;
export const ALIGN = 64;

interface Block {
  ptr: number;
  size: number;
}

export class WasmMemory {
  readonly memory: WebAssembly.Memory;
  private u8: Uint8Array;
  /** End of the highest block ever handed out; memory above it is untouched. */
  private top = ALIGN; // address 0..63 stays unused so that 0 is never a valid pointer
  private readonly freeList: Block[] = []; // sorted by ptr, coalesced
  private readonly sizes = new Map<number, number>(); // ptr -> reserved size
  private live = 0;
  /** The most pages this memory may grow to (MAX_PAGES unless a smaller cap was asked for). */
  private readonly maxPages: number;

  constructor(initialPages = 32, maxBytes?: number) {
    this.maxPages = maxBytes === undefined ? MAX_PAGES : Math.min(MAX_PAGES, Math.max(initialPages, Math.ceil(maxBytes / PAGE_BYTES)));
    try {
      this.memory = new WebAssembly.Memory({ initial: initialPages, maximum: this.maxPages, shared: true });
    } catch (e) {
      throw new Error(
        `wasm backend: cannot create a shared WebAssembly.Memory (${(e as Error).message}); ` +
          'in browsers this needs a cross-origin isolated page (COOP/COEP headers)',
      );
    }
    this.u8 = new Uint8Array(this.memory.buffer);
  }

  /** Reserves `byteLength` bytes (at least 1), 64-byte aligned. Grows the memory if needed. */
  alloc(byteLength: number): number {
    if (!Number.isInteger(byteLength) || byteLength < 0) throw new Error(`wasm memory: cannot allocate ${byteLength} bytes`);
    const size = Math.ceil(Math.max(byteLength, 1) / ALIGN) * ALIGN;
    let ptr = -1;
    for (let i = 0; i < this.freeList.length; i++) {
      const b = this.freeList[i]!;
      if (b.size < size) continue;
      ptr = b.ptr;
      if (b.size === size) this.freeList.splice(i, 1);
      else { b.ptr += size; b.size -= size; }
      break;
    }
    if (ptr < 0) {
      ptr = this.top;
      this.ensure(ptr + size);
      this.top = ptr + size;
    }
    this.sizes.set(ptr, size);
    this.live += size;
    return ptr;
  }

  /** Returns a block to the free list (merging with free neighbours). */
  free(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`wasm memory: free of unknown pointer ${ptr}`);
    this.sizes.delete(ptr);
    this.live -= size;
    let lo = 0;
    let hi = this.freeList.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.freeList[mid]!.ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    const block: Block = { ptr, size };
    this.freeList.splice(lo, 0, block);
    const next = this.freeList[lo + 1];
    if (next && block.ptr + block.size === next.ptr) {
      block.size += next.size;
      this.freeList.splice(lo + 1, 1);
    }
    const prev = this.freeList[lo - 1];
    if (prev && prev.ptr + prev.size === block.ptr) {
      prev.size += block.size;
      this.freeList.splice(lo, 1);
    }
    const last = this.freeList[this.freeList.length - 1];
    if (last && last.ptr + last.size === this.top) {
      this.top = last.ptr;
      this.freeList.pop();
    }
  }

  /** Bytes reserved by live blocks (rounded up to the alignment). */
  inUse(): number {
    return this.live;
  }

  /** Current size of the memory in bytes. */
  byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /**
   * A view of the whole memory, refreshed after growth. The memory grows only here (`ensure`), so
   * the view made then stays whole: reading `memory.buffer` of a shared memory costs a few µs in
   * V8 (a new SharedArrayBuffer object each time), and kernels ask for this view in every op.
   */
  bytes(): Uint8Array {
    return this.u8;
  }

  f32(): Float32Array {
    const u8 = this.bytes();
    return new Float32Array(u8.buffer, 0, u8.byteLength >>> 2);
  }

  i32(): Int32Array {
    const u8 = this.bytes();
    return new Int32Array(u8.buffer, 0, u8.byteLength >>> 2);
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    if (end > this.maxPages * PAGE_BYTES) {
      throw new Error(this.maxPages === MAX_PAGES
        ? `wasm memory: ${end} bytes needed, more than the 4 GiB a wasm32 memory can hold`
        : `wasm memory: ${end} bytes needed, more than the ${this.maxPages * PAGE_BYTES} bytes this backend may use (maxBytes)`);
    }
    const havePages = have / PAGE_BYTES;
    const needPages = Math.ceil(end / PAGE_BYTES) - havePages;
    // grow geometrically (by at least a quarter) to keep the number of grow calls small
    const pages = Math.min(this.maxPages - havePages, Math.max(needPages, Math.ceil(havePages / 4)));
    try {
      this.memory.grow(pages);
    } catch (e) {
      try {
        this.memory.grow(needPages);
      } catch {
        throw new Error(`wasm memory: cannot grow from ${have} to ${end} bytes (${(e as Error).message})`);
      }
    }
    this.u8 = new Uint8Array(this.memory.buffer);
  }
}
