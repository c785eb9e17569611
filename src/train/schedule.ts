// Learning-rate schedules: a function of the step index (0 for the first update).

export interface WarmupCosineOptions {
  /** Peak learning rate. */
  lr: number;
  /** Steps of linear warmup: step s < warmup uses lr·(s+1)/warmup. */
  warmupSteps: number;
  /** Total steps; after warmup the rate follows a half cosine from lr that would reach minLr at step `totalSteps` (as transformers' schedule). */
  totalSteps: number;
  minLr?: number;
}

/** Linear warmup (counted from step 1, so the first update is not wasted), then cosine decay toward `minLr`. */
export function warmupCosine(o: WarmupCosineOptions): (step: number) => number {
  const min = o.minLr ?? 0;
  const warm = Math.max(0, o.warmupSteps);
  return (step) => {
    if (step < warm) return (o.lr * (step + 1)) / warm;
    const span = Math.max(1, o.totalSteps - warm);
    const p = Math.min(1, Math.max(0, (step - warm) / span));
    return min + 0.5 * (o.lr - min) * (1 + Math.cos(Math.PI * p));
  };
}

export const constantLr = (lr: number) => (_step: number) => lr;
