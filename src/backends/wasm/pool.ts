// A thread pool for wasm kernels: N workers plus the calling thread, all instantiating the same
// kernel modules over the same shared memory. A job is dispatched through a small control block in
// that memory (generation counter + arguments, Atomics.notify), not through postMessage; each task
// is a call `kernel(...args, task, nTasks)`. The caller runs task 0; worker i claims task i + 1
// when it wakes; then the caller claims and runs every task no worker has claimed yet (so a
// worker that is slow to be scheduled costs no waiting), and waits only for claimed tasks.
// A kernel that throws in a worker, or a worker that exits, turns into an Error that names the
// worker and the kernel; the caller never waits forever on a dead thread.
// Not for: choosing how to split work (kernels do that from task/nTasks).
import type { WasmMemory } from './memory.js';
import { spawnWorker, type WorkerEnv, type WorkerHandle } from './workers.js';

export interface KernelModule {
  readonly name: string;
  readonly module: WebAssembly.Module;
  readonly exportNames: readonly string[];
}

// control block, i32 indices (GEN and DONE on their own cache lines)
const GEN = 0;
const DONE = 16;
const CMD = 32;
const KERNEL = 33;
const NTASKS = 34;
const NARGS = 35;
const FAULT_WORKER = 36;
const FAULT_KIND = 37;
/** A generation at which idle workers stop spinning and sleep at once (ThreadPool.park). */
const PARK = 38;
const ARGS = 40;
const MAX_ARGS = 24;
/** claim[t] = generation of the last job whose task t some thread took (CAS from older values) */
const CLAIMS = 64;
const ctrlInts = (threads: number) => CLAIMS + Math.ceil(threads / 16) * 16;

// per-worker status block, i32 indices
const ST_STATE = 0; // STARTING, READY, INIT_FAILED, EXITED
const ST_ERROR = 1; // the last job threw
const ST_CODE = 2; // exit code
const ST_MSG_LEN = 3;
const ST_CRASHED = 4; // the message is why the thread died
const STATUS_INTS = 16;
const MSG_BYTES = 1024;

const STARTING = 0;
const READY = 1;
const INIT_FAILED = 2;
const EXITED = 3;

const CMD_RUN = 1;
const CMD_QUIT = 2;

const FAULT_THROW = 1;
const FAULT_EXIT = 2;

export interface PoolData {
  memory: WebAssembly.Memory;
  modules: { module: WebAssembly.Module; exportNames: readonly string[] }[];
  ctrlPtr: number;
  ctrlInts: number;
  statusPtr: number;
  msgPtr: number;
  index: number;
  spinMs: number;
}

/**
 * The body of every worker thread. Self-contained: it is shipped as source text.
 * Waits on GEN (spinning briefly first), runs its task, reports through DONE.
 */
function workerMain(env: WorkerEnv): void {
  const d = env.data as PoolData;
  const ctrl = new Int32Array(d.memory.buffer, d.ctrlPtr, d.ctrlInts);
  const st = new Int32Array(d.memory.buffer, d.statusPtr + d.index * 64, 16);
  const report = (e: unknown): void => {
    const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    const bytes = new TextEncoder().encode(text).subarray(0, 1024);
    new Uint8Array(d.memory.buffer, d.msgPtr + d.index * 1024, 1024).set(bytes);
    Atomics.store(st, 3, bytes.length);
  };
  env.onExit((code) => {
    Atomics.store(st, 2, code);
    Atomics.store(st, 0, 3);
    Atomics.notify(ctrl, 16);
  });
  let fns: ((...args: number[]) => void)[];
  try {
    fns = [];
    for (const m of d.modules) {
      const inst = new WebAssembly.Instance(m.module, { env: { memory: d.memory } });
      for (const name of m.exportNames) fns.push(inst.exports[name] as (...args: number[]) => void);
    }
  } catch (e) {
    report(e);
    Atomics.store(st, 0, 2);
    Atomics.notify(st, 0);
    return;
  }
  // The generation is read before READY is reported: no job is published until every worker is
  // ready, so a worker descheduled right after READY cannot mistake the first job for an old one
  // (the caller takes over unclaimed tasks, but not an injected fault's, which then waited forever).
  const seen0 = Atomics.load(ctrl, 0);
  Atomics.store(st, 0, 1);
  Atomics.notify(st, 0);
  try {
    jobLoop();
  } catch (e) {
    report(e); // the thread dies; the caller reads this next to the exit code
    Atomics.store(st, 4, 1);
    throw e;
  }
  function jobLoop(): void {
  let seen = seen0;
  const task = d.index + 1;
  const args: number[] = [];
  for (;;) {
    let gen = Atomics.load(ctrl, 0);
    if (gen === seen) {
      const until = performance.now() + d.spinMs;
      for (let i = 1; gen === seen; i++) {
        gen = Atomics.load(ctrl, 0);
        // (38: PARK, the generation at which the caller asked idle workers to sleep)
        if ((i & 1023) === 0 && (performance.now() > until || Atomics.load(ctrl, 38) === seen)) break;
      }
      if (gen === seen) {
        Atomics.wait(ctrl, 0, seen);
        continue;
      }
    }
    seen = gen;
    if (ctrl[32] === 2) return; // CMD_QUIT
    // claim this worker's task of job `gen`; if the caller already took it, or the job is over, skip
    const c = Atomics.load(ctrl, 64 + task);
    if (((c - gen) | 0) >= 0 || Atomics.compareExchange(ctrl, 64 + task, c, gen) !== c) continue;
    // the caller marks tasks outside a job as taken before publishing it, so from here on the job
    // (its arguments included) lasts until this task reports done
    const nTasks = ctrl[34]!;
    try {
      if (ctrl[36] === d.index) {
        if (ctrl[37] === 2) env.exit(13);
        if (ctrl[37] === 1) throw new Error('fault injected by a test');
      }
      args.length = 0;
      for (let i = 0; i < ctrl[35]!; i++) args.push(ctrl[40 + i]!);
      args.push(task, nTasks);
      fns[ctrl[33]!]!(...args);
    } catch (e) {
      report(e);
      Atomics.store(st, 1, 1);
    }
    Atomics.add(ctrl, 16, 1);
    Atomics.notify(ctrl, 16);
  }
  }
}

