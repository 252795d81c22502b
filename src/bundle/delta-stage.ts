import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { encodeLayerDelta, SpooledBase, verifyLayerDelta } from '../delta/index.js';
import { errorMessage } from '../errors.js';
import { type Layer, openUncompressed } from '../image/layer.js';
import { digestStream, hexOf, type Digest } from '../util/digest.js';
import type { BundleBlob, DeltaInfo } from './format.js';

const DELTA_MEDIA_TYPE = 'application/vnd.ddiff.layer.delta.v1';

/** Base layers a delta may read from: their diffIDs and uncompressed tars. */
export interface DeltaSources {
  layers: { diffId: Digest; open: () => Readable }[];
  /** Told once when the base's layers cannot be read: the new layers are then stored whole. */
  warn: (text: string) => void;
}

/**
 * The base's files, indexed once (every regular file of every source layer, spooled to disk so
 * binary deltas can read old bytes back), shared by every target layer's delta.
 */
export class DeltaStager {
  private base: Promise<SpooledBase> | undefined;
  private warned = false;

  constructor(
    private readonly sources: DeltaSources,
    private readonly dir: string,
    private readonly level: number,
  ) {}

  private spooled(): Promise<SpooledBase> {
    this.base ??= (async () => {
      const base = await SpooledBase.create(this.dir);
      for (const layer of this.sources.layers) await base.addLayer(layer.diffId, layer.open(), { hash: false });
      return base;
    })();
    return this.base;
  }

  /**
   * Writes the layer's delta and keeps it when it is smaller than the whole blob and proven to
   * rebuild the layer's exact bytes (its diffID); otherwise undefined: the layer stays whole.
   */
  async tryDelta(layer: Layer, whole: BundleBlob): Promise<(BundleBlob & { file: string }) | undefined> {
    let base: SpooledBase;
    try {
      base = await this.spooled();
    } catch (error) {
      // A base whose bytes are unreadable or corrupt costs the deltas, not the bundle: a whole
      // layer needs nothing from the base.
      if (!this.warned)
        this.sources.warn(`warning: the base's layers cannot be read for deltas (${errorMessage(error)}); new layers are stored whole`);
      this.warned = true;
      return undefined;
    }
    const file = join(this.dir, `delta-${hexOf(layer.diffId)}`);
    const stats = await encodeLayerDelta(openUncompressed(layer), base, createWriteStream(file), { level: this.level });
    // A delta that reads nothing from the base is only another compression: the layer stays whole.
    if (stats.digest !== layer.diffId || stats.bytesOut >= whole.size || stats.baseLayers.length === 0) return undefined;
    const proof = await verifyLayerDelta(createReadStream(file), base, { source: layer.source, expectedSize: stats.bytesIn });
    if (proof.digest !== layer.diffId) return undefined;
    const { digest, size } = await digestStream(createReadStream(file));
    const delta: DeltaInfo = {
      baseLayers: stats.baseLayers,
      uncompressedSize: stats.bytesIn,
      wholeSize: whole.size,
      files: stats.files,
    };
    return { digest, size, mediaType: DELTA_MEDIA_TYPE, delta, file };
  }

  async close(): Promise<void> {
    if (this.base) await (await this.base.catch(() => undefined))?.close();
  }
}
