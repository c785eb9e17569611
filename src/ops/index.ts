// Every frontend op, in one namespace.
export * from './creation.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './linalg.js';
export * from './nn.js';
export * from './layout.js';
export * from './quant.js';
export * from './sparse.js';
export * from './random.js';
export * from './optim.js';
