// Training progress on stderr, fed by train()'s onStep callback: a cli-progress bar on a terminal,
// otherwise a plain line every few seconds (and at the last step), as `actlab cache` does.
// Node/CLI only; the core reports progress through the callback and draws nothing.
import cliProgress from 'cli-progress';
import type { StepInfo } from '../train/trainer.js';

/** An onStep callback drawing progress on `stream`; call `stop()` at the end (twice is harmless). */
export function createTrainProgress(stream: NodeJS.WriteStream = process.stderr, everyMs = 5000): { onStep: (s: StepInfo) => void; stop: () => void } {
  const tty = !!stream.isTTY;
  const bar = new cliProgress.SingleBar({
    stream,
    hideCursor: true,
    format: 'train |{bar}| {value}/{total} loss {loss} lr {lr} |g| {gnorm} {tps} tok/s',
  }, cliProgress.Presets.shades_classic);
  let started = false;
  let lastLine = -Infinity;
  return {
    onStep: (s) => {
      const payload = { loss: s.loss.toFixed(4), lr: s.lr.toExponential(2), gnorm: s.gradNorm.toFixed(3), tps: Math.round((s.tokens / s.ms) * 1000) };
      if (!tty) {
        const now = Date.now();
        if (now - lastLine >= everyMs || s.step === s.steps) {
          stream.write(`train: step ${s.step}/${s.steps}, loss ${payload.loss}, lr ${payload.lr}, |g| ${payload.gnorm}, ${payload.tps} tok/s\n`);
          lastLine = now;
        }
        return;
      }
      if (!started) { bar.start(s.steps, s.step, payload); started = true; }
      bar.update(s.step, payload);
    },
    stop: () => { if (started) { bar.stop(); started = false; } },
  };
}
