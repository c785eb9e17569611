// f16 matmul on tensor cores through Chromium's experimental subgroup matrices (filled in below
// when the adapter offers them). Returns false when the case is not one it handles.
import type { OpDesc } from '../../backend.js';
import type { DType } from '../../../tensor/dtype.js';
import type { Dense, OpContext } from './context.js';
import type { MatmulPlan } from './matmul.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

export function trySubgroupMatmul(
  ctx: OpContext<Op<'matmul'>>, p: MatmulPlan, adt: DType, bdt: DType, ab: GPUBuffer, bb: GPUBuffer, y: Dense,
): boolean {
  void ctx; void p; void adt; void bdt; void ab; void bb; void y;
  return false;
}
