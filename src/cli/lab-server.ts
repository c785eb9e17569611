// The local server of `actlab lab`: serves the built page (dist/lab) and an API that runs the lab's
// views (src/lab/views.ts) on the engine in Node, for models on the user's disk. Node's own http
// module is enough here (a dozen routes, streamed answers); no framework is needed.
// Safety: binds 127.0.0.1 unless told otherwise; every /api call carries the per-run token
// (?token=); model paths, activation stores and SAEs must lie inside the folders the user passed
// (symlinks resolved); bodies and generation lengths are capped; bad requests get a 4xx with a
// message and the server keeps serving. One job runs at a time (loads included), queued jobs are answered in order, and a
// client that disconnects cancels its job, queued or running.
import '../backends/index.js';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { loadModel, type LoadedModel } from '../models/load.js';
import { LAB_ORGANISMS, labModel } from '../lab/model.js';
import { LabRequestError, LIMITS, parseBody, str, oneOf } from '../lab/request.js';
import { LabCancelledError, runView, VIEWS, type LabModel } from '../lab/views.js';
import { packageRoot } from './package-info.js';

export interface LabServerOptions {
  host?: string;
  port?: number;
  /** Folders whose models (and files) the API may read. */
  dirs?: string[];
  /** A model to load at start (a path inside `dirs`, or an organism name). */
  model?: string;
  /** The built page (default: dist/lab in the package). */
  staticDir?: string;
  backend?: string;
  /** The per-run token (default: 24 random bytes, hex). */
  token?: string;
  maxBodyBytes?: number;
  log?: (line: string) => void;
}

export interface LabServer {
  url: string;
  token: string;
  port: number;
  server: Server;
  /** Jobs queued or running. */
  pending(): number;
  /** Jobs finished and jobs cancelled (their client went away) since start. */
  stats(): { completed: number; cancelled: number };
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.wasm': 'application/wasm', '.safetensors': 'application/octet-stream',
};

/** Headers every answer carries: cross-origin isolation (the wasm backend's threads need it), no sniffing. */
const BASE_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' };

/** The folder of a named organism in the package. */
export const organismDir = (name: string): string => join(packageRoot(), 'models', 'organisms', name);

/** Request fields of the views that name folders on the server's disk. */
const PATH_FIELDS = ['store', 'sae'] as const;

/** Resolves `path` (absolute, or relative to the first folder) and refuses it unless it lies inside one of `roots`. */
export function insideRoots(path: string, roots: readonly string[]): string {
  if (path.includes('\0')) throw new LabRequestError('path: contains a NUL byte');
  const real = (p: string) => { try { return realpathSync(p); } catch { return null; } };
  const first = roots[0];
  const abs = isAbsolute(path) || !first ? resolve(path) : resolve(first, path);
  const r = real(abs);
  if (!r) throw new LabRequestError(`path: ${path} does not exist`, 404);
  for (const root of roots) {
    const rr = real(root);
    if (!rr) continue;
    const rel = relative(rr, r);
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) return r;
  }
  throw new LabRequestError(`path: ${path} is outside the folders this lab serves (${roots.join(', ') || 'none'})`, 403);
}

/** The llama2.c tokenizer beside a .bin model: tokenizer.bin, else the first tok*.bin (llama2.c names them tok512.bin ...). */
function llama2cTokenizerBeside(model: string): string | undefined {
  const dir = dirname(model);
  const names = readdirSync(dir);
  if (names.includes('tokenizer.bin')) return join(dir, 'tokenizer.bin');
  const t = names.filter((n) => /^tok.*\.bin$/.test(n)).sort()[0];
  return t ? join(dir, t) : undefined;
}

export interface LabModelEntry {
  path: string;
  /** The files that make up the model (name as the loader expects it, and path), for loading it in the page. */
  files: { name: string; path: string }[];
}

function modelEntry(p: string): LabModelEntry {
  if (statSync(p).isDirectory()) {
    const names = readdirSync(p).filter((n) => n.endsWith('.json') || n.endsWith('.safetensors') || n === 'tokenizer.bin' || n === 'tokenizer.gguf');
    return { path: p, files: names.sort().map((n) => ({ name: n, path: join(p, n) })) };
  }
  const tok = p.endsWith('.bin') ? llama2cTokenizerBeside(p) : undefined;
  return { path: p, files: [{ name: basename(p), path: p }, ...(tok ? [{ name: 'tokenizer.bin', path: tok }] : [])] };
}

