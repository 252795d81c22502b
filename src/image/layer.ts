import type { Readable, Transform } from 'node:stream';
import { corrupt, EntrySizeError } from '../errors.js';
import type { Compression } from '../util/compression.js';
import { decompressor } from '../util/compression.js';
import type { Digest } from '../util/digest.js';
import { DigestingStream } from '../util/digesting-stream.js';
import { sha256OfFileRange } from '../util/hash-worker.js';
import { Sha256Thread } from '../util/sha256-thread.js';
import { canInflateInPlace, inflateZstdFileRange, type PieceProducer } from '../util/inflate-file.js';

/**
 * One layer of an image, wherever its bytes are (an archive file, a layout directory, a spooled
 * stdin, a bundle, an engine's save stream): its identity and a way to read its stored bytes.
 * Writers derive every entry name and manifest line from these fields, so what they describe
 * and what they write cannot disagree.
 */
export interface Layer {
  /** sha256 of the uncompressed layer tar, from the config's rootfs.diff_ids. */
  readonly diffId: Digest;
  /** sha256 of the bytes as stored (compressed or not). */
  readonly digest: Digest;
  /** Bytes as stored. */
  readonly size: number;
  /** Bytes of the uncompressed tar, when known without reading it (bundles record it). */
  readonly uncompressedSize?: number;
  readonly mediaType: string;
  /** Compression of the stored bytes, read from their magic bytes (media types lie). */
  readonly compression: Compression;
  /** The history line that created this layer, when the config has one. */
  readonly createdBy?: string;
  /** The user's name for where the bytes are (archive path, bundle path, `docker save x`), for messages. */
  readonly source: string;
  /** Entry name of the stored bytes inside `source`. */
  readonly path: string;
  /** Streams the stored bytes. */
  open(): Readable;
  /**
   * Where the stored bytes lie in a regular file, when they do (`size` bytes from `offset`):
   * they can then be read in place (seeked, hashed on another thread) instead of streamed.
   */
  readonly file?: FileLocation;
  /**
   * `open()` checks the bytes against `digest` itself (a delta layer rebuilt as it is read fails
   * its stream before the end), or they were hashed as this process wrote them to a file of its
   * own: writers copy them without hashing them again.
   */
  readonly checked?: true;
}

/** A byte range of a regular file: the bytes from `offset` on. */
export interface FileLocation {
  readonly path: string;
  readonly offset: number;
}

/** A blob as registries and OCI manifests name it. */
export interface BlobDescriptor {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
}

/**
 * A layer deliberately left out of a written archive because its reader holds it: Docker's
 * classic store finds it by its chain (only the diffID is needed); containerd's content store
 * by the blob `stored`, which the archive's manifest then names.
 */
export interface OmittedLayer {
  readonly omitted: true;
  readonly diffId: Digest;
  readonly stored?: BlobDescriptor;
}

/** How a layer is named in messages: its entry and its diffID. */
function describeLayer(layer: Pick<Layer, 'path' | 'diffId'>): string {
  return `layer '${layer.path}' (diffID ${layer.diffId})`;
}

/**
 * Passes a layer's stored bytes through and fails at their end when they do not hash to its
 * digest: corrupt input must never complete as output.
 */
export function verifyingStored(layer: Layer): Transform {
  return new DigestingStream({ digest: layer.digest, mismatch: (got) => storedBytesMismatch(layer, got) });
}

/**
 * A layer's stored bytes to copy, and how they are checked against its digest: in the stream
 * (`through`), or for bytes lying in a file, on the hashing thread beside the copy (`aside`,
 * which rejects on a mismatch); not at all when their producer checks them (`checked`).
 */
export function storedBytesChecked(layer: Layer): { data: Readable; through: Transform[]; aside?: Promise<void> } {
  if (layer.checked) return { data: layer.open(), through: [] };
  const { file } = layer;
  if (!file) return { data: layer.open(), through: [verifyingStored(layer)] };
  const aside = sha256OfFileRange(file.path, file.offset, layer.size).then((hashed) => checkStoredBytes(layer, hashed));
  aside.catch(() => undefined);
  return { data: layer.open(), through: [], aside };
}

