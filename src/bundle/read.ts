import { BundleFormatError } from '../errors.js';
import type { Catalog } from '../archive/catalog.js';
import { measure } from '../archive/measure.js';
import { openSeekableArchive } from '../archive/open.js';
import type { Layer } from '../image/layer.js';
import { OCI_LAYER_TYPES } from '../image/media-types.js';
import type { Digest } from '../util/digest.js';
import { ArchiveError, DigestMismatchError } from '../errors.js';
import { blobPath } from '../image/blob-names.js';
import { METADATA_ENTRY, parseMetadata, type BundleBlob, type BundleMetadata } from './format.js';
import { stat } from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import { type Step, startStep } from '../util/progress.js';
import { sha256OfFileRange } from '../util/hash-worker.js';
import { tempDir } from '../util/cleanup.js';

export interface Bundle {
  path: string;
  catalog: Catalog;
  metadata: BundleMetadata;
  /** Every blob was checked against its digest (verifyBundle): its layers are not hashed again when copied. */
  verified: boolean;
  /** Removes the plain copy of a bundle read from stdin or decompressed, if one was made. */
  dispose(): Promise<void>;
}

/**
 * Opens a bundle file (or `-`, standard input) and reads its metadata (the first entry). A
 * bundle on stdin (`ddiff diff … -o - | ssh host ddiff load -`) or compressed as a whole
 * (`gzip app.ddiff`) is first written out plain to a temporary file: its blobs are verified
 * before anything is loaded, so it is read twice. That file goes when the process exits.
 */
export async function openBundle(path: string, stdin: Readable = process.stdin): Promise<Bundle> {
  if (path !== '-') {
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new ArchiveError(path, 'no such file');
    if (info.isDirectory()) throw new ArchiveError(path, 'is a directory, expected a bundle file');
    if (info.size === 0) throw new ArchiveError(path, 'file is empty');
  }
  const spool = await tempDir('ddiff-bundle-');
  try {
    const catalog = await openSeekableArchive(path, spool.path, stdin);
    const source = catalog.source;
    if (catalog.names()[0] !== METADATA_ENTRY) {
      throw new ArchiveError(source, `not a ddiff bundle (first entry is not ${METADATA_ENTRY})`);
    }
    let metadata: BundleMetadata;
    try {
      metadata = parseMetadata(await catalog.readJson(METADATA_ENTRY));
    } catch (error) {
      if (error instanceof BundleFormatError) throw new ArchiveError(source, error.message);
      throw error;
    }
    return { path: source, catalog, metadata, verified: false, dispose: spool.dispose };
  } catch (error) {
    await spool.dispose();
    throw error;
  }
}

/** Opens a bundle, runs `use` with it, and removes any temporary copy afterwards. */
export async function withBundle<T>(path: string, use: (bundle: Bundle) => Promise<T>): Promise<T> {
  const bundle = await openBundle(path);
  try {
    return await use(bundle);
  } finally {
    await bundle.dispose();
  }
}

/** A layer the bundle carries, as the one layer model (bytes checked as they are read). */
export async function bundleLayer(bundle: Bundle, diffId: Digest, blob: Digest): Promise<Layer> {
  const path = blobPath(blob);
  const entry = bundle.catalog.entry(path);
  const meta = bundle.metadata.blobs.find((b) => b.digest === blob);
  const compression = await bundle.catalog.compressionOf(path);
  const file = bundle.catalog.location(path);
  return {
    diffId,
    digest: blob,
    size: entry.size,
    mediaType: meta?.mediaType ?? OCI_LAYER_TYPES[compression],
    compression,
    ...(meta?.uncompressedSize === undefined ? {} : { uncompressedSize: meta.uncompressedSize }),
    source: bundle.path,
    path,
    open: () => bundle.catalog.open(path),
    ...(file ? { file } : {}),
    ...(bundle.verified ? { checked: true as const } : {}),
  };
}

/** Checks every blob the metadata lists: present, right size, right sha256. */
export async function verifyBundle(bundle: Bundle): Promise<void> {
  const step = startStep(
    'verifying',
    bundle.metadata.blobs.map((b) => b.size),
  );
  try {
    for (const [index, blob] of bundle.metadata.blobs.entries()) await verifyBlob(bundle, blob, step, index);
  } finally {
    step.finish();
  }
  for (const image of bundle.metadata.images) {
    const listed = new Set(bundle.metadata.blobs.map((b) => b.digest));
    for (const needed of [image.id, ...image.layers.flatMap((l) => (l.blob ? [l.blob] : []))]) {
      if (!listed.has(needed)) throw new ArchiveError(bundle.path, `metadata names blob ${needed} but does not list it`);
    }
  }
  bundle.verified = true;
}

async function verifyBlob(bundle: Bundle, blob: BundleBlob, step: Step, index: number): Promise<void> {
  const name = blobPath(blob.digest);
  if (!bundle.catalog.has(name)) throw new ArchiveError(bundle.path, `blob ${blob.digest} is missing from the bundle`);
  const facts = await hashBlob(bundle, name, step, index);
  if (facts.size !== blob.size || facts.digest !== blob.digest) {
    throw new DigestMismatchError(
      bundle.path,
      `blob ${blob.digest} is corrupt (${facts.size} bytes hashing to ${facts.digest}; expected ${blob.size} bytes)`,
    );
  }
}

/** A blob's digest and size: hashed in place (sha256OfFileRange) when it lies in a file, else streamed. */
async function hashBlob(bundle: Bundle, name: string, step: Step, index: number): Promise<{ digest: Digest; size: number }> {
  const file = bundle.catalog.location(name);
  const { size } = bundle.catalog.entry(name);
  if (file !== undefined) {
    const hashed = await sha256OfFileRange(file.path, file.offset, size);
    step.done(index, hashed.size);
    return hashed;
  }
  const counted = pipeline(bundle.catalog.open(name), step.stream(index), () => undefined);
  return (await measure(counted, { wantDiffId: false, keepJsonUpTo: 0, source: bundle.path })).facts;
}
