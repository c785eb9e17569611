// The FileStore on Node's file system (fs/promises). Node only: chosen by src/io/platform.ts.
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ByteSource } from '../byte-source.js';
import type { FileStat, FileStore, WriteSink } from '../file-store.js';
import { NodeFileSource } from './file-source.js';

export class NodeFileStore implements FileStore {
  join(...parts: string[]): string {
    return join(...parts);
  }

  async stat(path: string): Promise<FileStat | null> {
    try {
      const s = await stat(path);
      return { size: s.size, isDirectory: s.isDirectory() };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async readBytes(path: string): Promise<Uint8Array> {
    return new Uint8Array(await readFile(path));
  }

  async openRead(path: string): Promise<ByteSource> {
    return NodeFileSource.open(path);
  }

  async openAppend(path: string): Promise<WriteSink> {
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(path, 'a');
    return {
      write: async (bytes) => {
        let done = 0;
        while (done < bytes.byteLength) done += (await fh.write(bytes, done, bytes.byteLength - done)).bytesWritten;
      },
      close: async () => {
        await fh.sync().catch(() => {});
        await fh.close();
      },
    };
  }

  async rename(from: string, to: string): Promise<void> {
    await mkdir(dirname(to), { recursive: true });
    await rename(from, to);
  }

  async remove(path: string): Promise<void> {
    await rm(path, { force: true });
  }

  async list(dir: string): Promise<string[]> {
    try {
      return await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }
}
