// A Preact wrapper for Observable Plot: renders the figure `make()` returns into a div and
// replaces it when `deps` change.
import { useEffect, useRef } from 'preact/hooks';

export function PlotFigure({ make, deps, testid }: { make: () => Element | null; deps: unknown[]; testid?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = make();
    if (el) ref.current?.replaceChildren(el);
    else ref.current?.replaceChildren();
    return () => ref.current?.replaceChildren();
  }, deps);
  return <div class="plot" data-testid={testid} ref={ref} />;
}

export const fmt = (x: number | null | undefined, d = 3): string => (x === null || x === undefined || Number.isNaN(x) ? '–' : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : x.toFixed(d));
