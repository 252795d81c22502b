import { createFileWriter, writeFailure } from '../util/write-file.js';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type BaseFileIndex, type DeltaBase, encodeLayerDelta, type EncodeStats, SpooledBase } from '../delta/index.js';
import { errorMessage } from '../errors.js';
import { type FileLocation, type Layer, uncompressedBytesMismatch } from '../image/layer.js';
import { hexOf, type Digest } from '../util/digest.js';
import { DigestingStream } from '../util/digesting-stream.js';
import { sha256OfFileRange } from '../util/hash-worker.js';
import type { BundleBlob, DeltaInfo } from './format.js';

const DELTA_MEDIA_TYPE = 'application/vnd.ddiff.layer.delta.v1';

/** One base layer a delta may read from. */
interface DeltaSourceLayer {
  diffId: Digest;
  /** Its uncompressed tar, checked against the diffID as it is read. */
  open: () => Readable;
  /**
   * Where the uncompressed tar lies in a file, when it does: then it is read in place (only its
   * headers, to index it) and checked against its diffID on another thread meanwhile.
   */
  file?: FileLocation & { length: number };
}

/** Base layers a delta may read from: their diffIDs and uncompressed tars, or only their files' hashes. */
export interface DeltaSources {
  layers: DeltaSourceLayer[];
  /**
   * A have-list's index of the base's files (hashes, no bytes): deltas then refer to files the
   * base host has, and make no binary delta. `layers` is then empty.
   */
  index?: BaseFileIndex;
  /** Told once when the base's layers cannot be read: the new layers are then stored whole. */
  warn: (text: string) => void;
}

export type StagedBlob = BundleBlob & { file: string };

/** The base the deltas are made against, once indexed; `checked` settles when its layers' diffIDs are. */
interface StagingBase {
  base: DeltaBase;
  close(): Promise<void>;
  checked: Promise<void>;
}

/**
 * A delta at most this fraction of the layer's tar is kept without staging the whole layer to
 * compare: zstd -3 of a real layer tar rarely gets below 1/4 of it, and the comparison costs a
 * whole compression (~1.5 s of CPU per 100 MB on these cores, more than the delta itself).
 * Larger deltas are compared with the whole blob.
 */
const CLEARLY_SMALLER = 1 / 16;

/**
 * The base's files, indexed once (every regular file of every source layer, read in place or
 * spooled to disk so binary deltas can read old bytes back), shared by every target layer's delta.
 */
export class DeltaStager {
  private base: Promise<StagingBase> | undefined;
  private warned = false;

  constructor(
    private readonly sources: DeltaSources,
    private readonly dir: string,
    private readonly level: number,
  ) {}

  private spooled(): Promise<StagingBase> {
    const { index } = this.sources;
    if (index) this.base ??= Promise.resolve({ base: { index }, close: async () => undefined, checked: Promise.resolve() });
    this.base ??= (async () => {
      const base = await SpooledBase.create(this.dir);
      const checks: Promise<void>[] = [];
      try {
        for (const layer of this.sources.layers) {
          const { file } = layer;
          if (file === undefined) {
            await base.addLayer(layer.diffId, layer.open(), { hash: false });
            continue;
          }
          checks.push(checkDiffId(layer.diffId, file));
          await base.addLayerFile(layer.diffId, file.path, { hash: false, start: file.offset, length: file.length });
        }
      } catch (error) {
        await base.close();
        throw error;
      }
      const checked = Promise.all(checks).then(() => undefined);
      checked.catch(() => undefined);
      return { base, close: () => base.close(), checked };
    })();
    return this.base;
  }

  private cannotRead(error: unknown): void {
    // A base whose bytes are unreadable or corrupt costs the deltas, not the bundle: a whole
    // layer needs nothing from the base.
    if (!this.warned)
      this.sources.warn(`warning: the base's layers cannot be read for deltas (${errorMessage(error)}); new layers are stored whole`);
    this.warned = true;
  }

  /**
   * The layer as a delta when that is smaller than its whole blob (`whole` stages that, for a
   * comparison the delta's size does not settle), reads from the base, and rebuilds the layer's
   * exact bytes (`bytes`, its uncompressed tar, read once and checked against its diffID);
   * otherwise the whole blob. Undefined when the base cannot be read: the caller stages it whole.
   */
  async stage(layer: Layer, bytes: Readable, whole: () => Promise<StagedBlob>): Promise<StagedBlob | undefined> {
    let spooled: StagingBase;
    try {
      spooled = await this.spooled();
    } catch (error) {
      this.cannotRead(error);
      return undefined;
    }
    const file = join(this.dir, `delta-${hexOf(layer.diffId)}`);
    const written = new DigestingStream();
    // pipeline, not pipe: a failing file (ENOSPC) must fail the encoder writing into `written`.
    const staged = createFileWriter(file);
    const out = pipeline(written, staged);
    out.catch(() => undefined);
    let stats: EncodeStats;
    try {
      // verifyDeltas: every binary delta is decoded back and compared as it is made, so the
      // digest of what was read is what the delta rebuilds (references are compared or hashed
      // equal, verbatim bytes are the bytes): no second decode is needed to prove it.
      stats = await encodeLayerDelta(bytes, spooled.base, written, { level: this.level, verifyDeltas: true });
      await out;
    } catch (error) {
      written.destroy();
      await rm(file, { force: true });
      throw writeFailure(staged, error);
    }
    if (stats.digest !== layer.diffId) {
      await rm(file, { force: true });
      throw uncompressedBytesMismatch(layer, stats.digest);
    }
    const baseOk = await spooled.checked.then(
      () => true,
      (error: unknown) => {
        this.cannotRead(error);
        return false;
      },
    );
    // A delta that reads nothing from the base is only another compression: the layer stays whole.
    let wholeSize: number | undefined;
    if (baseOk && stats.baseLayers.length > 0 && written.size > stats.bytesIn * CLEARLY_SMALLER) {
      const blob = await whole();
      if (written.size < blob.size) {
        wholeSize = blob.size;
        await rm(blob.file, { force: true });
      } else {
        await rm(file, { force: true });
        return blob;
      }
    }
    if (!baseOk || stats.baseLayers.length === 0) {
      await rm(file, { force: true });
      return whole();
    }
    const delta: DeltaInfo = {
      baseLayers: stats.baseLayers,
      uncompressedSize: stats.bytesIn,
      files: stats.files,
      ...(wholeSize === undefined ? {} : { wholeSize }),
    };
    return { digest: written.digest(), size: written.size, mediaType: DELTA_MEDIA_TYPE, delta, file };
  }

  async close(): Promise<void> {
    if (this.base) await (await this.base.catch(() => undefined))?.close();
  }
}

async function checkDiffId(diffId: Digest, file: FileLocation & { length: number }): Promise<void> {
  const { digest } = await sha256OfFileRange(file.path, file.offset, file.length);
  if (digest !== diffId) throw new Error(`layer ${diffId} hashes to ${digest}`);
}