export class ThreadPool {
  /** Threads taking part in a job: the workers plus the calling thread. */
  readonly threads: number;
  private readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  private readonly fns: ((...args: number[]) => void)[] = [];
  private broken: string | null = null;
  private disposed = false;
  private fault: { worker: number; kind: number } | null = null;

  private constructor(
    private readonly mem: WasmMemory,
    modules: readonly KernelModule[],
    private readonly workers: WorkerHandle[],
    private readonly ctrlPtr: number,
    private readonly statusPtr: number,
    private readonly msgPtr: number,
    private readonly spinMs: number,
  ) {
    this.threads = workers.length + 1;
    for (const m of modules) {
      const inst = new WebAssembly.Instance(m.module, { env: { memory: mem.memory } });
      for (const name of m.exportNames) {
        this.ids.set(name, this.fns.length);
        this.names.push(name);
        this.fns.push(inst.exports[name] as (...args: number[]) => void);
      }
    }
    workers.forEach((w, i) => w.onExit((code, error) => {
      if (!this.disposed && !this.broken) this.broken = `worker ${i} exited with code ${code}${error ? ` (${error.message})` : ''}`;
    }));
  }

  /** Starts `threads - 1` workers and waits until each has instantiated every module. */
  static async create(mem: WasmMemory, modules: readonly KernelModule[], threads: number, spinMs = 1): Promise<ThreadPool> {
    const nWorkers = Math.max(0, Math.floor(threads) - 1);
    const ctrlPtr = mem.alloc(ctrlInts(nWorkers + 1) * 4);
    const statusPtr = mem.alloc(Math.max(1, nWorkers) * STATUS_INTS * 4);
    const msgPtr = mem.alloc(Math.max(1, nWorkers) * MSG_BYTES);
    mem.bytes().fill(0, ctrlPtr, ctrlPtr + ctrlInts(nWorkers + 1) * 4);
    mem.bytes().fill(0, statusPtr, statusPtr + Math.max(1, nWorkers) * STATUS_INTS * 4);
    const source = `const workerMain = ${workerMain.toString()};`;
    const workers: WorkerHandle[] = [];
    const early = new Map<number, string>();
    try {
      for (let i = 0; i < nWorkers; i++) {
        const data: PoolData = {
          memory: mem.memory,
          modules: modules.map((m) => ({ module: m.module, exportNames: [...m.exportNames] })),
          ctrlPtr, ctrlInts: ctrlInts(nWorkers + 1), statusPtr, msgPtr, index: i, spinMs,
        };
        const w = await spawnWorker(source, data);
        w.onExit((code, error) => early.set(i, `exited with code ${code}${error ? ` (${error.message})` : ''}`));
        workers.push(w);
      }
      const status = () => new Int32Array(mem.memory.buffer, statusPtr, Math.max(1, nWorkers) * STATUS_INTS);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const st = status();
        let ready = 0;
        for (let i = 0; i < nWorkers; i++) {
          const s = Atomics.load(st, i * STATUS_INTS + ST_STATE);
          if (s === INIT_FAILED) throw new Error(`wasm pool: worker ${i} failed to start: ${readMsg(mem, msgPtr, statusPtr, i)}`);
          if (s === EXITED || early.has(i)) throw new Error(`wasm pool: worker ${i} ${early.get(i) ?? 'exited'} while starting`);
          if (s === READY) ready++;
        }
        if (ready === nWorkers) break;
        if (Date.now() > deadline) throw new Error(`wasm pool: only ${ready} of ${nWorkers} workers started within 30 s`);
        await new Promise((r) => setTimeout(r, 1));
      }
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    return new ThreadPool(mem, modules, workers, ctrlPtr, statusPtr, msgPtr, spinMs);
  }

