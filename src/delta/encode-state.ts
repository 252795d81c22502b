import { createHash } from 'node:crypto';
import type { Digest } from '../util/digest.js';
import { BaseReader, type DeltaBase } from './base-bytes.js';
import type { BaseFile } from './base-index.js';
import { encodeDelta, streamDelta } from './binary-delta.js';
import { DeltaReferenceError } from './errors.js';
import { CHUNK, DICT_MAX, OrdinalCoder } from './format.js';
import type { RecordSink } from './sink.js';

/** What encodeLayerDelta reports. */
export interface EncodeStats {
  /**
   * sha256 of the target tar as read, which is what the delta rebuilds to: every verbatim run is
   * the bytes themselves, every reference and copy was compared with (or hashed equal to) the
   * base bytes it names, zero pieces were checked, and binary deltas are zstd frames of their
   * input (decoded back and compared, with `verifyDeltas`). Compare it with the layer's diffID.
   */
  digest: Digest;
  /** Target tar bytes read (the layer's uncompressed size). */
  bytesIn: number;
  /** Delta bytes written, prefix included. */
  bytesOut: number;
  files: { referenced: number; deltified: number; literal: number };
  /** Content bytes of the files in each class (big files count where most of their pieces went). */
  contentBytes: { referenced: number; deltified: number; literal: number };
  /** diffIDs of the base layers the delta reads from: the load host needs exactly these. */
  baseLayers: Digest[];
}

export interface Delta {
  payload: Buffer;
  /** sha256 of the bytes it rebuilds. */
  digest: Buffer;
}

/** A delta is kept only when it is this much smaller than the target piece (else literal). */
const DELTA_GAIN = 0.9;
/** Below this, a literal costs about what a delta frame's own overhead does. */
const MIN_DELTA = 64;

/** What an encode shares between the whole-file and the piecewise paths. */
export class EncodeState {
  readonly ordinals = new OrdinalCoder();
  readonly used = new Set<number>();
  readonly stats: EncodeStats;
  readonly reader: BaseReader | undefined;
  /**
   * Buffers reused from delta to delta: gathering each file and reading each dictionary into new
   * ones was most of an encode's garbage, and V8 lets tens of MB of dead buffers pile up before
   * it collects them.
   */
  private buffers: { piece: Buffer; data: Buffer; dictionary: Buffer } | undefined;

  constructor(
    readonly base: DeltaBase,
    readonly sink: RecordSink,
    private readonly verify: boolean,
  ) {
    this.reader =
      base.bytes &&
      new BaseReader(base.bytes, base.index, (layer, offset, length, got) => {
        const diffId = base.index.layers[layer]?.diffId;
        return new DeltaReferenceError('delta base', `layer ${diffId} has ${got} of the ${length} bytes at ${offset} its index names`);
      });
    this.stats = {
      digest: 'sha256:',
      bytesIn: 0,
      bytesOut: 0,
      files: { referenced: 0, deltified: 0, literal: 0 },
      contentBytes: { referenced: 0, deltified: 0, literal: 0 },
      baseLayers: [],
    };
  }

  private reused(): { piece: Buffer; data: Buffer; dictionary: Buffer } {
    this.buffers ??= { piece: Buffer.allocUnsafe(CHUNK), data: Buffer.allocUnsafe(CHUNK), dictionary: Buffer.allocUnsafe(DICT_MAX) };
    return this.buffers;
  }

  /** The buffer big-file pieces are read into, reused from piece to piece. */
  pieceBuffer(): Buffer {
    return this.reused().piece;
  }

  /** The source fields of a record naming `file`, in output order (ordinals are coded against the previous one). */
  source(file: BaseFile): number[] {
    this.used.add(file.layer);
    return [file.layer, this.ordinals.encode(file.layer, file.ordinal)];
  }

  count(kind: 'referenced' | 'deltified' | 'literal', bytes: number): void {
    this.stats.files[kind]++;
    this.stats.contentBytes[kind] += bytes;
  }

  /**
   * A delta of the target bytes `parts` (`size` of them) against `length` bytes of `source`
   * from `start`: its payload and the target's sha256, or undefined when it does not pay (or,
   * verifying, does not decode back to the target bytes exactly).
   */
  async delta(parts: Buffer[], size: number, source: BaseFile, start: number, length: number): Promise<Delta | undefined> {
    const reader = this.reader;
    if (size < MIN_DELTA || length === 0 || reader === undefined) return undefined;
    const buffers = this.reused();
    const dictionary = buffers.dictionary.subarray(0, length);
    await reader.readInto(source.layer, source.offset + start, dictionary);
    let data = parts[0]!;
    if (parts.length > 1) {
      data = buffers.data.subarray(0, size);
      let at = 0;
      for (const part of parts) at += part.copy(data, at);
    }
    const payload = encodeDelta(data, dictionary);
    if (payload.length >= size * DELTA_GAIN) return undefined;
    let checked = 0;
    const same =
      !this.verify ||
      (await streamDelta(payload, dictionary, size, (chunk) => {
        checked += chunk.length;
        return chunk.equals(data.subarray(checked - chunk.length, checked));
      }));
    return same ? { payload, digest: createHash('sha256').update(data).digest() } : undefined;
  }
}
