// ByteSource: random-access reads of a file-like thing (a local file, a Blob, an HTTP URL, bytes in
// memory), so format readers can take one tensor at a time without holding the whole file.
// The core imports only this file; Node's file implementation lives in src/io/node/.
// Not for: writing (src/io/file-store.ts).

export interface ByteSource {
  /** What to call the source in error messages (a path or URL). */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset`; throws if the range is outside the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Throws a clear error when [offset, offset + length) is not inside a source of `size` bytes. */
export function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`${name}: read of ${length} bytes at offset ${offset} is outside the file (${size} bytes)`);
  }
}

/** Bytes already in memory (tests, the browser's in-memory cache). */
export class BytesSource implements ByteSource {
  readonly size: number;
  constructor(private bytes: Uint8Array, readonly name = '<memory>') {
    this.size = bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
  async close(): Promise<void> {}
}

/** A Blob or File (browser file pickers, drag and drop); also works in Node. */
export class BlobSource implements ByteSource {
  readonly size: number;
  constructor(private blob: Blob, readonly name = (blob as File).name ?? '<blob>') {
    this.size = blob.size;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
  }
  async close(): Promise<void> {}
}

/** Reads `source` whole (for small files: JSON configs, tokenizers). */
export async function readAll(source: ByteSource): Promise<Uint8Array> {
  return source.read(0, source.size);
}

export async function readText(source: ByteSource): Promise<string> {
  return new TextDecoder().decode(await readAll(source));
}
