// Checking a lab request's fields: each reader names the field and what was wrong, so the server
// answers 400 with that message and the page shows it. The limits cap what one request may ask
// for (prompt length, generated tokens, contrast-set size).
export class LabRequestError extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
    this.name = 'LabRequestError';
  }
}

export const LIMITS = {
  /** Tokens in any one prompt. */
  promptTokens: 512,
  /** New tokens per generation. */
  maxNewTokens: 256,
  /** Texts per side of a contrast set. */
  setItems: 64,
  /** Attention values (layers × heads × tokens²) one attention view sends. */
  attentionValues: 4_000_000,
  /** Bytes of a request body. */
  bodyBytes: 64 * 1024,
};

export function str(v: unknown, what: string, max = 16_384): string {
  if (typeof v !== 'string' || v === '') throw new LabRequestError(`${what}: expected a non-empty string, got ${JSON.stringify(v)?.slice(0, 40) ?? 'nothing'}`);
  if (v.length > max) throw new LabRequestError(`${what}: ${v.length} characters; at most ${max}`);
  return v;
}

export function num(v: unknown, what: string, min: number, max: number): number {
  const x = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new LabRequestError(`${what}: expected a number, got ${JSON.stringify(v)?.slice(0, 40) ?? 'nothing'}`);
  if (x < min || x > max) throw new LabRequestError(`${what}: ${x} is out of range [${min}, ${max}]`);
  return x;
}

export function int(v: unknown, what: string, min: number, max: number): number {
  const x = num(v, what, -Infinity, Infinity);
  if (!Number.isInteger(x)) throw new LabRequestError(`${what}: expected an integer, got ${x}`);
  if (x < min || x > max) throw new LabRequestError(`${what}: ${x} is out of range [${min}, ${max}]`);
  return x;
}

export function oneOf<T extends string>(v: unknown, what: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw new LabRequestError(`${what}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)?.slice(0, 40) ?? 'nothing'}`);
  return v as T;
}

export function strList(v: unknown, what: string, max: number): string[] {
  const list = typeof v === 'string' ? v.split('\n').map((s) => s.trim()).filter((s) => s !== '') : v;
  if (!Array.isArray(list) || list.length === 0) throw new LabRequestError(`${what}: expected a non-empty list of strings (or lines of text)`);
  if (list.length > max) throw new LabRequestError(`${what}: ${list.length} items; at most ${max}`);
  return list.map((s, i) => str(s, `${what}[${i}]`));
}

/** Parses a JSON request body, naming the problem. */
export function parseBody(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = text.trim() === '' ? {} : JSON.parse(text);
  } catch (e) {
    throw new LabRequestError(`the request body is not valid JSON (${(e as Error).message})`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new LabRequestError('the request body must be a JSON object');
  return v as Record<string, unknown>;
}
