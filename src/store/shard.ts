// One shard of an activation store: a safetensors file written from byte chunks (one chunk per
// batch of contexts, per tensor), atomically (temporary name, then rename through the FileStore),
// hashing the bytes with SHA-256 as they go out. Read back with SafetensorsFile.
// Not for: deciding what goes in a shard (writer.ts) or reading rows (reader.ts).
import { encodeSafetensorsHeader } from '../formats/safetensors.js';
import { writeAtomic, type FileStore } from '../io/file-store.js';
import type { Hasher } from '../io/platform.js';
import { byteSize, type DType } from '../tensor/dtype.js';
import { numel } from '../tensor/shape.js';

/** What a store holds: activations in f32/f16/bf16 and token ids in i32. */
const FILE_DTYPE = new Set<DType>(['f32', 'f16', 'bf16', 'i32']);

export interface ShardTensor {
  name: string;
  dtype: DType;
  shape: number[];
  /** The tensor's bytes, in order (concatenated along the first axis). */
  chunks: Uint8Array[];
}

/** `shard-000042.safetensors` */
export function shardFileName(index: number): string {
  return `shard-${String(index).padStart(6, '0')}.safetensors`;
}

/** Shard files and the temporary files of shards and the manifest: what a store folder may hold besides manifest.json. */
export const STORE_FILE = /^(shard-\d{6,}\.safetensors|manifest\.json)(\.tmp-.+)?$/;

/** Writes the shard at `path`; returns its size and SHA-256 (lower-case hex). */
export async function writeShard(
  store: FileStore, path: string, tensors: ShardTensor[], hasher: Hasher, metadata: Record<string, string> = {},
): Promise<{ bytes: number; sha256: string }> {
  for (const t of tensors) {
    if (!FILE_DTYPE.has(t.dtype)) throw new TypeError(`shard ${path}: tensor '${t.name}' has dtype ${t.dtype}, which a store cannot hold`);
    const need = byteSize(t.dtype, numel(t.shape));
    const have = t.chunks.reduce((s, c) => s + c.byteLength, 0);
    if (have !== need) throw new Error(`shard ${path}: tensor '${t.name}' ${t.dtype}[${t.shape.join(', ')}] needs ${need} bytes, got ${have}`);
  }
  const { prefix, dataBytes } = encodeSafetensorsHeader(`shard ${path}`, tensors, metadata);
  await writeAtomic(store, path, async (sink) => {
    const put = async (b: Uint8Array) => {
      hasher.update(b);
      await sink.write(b);
    };
    await put(prefix);
    for (const t of tensors) for (const c of t.chunks) await put(c);
  });
  return { bytes: prefix.byteLength + dataBytes, sha256: await hasher.digest() };
}

/** SHA-256 of a whole file, read in pieces. */
export async function sha256File(store: FileStore, path: string, hasher: Hasher, pieceBytes = 1 << 22): Promise<string> {
  const src = await store.openRead(path);
  try {
    for (let o = 0; o < src.size; o += pieceBytes) hasher.update(await src.read(o, Math.min(pieceBytes, src.size - o)));
  } finally {
    await src.close();
  }
  return hasher.digest();
}
