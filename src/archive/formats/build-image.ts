import { ConfigError } from '../../errors.js';
import { layerCreators, parseConfig } from '../../image/config.js';
import { digestFromName } from '../../image/blob-names.js';
import type { Image } from '../../image/image.js';
import type { FileLocation, Layer } from '../../image/layer.js';
import { DOCKER_LAYER_TYPES } from '../../image/media-types.js';
import { isDigest, sha256, type Digest } from '../../util/digest.js';
import type { Catalog } from '../catalog.js';

/** A layer as a manifest names it, before its bytes are looked at. */
export interface LayerRef {
  path: string;
  /** Digest the manifest records for the stored bytes (OCI descriptors, LayerSources). */
  digest?: Digest;
  mediaType?: string;
}

interface ImageRefs {
  configPath: string;
  /** Digest the manifest records for the config, checked against the bytes. */
  configDigest?: Digest;
  layers: LayerRef[];
  tags: string[];
  manifestDigest?: Digest;
}

/** Why a layer media type cannot be handled (encrypted layers need keys ddiff does not have). */
function unsupportedLayerType(mediaType: string | undefined): string | undefined {
  if (mediaType === undefined) return undefined;
  if (/\+encrypted$|\.encrypted$/.test(mediaType)) return `is encrypted (${mediaType}); ddiff cannot read encrypted layers`;
  if (!/tar|rootfs\.diff|layer/.test(mediaType)) return `has media type ${mediaType}, which is not a filesystem layer`;
  return undefined;
}

/**
 * Builds the image model from a config entry and the layer entries a manifest names. Reads
 * the config and the first bytes of each layer; hashes a layer only when nothing else tells
 * its stored digest (a compressed layer in a docker-archive).
 */
export async function buildImage(catalog: Catalog, refs: ImageRefs): Promise<Image> {
  const configBytes = await catalog.bytes(refs.configPath);
  const id = sha256(configBytes);
  const promised = refs.configDigest ?? digestFromName(refs.configPath);
  if (promised && promised !== id) {
    throw catalog.fail(`config '${refs.configPath}' does not match its digest ${promised} (content hashes to ${id})`);
  }
  let config;
  try {
    config = parseConfig(JSON.parse(configBytes.toString('utf8')));
  } catch (error) {
    const problem = error instanceof ConfigError ? error.message : `not valid JSON (${(error as Error).message})`;
    throw catalog.fail(`config '${refs.configPath}': ${problem}`);
  }
  if (config.diffIds.length !== refs.layers.length) {
    throw catalog.fail(
      `config '${refs.configPath}' lists ${config.diffIds.length} diff_ids but the manifest names ${refs.layers.length} layer(s)`,
    );
  }
  const creators = layerCreators(config);
  const layers: Layer[] = [];
  for (const [i, ref] of refs.layers.entries()) {
    const diffId = config.diffIds[i]!;
    const unsupported = unsupportedLayerType(ref.mediaType);
    if (unsupported) throw catalog.fail(`layer ${i + 1} (diffID ${diffId}) ${unsupported}`);
    if (!catalog.has(ref.path)) {
      const foreign = ref.mediaType !== undefined && /foreign|nondistributable/.test(ref.mediaType);
      throw catalog.fail(
        foreign
          ? `layer ${i + 1} (diffID ${diffId}) is a foreign/non-distributable layer (${ref.mediaType}) whose blob is not in the archive; ddiff cannot ship it`
          : `layer ${i + 1} ('${ref.path}', diffID ${diffId}) is missing from the archive`,
      );
    }
    const entry = catalog.entry(ref.path);
    const compression = await catalog.compressionOf(ref.path);
    let digest = ref.digest ?? digestFromName(entry.name) ?? digestFromName(ref.path);
    if (!digest || (compression !== 'none' && !ref.digest && digest === diffId)) {
      // Hashed with the diffID too: verifying asks for it next, and one pass gives both.
      digest = compression === 'none' ? diffId : (await catalog.facts(ref.path, true)).digest;
    }
    const createdBy = creators[i];
    const path = entry.name;
    const layer: Layer = {
      diffId,
      digest,
      mediaType: ref.mediaType ?? DOCKER_LAYER_TYPES[compression],
      compression,
      size: entry.size,
      source: catalog.source,
      path,
      open: () => catalog.open(path),
      ...(createdBy === undefined ? {} : { createdBy }),
      ...(located(catalog, path) ?? {}),
    };
    layers.push(layer);
  }
  const image: Image = { tags: refs.tags, id, platform: config.platform, configBytes, layers, history: config.history };
  if (refs.manifestDigest) image.manifestDigest = refs.manifestDigest;
  return image;
}

/** The layer's place in a file, when its catalog keeps entries in files. */
function located(catalog: Catalog, path: string): { file: FileLocation } | undefined {
  const file = catalog.location(path);
  return file && { file: { path: file.path, offset: file.offset } };
}

export { isRecord } from '../../util/json.js';

export function optionalDigest(value: unknown): Digest | undefined {
  return isDigest(value) ? value : undefined;
}
