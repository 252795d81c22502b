import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { onInterrupt } from '../util/cleanup.js';

/** How long a child may take to quit after its input ended and SIGTERM, before SIGKILL. */
const GRACE_MS = 3_000;

/** A running engine CLI: its output, its exit, and a way to stop it that waits until it is gone. */
export interface Child {
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  /** Settles when the process has exited and its streams are closed; resolves with the exit code (null when killed). */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly stderrText: () => string;
  /**
   * Ends its input, sends SIGTERM (Docker CLI 28 takes the first as "cancel" and quits only after
   * three), and SIGKILL after a grace period; resolves once it has exited.
   */
  stop(): Promise<void>;
}

function stopProcess(child: ChildProcess, closed: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return closed.then(() => undefined);
  child.stdin?.destroy();
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), GRACE_MS);
  return closed.then(() => clearTimeout(killer));
}

/**
 * Starts `command`. Until it has exited, an interrupt of ddiff (SIGINT/SIGTERM) stops it and
 * waits for it, so nothing the engine does outlives ddiff's "interrupted".
 */
export function startChild(
  command: string,
  args: string[],
  /** `ownInterrupt`: the caller decides what an interrupt does to this child (and must stop it). */
  options: { stdin: boolean; ownInterrupt?: boolean },
): Child & { spawnError: Promise<Error> } {
  const child = spawn(command, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < 16_384) stderr += text;
  });
  child.stdin?.on('error', () => undefined); // EPIPE when it quits early: its exit tells why
  let spawnFailed: (error: Error) => void = () => undefined;
  const spawnError = new Promise<Error>((resolve) => (spawnFailed = resolve));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (error) => {
      spawnFailed(error);
      resolve({ code: null, signal: null });
    });
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const stop = () => stopProcess(child, closed);
  if (!options.ownInterrupt) {
    const unregister = onInterrupt(stop);
    void closed.then(unregister);
  }
  return {
    stdin: child.stdin,
    stdout: child.stdout as Readable,
    closed,
    stderrText: () => stderr,
    stop,
    spawnError,
  };
}
