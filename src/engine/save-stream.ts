import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { ArchiveError, TarFormatError, TarTruncatedError } from '../errors.js';
import type { ImageArchiveWriter, StreamedLayer } from '../archive/write-archive.js';
import { readTarStream } from '../tar/extract.js';
import type { Digest } from '../util/digest.js';

/** Top-level entries of docker-save / podman-save archives that are never layers. */
const METADATA = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories']);

/**
 * Whether a save-stream entry may be a layer, told by its name and place alone, never by its
 * bytes (a layer may start with `{`, or be empty): `<v1id>/layer.tar` (Docker ≤ 24),
 * `<diffid>.tar` (Podman), `blobs/sha256/<hex>` (Docker ≥ 25, which also stores its JSON
 * there: those are copied too, as unused blobs). Configs are `<hex>.json` at the top;
 * `<v1id>/json` and `<v1id>/VERSION` are v1 metadata.
 */
export function mayBeLayer(name: string): boolean {
  const clean = posix.normalize(name).replace(/^\.\//, '');
  if (METADATA.has(clean)) return false;
  const base = posix.basename(clean);
  if (base === 'json' || base === 'VERSION') return false;
  return clean.includes('/') || !clean.endsWith('.json');
}

/**
 * Copies every layer of an engine's save stream into `writer` as it arrives, hashing it on the
 * way: the base is never spooled, and its save overlaps the load it feeds. Returns the copied
 * layers by diffID. Layers that turn out not to be needed cost only their bytes.
 */
export async function copySavedLayers(save: Readable, writer: ImageArchiveWriter, source: string): Promise<Map<Digest, StreamedLayer>> {
  const copied = new Map<Digest, StreamedLayer>();
  try {
    await readTarStream(save, async (entry) => {
      if (entry.type !== 'file' || !mayBeLayer(entry.name)) return;
      const layer = await writer.addStreamedLayer(entry.body, entry.size, source, entry.name);
      if (!copied.has(layer.diffId)) copied.set(layer.diffId, layer);
    });
  } catch (error) {
    if (error instanceof TarFormatError || error instanceof TarTruncatedError) {
      throw new ArchiveError(source, `cannot read the archive stream: ${error.message}`, { cause: error });
    }
    throw error;
  }
  return copied;
}