/**
 * A layer's uncompressed bytes to copy, checked against its diffID unless the reader checks
 * them itself (`readerChecks`: Docker, Podman and containerd refuse a layer that does not hash
 * to its diffID; seen on Docker 20.10 and Podman 4.3) and the stored bytes were checked already
 * (a bundle's blobs, verified before a load). Hashing the inflated bytes in ddiff and again in
 * the engine was most of a fast-path load's CPU. zstd lying in a file is inflated into reused
 * buffers and lent piece by piece (`pieces`, util/inflate-file.ts; `counted` hears of each);
 * anything else streams.
 */
export function inflatedBytesChecked(
  layer: Layer,
  readerChecks: boolean,
  counted: (bytes: number) => void,
): ReturnType<typeof storedBytesChecked> | { pieces: PieceProducer } {
  const check = !(layer.checked && readerChecks);
  const { file } = layer;
  if (file && layer.compression === 'zstd' && canInflateInPlace()) {
    return {
      pieces: async (sink) => {
        // On the hashing thread, as DigestingStream hashes streamed bytes: the main thread decodes.
        const thread = check ? new Sha256Thread() : undefined;
        try {
          const hashed = thread && ((piece: Buffer) => thread.update(piece));
          await inflateZstdFileRange({ ...file, length: layer.size }, sink, {
            source: layer.source,
            counted,
            ...(hashed ? { hashed } : {}),
          });
        } catch (error) {
          thread?.abort();
          throw error;
        }
        const got = thread && (await thread.digest()).digest;
        if (got !== undefined && got !== layer.diffId) throw uncompressedBytesMismatch(layer, got);
      },
    };
  }
  const data = openUncompressed(layer);
  return { data, through: check ? [verifyingUncompressed(layer)] : [] };
}

/** The size of the layer's uncompressed tar, for a reader that cannot take its compression: it must be recorded. */
export function inflatedSize(layer: Layer): number {
  if (layer.uncompressedSize !== undefined) return layer.uncompressedSize;
  throw corrupt(layer.source, `layer ${layer.diffId}`, 'its uncompressed size is not recorded, so it cannot be inflated for the engine');
}

/** A writer's EntrySizeError as the layer's own: its bytes (inflated, or as stored) are not as many as its metadata says. */
export function asLayerSizeError(layer: Layer, inflated: boolean, error: unknown): unknown {
  if (!(error instanceof EntrySizeError)) return error;
  const got = `${error.got > error.expected ? 'at least ' : ''}${error.got} bytes`;
  const detail = inflated ? `it inflates to ${got}` : `it holds ${got}`;
  return corrupt(layer.source, describeLayer(layer), `${detail}, not the ${error.expected} its metadata records`);
}

/** Throws unless the stored bytes, as hashed where they were read, are the layer's. */
export function checkStoredBytes(layer: Layer, hashed: { digest: Digest; size: number }): void {
  if (hashed.digest !== layer.digest || hashed.size !== layer.size) throw storedBytesMismatch(layer, hashed.digest);
}

/** The error for stored bytes that hash to `got`, not the layer's digest. */
function storedBytesMismatch(layer: Layer, got: Digest): Error {
  return corrupt(layer.source, describeLayer(layer), `its bytes hash to ${got}, expected ${layer.digest}`);
}

/** Passes uncompressed layer bytes through and fails at their end unless they hash to the diffID. */
export function verifyingUncompressed(layer: Pick<Layer, 'source' | 'path' | 'diffId'>): DigestingStream {
  return new DigestingStream({ digest: layer.diffId, mismatch: (got) => uncompressedBytesMismatch(layer, got) });
}

/** The error for uncompressed bytes that hash to `got`, not the layer's diffID. */
export function uncompressedBytesMismatch(layer: Pick<Layer, 'source' | 'path' | 'diffId'>, got: Digest): Error {
  return corrupt(layer.source, describeLayer(layer), `its uncompressed bytes hash to ${got}, not its diffID`);
}

/** The layer's uncompressed tar, for a consumer that cannot read its compression. */
export function openUncompressed(layer: Layer): Readable {
  const stored = layer.open();
  if (layer.compression === 'none') return stored;
  const inflate = decompressor(layer.compression, layer.source);
  stored.on('error', (error) => inflate.destroy(error));
  return stored.pipe(inflate);
}
