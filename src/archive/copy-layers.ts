import { posix } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { ArchiveError } from '../errors.js';
import type { TarWriter } from '../tar/writer.js';
import type { Digest } from '../util/digest.js';
import { looksLikeJson } from '../util/json.js';
import { MeasuringStream } from './measure.js';
import type { SourceLayer } from './write-archive.js';

/** Entries of docker-save archives that are never layers. */
const METADATA_NAMES = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories', 'VERSION', 'json']);

/**
 * Copies every layer file of an archive stream (e.g. `docker save` output) into `writer` as it
 * arrives, as `base/<n>`, hashing it on the way: the base is never spooled to disk, and its
 * save overlaps the load it feeds. Returns the copied layers by diffID. Metadata entries are
 * skipped; layers that turn out not to be needed cost only their bytes in the stream.
 */
export async function copyLayersFrom(input: Readable, writer: TarWriter, source: string): Promise<Map<Digest, SourceLayer>> {
  const copied = new Map<Digest, SourceLayer>();
  const extract = tar.extract();
  input.on('error', (error) => extract.destroy(error));
  input.pipe(extract as unknown as NodeJS.WritableStream);
  let n = 0;
  try {
    for await (const entry of extract) {
      const { header } = entry;
      const isFile = header.type === 'file' || header.type === 'contiguous-file';
      if (!isFile || header.size === 0 || METADATA_NAMES.has(posix.basename(header.name)) || header.name.endsWith('.json')) {
        entry.resume();
        continue;
      }
      const chunks = entry[Symbol.asyncIterator]();
      const first = await chunks.next();
      const head = Buffer.from(first.value as Uint8Array);
      if (looksLikeJson(head)) {
        for await (const chunk of { [Symbol.asyncIterator]: () => chunks }) void chunk;
        continue;
      }
      const body = Readable.from(
        (async function* () {
          yield head;
          for await (const chunk of { [Symbol.asyncIterator]: () => chunks }) yield chunk as Buffer;
        })(),
      );
      const path = `base/${n++}`;
      const measuring = new MeasuringStream(source);
      await writer.addStream(path, header.size, body, measuring);
      const facts = measuring.facts();
      if (facts.diffId && !copied.has(facts.diffId)) {
        copied.set(facts.diffId, {
          diffId: facts.diffId,
          digest: facts.digest,
          size: facts.size,
          compression: facts.compression,
          writtenAs: path,
          source,
          open: () => {
            throw new Error(`${path} was streamed, not stored`);
          },
        });
      }
    }
  } catch (error) {
    if (error instanceof ArchiveError) throw error;
    throw new ArchiveError(source, `cannot read the archive stream: ${(error as Error).message}`, { cause: error });
  }
  return copied;
}
