// `actlab inspect`: until the analyses land, the engine's self-check: every backend found, what
// it runs on, and a quick conformance pass of the core ops against the reference backend.
import '../backends/index.js';
import { OP_NAMES } from '../backends/backend.js';
import { disposeBackends, initBackend } from '../tensor/engine.js';
import { runConformance } from '../conformance/runner.js';

const QUICK = ['matmul f32', 'softmax f32', 'layerNorm f32', 'rmsNorm f32', 'rope half f32', 'attention f32', 'gelu_tanh f32', 'add f32', 'dequantize'];

export async function inspectCommand(o: { json?: boolean; backend: string[] }): Promise<number> {
  const report: Record<string, unknown>[] = [];
  let ok = true;
  try {
    const ref = await initBackend('js');
    for (const name of o.backend) {
      let b;
      try {
        b = await initBackend(name);
      } catch (e) {
        report.push({ backend: name, available: false, error: (e as Error).message });
        continue;
      }
      const results = name === 'js' ? [] : await runConformance(ref, b, { ops: QUICK });
      const failed = results.filter((r) => r.status === 'fail' || r.status === 'error');
      if (failed.length) ok = false;
      report.push({
        backend: name, available: true, info: b.info?.() ?? {},
        native_ops: b.nativeOps?.() ?? (name === 'js' ? OP_NAMES : []),
        self_check: name === 'js' ? 'reference' : { cases: results.length, failed: failed.map((r) => r.label), worst_nmse: Math.max(0, ...results.map((r) => (Number.isFinite(r.nmse) ? r.nmse : 0))) },
      });
    }
  } finally {
    disposeBackends();
  }
  if (o.json) {
    console.log(JSON.stringify({ engine: report, ok }));
  } else {
    console.log('actlab engine self-check');
    for (const r of report) {
      if (!r.available) { console.log(`  ${r.backend}: not available (${r.error})`); continue; }
      const info = Object.entries(r.info as object).map(([k, v]) => `${k}=${v}`).join(' ');
      console.log(`  ${String(r.backend).padEnd(6)} ${info}`);
      console.log(`         native ops: ${(r.native_ops as string[]).join(', ') || 'none'}`);
      const sc = r.self_check as { cases: number; failed: string[]; worst_nmse: number } | string;
      console.log(typeof sc === 'string' ? `         ${sc}` : `         self-check: ${sc.cases - sc.failed.length}/${sc.cases} cases within budget (worst NMSE ${sc.worst_nmse.toExponential(2)})${sc.failed.length ? '; FAILED: ' + sc.failed.join('; ') : ''}`);
    }
    console.log(ok ? 'engine OK' : 'engine self-check FAILED');
  }
  return ok ? 0 : 1;
}
