import { type FileHandle, open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { ArchiveWriterOptions } from '../archive/write-archive.js';
import type { Engine } from '../engine/engine.js';
import { EngineError } from '../errors.js';
import { FileTarWriter } from '../tar/file-writer.js';
import type { Compression } from '../util/compression.js';
import { atomicOutput, onInterrupt } from '../util/cleanup.js';
import type { Digest } from '../util/digest.js';
import type { ArchiveJob } from './plan.js';

/**
 * Docker 20.10 rejects zstd layers ("invalid tar header"), and an archive written to a file or
 * stdout should load into any engine: those get zstd layers inflated. Podman takes them.
 */
const INFLATE_FOR_DOCKER: ReadonlySet<Compression> = new Set(['zstd']);

function optionsFor(engine?: Engine): ArchiveWriterOptions {
  return {
    inflate: engine?.name === 'podman' ? new Set() : INFLATE_FOR_DOCKER,
    normalizeNames: engine?.name === 'containerd',
    // Every engine refuses a layer whose bytes do not hash to its diffID ("invalid diffID for
    // layer", "Digest did not match"); a file or a pipe has nobody to.
    readerChecksDiffIds: engine !== undefined,
    dockerArchiveOnly: engine?.name === 'podman',
  };
}

export type Snapshot = Map<string, Digest | undefined>;

/** What the engine holds under the images' IDs and tags before the load, to undo an interrupted one. */
export async function snapshot(engine: Engine, images: { id: Digest; tags: string[] }[]): Promise<Snapshot> {
  const refs = [...new Set(images.flatMap((i) => [i.id, ...i.tags]))];
  const found = await Promise.all(
    refs.map((ref) =>
      engine.inspect(ref).then(
        (i) => i.id,
        () => undefined,
      ),
    ),
  );
  return new Map(refs.map((ref, n) => [ref, found[n]]));
}

const LATE_LOAD_MS = 3_000;

async function loadedAny(engine: Engine, before: Snapshot, images: { id: Digest }[]): Promise<boolean> {
  const fresh = images.filter((i) => before.get(i.id) === undefined);
  const found = await Promise.all(
    fresh.map((i) =>
      engine.inspect(i.id).then(
        () => true,
        () => false,
      ),
    ),
  );
  return found.includes(true);
}

/** Removes what an interrupted load added, and points moved tags back where they were. */
async function undoLoad(engine: Engine, before: Snapshot, images: { id: Digest; tags: string[] }[]): Promise<void> {
  const added = images.filter((i) => before.get(i.id) === undefined).map((i) => i.id);
  await engine.removeImages(added);
  for (const [ref, id] of before) {
    if (id !== undefined && ref !== id) await engine.retag(id, ref);
  }
}

/**
 * Feeds the archive to the engine's `load`; resolves with what the engine printed. On any
 * failure (ours or the engine's) the engine's input is ended, the engine stopped and waited
 * for, so nothing is loaded after ddiff reported an error. An interrupt before the whole archive
 * was handed over cuts it short (the engine loads nothing); after, the engine's load cannot be
 * stopped (the daemon goes on without its client), so ddiff waits for it and undoes it.
 */
export async function loadIntoEngine(
  engine: Engine,
  job: ArchiveJob,
  images: { id: Digest; tags: string[] }[],
  /** The snapshot, when the caller took it earlier (beside other work). */
  taken?: Promise<Snapshot>,
): Promise<string> {
  const before = await (taken ?? snapshot(engine, images));
  const loading = engine.startLoad();
  let handedOver = false;
  const unregister = onInterrupt(async () => {
    if (handedOver) {
      await loading.done.catch(() => undefined);
      await undoLoad(engine, before, images);
      return;
    }
    await loading.stop();
    // The last bytes may have reached the engine just before its input was cut: then it loads
    // on its own, a moment later. Look for that for a few seconds, and undo it.
    for (let waited = 0; waited < LATE_LOAD_MS; waited += 500) {
      if (await loadedAny(engine, before, images)) return undoLoad(engine, before, images);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });
  try {
    // An engine that quits before reading the whole archive (it refused it) leaves nobody
    // reading: the writer would wait forever. Its exit ends the write.
    const quit = loading.done.then(() => {
      throw new EngineError(`${engine.name} load exited before reading the whole archive`);
    });
    quit.catch(() => undefined);
    const writing = job(loading.input, optionsFor(engine)).then(() => {
      handedOver = true;
    });
    writing.catch(() => undefined);
    try {
      await Promise.race([writing, quit]);
    } catch (error) {
      await loading.stop();
      // The engine's own message explains a refusal better than the broken pipe it caused.
      const engineFailure = await loading.done.then(
        () => undefined,
        (e: unknown) => e,
      );
      throw error instanceof EngineError || !engineFailure || !isPipeError(error) ? error : engineFailure;
    }
    return await loading.done;
  } catch (error) {
    // ctr creates an image's name before it unpacks it: a failed import leaves names behind.
    if (engine.name === 'containerd') await undoLoad(engine, before, images);
    throw error;
  } finally {
    unregister();
  }
}

function isPipeError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * Writes the archive to a file, under a temporary name until it is complete (and its entry
 * names final). Each entry is written at its place, several layers at once (tar/file-writer.ts).
 */
export async function writeToFile(path: string, job: ArchiveJob): Promise<void> {
  const out = atomicOutput(path);
  let file: FileHandle | undefined;
  try {
    file = await open(out.tempPath, 'w');
    await job(new FileTarWriter(file, out.tempPath), optionsFor());
    await file.close();
    file = undefined;
    await out.commit();
  } catch (error) {
    // close() waits for writes in flight: none lands after the file is removed.
    await file?.close().catch(() => undefined);
    await out.abort();
    throw out.named(error);
  }
}

/** Streams the archive to standard output (a pipe: layers streamed from an engine keep provisional names, docker-archive only). */
export async function writeToStream(stream: Writable, job: ArchiveJob): Promise<void> {
  await job(stream, optionsFor());
}
