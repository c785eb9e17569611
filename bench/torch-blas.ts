// Which BLAS a PyTorch peer runs its CPU products on, for the CPU benchmarks' tables. Debian's
// torch is built against the generic `libblas.so.3` (`BLAS_INFO=generic` in
// `torch.__config__.show()`), so its speed depends on what that name resolves to: OpenBLAS, or
// netlib's reference BLAS (a few GFLOP/s, which makes every PyTorch CPU figure meaningless). The
// libraries are read from the process's own memory map after one product, so the answer is the
// one that ran.
import { spawnSync } from 'node:child_process';

export interface TorchBlas {
  /** BLAS_INFO from torch.__config__.show() ('generic', 'mkl', 'open', ...). */
  blasInfo: string;
  /** Resolved paths of the BLAS/LAPACK libraries mapped into the process. */
  libs: string[];
  /** One line for the table: the library that runs the products. */
  summary: string;
  /** True when the products run on netlib's reference BLAS. */
  reference: boolean;
}

const PROBE = String.raw`
import json, os, re, torch
cfg = torch.__config__.show()
m = re.search(r'BLAS_INFO=([^,\s]+)', cfg)
(torch.ones(64, 64) @ torch.ones(64, 64)).sum().item()
libs = set()
for line in open('/proc/self/maps'):
    p = line.split()
    if len(p) >= 6 and re.search(r'blas|mkl|lapack|blis|atlas', os.path.basename(p[-1])):
        libs.add(os.path.realpath(p[-1]))
print(json.dumps({'blas_info': m.group(1) if m else 'unknown', 'libs': sorted(libs)}))
`;

/** Asks `python` (with torch) which BLAS it runs on; null when the probe fails. */
export function torchBlas(python: string): TorchBlas | null {
  const r = spawnSync(python, ['-c', PROBE], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  try {
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { blas_info: string; libs: string[] };
    const blas = j.libs.filter((l) => /blas|mkl|blis|atlas/.test(l.split('/').pop()!));
    const named = blas.find((l) => /openblas|mkl|blis|atlas/.test(l));
    // netlib's reference BLAS: Debian installs it as .../blas/libblas.so.3
    const reference = !named && blas.some((l) => /\/blas\/libblas\.so/.test(l));
    const lib = named ?? blas[0] ?? '(no BLAS library mapped)';
    return { blasInfo: j.blas_info, libs: j.libs, reference, summary: `${lib.split('/').slice(-2).join('/')}${reference ? ' (reference BLAS)' : ''}, BLAS_INFO=${j.blas_info}` };
  } catch {
    return null;
  }
}

/** Prints the BLAS on stderr, with a warning when it is the reference one; returns the summary. */
export function reportTorchBlas(python: string): string | null {
  const b = torchBlas(python);
  if (!b) {
    console.error('PyTorch BLAS: could not be determined');
    return null;
  }
  console.error(`PyTorch BLAS: ${b.summary}`);
  if (b.reference) {
    console.error('WARNING: PyTorch runs its products on the reference BLAS (netlib), at a few GFLOP/s: its CPU figures are not its real speed. Install OpenBLAS (apt-get install libopenblas0-pthread).');
  }
  return b.summary;
}
