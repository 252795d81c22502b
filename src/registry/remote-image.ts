import { ConfigError, RegistryError, UsageError } from '../errors.js';
import { parseConfig } from '../image/config.js';
import type { Platform } from '../image/image.js';
import type { BlobDescriptor } from '../image/layer.js';
import { INDEX_TYPES } from '../image/media-types.js';
import { hostPlatform } from '../image/platform.js';
import { type ImageReference, parseReference } from '../image/reference.js';
import { isDigest, sha256, type Digest } from '../util/digest.js';
import { isRecord } from '../util/json.js';
import type { RegistryClient } from './client.js';

export const REGISTRY_PREFIX = 'docker://';

/** True for `docker://HOST/REPO:TAG`, the transport skopeo and Podman spell a registry image with. */
export function isRegistryReference(text: string): boolean {
  return text.startsWith(REGISTRY_PREFIX);
}

export function parseRegistryReference(text: string): ImageReference {
  if (!isRegistryReference(text)) throw new UsageError(`'${text}' is not a registry reference (docker://HOST[:PORT]/REPO[:TAG])`);
  return parseReference(text.slice(REGISTRY_PREFIX.length));
}

/** An image in a registry, as far as its manifest and config tell (no layer is downloaded). */
export interface RemoteImage {
  reference: ImageReference;
  id: Digest;
  platform: Platform;
  diffIds: Digest[];
  /** The manifest's layer descriptors, in diffID order. */
  layers: BlobDescriptor[];
  manifestDigest: Digest;
}

function descriptor(value: unknown, fail: (what: string) => never, what: string): BlobDescriptor {
  if (!isRecord(value) || !isDigest(value.digest) || typeof value.size !== 'number') fail(`${what} is not a valid descriptor`);
  return { digest: value.digest, size: value.size, mediaType: typeof value.mediaType === 'string' ? value.mediaType : '' };
}

/** Reads the manifest (the host platform's, from an index) and the config of a registry image. */
export async function readRemoteImage(
  client: RegistryClient,
  reference: ImageReference,
  wanted: Platform = hostPlatform(),
): Promise<RemoteImage> {
  const { repository } = reference;
  const name = reference.digest ?? reference.tag ?? 'latest';
  const fail = (what: string): never => {
    throw new RegistryError(client.host, `reading manifest ${repository}:${name}`, what);
  };
  let { bytes, mediaType } = await client.getManifest(repository, name);
  let doc = parseJson(bytes, fail);
  if (INDEX_TYPES.has(mediaType) || (isRecord(doc) && Array.isArray(doc.manifests))) {
    const entries = isRecord(doc) && Array.isArray(doc.manifests) ? doc.manifests.filter(isRecord) : [];
    const entry = entries.find(
      (m) => isRecord(m.platform) && m.platform.os === wanted.os && m.platform.architecture === wanted.architecture,
    );
    if (!entry || !isDigest(entry.digest)) fail(`no image for ${wanted.os}/${wanted.architecture} in the index`);
    ({ bytes, mediaType } = await client.getManifest(repository, entry!.digest as string));
    doc = parseJson(bytes, fail);
  }
  if (!isRecord(doc) || !Array.isArray(doc.layers)) fail('not an image manifest (no layers)');
  const manifest = doc as Record<string, unknown> & { layers: unknown[] };
  const config = descriptor(manifest.config, fail, 'config');
  const configBytes = await client.getBlob(repository, config.digest);
  if (sha256(configBytes) !== config.digest) fail(`config ${config.digest} is corrupt: its bytes hash to ${sha256(configBytes)}`);
  let parsed: ReturnType<typeof parseConfig>;
  try {
    parsed = parseConfig(parseJson(configBytes, fail));
  } catch (error) {
    if (error instanceof ConfigError) fail(`config ${config.digest}: ${error.message}`);
    throw error;
  }
  const layers = manifest.layers.map((l, i) => descriptor(l, fail, `layer ${i}`));
  if (layers.length !== parsed!.diffIds.length) fail(`${layers.length} layers but ${parsed!.diffIds.length} diffIDs in the config`);
  return { reference, id: config.digest, platform: parsed!.platform, diffIds: parsed!.diffIds, layers, manifestDigest: sha256(bytes) };
}

function parseJson(bytes: Buffer, fail: (what: string) => never): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return fail('not JSON');
  }
}
