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

/** A backend could not allocate a buffer; the message says what is alive and which ops made it. */
export class OutOfMemoryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutOfMemoryError';
  }
}
