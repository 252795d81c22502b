import { TarFormatError, TarTruncatedError } from '../errors.js';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { EntryType } from './header.js';

/** One entry of a tar stream; `body` must be read (or `skip`ped) before the next one arrives. */
interface StreamEntry {
  name: string;
  type: EntryType;
  size: number;
  linkname: string;
  body: Readable;
}

function entryType(type: tar.Header['type']): EntryType {
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    default:
      return 'other';
  }
}

/** tar-stream's errors are plain Errors with messages; they are mapped to the tar error types here, once. */
function mapError(error: unknown): unknown {
  if (error instanceof TarFormatError || error instanceof TarTruncatedError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/unexpected end/i.test(message)) return new TarTruncatedError('archive is truncated (unexpected end of data)');
  if (/invalid tar header|invalid header/i.test(message)) return new TarFormatError('not a valid tar archive (bad header)');
  return error;
}

/**
 * Reads a tar stream entry by entry: `onEntry` is called for each, in order, and must consume
 * its body. Resolves when the stream has ended; rejects with TarFormatError /
 * TarTruncatedError for a malformed stream, or with whatever `onEntry` threw.
 */
export async function readTarStream(input: Readable, onEntry: (entry: StreamEntry) => Promise<void>): Promise<void> {
  const extract = tar.extract();
  const consume = (async () => {
    for await (const entry of extract) {
      const { header } = entry;
      // tar-stream reads a base-256 size it cannot decode as null, and then waits forever for
      // the entry's end: refused here, as the seek-based index does.
      if (!Number.isSafeInteger(header.size) || (header.size ?? -1) < 0) {
        throw new TarFormatError(`entry '${header.name}' has a bad size`);
      }
      await onEntry({
        name: header.name,
        type: entryType(header.type),
        size: header.size ?? 0,
        linkname: header.linkname ?? '',
        body: entry as unknown as Readable,
      });
      entry.resume(); // whatever onEntry left unread
    }
  })();
  const reading = pipeline(input, extract as unknown as NodeJS.WritableStream);
  try {
    await Promise.all([reading, consume]);
  } catch (error) {
    extract.destroy();
    input.destroy();
    await Promise.allSettled([reading, consume]);
    throw mapError(error);
  }
}
