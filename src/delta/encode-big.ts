import { createHash } from 'node:crypto';
import type { BaseFile } from './base-index.js';
import type { EncodeState } from './encode-state.js';
import { CHUNK, chunkWindow, record, Tag } from './format.js';
import type { FileContent } from './tar-scan.js';

/**
 * Files larger than CHUNK are never held: they go piece by piece (CHUNK bytes each), every
 * piece a copy of the source's same range, zeros, a delta against the source around that range,
 * or literal. The source is chosen on the first piece: the big file at the same path, else a
 * base file starting with the same CHUNK bytes (a moved file), else one with the same name.
 * A piece stays the chunks it arrived in (compared in place, written as they are); only a piece
 * tried as a delta is gathered, into a reused buffer (delta-buffers.ts).
 */
const ZEROS = Buffer.alloc(CHUNK);

type PieceKind = 'copy' | 'zero' | 'delta' | 'literal';

async function readParts(content: FileContent, length: number): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  for (let left = length; left > 0; ) {
    const part = await content.next(left);
    parts.push(part);
    left -= part.length;
  }
  return parts;
}

/** A piece's record parts; it is prepared (and its buffers used) before the next piece is read. */
async function preparePiece(state: EncodeState, source: BaseFile | undefined, index: number, parts: Buffer[], length: number) {
  const start = index * CHUNK;
  if (parts.every((part) => part.equals(ZEROS.subarray(0, part.length)))) return { kind: 'zero' as const, out: [record(Tag.zero)] };
  if (source !== undefined && state.reader !== undefined) {
    if (start + length <= source.size && (await state.reader.equals(source.layer, source.offset + start, parts))) {
      return { kind: 'copy' as const, out: [record(Tag.copy)] };
    }
    const window = chunkWindow(index, source.size);
    const delta = await state.delta(parts, length, source, window.start, window.end - window.start);
    if (delta !== undefined) {
      return { kind: 'delta' as const, out: [record(Tag.chunkDelta, delta.payload.length), delta.digest, delta.payload] };
    }
  }
  return { kind: 'literal' as const, out: [record(Tag.chunkLiteral), ...parts] };
}

async function chooseSource(state: EncodeState, path: string, size: number, first: Buffer[]): Promise<BaseFile | undefined> {
  const { index } = state.base;
  const same = index.samePath(path);
  if (same !== undefined && same.size > CHUNK) return same;
  const hash = createHash('sha256');
  for (const part of first) hash.update(part);
  const reader = state.reader!;
  const moved = await index.sameHead(hash.digest('binary'), (file) => reader.sha256(file.layer, file.offset, CHUNK));
  return moved ?? index.similar(path, size);
}

export async function encodeBigFile(state: EncodeState, path: string, size: number, content: FileContent): Promise<void> {
  let parts = await readParts(content, CHUNK);
  const source = state.reader === undefined ? undefined : await chooseSource(state, path, size, parts);
  await state.pipeline.add(Promise.resolve(), 0, () => {
    if (source === undefined) return state.sink.record(record(Tag.big, size, 0));
    const [slot, ordinal] = state.source(source);
    return state.sink.record(record(Tag.big, size, slot! + 1, ordinal!));
  });
  const bytes: Record<PieceKind, number> = { copy: 0, zero: 0, delta: 0, literal: 0 };
  for (let i = 0; i * CHUNK < size; i++) {
    const length = Math.min(CHUNK, size - i * CHUNK);
    if (i > 0) parts = await readParts(content, length);
    const { kind, out } = await preparePiece(state, source, i, parts, length);
    bytes[kind] += length;
    await state.pipeline.add(Promise.resolve(), 0, () => state.sink.record(out[0]!, ...out.slice(1)));
  }
  // Zero pieces carry nothing either way: the file counts as what most of its other bytes were.
  const { copy, delta, literal } = bytes;
  state.count(copy > Math.max(delta, literal) ? 'referenced' : delta > literal ? 'deltified' : 'literal', size);
}
