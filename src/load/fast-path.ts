import type { BundleImage } from '../bundle/format.js';
import type { EngineImage } from '../engine/engine.js';
import type { OmittedLayer } from '../image/layer.js';
import { OCI_LAYER_TYPES } from '../image/media-types.js';
import type { Digest } from '../util/digest.js';

/**
 * The base layers Docker's classic store can be left to find: it skips a layer whose chain
 * (the layer and every one below it) it already holds, without opening its file. So each
 * image's layers from the base must come first, and form a prefix of some local image's
 * layers. Returns the diffIDs to leave out, or undefined when the archive must be complete.
 */
export function fastPathOmissions(images: BundleImage[], local: EngineImage[]): Map<Digest, OmittedLayer> | undefined {
  const omit = new Map<Digest, OmittedLayer>();
  for (const image of images) {
    const prefix = image.layers.findIndex((layer) => layer.blob !== undefined);
    const fromBase = prefix === -1 ? image.layers : image.layers.slice(0, prefix);
    if (image.layers.slice(fromBase.length).some((layer) => layer.blob === undefined)) return undefined;
    const chainHeld = local.some((l) => fromBase.every((layer, i) => l.diffIds[i] === layer.diffId));
    if (!chainHeld) return undefined;
    for (const layer of fromBase) omit.set(layer.diffId, { omitted: true, diffId: layer.diffId });
  }
  return omit;
}

/**
 * The base layers containerd can be left to find: every needed layer whose blob (as a local
 * image's manifest names it) is in its content store, which an OCI-layout import reads by digest
 * (its unpack skips layers whose snapshot exists). All or nothing: undefined when one is absent.
 */
export function contentStoreOmissions(
  needed: Digest[],
  local: EngineImage[],
  content: ReadonlySet<string>,
): Map<Digest, OmittedLayer> | undefined {
  const stored = new Map<Digest, OmittedLayer>();
  for (const image of local) {
    image.diffIds.forEach((diffId, i) => {
      const blob = image.storedLayers?.[i];
      if (blob && content.has(blob.digest) && !stored.has(diffId)) stored.set(diffId, { omitted: true, diffId, stored: blob });
    });
  }
  return needed.every((d) => stored.has(d)) ? stored : undefined;
}

/**
 * The base layers Podman can be left to find: containers/storage reuses a layer it holds when
 * a manifest names the blob by the layer's uncompressed digest, without opening the blob. The
 * archive's OCI half names each such layer by its diffID as an uncompressed tar, and no entry
 * holds it (Podman reads an archive with an index.json as oci-archive). Same condition as
 * Docker's, so every layer keeps the parent it has in the local image.
 */
export function podmanStoreOmissions(images: BundleImage[], local: EngineImage[]): Map<Digest, OmittedLayer> | undefined {
  const chain = fastPathOmissions(images, local);
  if (!chain) return undefined;
  const sizes = new Map(images.flatMap((image) => image.layers.map((layer) => [layer.diffId, layer.size ?? 0] as const)));
  const omit = new Map<Digest, OmittedLayer>();
  for (const diffId of chain.keys()) {
    omit.set(diffId, { omitted: true, diffId, stored: { digest: diffId, size: sizes.get(diffId) ?? 0, mediaType: OCI_LAYER_TYPES.none } });
  }
  return omit;
}
