// A training progress bar in a terminal (cli-progress), fed by train()'s onStep callback.
// Node/CLI only; the core reports progress through the callback and draws nothing.
import cliProgress from 'cli-progress';
import type { StepInfo } from '../train/trainer.js';

/** An onStep callback drawing one bar with loss, lr and grad norm on stderr; call `stop()` at the end. */
export function createTrainProgress(stream: NodeJS.WriteStream = process.stderr): { onStep: (s: StepInfo) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar({
    stream,
    hideCursor: true,
    format: 'train |{bar}| {value}/{total} loss {loss} lr {lr} |g| {gnorm} {tps} tok/s',
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    onStep: (s) => {
      const payload = { loss: s.loss.toFixed(4), lr: s.lr.toExponential(2), gnorm: s.gradNorm.toFixed(3), tps: Math.round((s.tokens / s.ms) * 1000) };
      if (!started) { bar.start(s.steps, s.step, payload); started = true; }
      bar.update(s.step, payload);
    },
    stop: () => { if (started) bar.stop(); },
  };
}
