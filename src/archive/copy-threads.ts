import type { Layer } from '../image/layer.js';
import type { Compression } from '../util/compression.js';

/**
 * Whether an archive's file-to-file copies should run beside each other on two threads: only
 * when they are most of the bytes to write (over twice the rest). Otherwise the main thread's
 * inflating, and the first hashing thread's copies and hashes, already fill two cores, and a
 * third busy thread slows them: `load -o` of the real large pair (0.56 GB copied, 0.5 GB
 * inflated) went from 1.85 to 1.91 s with a second thread for every copy, while the 2 GB
 * generated pair's (1.9 GB copied, 0.2 GB inflated) went from 2.64 to 2.04 s with this rule
 * (medians of 5, builds alternating).
 */
export function copiesBesideEachOther(layers: readonly Layer[], inflate?: ReadonlySet<Compression>): boolean {
  let copies = 0;
  let rest = 0;
  // The writer writes a blob once, however many images name it (each may bring its own object).
  for (const layer of new Map(layers.map((l) => [l.digest, l])).values()) {
    const inflated = inflate?.has(layer.compression) === true;
    if (layer.file && !inflated) copies += layer.size;
    else rest += inflated ? (layer.uncompressedSize ?? layer.size) : layer.size;
  }
  return copies > 2 * rest;
}
