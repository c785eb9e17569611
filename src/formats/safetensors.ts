// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__},
// then the raw tensor bytes. Reading validates the header and takes one tensor at a time from a
// ByteSource; writing goes through a FileStore under a temporary name that is renamed at the end.
// Hand-written because the official library is Rust/Python only and the format is 30 lines of spec.
import type { Backend } from '../tensor/backend.js';
import type { ByteSource } from '../io/byte-source.js';
import { writeAtomic, type FileStore } from '../io/file-store.js';
import { byteSize, type DType } from '../tensor/dtype.js';
import { numel } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { bytesToTensor, missingTensor, type LoadOptions, type WeightInfo, type WeightSource } from './weight-source.js';

/** File dtype -> bytes per element and the dtype actlab loads it as (I64 narrows to i32, BOOL to u8). */
const FILE_DTYPES: Record<string, { size: number; dtype: DType }> = {
  F32: { size: 4, dtype: 'f32' },
  F16: { size: 2, dtype: 'f16' },
  BF16: { size: 2, dtype: 'bf16' },
  I32: { size: 4, dtype: 'i32' },
  I8: { size: 1, dtype: 'i8' },
  U8: { size: 1, dtype: 'u8' },
  I64: { size: 8, dtype: 'i32' },
  BOOL: { size: 1, dtype: 'u8' },
};

