import { BundleFormatError } from '../errors.js';
import { Catalog } from '../archive/catalog.js';
import { measure } from '../archive/measure.js';
import { TarFileCatalog } from '../archive/tar-file-catalog.js';
import { ArchiveError, DigestMismatchError } from '../errors.js';
import { blobPath } from '../archive/formats/oci-layout.js';
import { METADATA_ENTRY, parseMetadata, type BundleBlob, type BundleMetadata } from './format.js';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tempDir } from '../util/cleanup.js';

export interface Bundle {
  path: string;
  catalog: Catalog;
  metadata: BundleMetadata;
}

/**
 * A bundle arriving on stdin (`ddiff diff … -o - | ssh host ddiff load -`) is spooled to a
 * temporary file first: its blobs are verified before anything is loaded, so it is read twice.
 * The file goes when the process exits (see util/cleanup).
 */
async function spoolStdin(stdin: Readable): Promise<string> {
  const dir = await tempDir('ddiff-bundle-');
  const file = join(dir.path, 'bundle.ddiff');
  await pipeline(stdin, createWriteStream(file));
  return file;
}

/** Opens a bundle file (or `-`, standard input) and reads its metadata (the first entry). */
export async function openBundle(path: string, stdin: Readable = process.stdin): Promise<Bundle> {
  if (path === '-') {
    const spooled = await spoolStdin(stdin);
    if ((await stat(spooled)).size === 0) throw new ArchiveError('<stdin>', 'input is empty');
    return readBundleFile(spooled, '<stdin>');
  }
  return readBundleFile(path, path);
}

async function readBundleFile(file: string, path: string): Promise<Bundle> {
  const info = await stat(file).catch(() => undefined);
  if (!info) throw new ArchiveError(path, 'no such file');
  if (info.isDirectory()) throw new ArchiveError(path, 'is a directory, expected a bundle file');
  if (info.size === 0) throw new ArchiveError(path, 'file is empty');
  const catalog = await TarFileCatalog.open(file, path);
  if (catalog.names()[0] !== METADATA_ENTRY) {
    throw new ArchiveError(path, `not a ddiff bundle (first entry is not ${METADATA_ENTRY})`);
  }
  let metadata: BundleMetadata;
  try {
    metadata = parseMetadata(await catalog.readJson(METADATA_ENTRY));
  } catch (error) {
    if (error instanceof BundleFormatError) throw new ArchiveError(path, error.message);
    throw error;
  }
  return { path, catalog, metadata };
}

/** Checks every blob the metadata lists: present, right size, right sha256. */
export async function verifyBundle(bundle: Bundle): Promise<void> {
  for (const blob of bundle.metadata.blobs) await verifyBlob(bundle, blob);
  for (const image of bundle.metadata.images) {
    const listed = new Set(bundle.metadata.blobs.map((b) => b.digest));
    for (const needed of [image.id, ...image.layers.flatMap((l) => (l.blob ? [l.blob] : []))]) {
      if (!listed.has(needed)) throw new ArchiveError(bundle.path, `metadata names blob ${needed} but does not list it`);
    }
  }
}

async function verifyBlob(bundle: Bundle, blob: BundleBlob): Promise<void> {
  const name = blobPath(blob.digest);
  if (!bundle.catalog.has(name)) throw new ArchiveError(bundle.path, `blob ${blob.digest} is missing from the bundle`);
  const { facts } = await measure(bundle.catalog.open(name), { wantDiffId: false, keepJsonUpTo: 0, source: bundle.path });
  if (facts.size !== blob.size || facts.digest !== blob.digest) {
    throw new DigestMismatchError(
      bundle.path,
      `blob ${blob.digest} is corrupt (${facts.size} bytes hashing to ${facts.digest}; expected ${blob.size} bytes)`,
    );
  }
}
