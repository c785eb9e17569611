// The engine self-check of `actlab inspect`: every backend that can start, its features and native
// ops, and a quick sample of the conformance matrix (core ops) against the js reference.
// Not for: the full matrix (runner.ts, `actlab test-ops`).
import { OP_NAMES } from '../tensor/backend.js';
import { initBackend } from '../tensor/engine.js';
import { runConformance } from './runner.js';

/** The op cases the self-check runs on each non-reference backend (labels as in cases.ts). */
const QUICK = ['matmul f32', 'softmax f32', 'layerNorm f32', 'rmsNorm f32', 'rope half f32', 'attention f32', 'gelu_tanh f32', 'add f32', 'dequantize'];

export interface EngineCheck {
  backends: Record<string, unknown>[];
  ok: boolean;
}

/** The engine self-check: each backend found, its features, and core ops against the reference. */
export async function engineCheck(names: readonly string[]): Promise<EngineCheck> {
  const backends: Record<string, unknown>[] = [];
  let ok = true;
  const ref = await initBackend('js');
  for (const name of names) {
    let b;
    try {
      b = await initBackend(name);
    } catch (e) {
      backends.push({ backend: name, available: false, error: (e as Error).message });
      continue;
    }
    const results = name === 'js' ? [] : await runConformance(ref, b, { ops: QUICK });
    const failed = results.filter((r) => r.status === 'fail' || r.status === 'error');
    if (failed.length) ok = false;
    backends.push({
      backend: name, available: true, info: b.info?.() ?? {},
      native_ops: b.nativeOps?.() ?? (name === 'js' ? OP_NAMES : []),
      self_check: name === 'js' ? 'reference' : { cases: results.length, failed: failed.map((r) => r.label), worst_nmse: Math.max(0, ...results.map((r) => (Number.isFinite(r.nmse) ? r.nmse : 0))) },
    });
  }
  return { backends, ok };
}

/** The engine self-check as terminal lines. */
export function engineText(e: EngineCheck): string {
  const out = ['engine self-check'];
  for (const r of e.backends) {
    if (!r.available) { out.push(`  ${r.backend}: not available (${r.error})`); continue; }
    const sc = r.self_check as { cases: number; failed: string[]; worst_nmse: number } | string;
    out.push(`  ${String(r.backend).padEnd(6)} ${typeof sc === 'string' ? sc : `${sc.cases - sc.failed.length}/${sc.cases} op cases within budget (worst NMSE ${sc.worst_nmse.toExponential(2)})${sc.failed.length ? '; FAILED: ' + sc.failed.join('; ') : ''}`}`);
  }
  out.push(e.ok ? '  engine OK' : '  engine self-check FAILED');
  return out.join('\n');
}
