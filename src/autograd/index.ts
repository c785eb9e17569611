// Reverse-mode autodiff: a tape over the engine's ops (see ./tape.ts for the memory rules).
export {
  backward, clearTape, grad, isRecording, noGrad, NoGradientError, tap, tapeMark, tapeStats, valueAndGrad, variable, zeroGrad,
  type GradOptions, type TapeNode,
} from './tape.js';
export { RULES, type Rule, type BackCtx, type Grad } from './rules.js';
