import type { BundleImage } from '../bundle/format.js';
import type { EngineImage } from '../engine/engine.js';
import type { Digest } from '../util/digest.js';

/**
 * The base layers Docker's classic store can be left to find: it skips a layer whose chain
 * (the layer and every one below it) it already holds, without opening its file. So each
 * image's layers from the base must come first, and form a prefix of some local image's
 * layers. Returns the diffIDs to leave out, or undefined when the archive must be complete.
 */
export function fastPathOmissions(images: BundleImage[], local: EngineImage[]): Set<Digest> | undefined {
  const omit = new Set<Digest>();
  for (const image of images) {
    const prefix = image.layers.findIndex((layer) => layer.blob !== undefined);
    const fromBase = prefix === -1 ? image.layers : image.layers.slice(0, prefix);
    if (image.layers.slice(fromBase.length).some((layer) => layer.blob === undefined)) return undefined;
    const chainHeld = local.some((l) => fromBase.every((layer, i) => l.diffIds[i] === layer.diffId));
    if (!chainHeld) return undefined;
    for (const layer of fromBase) omit.add(layer.diffId);
  }
  return omit;
}
