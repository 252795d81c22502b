// When an archive's file copies get a second thread (archive/copy-threads.ts): only when they
// are most of what is written, the shape of a load -o whose base is far larger than its delta.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { copiesBesideEachOther } from '../../src/archive/copy-threads.js';
import type { Layer } from '../../src/image/layer.js';
import type { Compression } from '../../src/util/compression.js';

const MB = 1 << 20;
let n = 0;
function layer(size: number, compression: Compression, inFile: boolean, uncompressedSize?: number): Layer {
  const hex = (n++).toString(16).padStart(64, '0');
  return {
    diffId: `sha256:${hex}`,
    digest: `sha256:${hex}`,
    size,
    ...(uncompressedSize === undefined ? {} : { uncompressedSize }),
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    compression,
    source: 'test',
    path: hex,
    open: () => Readable.from([]),
    ...(inFile ? { file: { path: '/nowhere', offset: 0 } } : {}),
  };
}
const zstd = new Set<Compression>(['zstd']);

test('a 1.9 GB base copied beside 0.2 GB inflated: the copies run beside each other', () => {
  const base = [0, 1, 2, 3].map(() => layer(470 * MB, 'none', true));
  const delta = [layer(15 * MB, 'zstd', true, 42 * MB), layer(60 * MB, 'zstd', true, 168 * MB)];
  assert.equal(copiesBesideEachOther([...base, ...delta], zstd), true);
});

test('a 0.56 GB base copied beside 0.5 GB inflated: one thread copies (the main thread inflates on the other core)', () => {
  const base = [layer(79 * MB, 'none', true), layer(121 * MB, 'none', true), layer(363 * MB, 'none', true)];
  const delta = [layer(60 * MB, 'zstd', true, 200 * MB), layer(90 * MB, 'zstd', true, 300 * MB)];
  assert.equal(copiesBesideEachOther([...base, ...delta], zstd), false);
});

test('what is inflated counts at its inflated size; what is not in a file is no copy; the same layer counts once', () => {
  const big = layer(500 * MB, 'none', true);
  // 10 MB of zstd that inflates to 300 MB: the copies are not over twice the rest.
  assert.equal(copiesBesideEachOther([big, layer(10 * MB, 'zstd', true, 300 * MB)], zstd), false);
  // The same zstd layer copied as it is (Podman takes zstd): all copies.
  assert.equal(copiesBesideEachOther([big, layer(10 * MB, 'zstd', true, 300 * MB)], new Set()), true);
  // A layer streamed (not in a file) is written on the main thread.
  assert.equal(copiesBesideEachOther([big, layer(300 * MB, 'none', false)], zstd), false);
  assert.equal(copiesBesideEachOther([big, big, layer(200 * MB, 'none', false)], zstd), true);
  // Two images naming the same blob bring two objects for it (bundleLayer per image): counted once.
  const again = { ...big };
  assert.equal(copiesBesideEachOther([big, again, layer(300 * MB, 'none', false)], zstd), false);
  assert.equal(copiesBesideEachOther([], zstd), false);
});
