import { BundleFormatError } from '../errors.js';
import { isDigest, type Digest } from '../util/digest.js';
import { isRecord } from '../util/json.js';

/**
 * A bundle is an uncompressed tar: `ddiff-bundle.json` (this metadata) first, then
 * `blobs/sha256/<hex>` for each target config and each layer the base lacks. Layer blobs are
 * compressed (zstd by default, as they arrived when they came compressed), so the outer tar is not.
 */
const BUNDLE_FORMAT = 'ddiff-bundle';
/** Bundles without deltas are written as version 1, which older ddiff reads; deltas need 2. */
const BUNDLE_VERSION = 2;
const BUNDLE_VERSION_WITHOUT_DELTAS = 1;
export const METADATA_ENTRY = 'ddiff-bundle.json';

export interface BundleBlob {
  digest: Digest;
  size: number;
  mediaType: string;
  /** Bytes of the layer uncompressed, so a reader that cannot take the compression can be fed the inflated tar. */
  uncompressedSize?: number;
  /** Present when the blob is a layer delta (src/delta): what rebuilding it needs. */
  delta?: DeltaInfo;
}

/** A layer stored as a delta against base layers (bundle version 2). */
export interface DeltaInfo {
  /** Base layers (diffIDs) whose files the delta reads: load must find these too. */
  baseLayers: Digest[];
  /** Bytes of the rebuilt layer tar. */
  uncompressedSize: number;
  /**
   * Bytes the layer would have taken whole in the bundle: measured only when the delta's size
   * did not settle that it is smaller (it is then at least 1/16 of the layer's tar).
   */
  wholeSize?: number;
  files: { referenced: number; deltified: number; literal: number };
}

interface BundleLayer {
  diffId: Digest;
  /** Digest of the blob in the bundle; absent when the layer comes from the base. */
  blob?: Digest;
  /** Bytes of this layer as the target stored it (for "bundle vs full image" figures). */
  size?: number;
}

export interface BundleImage {
  tags: string[];
  /** Image ID = digest of the config blob, which the bundle always holds. */
  id: Digest;
  platform: string;
  layers: BundleLayer[];
}

export interface BundleMetadata {
  format: typeof BUNDLE_FORMAT;
  version: number;
  created: string;
  base: {
    /** What the user named as the base (image reference or archive path), if anything. */
    reference?: string;
    ids: Digest[];
    tags: string[];
    /** DiffIDs that load must find in the base. */
    needed: Digest[];
  };
  images: BundleImage[];
  blobs: BundleBlob[];
}

function check(condition: unknown, problem: string): asserts condition {
  if (!condition) throw new BundleFormatError(problem);
}

function strings(value: unknown): boolean {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function digests(value: unknown, what: string): Digest[] {
  check(Array.isArray(value) && value.every(isDigest), `${what} is not a list of sha256 digests`);
  return value as Digest[];
}

function isDeltaInfo(value: unknown): boolean {
  if (!isRecord(value) || !Array.isArray(value.baseLayers) || !value.baseLayers.every(isDigest)) return false;
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  const files = value.files;
  return (
    count(value.uncompressedSize) &&
    (value.wholeSize === undefined || count(value.wholeSize)) &&
    isRecord(files) &&
    count(files.referenced) &&
    count(files.deltified) &&
    count(files.literal)
  );
}

/** Validates parsed metadata; unknown newer versions are refused with a clear message. */
export function parseMetadata(json: unknown): BundleMetadata {
  check(isRecord(json), 'metadata is not a JSON object');
  const doc = json as Record<string, unknown>;
  check(doc.format === BUNDLE_FORMAT, 'not a ddiff bundle (wrong "format")');
  check(typeof doc.version === 'number', 'metadata has no version');
  check(
    doc.version <= BUNDLE_VERSION,
    `bundle format version ${doc.version} is newer than this ddiff supports (${BUNDLE_VERSION}); upgrade ddiff`,
  );
  const base = doc.base;
  check(isRecord(base), 'metadata has no base');
  digests(base.ids, 'base.ids');
  digests(base.needed, 'base.needed');
  check(strings(base.tags), 'base.tags is not a list of strings');
  check(base.reference === undefined || typeof base.reference === 'string', 'base.reference is not a string');
  check(Array.isArray(doc.blobs), 'metadata has no blobs list');
  for (const b of doc.blobs as unknown[]) {
    check(
      isRecord(b) &&
        isDigest(b.digest) &&
        Number.isSafeInteger(b.size) &&
        (b.size as number) >= 0 &&
        typeof b.mediaType === 'string' &&
        (b.uncompressedSize === undefined || (Number.isSafeInteger(b.uncompressedSize) && (b.uncompressedSize as number) >= 0)) &&
        (b.delta === undefined || isDeltaInfo(b.delta)),
      'a blob entry is malformed',
    );
  }
  check(Array.isArray(doc.images) && doc.images.length > 0, 'metadata lists no images');
  for (const i of doc.images as unknown[]) {
    check(
      isRecord(i) && isDigest(i.id) && Array.isArray(i.layers) && strings(i.tags) && typeof i.platform === 'string',
      'an image entry is malformed',
    );
    for (const l of i.layers as unknown[]) {
      check(
        isRecord(l) &&
          isDigest(l.diffId) &&
          (l.blob === undefined || isDigest(l.blob)) &&
          (l.size === undefined || (Number.isSafeInteger(l.size) && (l.size as number) >= 0)),
        'a layer entry is malformed',
      );
    }
  }
  return doc as unknown as BundleMetadata;
}

const CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';

/** The blob record of an image's config. */
export function configBlob(id: Digest, bytes: Buffer): BundleBlob {
  return { digest: id, size: bytes.length, mediaType: CONFIG_MEDIA_TYPE };
}

/** A bundle's metadata: version 2 only when it holds a delta, which older ddiff cannot read. */
export function bundleMetadata(
  base: BundleMetadata['base'],
  images: BundleImage[],
  blobs: BundleBlob[],
  needed: Digest[],
  created: string,
): BundleMetadata {
  return {
    format: BUNDLE_FORMAT,
    version: blobs.some((b) => b.delta) ? BUNDLE_VERSION : BUNDLE_VERSION_WITHOUT_DELTAS,
    created,
    base: { ...base, needed },
    images,
    blobs,
  };
}

/** The metadata entry's text. */
export function metadataText(metadata: BundleMetadata): string {
  return `${JSON.stringify(metadata, null, 2)}\n`;
}
