import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { ArchiveWriterOptions } from '../archive/write-archive.js';
import type { Engine } from '../engine/engine.js';
import { EngineError } from '../errors.js';
import type { Compression } from '../util/compression.js';
import { atomicOutput } from '../util/cleanup.js';
import type { ArchiveJob } from './plan.js';

/**
 * Docker 20.10 rejects zstd layers ("invalid tar header"), and an archive written to a file or
 * stdout should load into any engine: those get zstd layers inflated. Podman takes them.
 */
const INFLATE_FOR_DOCKER: ReadonlySet<Compression> = new Set(['zstd']);

function optionsFor(renamable: boolean, engine?: Engine): ArchiveWriterOptions {
  return { renamable, inflate: engine?.name === 'podman' ? new Set() : INFLATE_FOR_DOCKER };
}

/**
 * Feeds the archive to the engine's `load`; resolves with what the engine printed. On any
 * failure (ours or the engine's) the engine's input is ended, the engine stopped and waited
 * for, so nothing is loaded after ddiff reported an error.
 */
export async function loadIntoEngine(engine: Engine, job: ArchiveJob): Promise<string> {
  const loading = engine.startLoad();
  // An engine that quits before reading the whole archive (it refused it) leaves nobody
  // reading: the writer would wait forever. Its exit ends the write.
  const quit = loading.done.then(() => {
    throw new EngineError(`${engine.name} load exited before reading the whole archive`);
  });
  quit.catch(() => undefined);
  const writing = job(loading.input, optionsFor(false, engine));
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
  return loading.done;
}

function isPipeError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/** Writes the archive to a file, under a temporary name until it is complete (and its entry names final). */
export async function writeToFile(path: string, job: ArchiveJob): Promise<void> {
  const out = atomicOutput(path);
  try {
    const patches = await job(createWriteStream(out.tempPath), optionsFor(true));
    if (patches.length > 0) {
      const file = await open(out.tempPath, 'r+');
      try {
        for (const { offset, header } of patches) await file.write(header, 0, header.length, offset);
      } finally {
        await file.close();
      }
    }
    await out.commit();
  } catch (error) {
    await out.abort();
    throw error;
  }
}

/** Streams the archive to standard output (a pipe: layers streamed from an engine keep provisional names, docker-archive only). */
export async function writeToStream(stream: Writable, job: ArchiveJob): Promise<void> {
  await job(stream, optionsFor(false));
}
