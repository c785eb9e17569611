// A ByteSource over a local file, read with positioned reads on an fs/promises FileHandle.
// Node only: chosen by src/io/platform.ts, never imported by the core.
import { open, type FileHandle } from 'node:fs/promises';
import { checkRange, type ByteSource } from '../byte-source.js';

export class NodeFileSource implements ByteSource {
  private constructor(readonly name: string, readonly size: number, private fh: FileHandle | null) {}

  static async open(path: string): Promise<NodeFileSource> {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new Error(`${path}: is a folder, not a file`);
      return new NodeFileSource(path, st.size, fh);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    if (!this.fh) throw new Error(`${this.name}: read after close`);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(out, done, length - done, offset + done);
      if (bytesRead === 0) throw new Error(`${this.name}: file ended at ${offset + done} while reading ${length} bytes at ${offset}`);
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}