  /** Names of every kernel the pool can run. */
  kernels(): readonly string[] {
    return this.names;
  }

  /**
   * Runs `kernel(...args, task, nTasks)` on nTasks threads (the caller is task 0) and returns when
   * all are done. Throws an Error naming the worker and the kernel if any thread failed.
   */
  run(kernel: string, args: readonly number[], nTasks = this.threads): void {
    if (this.disposed) throw new Error(`wasm pool: run '${kernel}' after dispose`);
    if (this.broken) throw new Error(`wasm pool: cannot run kernel '${kernel}': ${this.broken}`);
    const id = this.ids.get(kernel);
    if (id === undefined) throw new Error(`wasm pool: unknown kernel '${kernel}' (have ${this.names.join(', ')})`);
    if (args.length > MAX_ARGS) throw new Error(`wasm pool: kernel '${kernel}' called with ${args.length} args (max ${MAX_ARGS})`);
    const n = Math.max(1, Math.min(this.threads, Math.floor(nTasks)));
    const fn = this.fns[id]!;
    if (n === 1 && !this.fault) {
      try {
        callTask(fn, args, 0, 1);
      } catch (e) {
        throw new Error(`wasm pool: kernel '${kernel}' failed on the calling thread: ${errText(e)}`, { cause: e });
      }
      return;
    }
    const dead = this.deadWorker();
    if (dead !== null) {
      this.broken = dead;
      throw new Error(`wasm pool: cannot run kernel '${kernel}': ${dead}`);
    }
    const ctrl = this.ctrl();
    Atomics.store(ctrl, DONE, 0);
    ctrl[CMD] = CMD_RUN;
    ctrl[KERNEL] = id;
    ctrl[NTASKS] = n;
    ctrl[NARGS] = args.length;
    ctrl[FAULT_WORKER] = this.fault ? this.fault.worker : -1;
    ctrl[FAULT_KIND] = this.fault ? this.fault.kind : 0;
    const faulty = this.fault ? this.fault.worker + 1 : -1;
    this.fault = null;
    for (let i = 0; i < args.length; i++) ctrl[ARGS + i] = args[i]!;
    const gen = (Atomics.load(ctrl, GEN) + 1) | 0;
    // task 0 and tasks outside this job are taken before the job is published, so a successful
    // claim by a worker means its task belongs to a job that cannot end before the task does
    Atomics.store(ctrl, CLAIMS, gen);
    for (let t = n; t < this.threads; t++) Atomics.store(ctrl, CLAIMS + t, gen);
    Atomics.store(ctrl, GEN, gen);
    Atomics.notify(ctrl, GEN);
    const failures: string[] = [];
    const runHere = (task: number) => {
      try {
        callTask(fn, args, task, n);
      } catch (e) {
        failures.push(`calling thread (task ${task}): ${errText(e)}`);
      }
      Atomics.add(ctrl, DONE, 1);
    };
    runHere(0);
    // take over every task whose worker has not woken up yet (the faulty one is left to its worker)
    for (let t = n - 1; t >= 1; t--) {
      if (t === faulty) continue;
      const c = Atomics.load(ctrl, CLAIMS + t);
      if (((c - gen) | 0) < 0 && Atomics.compareExchange(ctrl, CLAIMS + t, c, gen) === c) runHere(t);
    }
    this.waitDone(kernel, n);
    const st = this.status();
    for (let i = 0; i < this.workers.length; i++) {
      if (Atomics.load(st, i * STATUS_INTS + ST_ERROR)) {
        Atomics.store(st, i * STATUS_INTS + ST_ERROR, 0);
        failures.push(`worker ${i}: ${readMsg(this.mem, this.msgPtr, this.statusPtr, i)}`);
      }
    }
    if (failures.length) throw new Error(`wasm pool: kernel '${kernel}' failed on ${failures.join('; ')}`);
  }

