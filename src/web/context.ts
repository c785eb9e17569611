// What every view gets from the page: the prompt, the loaded model's facts, and `run`, which sends
// a view request to the current runner (tab or server) with progress and cancellation handled by
// the page. `run` resolves to null when the job failed or was cancelled (the page shows why).
import type { LabEvent } from './protocol.js';

export interface ModelInfo {
  name: string;
  dims: { nLayers: number; nHeads: number; dModel: number; dMlp: number; vocabSize: number; nCtx: number; arch: string };
  backend: string;
  text_tokenizer: boolean;
  bos: number | null;
}

export interface ViewProps {
  info: ModelInfo;
  prompt: string;
  /** True when the views run on the lab server (which can read stores and SAEs in its folders). */
  server?: boolean;
  run: (name: string, args: Record<string, unknown>, onEvent?: (e: LabEvent) => void) => Promise<Record<string, unknown> | null>;
}
