import { rmSync, statSync } from 'node:fs';
import { DdiffError, ExitCode } from '../errors.js';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Temporary paths this process created. They are removed when the work that made them ends,
 * and also on SIGINT/SIGTERM, so an interrupted run leaves nothing behind.
 */
const pending = new Set<string>();
/** Work to stop before an interrupted ddiff exits (engine children): each resolves once stopped. */
const stoppers = new Set<() => Promise<void>>();
let handlersInstalled = false;
let interrupted = false;

/** Longest an interrupt waits for children to stop (they get SIGKILL after their own grace). */
const INTERRUPT_DEADLINE_MS = 30_000;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, code] of [
    ['SIGINT', ExitCode.sigint],
    ['SIGTERM', ExitCode.sigterm],
  ] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      const stopping = Promise.allSettled([...stoppers].map((stop) => stop()));
      const deadline = new Promise((resolve) => setTimeout(resolve, INTERRUPT_DEADLINE_MS).unref());
      void Promise.race([stopping, deadline]).then(() => {
        removeAllNow();
        process.stderr.write(`ddiff: interrupted (${signal})\n`);
        process.exit(code);
      });
    });
  }
  process.on('exit', removeAllNow);
}

/** True once SIGINT/SIGTERM arrived: the command's own failure that follows is not reported. */
export function isInterrupted(): boolean {
  return interrupted;
}

/** Runs `stop` (and waits for it) if ddiff is interrupted; returns the function that unregisters it. */
export function onInterrupt(stop: () => Promise<void>): () => void {
  installHandlers();
  stoppers.add(stop);
  return () => stoppers.delete(stop);
}

function removeAllNow(): void {
  for (const path of pending) rmSync(path, { recursive: true, force: true });
  pending.clear();
}

export function track(path: string): void {
  installHandlers();
  pending.add(path);
}

export async function release(path: string, remove = true): Promise<void> {
  pending.delete(path);
  if (remove) await rm(path, { recursive: true, force: true });
}

/** A private temporary directory, removed by `dispose` (or on interrupt/exit). */
export async function tempDir(prefix = 'ddiff-'): Promise<{ path: string; dispose: () => Promise<void> }> {
  const path = await mkdtemp(join(process.env.DDIFF_TMPDIR ?? tmpdir(), prefix));
  track(path);
  return { path, dispose: () => release(path) };
}

/**
 * An output file written under a unique temporary name in the target's directory and renamed
 * to its final name only by `commit`: readers never see a half-written file, and two runs in
 * one directory never collide.
 */
export function atomicOutput(finalPath: string): {
  tempPath: string;
  commit: () => Promise<void>;
  abort: () => Promise<void>;
  /** The error of a failed write, naming the output the user gave rather than its temporary name. */
  named: (error: unknown) => unknown;
} {
  if (statSync(finalPath, { throwIfNoEntry: false })?.isDirectory()) {
    throw new DdiffError(`${finalPath}: is a directory; -o takes a file name`);
  }
  const tempPath = join(dirname(finalPath), `.${basename(finalPath)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  track(tempPath);
  return {
    tempPath,
    commit: async () => {
      try {
        await rename(tempPath, finalPath);
      } catch (error) {
        // Name the output the user gave, not the temporary name it was written under.
        (error as NodeJS.ErrnoException).path = finalPath;
        throw error;
      }
      pending.delete(tempPath);
    },
    abort: () => release(tempPath),
    named: (error) => {
      const errno = error as NodeJS.ErrnoException | undefined;
      if (errno?.code !== undefined && (errno.path === undefined || errno.path === tempPath)) errno.path = finalPath;
      return error;
    },
  };
}
