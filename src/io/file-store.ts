// FileStore: the few file operations the core needs for writing (safetensors files, the Hub cache),
// behind an interface so the same core runs on Node's disk or in a browser's memory.
// Every finished file is written under a temporary name and renamed into place (`writeAtomic`), so a
// crash or an error never leaves a partial file under the real name.
// Not for: random-access reads of big files (open a ByteSource with `openRead`).
import type { ByteSource } from './byte-source.js';

export interface WriteSink {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface FileStat {
  size: number;
  isDirectory: boolean;
}

export interface FileStore {
  /** Joins path parts with '/' (Node's store also accepts its platform separator). */
  join(...parts: string[]): string;
  /** null when nothing is at `path`. */
  stat(path: string): Promise<FileStat | null>;
  readBytes(path: string): Promise<Uint8Array>;
  openRead(path: string): Promise<ByteSource>;
  /** Opens `path` for appending, creating it and its parent folders. */
  openAppend(path: string): Promise<WriteSink>;
  /** Moves `from` to `to`, replacing `to` (atomic on one file system). */
  rename(from: string, to: string): Promise<void>;
  /** Deletes a file; no error when it does not exist. */
  remove(path: string): Promise<void>;
  /** Names (not paths) in a folder; [] when it does not exist. */
  list(dir: string): Promise<string[]>;
}

let tmpCounter = 0;

/**
 * Writes `path` through `fill`: the bytes go to a temporary name next to it, which is renamed to
 * `path` only when `fill` resolved and the file was closed. On any error the temporary file is
 * deleted and the error rethrown; whatever was at `path` before is untouched.
 */
export async function writeAtomic(store: FileStore, path: string, fill: (sink: WriteSink) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${Date.now().toString(36)}-${(tmpCounter++).toString(36)}`;
  let sink: WriteSink | null = null;
  try {
    sink = await store.openAppend(tmp);
    await fill(sink);
    await sink.close();
    sink = null;
    await store.rename(tmp, path);
  } catch (e) {
    if (sink) await sink.close().catch(() => {});
    await store.remove(tmp).catch(() => {});
    throw e;
  }
}

export async function writeBytesAtomic(store: FileStore, path: string, bytes: Uint8Array): Promise<void> {
  await writeAtomic(store, path, (sink) => sink.write(bytes));
}

export async function readJson(store: FileStore, path: string): Promise<unknown> {
  const text = new TextDecoder().decode(await store.readBytes(path));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}
