// Reading a checkpoint's config.json: typed accessors whose errors name the field and the file.

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function opt<T>(v: T | null | undefined): T | undefined {
  return v === null ? undefined : v;
}

export function num(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${where}: expected a number, got ${JSON.stringify(v)}`);
  return v;
}

export function int(v: unknown, where: string): number {
  const n = num(v, where);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${where}: expected a non-negative integer, got ${n}`);
  return n;
}

/** The first of `keys` present in `cfg` (checkpoints of one family name a field differently). */
export function pick(cfg: Record<string, unknown>, keys: string[]): unknown {
  for (const k of keys) if (cfg[k] !== undefined && cfg[k] !== null) return cfg[k];
  return undefined;
}

export function needInt(cfg: Record<string, unknown>, keys: string[], where: string): number {
  const v = pick(cfg, keys);
  if (v === undefined) throw new ConfigError(`${where}: config lacks ${keys.join(' / ')}`);
  return int(v, `${where}.${keys[0]}`);
}
