// Error types the frontend throws, each naming the op, the shapes and the dtypes involved.

export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

export class DTypeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DTypeError';
  }
}

export class DisposedError extends Error {
  constructor(what: string) {
    super(`${what}: tensor was already disposed`);
    this.name = 'DisposedError';
  }
}