/** Model files and folders under `roots` (one level down): HF folders, .gguf, llama2.c .bin. */
function listModels(roots: readonly string[]): LabModelEntry[] {
  const out: string[] = [];
  for (const root of roots) {
    let names: string[];
    try { names = readdirSync(root); } catch { continue; }
    for (const n of names.sort()) {
      const p = join(root, n);
      try {
        if (n.endsWith('.gguf') || (n.endsWith('.bin') && !n.startsWith('tok'))) { if (statSync(p).isFile()) out.push(p); } else if (existsSync(join(p, 'config.json'))) out.push(p);
      } catch { /* a dangling link: not a model */ }
    }
    if (existsSync(join(root, 'config.json'))) out.push(root);
  }
  return out.slice(0, 200).map(modelEntry);
}

class JobQueue {
  private tail: Promise<unknown> = Promise.resolve();
  count = 0;

  run<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    this.count++;
    const p = this.tail.then(async () => {
      if (signal.aborted) throw new LabCancelledError();
      return fn();
    }).finally(() => { this.count--; });
    this.tail = p.catch(() => undefined);
    return p;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end(`${JSON.stringify({ type: 'error', status, ...(body as object) })}\n`);
    return;
  }
  res.writeHead(status, { ...BASE_HEADERS, 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

/** Reads a body up to `max` bytes; more is a 413. */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((ok, fail) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) {
      fail(new LabRequestError(`the request body is ${declared} bytes; at most ${max}`, 413));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) {
        fail(new LabRequestError(`the request body is over ${max} bytes`, 413));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
    req.on('error', fail);
  });
}

