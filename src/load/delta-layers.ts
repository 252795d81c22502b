import { createReadStream } from 'node:fs';
import { createFileWriter } from '../util/write-file.js';
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
import { hexOf, type Digest } from '../util/digest.js';
import { DigestingStream } from '../util/digesting-stream.js';
import type { BaseSource } from './base.js';
import { finished, pipeline } from 'node:stream/promises';
import { PassThrough, type Readable, type Writable } from 'node:stream';

/** The base layers' files for the deltas: spooled from the base archive or the engine's save. */
async function spoolBase(base: BaseSource, needed: Set<Digest>, dir: string): Promise<SpooledBase> {
  const spooled = await SpooledBase.create(dir);
  if (base.kind === 'archive') {
    for (const diffId of needed) {
      const layer = base.layers.get(diffId);
      if (!layer) throw new MissingLayersError(`base ${base.name} lacks layer ${diffId}, which a delta layer needs`);
      // Not checked here: every rebuilt layer is checked against its diffID, which a wrong base byte fails.
      if (layer.file && layer.compression === 'none')
        await spooled.addLayerFile(diffId, layer.file.path, { hash: false, start: layer.file.offset, length: layer.size });
      else await spooled.addLayer(diffId, openUncompressed(layer), { hash: false });
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
      await pipeline(entry.body, hashing, createFileWriter(file));
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

/** Delta layers rebuilt, by diffID, as plain uncompressed layers; `close` releases the base they read. */
export interface RebuiltLayers {
  layers: Map<Digest, Layer>;
  close(): Promise<void>;
}

/**
 * Rebuilds every delta layer of the images. For an engine (`streamed` false) each is rebuilt
 * into a file under `dir` and checked against its diffID first, so an engine never sees a byte
 * of a layer that does not rebuild exactly. For a file written under a temporary name
 * (`streamed`), each is rebuilt as the writer reads it and fails the writer's stream before its
 * end if it does not rebuild exactly: nothing reaches the final name, and the rebuilt bytes are
 * not written and read back once more.
 */
export async function rebuildDeltaLayers(
  bundle: Bundle,
  images: BundleImage[],
  base: BaseSource,
  dir: string,
  options: { streamed: boolean },
): Promise<RebuiltLayers> {
  const blobs = new Map(bundle.metadata.blobs.map((b) => [b.digest, b]));
  const deltas = new Map<Digest, Digest>();
  for (const layer of images.flatMap((i) => i.layers)) {
    if (layer.blob && blobs.get(layer.blob)?.delta) deltas.set(layer.diffId, layer.blob);
  }
  const layers = new Map<Digest, Layer>();
  if (deltas.size === 0) return { layers, close: async () => undefined };
  const needed = new Set([...deltas.values()].flatMap((blob) => blobs.get(blob)!.delta!.baseLayers));
  if (needed.size === 0) throw corrupt(bundle.path, 'a delta layer', 'it names no base layer to read from');
  // For a file, the base is indexed while the archive's first layers are copied (that copy
  // waits on the disk, the index on the CPU); the first delta layer to be written waits for it.
  const spooling = spoolBase(base, needed, dir);
  spooling.catch(() => undefined);
  const close = async (): Promise<void> => (await spooling.catch(() => undefined))?.close();
  try {
    if (!options.streamed) await spooling;
    for (const [diffId, blob] of deltas) {
      const info = blobs.get(blob)!.delta!;
      const stored = await bundleLayer(bundle, diffId, blob);
      const what = `delta layer ${diffId}`;
      const rebuild = async (out: Writable): Promise<void> => {
        const result = await decodeLayerDelta(stored.open(), await spooling, out, {
          source: `${bundle.path}: ${what}`,
          expectedSize: info.uncompressedSize,
          end: false,
        });
        if (result.digest !== diffId || result.size !== info.uncompressedSize) {
          throw corrupt(bundle.path, what, `it rebuilds to ${result.size} bytes hashing to ${result.digest}`);
        }
      };
      const layer = {
        diffId,
        digest: diffId,
        size: info.uncompressedSize,
        mediaType: OCI_LAYER_TYPES.none,
        compression: 'none',
        source: bundle.path,
        path: `${what} (rebuilt)`,
      } as const;
      if (options.streamed) {
        layers.set(diffId, { ...layer, open: () => rebuiltStream(rebuild), checked: true });
        continue;
      }
      const file = join(dir, `rebuilt-${hexOf(diffId)}.tar`);
      const out = createFileWriter(file);
      await rebuild(out);
      out.end();
      await finished(out);
      layers.set(diffId, {
        ...layer,
        open: () => createReadStream(file, { highWaterMark: 256 << 10 }),
        file: { path: file, offset: 0 },
        checked: true,
      });
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { layers, close };
}

/** The bytes `rebuild` writes, ending only when it succeeds; its error fails the stream instead. */
function rebuiltStream(rebuild: (out: Writable) => Promise<void>): Readable {
  const out = new PassThrough({ highWaterMark: 256 << 10 });
  rebuild(out).then(
    () => out.end(),
    (error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))),
  );
  return out;
}
