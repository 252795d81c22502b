import type { BaseFile } from './base-index.js';
import type { DecodeState } from './decode-state.js';
import { DeltaFormatError, DeltaReferenceError } from './errors.js';
import { CHUNK, chunkWindow, Tag, ZEROS } from './format.js';
import type { RecordReader } from './record-reader.js';

/** A BIG record and its pieces (format.ts): never more than one piece and its dictionary in memory. */
export async function decodeBigFile(records: RecordReader, state: DecodeState): Promise<void> {
  const size = await records.size('big file', CHUNK + 1, Number.MAX_SAFE_INTEGER);
  state.reserve(size, 'a big file');
  const slotPlusOne = await records.varint('base layer slot');
  const source: BaseFile | undefined = slotPlusOne === 0 ? undefined : await state.sourceFile(records, slotPlusOne - 1);
  const needSource = (): BaseFile => {
    if (source === undefined) throw new DeltaFormatError(records.source, 'delta copies a piece of a big file that has no source');
    return source;
  };
  for (let index = 0; index * CHUNK < size; index++) {
    const start = index * CHUNK;
    const length = Math.min(CHUNK, size - start);
    const tag = await records.tag();
    switch (tag) {
      case Tag.copy: {
        const file = needSource();
        if (start + length > file.size) {
          throw new DeltaReferenceError(
            records.source,
            `delta copies bytes ${start}–${start + length} of base file '${file.path}', which has ${file.size}`,
          );
        }
        await state.copy(file, start, length);
        break;
      }
      case Tag.zero:
        await state.emit(ZEROS.subarray(0, length));
        break;
      case Tag.chunkLiteral:
        await records.pass(length, (chunk) => state.emit(chunk));
        break;
      case Tag.chunkDelta: {
        const file = needSource();
        const payload = await records.size('delta payload', 1, CHUNK);
        const digest = await records.bytes(32);
        const window = chunkWindow(index, file.size);
        const dictionary = await state.dictionary(file, window.start, window.end - window.start);
        await state.applyDelta(await records.bytes(payload), dictionary, length, digest, `piece ${index} of a big file`);
        break;
      }
      case -1:
        throw records.truncated();
      default:
        throw new DeltaFormatError(records.source, `delta has record 0x${tag.toString(16)} where piece ${index} of a big file belongs`);
    }
  }
}
