import { createHash } from 'node:crypto';
import type { BaseFile } from './base-index.js';
import type { EncodeState } from './encode-state.js';
import { CHUNK, chunkWindow, record, Tag, ZEROS } from './format.js';
import type { FileContent } from './tar-scan.js';

/**
 * Files larger than CHUNK are never held: they go piece by piece (CHUNK bytes each), every
 * piece a copy of the source's same range, zeros, a delta against the source around that range,
 * or literal. The source is chosen on the first piece: the big file at the same path, else a
 * base file starting with the same CHUNK bytes (a moved file), else one with the same name;
 * against a have-list's index (hashes, no bytes), the one starting with the same CHUNK bytes,
 * whose pieces are copied where their hashes match.
 * Each piece is copied out of the stream's chunks into one buffer reused for every piece: chunks
 * kept until their piece was done lived long enough to reach V8's old generation, where ~64 MB
 * of them piled up dead before a full collection (1 GiB file: 170 MB peak RSS).
 */

type PieceKind = 'copy' | 'zero' | 'delta' | 'literal';

/** A piece, copied out of the stream's chunks at once into a buffer reused for every piece. */
async function readPiece(content: FileContent, length: number, into: Buffer): Promise<Buffer> {
  for (let filled = 0; filled < length; ) filled += (await content.next(length - filled)).copy(into, filled);
  return into.subarray(0, length);
}

/** A piece's record parts. */
async function preparePiece(state: EncodeState, source: BaseFile | undefined, index: number, piece: Buffer) {
  const start = index * CHUNK;
  if (piece.equals(ZEROS.subarray(0, piece.length))) return { kind: 'zero' as const, out: [record(Tag.zero)] };
  if (source !== undefined && state.reader === undefined && sameAsPiece(source, index, piece)) {
    return { kind: 'copy' as const, out: [record(Tag.copy)] };
  }
  if (source !== undefined && state.reader !== undefined) {
    if (start + piece.length <= source.size && (await state.reader.equals(source.layer, source.offset + start, [piece]))) {
      return { kind: 'copy' as const, out: [record(Tag.copy)] };
    }
    const window = chunkWindow(index, source.size);
    const delta = await state.delta([piece], piece.length, source, window.start, window.end - window.start);
    if (delta !== undefined) {
      return { kind: 'delta' as const, out: [record(Tag.chunkDelta, delta.payload.length), delta.digest, delta.payload] };
    }
  }
  return { kind: 'literal' as const, out: [record(Tag.chunkLiteral), piece] };
}

/**
 * Without base bytes (a have-list's index), a piece is a copy when the source's piece hash
 * says so: the same place, the same length, the same sha256.
 */
function sameAsPiece(source: BaseFile, index: number, piece: Buffer): boolean {
  const hash = source.pieces?.[index];
  const length = Math.min(CHUNK, source.size - index * CHUNK);
  return hash !== undefined && length === piece.length && createHash('sha256').update(piece).digest('binary') === hash;
}

async function chooseSource(state: EncodeState, path: string, size: number, first: Buffer): Promise<BaseFile | undefined> {
  const { index } = state.base;
  const same = index.samePath(path);
  if (same !== undefined && same.size > CHUNK) return same;
  const head = createHash('sha256').update(first).digest('binary');
  const reader = state.reader;
  // A have-list's index has every head already; without bytes nothing else can be compared.
  if (reader === undefined) return index.sameHead(head);
  const moved = await index.sameHead(head, (file) => reader.sha256(file.layer, file.offset, CHUNK));
  return moved ?? index.similar(path, size);
}

export async function encodeBigFile(state: EncodeState, path: string, size: number, content: FileContent): Promise<void> {
  const buffer = state.pieceBuffer();
  let piece = await readPiece(content, CHUNK, buffer);
  const source = await chooseSource(state, path, size, piece);
  if (source === undefined) await state.sink.record(record(Tag.big, size, 0));
  else {
    const [slot, ordinal] = state.source(source);
    await state.sink.record(record(Tag.big, size, slot! + 1, ordinal!));
  }
  const bytes: Record<PieceKind, number> = { copy: 0, zero: 0, delta: 0, literal: 0 };
  for (let i = 0; i * CHUNK < size; i++) {
    if (i > 0) piece = await readPiece(content, Math.min(CHUNK, size - i * CHUNK), buffer);
    const { kind, out } = await preparePiece(state, source, i, piece);
    bytes[kind] += piece.length;
    await state.sink.record(out[0]!, ...out.slice(1));
    // The piece buffer is refilled next: everything given to zlib must have been taken.
    await state.sink.taken();
  }
  // Zero pieces carry nothing either way: the file counts as what most of its other bytes were.
  const { copy, delta, literal } = bytes;
  state.count(copy > Math.max(delta, literal) ? 'referenced' : delta > literal ? 'deltified' : 'literal', size);
}
