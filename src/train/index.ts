// Training: losses, optimizers, schedules, clipping, checkpoints and the loop.
export { crossEntropy, type CrossEntropyOptions } from './loss.js';
export { AdamW, Sgd, Optimizer, defaultGroups, type ParamGroup, type AdamWOptions, type SgdOptions, type OptimizerState } from './optim.js';
export { warmupCosine, constantLr, type WarmupCosineOptions } from './schedule.js';
export { clipGradNorm, clipFactor, globalNorm, gradNorms } from './clip.js';
export { saveCheckpoint, loadCheckpoint, latestCheckpoint, CheckpointMismatchError, type TrainerState } from './checkpoint.js';
export { train, epochOrder, TrainingStoppedError, type TrainOptions, type TrainResult, type StepInfo } from './trainer.js';
