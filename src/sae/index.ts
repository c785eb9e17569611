// Sparse autoencoders and transcoders: the public API.
export { Sae, type SaeForwardOptions } from './sae.js';
export { SAE_ARCHITECTURES, configFromSaeLens, configToSaeLens, weightShapes, type SaeArchitecture, type SaeConfig, type ActivationNormalization } from './config.js';
export { initSae, geometricMedian, scalingFactor, type InitOptions } from './init.js';
export { saeStep, type StepInput, type StepOutput, type StepSettings } from './step.js';
export { trainSae, foldScaling, saeLr, saeCoefficient, SaeDivergedError, type SaeTrainOptions, type SaeTrainResult, type SaeStepInfo } from './train.js';
export { storeSource, arraySource, type SaeDataSource, type SaeBatch, type StoreSourceOptions } from './data.js';
export { loadSaeLens, saveSaeLens, loadSaeFromHub, type LoadedSae, type SaeHubOptions } from './saelens.js';
export { saeHooks, attachSae, saeSite, type SpliceOptions } from './splice.js';
export { evaluateSae, type SaeEvalOptions, type SaeEvalResult } from './eval.js';
export { featureViews, featureViewsHtml, type FeatureView, type FeatureExample, type FeatureViewOptions } from './features.js';
export { plantedActivations, recoveredDirections, type PlantedData, type PlantedOptions } from './planted.js';
