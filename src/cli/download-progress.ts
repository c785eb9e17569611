// Download progress in a terminal: one cli-progress bar per file, fed by resolveModel's onProgress.
// CLI only (cli-progress draws on a terminal stream); the library reports download progress only
// through resolveModel's onProgress callback, and this is one consumer of it.
import cliProgress from 'cli-progress';
import type { DownloadProgress } from '../hub/download.js';

const mb = (n: number): string => (n / 2 ** 20).toFixed(1);

/** A progress callback that draws bars on stderr; call `stop()` when done. */
export function createProgressBars(stream: NodeJS.WriteStream = process.stderr): { onProgress: (p: DownloadProgress) => void; stop: () => void } {
  const multi = new cliProgress.MultiBar({
    stream,
    hideCursor: true,
    clearOnComplete: false,
    format: '{file} |{bar}| {percentage}% {loadedMb}/{totalMb} MiB',
  }, cliProgress.Presets.shades_classic);
  const bars = new Map<string, cliProgress.SingleBar>();
  return {
    onProgress: (p) => {
      const key = `${p.id}/${p.file}`;
      const total = p.total ?? p.loaded;
      const payload = { file: key, loadedMb: mb(p.loaded), totalMb: p.total === null ? '?' : mb(p.total) };
      let bar = bars.get(key);
      if (!bar) {
        bar = multi.create(Math.max(total, 1), p.loaded, payload);
        bars.set(key, bar);
      }
      bar.setTotal(Math.max(total, 1));
      bar.update(p.loaded, payload);
      if (p.done) bar.stop();
    },
    stop: () => multi.stop(),
  };
}
