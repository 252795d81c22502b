import { hexOf, type Digest } from '../util/digest.js';

/** Where an OCI layout (and every archive ddiff writes) stores a blob: `blobs/sha256/<hex>`. */
export function blobPath(digest: Digest): string {
  return `blobs/sha256/${hexOf(digest)}`;
}

const CONTENT_ADDRESSED = /(?:^|\/)(?:sha256[:/])?([0-9a-f]{64})(?:\.json)?$/;

/** The digest an entry's name promises (`blobs/sha256/<hex>`, `<hex>.json`, `<hex>`), if any. */
export function digestFromName(path: string): Digest | undefined {
  const match = CONTENT_ADDRESSED.exec(path);
  return match ? `sha256:${match[1]}` : undefined;
}

/**
 * True when an entry is named by its digest, which then vouches for its stored bytes; other
 * compressed bytes are checked by inflating them against their diffID.
 */
export function isContentAddressed(path: string): boolean {
  return digestFromName(path) !== undefined;
}
