import { blobPath } from '../../image/blob-names.js';
import type { Image, Platform } from '../../image/image.js';
import { INDEX_TYPES } from '../../image/media-types.js';
import { isDigest, sha256, type Digest } from '../../util/digest.js';
import type { Catalog } from '../catalog.js';
import { buildImage, isRecord, type LayerRef } from './build-image.js';

/** A manifest an index names whose blob is not in the archive (another platform, usually). */
export interface AbsentManifest {
  digest: Digest;
  platform?: Platform;
  tags: string[];
}

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';
const MAX_DEPTH = 8;

function descriptorPlatform(value: unknown): Platform | undefined {
  if (!isRecord(value) || typeof value.os !== 'string' || typeof value.architecture !== 'string') return undefined;
  const platform: Platform = { os: value.os, architecture: value.architecture };
  if (typeof value.variant === 'string' && value.variant) platform.variant = value.variant;
  return platform;
}

function isAttestation(descriptor: Record<string, unknown>): boolean {
  const annotations = isRecord(descriptor.annotations) ? descriptor.annotations : {};
  if (annotations['vnd.docker.reference.type'] === 'attestation-manifest') return true;
  const platform = descriptorPlatform(descriptor.platform);
  return platform?.os === 'unknown' && platform.architecture === 'unknown';
}

/** The tag a top-level descriptor gives: containerd's full name, else the OCI ref name. */
function tagsOf(descriptor: Record<string, unknown>): string[] {
  const annotations = isRecord(descriptor.annotations) ? descriptor.annotations : {};
  const full = annotations[CONTAINERD_NAME];
  if (typeof full === 'string' && full) return [full];
  const ref = annotations[REF_NAME];
  return typeof ref === 'string' && ref ? [ref] : [];
}

/**
 * OCI image layouts (oci-archive, `oci:` dirs, BuildKit/containerd exports): `index.json` →
 * manifests or nested indexes → config + layers. Attestation manifests are skipped; manifests
 * whose blobs are absent are reported, not read.
 */
export async function readOciLayout(catalog: Catalog, index: unknown): Promise<{ images: Image[]; absent: AbsentManifest[] }> {
  const images: Image[] = [];
  const absent: AbsentManifest[] = [];
  const seen = new Set<string>();

  const visitIndex = async (doc: unknown, where: string, tags: string[], depth: number): Promise<void> => {
    if (!isRecord(doc)) throw catalog.fail(`${where} is not a JSON object`);
    if (doc.manifests === null || doc.manifests === undefined) return; // Docker 25 save by digest
    if (!Array.isArray(doc.manifests)) throw catalog.fail(`${where}: "manifests" is not a list`);
    for (const [i, descriptor] of doc.manifests.entries()) {
      if (!isRecord(descriptor) || !isDigest(descriptor.digest)) {
        throw catalog.fail(`${where}: manifests[${i}] has no valid digest`);
      }
      if (isAttestation(descriptor)) continue;
      const digest = descriptor.digest;
      const descriptorTags = depth === 0 ? tagsOf(descriptor) : tags;
      const path = blobPath(digest);
      if (!catalog.has(path)) {
        const missing: AbsentManifest = { digest, tags: descriptorTags };
        const platform = descriptorPlatform(descriptor.platform);
        if (platform) missing.platform = platform;
        absent.push(missing);
        continue;
      }
      const bytes = await catalog.bytes(path);
      if (sha256(bytes) !== digest) throw catalog.fail(`'${path}' does not match its digest ${digest}`);
      let doc2: unknown;
      try {
        doc2 = JSON.parse(bytes.toString('utf8'));
      } catch {
        throw catalog.fail(`'${path}' is not valid JSON`);
      }
      const mediaType = typeof descriptor.mediaType === 'string' ? descriptor.mediaType : undefined;
      const isIndex = (mediaType !== undefined && INDEX_TYPES.has(mediaType)) || (isRecord(doc2) && Array.isArray(doc2.manifests));
      if (isIndex) {
        if (depth >= MAX_DEPTH) throw catalog.fail(`indexes nested deeper than ${MAX_DEPTH}`);
        await visitIndex(doc2, `index ${path}`, descriptorTags, depth + 1);
        continue;
      }
      const key = `${digest}\0${descriptorTags.join(',')}`;
      if (seen.has(key)) continue;
      seen.add(key);
      images.push(await readManifest(catalog, doc2, path, digest, descriptorTags));
    }
  };

  await visitIndex(index, 'index.json', [], 0);
  return { images, absent };
}

/** Reads one image manifest (OCI or Docker v2 schema 2) whose blobs live under `blobs/`. */
export async function readManifest(
  catalog: Catalog,
  doc: unknown,
  where: string,
  manifestDigest: Digest | undefined,
  tags: string[],
  pathOf: (digest: Digest) => string = blobPath,
): Promise<Image> {
  if (!isRecord(doc) || !isRecord(doc.config) || !isDigest(doc.config.digest) || !Array.isArray(doc.layers)) {
    throw catalog.fail(`${where} is not an image manifest (no config or layers)`);
  }
  const layers: LayerRef[] = doc.layers.map((descriptor, i) => {
    if (!isRecord(descriptor) || !isDigest(descriptor.digest)) {
      throw catalog.fail(`${where}: layers[${i}] has no valid digest`);
    }
    const ref: LayerRef = { path: pathOf(descriptor.digest), digest: descriptor.digest };
    if (typeof descriptor.mediaType === 'string') ref.mediaType = descriptor.mediaType;
    return ref;
  });
  const refs = { configPath: pathOf(doc.config.digest), configDigest: doc.config.digest, layers, tags };
  return buildImage(catalog, manifestDigest ? { ...refs, manifestDigest } : refs);
}
