import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleImage } from '../bundle/format.js';
import { bundleLayer, type Bundle } from '../bundle/read.js';
import { decodeLayerDelta, SpooledBase } from '../delta/index.js';
import { mayBeLayer } from '../engine/save-stream.js';
import { corrupt, MissingLayersError } from '../errors.js';
import { type Layer, openUncompressed } from '../image/layer.js';
import { OCI_LAYER_TYPES } from '../image/media-types.js';
import { readTarStream } from '../tar/extract.js';
import { DigestingStream, hexOf, type Digest } from '../util/digest.js';
import type { BaseSource } from './base.js';
import { pipeline } from 'node:stream/promises';

/** The base layers' files for the deltas: spooled from the base archive or the engine's save. */
async function spoolBase(base: BaseSource, needed: Set<Digest>, dir: string): Promise<SpooledBase> {
  const spooled = await SpooledBase.create(dir);
  if (base.kind === 'archive') {
    for (const diffId of needed) {
      const layer = base.layers.get(diffId);
      if (!layer) throw new MissingLayersError(`base ${base.name} lacks layer ${diffId}, which a delta layer needs`);
      await spooled.addLayer(diffId, openUncompressed(layer), { hash: false });
    }
    return spooled;
  }
  if (base.kind !== 'engine')
    throw new MissingLayersError(`the bundle's delta layers need ${needed.size} base layer(s) and no base was found`);
  const found = new Set<Digest>();
  const saved = base.engine.saveStream(base.images.map((image) => image.id));
  let n = 0;
  try {
    await readTarStream(saved.stream, async (entry) => {
      if (entry.type !== 'file' || !mayBeLayer(entry.name) || found.size === needed.size) return;
      const file = join(dir, `base-${n++}.tar`);
      const hashing = new DigestingStream();
      await pipeline(entry.body, hashing, createWriteStream(file));
      const diffId = hashing.digest();
      if (needed.has(diffId) && !found.has(diffId)) {
        found.add(diffId);
        await spooled.addLayerFile(diffId, file, { hash: false });
      } else await rm(file, { force: true });
    });
    await saved.done;
  } catch (error) {
    await saved.stop();
    await saved.done;
    throw error;
  }
  const missing = [...needed].filter((d) => !found.has(d));
  if (missing.length > 0)
    throw new MissingLayersError(`base ${base.engine.name}:${base.name} lacks ${missing.join(', ')}, which delta layers need`);
  return spooled;
}

/**
 * Rebuilds every delta layer of the images into a file under `dir`, before anything is written
 * to an engine: each is checked against its diffID first, so an engine never sees a byte of a
 * layer that does not rebuild exactly. Returns them by diffID, as plain uncompressed layers.
 */
export async function rebuildDeltaLayers(
  bundle: Bundle,
  images: BundleImage[],
  base: BaseSource,
  dir: string,
): Promise<Map<Digest, Layer>> {
  const blobs = new Map(bundle.metadata.blobs.map((b) => [b.digest, b]));
  const deltas = new Map<Digest, Digest>();
  for (const layer of images.flatMap((i) => i.layers)) {
    if (layer.blob && blobs.get(layer.blob)?.delta) deltas.set(layer.diffId, layer.blob);
  }
  const rebuilt = new Map<Digest, Layer>();
  if (deltas.size === 0) return rebuilt;
  const needed = new Set([...deltas.values()].flatMap((blob) => blobs.get(blob)!.delta!.baseLayers));
  if (needed.size === 0) throw corrupt(bundle.path, 'a delta layer', 'it names no base layer to read from');
  const spooled = await spoolBase(base, needed, dir);
  try {
    for (const [diffId, blob] of deltas) {
      const info = blobs.get(blob)!.delta!;
      const stored = await bundleLayer(bundle, diffId, blob);
      const file = join(dir, `rebuilt-${hexOf(diffId)}.tar`);
      const what = `delta layer ${diffId}`;
      const result = await decodeLayerDelta(stored.open(), spooled, createWriteStream(file), {
        source: `${bundle.path}: ${what}`,
        expectedSize: info.uncompressedSize,
      });
      if (result.digest !== diffId || result.size !== info.uncompressedSize) {
        throw corrupt(bundle.path, what, `it rebuilds to ${result.size} bytes hashing to ${result.digest}`);
      }
      rebuilt.set(diffId, {
        diffId,
        digest: diffId,
        size: result.size,
        mediaType: OCI_LAYER_TYPES.none,
        compression: 'none',
        source: bundle.path,
        path: `${what} (rebuilt)`,
        open: () => createReadStream(file),
      });
    }
  } finally {
    await spooled.close();
  }
  return rebuilt;
}