function tokenOk(given: string | null, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startLabServer(o: LabServerOptions = {}): Promise<LabServer> {
  const host = o.host ?? '127.0.0.1';
  const token = o.token ?? randomBytes(24).toString('hex');
  const staticDir = o.staticDir ?? join(packageRoot(), 'dist', 'lab');
  const roots = (o.dirs ?? []).map((d) => resolve(d));
  const maxBody = o.maxBodyBytes ?? LIMITS.bodyBytes;
  const backend = o.backend ?? 'js';
  const log = o.log ?? (() => {});
  const queue = new JobQueue();
  const stats = { completed: 0, cancelled: 0 };
  let current: { lab: LabModel; loaded: LoadedModel; source: string } | null = null;

  async function load(spec: { path?: unknown; organism?: unknown }): Promise<Record<string, unknown>> {
    let path: string;
    let name: string;
    if (spec.organism !== undefined) {
      name = oneOf(spec.organism, 'organism', LAB_ORGANISMS);
      path = organismDir(name);
    } else {
      path = insideRoots(str(spec.path, 'path', 4096), roots);
      const root = roots.find((r) => { try { return path.startsWith(realpathSync(r)); } catch { return false; } });
      name = (root ? relative(realpathSync(root), path) : '') || path;
    }
    let loaded: LoadedModel;
    try {
      const tokenizerPath = path.endsWith('.bin') && statSync(path).isFile() ? llama2cTokenizerBeside(path) : undefined;
      loaded = await loadModel(path, { backend, tokenizerPath });
    } catch (e) {
      throw new LabRequestError(`cannot load ${name}: ${(e as Error).message}`, 422);
    }
    current?.loaded.model.dispose();
    current = { lab: labModel(loaded, name), loaded, source: path };
    log(`loaded ${name} (${loaded.format}, ${loaded.model.dims.nLayers} layers) on ${backend}`);
    return runView(current.lab, 'info', {});
  }

  function serveStatic(res: ServerResponse, urlPath: string): void {
    const rel = decodeURIComponent(urlPath === '/' ? '/index.html' : urlPath).replace(/^\/+/, '');
    const file = resolve(staticDir, rel);
    if (!file.startsWith(resolve(staticDir) + sep) || !existsSync(file) || !statSync(file).isFile()) {
      if (!existsSync(join(staticDir, 'index.html'))) {
        sendJson(res, 503, { error: `the lab page is not built (${staticDir} is missing); run \`npm run build:lab\` in the actlab folder` });
      } else sendJson(res, 404, { error: `no such file: ${urlPath}` });
      return;
    }
    res.writeHead(200, { ...BASE_HEADERS, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': statSync(file).size });
    createReadStream(file).pipe(res);
  }

  async function api(req: IncomingMessage, res: ServerResponse, url: URL, signal: AbortSignal): Promise<void> {
    const route = url.pathname.slice('/api/'.length);
    const method = req.method ?? 'GET';
    const wantPost = route === 'load' || route.startsWith('view/');
    if (wantPost && method !== 'POST') throw new LabRequestError(`${url.pathname} takes POST, not ${method}`, 405);
    if (!wantPost && method !== 'GET') throw new LabRequestError(`${url.pathname} takes GET, not ${method}`, 405);
    if (route === 'models') {
      sendJson(res, 200, { dirs: roots, models: listModels(roots), organisms: LAB_ORGANISMS, loaded: current?.lab.name ?? null, backend });
      return;
    }
    if (route === 'file') {
      // The bytes of a model file inside the served folders, so the page can run the same model in the tab.
      const p = insideRoots(str(url.searchParams.get('path') ?? undefined, 'path', 4096), roots);
      if (!statSync(p).isFile()) throw new LabRequestError(`path: ${p} is a folder, not a file`);
      res.writeHead(200, { ...BASE_HEADERS, 'Content-Type': 'application/octet-stream', 'Content-Length': statSync(p).size });
      createReadStream(p).pipe(res);
      return;
    }
    if (route === 'load') {
      const body = parseBody(await readBody(req, maxBody));
      const info = await queue.run(signal, () => load(body));
      sendJson(res, 200, info);
      return;
    }
    if (route.startsWith('view/')) {
      const view = oneOf(route.slice(5), 'view', VIEWS);
      const body = parseBody(await readBody(req, maxBody));
      // Folders a view reads (an activation store, an SAE) must lie inside the served folders.
      if (body && typeof body === 'object' && !Array.isArray(body)) {
        const b = body as Record<string, unknown>;
        for (const k of PATH_FIELDS) if (b[k] !== undefined) b[k] = insideRoots(str(b[k], k, 4096), roots);
      }
      await queue.run(signal, async () => {
        if (!current) throw new LabRequestError('no model is loaded; POST /api/load first', 409);
        // The answer is NDJSON: progress and token events as they happen, then the result.
        const write = (ev: Record<string, unknown>) => {
          if (res.writableEnded || signal.aborted) return;
          if (!res.headersSent) res.writeHead(200, { ...BASE_HEADERS, 'Content-Type': 'application/x-ndjson' });
          res.write(`${JSON.stringify(ev)}\n`);
        };
        const value = await runView(current.lab, view, body, {
          signal, emit: write, progress: (done, total, what) => write({ type: 'progress', done, total, what }),
        });
        write({ type: 'result', value });
        res.end();
        stats.completed++;
      });
      return;
    }
    throw new LabRequestError(`no API route ${url.pathname}`, 404);
  }

  const server = createServer((req, res) => {
    const ac = new AbortController();
    res.on('close', () => { if (!res.writableFinished) ac.abort(); });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendJson(res, 400, { error: 'malformed URL' });
      return;
    }
    if (!url.pathname.startsWith('/api/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD') { sendJson(res, 405, { error: `${req.method} is not allowed here` }); return; }
      try {
        serveStatic(res, url.pathname);
      } catch (e) {
        sendJson(res, 400, { error: `bad path ${url.pathname}: ${(e as Error).message}` });
      }
      return;
    }
    const given = url.searchParams.get('token');
    if (!given) { req.resume(); sendJson(res, 401, { error: 'missing token: every API call needs ?token= (printed by `actlab lab`)' }); return; }
    if (!tokenOk(given, token)) { req.resume(); sendJson(res, 403, { error: 'wrong token: each run of `actlab lab` has its own; open the URL it printed' }); return; }
    api(req, res, url, ac.signal).catch((e: unknown) => {
      if (e instanceof LabCancelledError || ac.signal.aborted) {
        stats.cancelled++;
        if (!res.writableEnded) res.destroy();
        return;
      }
      if (e instanceof LabRequestError) { sendJson(res, e.status, { error: e.message }); return; }
      const err = e as Error;
      const known = err && ['InterventionError', 'RangeError', 'ShapeError'].includes(err.name);
      if (!known) log(`error in ${url.pathname}: ${err?.stack ?? String(e)}`);
      sendJson(res, known ? 400 : 500, { error: err?.message ?? String(e) });
    });
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 0;
  const wanted = o.port ?? 7860;
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => fail(
      e.code === 'EADDRINUSE' ? new Error(`--port ${wanted}: ${host}:${wanted} is already in use (another \`actlab lab\`?); pass another --port, or --port 0 for a free one`)
        : e.code === 'EADDRNOTAVAIL' ? new Error(`--host ${host}: not an address of this machine`)
          : e.code === 'EACCES' ? new Error(`--port ${wanted}: not allowed to listen there (ports below 1024 need privileges)`)
            : e));
    server.listen(wanted, host, () => { server.removeAllListeners('error'); ok(); });
  });
  const port = (server.address() as { port: number }).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  if (o.model !== undefined) {
    const isOrganism = (LAB_ORGANISMS as readonly string[]).includes(o.model);
    try {
      await queue.run(new AbortController().signal, () => load(isOrganism ? { organism: o.model } : { path: o.model }));
    } catch (e) {
      // Stop listening, so that the command ends with the error instead of serving nothing.
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      const msg = (e as Error).message ?? String(e);
      throw new Error(msg.includes(o.model) ? msg : `--model ${o.model}: ${msg}`);
    }
  }
  return {
    url: `http://${shownHost}:${port}/?token=${token}`,
    token, port, server,
    pending: () => queue.count,
    stats: () => ({ ...stats }),
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => { current?.loaded.model.dispose(); current = null; ok(); });
    }),
  };
}
