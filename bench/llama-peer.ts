// llama.cpp as a peer: the prebuilt tools of ../shared/peers/llama.cpp need their shared libraries
// under their versioned names, which a copy may hold as small text files naming the target
// (links flattened). This restores the links in a folder of our own, for LD_LIBRARY_PATH.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/** Links every shared library of `peers` into `dir` (made if missing), following link stand-ins; returns `dir`. */
export function peerLibDir(peers: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(peers).filter((x) => x.includes('.so'))) {
    let target = join(peers, f);
    while (statSync(target).size < 256) target = join(peers, readFileSync(target, 'utf8').trim());
    const link = join(dir, f);
    rmSync(link, { force: true }); // a link left dangling by a moved peer folder is replaced too
    symlinkSync(target, link);
  }
  return dir;
}
