// Errors of the Hub client, each naming the model id, the file and the cache folder involved.

export class HubError extends Error {
  constructor(message: string, readonly id: string, readonly file?: string) {
    super(message);
    this.name = 'HubError';
  }
}

/** The Hub answered 404 (or 401/403: gated or private) for a file the model needs. */
export class HubFileNotFoundError extends HubError {
  constructor(id: string, file: string, url: string, status: number) {
    const why = status === 404 ? 'not found' : status === 401 || status === 403 ? `refused (HTTP ${status}: private or gated model? set HF_TOKEN)` : `HTTP ${status}`;
    super(`${id}: ${file} ${why} at ${url}`, id, file);
    this.name = 'HubFileNotFoundError';
  }
}

/** Offline (by choice or because the network failed) and the file is not in the cache. */
export class HubOfflineError extends HubError {
  constructor(id: string, file: string, cachePath: string, why: string) {
    super(`${id}: ${file} is not in the cache (${cachePath}) and ${why}`, id, file);
    this.name = 'HubOfflineError';
  }
}

/** A download that arrived wrong (size or sha256); the file is not kept. */
export class HubIntegrityError extends HubError {
  constructor(id: string, file: string, detail: string) {
    super(`${id}: ${file} failed verification: ${detail}; the download was deleted`, id, file);
    this.name = 'HubIntegrityError';
  }
}

/** The connection broke mid-file; what arrived is kept in `<file>.part` for the next call to resume. */
export class HubInterruptedError extends HubError {
  constructor(id: string, file: string, partPath: string, got: number, total: number | null, cause: unknown) {
    super(`${id}: download of ${file} was interrupted after ${got}${total ? ` of ${total}` : ''} bytes (${(cause as Error)?.message ?? cause}); `
      + `kept in ${partPath}, run again to resume`, id, file);
    this.name = 'HubInterruptedError';
  }
}

/** fetch() itself failed (no route, DNS, refused): the network is unreachable. */
export class NetworkError extends Error {
  constructor(readonly url: string, cause: unknown) {
    super(`cannot reach ${url}: ${(cause as Error)?.message ?? cause}${(cause as { cause?: Error })?.cause ? ` (${(cause as { cause: Error }).cause.message})` : ''}`);
    this.name = 'NetworkError';
  }
}
