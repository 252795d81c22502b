import { createHash } from 'node:crypto';
import type { BaseFile } from './base-index.js';
import type { EncodeState } from './encode-state.js';
import { CHUNK, chunkWindow, record, Tag } from './format.js';
import type { FileContent } from './tar-scan.js';

/**
 * Files larger than CHUNK are never held: they go piece by piece (CHUNK bytes each), every
 * piece a copy of the source's same range, zeros, a delta against the source around that range,
 * or literal. The source is chosen on the first piece: a base file starting with the same
 * CHUNK bytes (a moved file), else the one at the same path or with the same name.
 */
const ZEROS = Buffer.alloc(CHUNK);

async function readPiece(content: FileContent, length: number): Promise<Buffer> {
  const piece = Buffer.allocUnsafe(length);
  for (let filled = 0; filled < length; ) {
    const chunk = await content.next(length - filled);
    chunk.copy(piece, filled);
    filled += chunk.length;
  }
  return piece;
}

type PieceKind = 'copy' | 'zero' | 'delta' | 'literal';

interface PieceRecord {
  kind: PieceKind;
  parts: Buffer[];
}

async function preparePiece(state: EncodeState, source: BaseFile | undefined, index: number, piece: Buffer): Promise<PieceRecord> {
  const start = index * CHUNK;
  if (piece.equals(ZEROS.subarray(0, piece.length))) return { kind: 'zero', parts: [record(Tag.zero)] };
  if (source !== undefined) {
    if (start + piece.length <= source.size && (await state.readFile(source, piece.length, start)).equals(piece)) {
      return { kind: 'copy', parts: [record(Tag.copy)] };
    }
    const window = chunkWindow(index, source.size);
    if (window.end > window.start) {
      const dictionary = await state.readFile(source, window.end - window.start, window.start);
      const payload = await state.tryDelta(piece, dictionary);
      if (payload !== undefined) {
        const digest = createHash('sha256').update(piece).digest();
        return { kind: 'delta', parts: [record(Tag.chunkDelta, payload.length), digest, payload] };
      }
    }
  }
  return { kind: 'literal', parts: [record(Tag.chunkLiteral), piece] };
}

/** A big file at the same path is the likely source; else a base file that starts the same (moved); else a namesake. */
async function chooseSource(state: EncodeState, path: string, size: number, first: Buffer): Promise<BaseFile | undefined> {
  const { index } = state.base;
  const same = index.samePath(path);
  if (same !== undefined && same.size > CHUNK) return same;
  const head = createHash('sha256').update(first).digest('binary');
  return (await index.sameHead(head, (file) => state.readFile(file, CHUNK))) ?? index.similar(path, size);
}

export async function encodeBigFile(state: EncodeState, path: string, size: number, content: FileContent): Promise<void> {
  const first = await readPiece(content, CHUNK);
  const source = state.reader === undefined ? undefined : await chooseSource(state, path, size, first);
  await state.pipeline.add(Promise.resolve(), 0, () => {
    if (source === undefined) return state.sink.record(record(Tag.big, size, 0));
    const [slot, ordinal] = state.source(source);
    return state.sink.record(record(Tag.big, size, slot! + 1, ordinal!));
  });
  const bytes: Record<PieceKind, number> = { copy: 0, zero: 0, delta: 0, literal: 0 };
  let piece: Buffer | undefined = first;
  for (let i = 0; i * CHUNK < size; i++) {
    piece ??= await readPiece(content, Math.min(CHUNK, size - i * CHUNK));
    const length = piece.length;
    await state.pipeline.add(preparePiece(state, source, i, piece), 3 * CHUNK, async ({ kind, parts }) => {
      bytes[kind] += length;
      await state.sink.record(parts[0]!, ...parts.slice(1));
    });
    piece = undefined;
  }
  await state.pipeline.add(Promise.resolve(), 0, async () => {
    const literal = bytes.literal + bytes.zero;
    state.count(bytes.copy > Math.max(bytes.delta, literal) ? 'referenced' : bytes.delta > literal ? 'deltified' : 'literal', size);
  });
}
