// A minimal PNG encoder (RGB, 8-bit; compressed with the caller's deflate, else stored) for the attention
// pictures. Written by hand because the attention grid has too many cells for SVG (a few heads of
// a 40-token prompt are tens of thousands of rects) and an image is the right medium; the PNG
// container is ~40 lines, and a library would bring zlib bindings the browser build cannot use.

const CRC = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC[(c ^ b) & 255]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** zlib-format compression (e.g. node:zlib's deflateSync), when the caller has one. */
export type Deflate = (raw: Uint8Array) => Uint8Array;

/** rgb: width*height*3 bytes, row-major. Without `deflate`, the image data is stored uncompressed. */
export function encodePng(width: number, height: number, rgb: Uint8Array, deflate?: Deflate): Uint8Array {
  const raw = new Uint8Array(height * (1 + width * 3));
  for (let y = 0; y < height; y++) raw.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), y * (1 + width * 3) + 1);
  const z = deflate ? deflate(raw) : stored(raw);
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width); dv.setUint32(4, height);
  ihdr[8] = 8; ihdr[9] = 2;
  const sig = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);
  const parts = [sig, chunk('IHDR', ihdr), chunk('IDAT', z), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let k = 0;
  for (const p of parts) { out.set(p, k); k += p.length; }
  return out;
}

/** A zlib stream of "stored" (uncompressed) deflate blocks. */
function stored(raw: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const z = new Uint8Array(2 + raw.length + blocks * 5 + 4);
  z[0] = 0x78; z[1] = 0x01;
  let o = 2;
  for (let b = 0; b < blocks; b++) {
    const part = raw.subarray(b * 65535, Math.min(raw.length, (b + 1) * 65535));
    z[o] = b === blocks - 1 ? 1 : 0;
    z[o + 1] = part.length & 255; z[o + 2] = part.length >> 8;
    z[o + 3] = ~part.length & 255; z[o + 4] = (~part.length >> 8) & 255;
    z.set(part, o + 5);
    o += 5 + part.length;
  }
  let a = 1;
  let bsum = 0;
  for (const x of raw) { a = (a + x) % 65521; bsum = (bsum + a) % 65521; }
  new DataView(z.buffer).setUint32(o, ((bsum << 16) | a) >>> 0);
  return z;
}

export function base64(bytes: Uint8Array): string {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let s = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    s += A[(n >> 18) & 63]! + A[(n >> 12) & 63]! + (i + 1 < bytes.length ? A[(n >> 6) & 63]! : '=') + (i + 2 < bytes.length ? A[n & 63]! : '=');
  }
  return s;
}