const TO_FILE_DTYPE: Partial<Record<DType, string>> = { f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32', i8: 'I8', u8: 'U8' };

/** Header larger than this is refused (the reference implementation's limit). */
const MAX_HEADER = 100 * 1024 * 1024;

export interface SafetensorsEntry {
  name: string;
  fileDType: string;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export class SafetensorsError extends Error {
  constructor(file: string, detail: string) {
    super(`${file}: invalid safetensors file: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

/** Validates a parsed header against the file size; returns the entries sorted by offset. */
export function parseSafetensorsHeader(
  file: string, header: unknown, dataStart: number, fileSize: number,
): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  const bad = (detail: string): never => { throw new SafetensorsError(file, detail); };
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('the header is not a JSON object');
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  const dataSize = fileSize - dataStart;
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('__metadata__ is not an object');
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') bad(`__metadata__.${k} is not a string`);
        metadata[k] = s as string;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const where = `tensor '${name}'`;
    if (typeof e !== 'object' || e === null) bad(`${where} is not an object`);
    if (typeof e.dtype !== 'string' || !FILE_DTYPES[e.dtype]) {
      bad(`${where} has dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(FILE_DTYPES).join(', ')})`);
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`${where} has shape ${JSON.stringify(e.shape)} (expected a list of non-negative integers)`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0) || off[0] > off[1]) {
      bad(`${where} has data_offsets ${JSON.stringify(off)} (expected [begin, end] with 0 <= begin <= end)`);
    }
    const [b, en] = off as [number, number];
    if (en > dataSize) bad(`${where} ends at data byte ${en}, past the end of the data (${dataSize} bytes)`);
    const shape = e.shape as number[];
    const need = numel(shape) * FILE_DTYPES[e.dtype as string]!.size;
    if (en - b !== need) bad(`${where} (${e.dtype}[${shape.join(', ')}]) needs ${need} bytes but data_offsets give ${en - b}`);
    entries.push({ name, fileDType: e.dtype as string, shape, begin: dataStart + b, end: dataStart + en });
  }
  entries.sort((x, y) => x.begin - y.begin);
  for (let i = 1; i < entries.length; i++) {
    const p = entries[i - 1]!;
    const c = entries[i]!;
    if (c.begin < p.end) bad(`tensors '${p.name}' and '${c.name}' overlap (bytes ${c.begin}..${p.end})`);
  }
  return { entries, metadata };
}

/** An open safetensors file: its header in memory, its tensors read on demand. */
export class SafetensorsFile implements WeightSource {
  private byName: Map<string, SafetensorsEntry>;

  private constructor(
    readonly source: ByteSource,
    readonly entries: SafetensorsEntry[],
    readonly metadata: Record<string, string>,
  ) {
    this.byName = new Map(entries.map((e) => [e.name, e]));
  }

  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const file = source.name;
    if (source.size < 8) throw new SafetensorsError(file, `the file has ${source.size} bytes, fewer than the 8-byte header length`);
    const lenBytes = await source.read(0, 8);
    const len = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
    if (len < 2 || len > MAX_HEADER || 8 + len > source.size) {
      throw new SafetensorsError(file, `header length ${len} is not sane (file has ${source.size} bytes; limit ${MAX_HEADER})`);
    }
    const text = new TextDecoder('utf-8', { fatal: false }).decode(await source.read(8, len));
    let header: unknown;
    try {
      header = JSON.parse(text);
    } catch (e) {
      throw new SafetensorsError(file, `the header is not valid JSON (${(e as Error).message})`);
    }
    const { entries, metadata } = parseSafetensorsHeader(file, header, 8 + len, source.size);
    return new SafetensorsFile(source, entries, metadata);
  }

  names(): string[] {
    return this.entries.map((e) => e.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): SafetensorsEntry {
    return this.byName.get(name) ?? missingTensor(this.source.name, name, this.names());
  }

  info(name: string): WeightInfo {
    const e = this.entry(name);
    return { dtype: FILE_DTYPES[e.fileDType]!.dtype, storedAs: e.fileDType, shape: [...e.shape], bytes: e.end - e.begin };
  }

  /** The tensor's bytes in its load dtype (I64 narrowed to i32 with a range check). */
  async readBytes(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    const raw = await this.source.read(e.begin, e.end - e.begin);
    return e.fileDType === 'I64' ? narrowI64(raw, `${this.source.name}: tensor '${name}'`) : raw;
  }

  async load(name: string, backend: Backend, opts: LoadOptions = {}): Promise<Tensor> {
    const i = this.info(name);
    return bytesToTensor(await this.readBytes(name), i.shape, i.dtype, backend, opts.dtype);
  }

  totalBytes(): number {
    return this.entries.reduce((s, e) => s + e.end - e.begin, 0);
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

function narrowI64(raw: Uint8Array, where: string): Uint8Array {
  const n = raw.byteLength / 8;
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = dv.getBigInt64(i * 8, true);
    if (v < -2147483648n || v > 2147483647n) throw new RangeError(`${where}: I64 value ${v} at index ${i} does not fit in i32`);
    out[i] = Number(v);
  }
  return new Uint8Array(out.buffer);
}

export interface WriteSafetensorsOptions {
  metadata?: Record<string, string>;
}

/**
 * The bytes that open a safetensors file for tensors of these names, dtypes and shapes, stored
 * back to back in the order given: the 8-byte header length and the JSON header, padded with
 * spaces so the data starts 8-byte aligned (as the reference writer does). `dataBytes` is the
 * length of the data that must follow.
 */
export function encodeSafetensorsHeader(
  where: string, entries: readonly { name: string; dtype: DType; shape: readonly number[] }[], metadata?: Record<string, string>,
): { prefix: Uint8Array; dataBytes: number } {
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`${where}: metadata '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const { name, dtype, shape } of entries) {
    const fileDType = TO_FILE_DTYPE[dtype];
    if (!fileDType) throw new TypeError(`${where}: tensor '${name}' has dtype ${dtype}, which safetensors cannot store`);
    if (name === '__metadata__' || name in header) throw new TypeError(`${where}: duplicate or reserved tensor name '${name}'`);
    const bytes = byteSize(dtype, numel(shape));
    header[name] = { dtype: fileDType, shape: [...shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const prefix = new Uint8Array(8 + padded).fill(0x20, 8);
  prefix.set(json, 8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded), true);
  return { prefix, dataBytes: offset };
}

/**
 * Writes `tensors` (in the order given) to `path` in `store`, atomically: a temporary file is
 * renamed to `path` only once every tensor was written. Each tensor is read from its backend in
 * turn, so only one tensor's bytes are in JavaScript memory at a time.
 */
export async function writeSafetensors(
  store: FileStore, path: string, tensors: Record<string, Tensor> | ReadonlyArray<readonly [string, Tensor]>,
  opts: WriteSafetensorsOptions = {},
): Promise<void> {
  const list: ReadonlyArray<readonly [string, Tensor]> = Array.isArray(tensors)
    ? tensors as ReadonlyArray<readonly [string, Tensor]> : Object.entries(tensors);
  const { prefix } = encodeSafetensorsHeader(`writeSafetensors(${path})`, list.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })), opts.metadata);
  await writeAtomic(store, path, async (sink) => {
    await sink.write(prefix);
    for (const [, t] of list) await sink.write(await t.bytes());
  });
}
