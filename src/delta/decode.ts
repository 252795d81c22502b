import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { Digest } from '../util/digest.js';
import { BaseReader, type DeltaBase } from './base-bytes.js';
import { ChunkReader } from './chunk-reader.js';
import { decodeBigFile } from './decode-big.js';
import { DeltaCorruptError, DeltaFormatError, DeltaReferenceError } from './errors.js';
import { CHUNK, DICT_MAX, MAGIC, OrdinalCoder, PREFIX_SIZE, RAW_MAX, Tag, VERSION } from './format.js';
import { DecodeState, type Slot } from './decode-state.js';
import { RecordReader } from './record-reader.js';

/** Rebuilds a target layer tar from its delta (format.ts) and the base. */
export interface DecodeOptions {
  /** Names the delta in errors, e.g. `app.ddiff: layer sha256:…`. */
  source?: string;
  /** The layer's size if the caller knows it: producing more is refused before it happens. */
  expectedSize?: number;
  /** Without expectedSize, the most a delta may produce (default 1 TiB). */
  maxSize?: number;
  /** End `out` when done (default true). */
  end?: boolean;
}

export interface DecodeResult {
  /** sha256 of the bytes written: the caller compares it with the layer's diffID. */
  digest: Digest;
  size: number;
}

const MAX_BASE_LAYERS = 1 << 16;

async function* after(reader: ChunkReader): AsyncGenerator<Buffer> {
  for (;;) {
    const chunk = await reader.next(Number.MAX_SAFE_INTEGER);
    if (chunk.length === 0) return;
    yield chunk;
  }
}

async function readBases(records: RecordReader, base: DeltaBase): Promise<Slot[]> {
  if ((await records.tag()) !== Tag.base) throw new DeltaFormatError(records.source, 'delta does not start with its BASE record');
  const count = await records.size('base layer count', 0, MAX_BASE_LAYERS);
  const slots: Slot[] = [];
  for (let i = 0; i < count; i++) {
    const diffId: Digest = `sha256:${(await records.bytes(32)).toString('hex')}`;
    slots.push({ diffId, layer: base.index.layerOf(diffId) });
  }
  return slots;
}

async function decodeRecords(records: RecordReader, state: DecodeState): Promise<void> {
  const emit = (chunk: Buffer): Promise<void> => state.emit(chunk);
  for (;;) {
    const tag = await records.tag();
    switch (tag) {
      case -1:
        throw new DeltaFormatError(records.source, 'delta is truncated: it ends before its END record');
      case Tag.raw:
        await records.pass(await records.size('RAW record', 1, RAW_MAX), emit);
        break;
      case Tag.literal:
        await records.pass(await records.size('literal file', 1, CHUNK), emit);
        break;
      case Tag.ref:
        await state.copyFile(await state.sourceFile(records));
        break;
      case Tag.delta: {
        const file = await state.sourceFile(records);
        const size = await records.size('delta output', 1, CHUNK);
        const payload = await records.size('delta payload', 1, CHUNK);
        const digest = await records.bytes(32);
        const dictionary = await state.dictionary(file, 0, Math.min(file.size, DICT_MAX));
        await state.applyDelta(await records.bytes(payload), dictionary, size, digest, file.path);
        break;
      }
      case Tag.big:
        await decodeBigFile(records, state);
        break;
      case Tag.end: {
        const size = await records.varint('total size');
        const digest = await records.bytes(32);
        await state.finish(size, digest);
        await state.flush();
        if (!(await records.atEnd())) throw new DeltaFormatError(records.source, 'delta has data after its END record');
        return;
      }
      default:
        throw new DeltaFormatError(records.source, `delta has an unknown record 0x${tag.toString(16)} at byte ${records.position - 1}`);
    }
  }
}

export async function decodeLayerDelta(
  delta: Readable | AsyncIterable<Uint8Array>,
  base: DeltaBase,
  out: Writable,
  options: DecodeOptions = {},
): Promise<DecodeResult> {
  const source = options.source ?? 'delta';
  const input = new ChunkReader(delta);
  const head = await input.readUpTo(PREFIX_SIZE);
  if (head.length < PREFIX_SIZE || !head.subarray(0, 4).equals(MAGIC)) {
    throw new DeltaFormatError(source, 'not a ddiff layer delta (bad magic)');
  }
  if (head[4] !== VERSION) {
    throw new DeltaFormatError(
      source,
      `delta format version ${head[4]} is not the one this ddiff reads (${VERSION}); use a ddiff that reads it`,
    );
  }
  // Node's zstd stream may end with an extra empty frame, so frames after the first are allowed;
  // bytes after the END record are refused below.
  const inflate = zlib.createZstdDecompress({ chunkSize: 64 * 1024 });
  const feeding = pipeline(Readable.from(after(input)), inflate);
  feeding.catch(() => undefined);
  const records = new RecordReader(new ChunkReader(inflate), source);
  const limit = options.expectedSize ?? options.maxSize ?? 2 ** 40;
  const reader =
    base.bytes &&
    new BaseReader(
      base.bytes,
      base.index,
      (layer, offset, length, got) =>
        new DeltaReferenceError(
          source,
          `base layer ${base.index.layers[layer]?.diffId} has ${got} of the ${length} bytes at ${offset} the delta needs`,
        ),
    );
  let state: DecodeState | undefined;
  try {
    const slots = await readBases(records, base);
    state = new DecodeState({ source, out, limit, slots, index: base.index, reader, ordinals: new OrdinalCoder() });
    await decodeRecords(records, state);
    await feeding;
    if (options.end ?? true) {
      out.end();
      await once(out, 'finish');
    }
    return state.result();
  } catch (error) {
    inflate.destroy();
    state?.abort();
    throw mapInflateError(error, source);
  }
}

/** zlib's errors for a bad zstd frame, as delta errors. */
function mapInflateError(error: unknown, source: string): unknown {
  const code = error instanceof Error && 'code' in error ? String(error.code) : '';
  if (code.startsWith('ZSTD_error')) return new DeltaCorruptError(source, `delta is corrupt: ${(error as Error).message}`);
  if (code === 'Z_BUF_ERROR') return new DeltaFormatError(source, 'delta is truncated: its compressed stream ends early');
  return error;
}

/** Decodes without keeping the output: the proof that a delta rebuilds its layer. */
export async function verifyLayerDelta(
  delta: Readable | AsyncIterable<Uint8Array>,
  base: DeltaBase,
  options: DecodeOptions = {},
): Promise<DecodeResult> {
  const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  return decodeLayerDelta(delta, base, sink, options);
}