  /**
   * Idle workers stop spinning and sleep until the next job: for the caller to hand the cores to
   * other threads (a native library's) before the spin time after the last job runs out.
   */
  park(): void {
    if (this.disposed || !this.workers.length) return;
    const ctrl = this.ctrl();
    Atomics.store(ctrl, PARK, Atomics.load(ctrl, GEN));
  }

  /** Test hook: on the next multi-threaded run, worker `worker` throws ('throw') or exits ('exit'). */
  injectFaultForTest(worker: number, kind: 'throw' | 'exit'): void {
    if (worker < 0 || worker >= this.workers.length) throw new Error(`wasm pool: no worker ${worker}`);
    this.fault = { worker, kind: kind === 'throw' ? FAULT_THROW : FAULT_EXIT };
  }

  /** Why the pool cannot run jobs any more (a worker died), or null. */
  brokenReason(): string | null {
    return this.broken;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.workers.length) {
      const ctrl = this.ctrl();
      ctrl[CMD] = CMD_QUIT;
      Atomics.add(ctrl, GEN, 1);
      Atomics.notify(ctrl, GEN);
      for (const w of this.workers) w.terminate();
    }
    this.mem.free(this.ctrlPtr);
    this.mem.free(this.statusPtr);
    this.mem.free(this.msgPtr);
  }

  private waitDone(kernel: string, target: number): void {
    const ctrl = this.ctrl();
    const spinUntil = performance.now() + this.spinMs;
    for (let i = 1; ; i++) {
      const done = Atomics.load(ctrl, DONE);
      if (done >= target) return;
      if ((i & 255) === 0) {
        const dead = this.deadWorker();
        if (dead !== null) {
          this.broken = dead;
          throw new Error(`wasm pool: ${dead} while running kernel '${kernel}'`);
        }
        if (performance.now() > spinUntil) Atomics.wait(ctrl, DONE, done, 20);
      }
    }
  }

  private deadWorker(): string | null {
    const st = this.status();
    for (let i = 0; i < this.workers.length; i++) {
      if (Atomics.load(st, i * STATUS_INTS + ST_STATE) === EXITED) {
        const why = Atomics.load(st, i * STATUS_INTS + ST_CRASHED) ? ` (${readMsg(this.mem, this.msgPtr, this.statusPtr, i)})` : '';
        return `worker ${i} exited with code ${Atomics.load(st, i * STATUS_INTS + ST_CODE)}${why}`;
      }
    }
    return this.broken;
  }

  // Views made once: shared memory never moves, so they stay valid after growth.
  private ctrlView: Int32Array | null = null;
  private statusView: Int32Array | null = null;

  private ctrl(): Int32Array {
    return (this.ctrlView ??= new Int32Array(this.mem.memory.buffer, this.ctrlPtr, ctrlInts(this.threads)));
  }

  private status(): Int32Array {
    return (this.statusView ??= new Int32Array(this.mem.memory.buffer, this.statusPtr, Math.max(1, this.workers.length) * STATUS_INTS));
  }
}

/**
 * `fn(...args, task, nTasks)` without the spread for the usual argument counts: small ops run on
 * the calling thread one after another in decode, where a spread call's array costs as much as the op.
 */
function callTask(fn: (...args: number[]) => void, a: readonly number[], task: number, nTasks: number): void {
  switch (a.length) {
    case 1: return fn(a[0]!, task, nTasks);
    case 2: return fn(a[0]!, a[1]!, task, nTasks);
    case 3: return fn(a[0]!, a[1]!, a[2]!, task, nTasks);
    case 4: return fn(a[0]!, a[1]!, a[2]!, a[3]!, task, nTasks);
    case 5: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, task, nTasks);
    case 6: return fn(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, task, nTasks);
    default: return fn(...a, task, nTasks);
  }
}

function readMsg(mem: WasmMemory, msgPtr: number, statusPtr: number, i: number): string {
  const st = new Int32Array(mem.memory.buffer, statusPtr, (i + 1) * STATUS_INTS);
  const len = Math.min(MSG_BYTES, Atomics.load(st, i * STATUS_INTS + ST_MSG_LEN));
  const start = msgPtr + i * MSG_BYTES;
  return new TextDecoder().decode(mem.bytes().slice(start, start + len)) || 'unknown error';
}

function errText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
