import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { EngineError, EngineNotAnsweringError, EngineUnreachableError } from '../errors.js';
import { startChild } from './child.js';

/** Whether `command` is an executable file in a PATH directory, as spawning it would find it. */
export function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, command);
    try {
      accessSync(path, constants.X_OK);
      if (statSync(path).isFile()) return true;
    } catch {}
  }
  return false;
}

/** The engine's complaint, on one line. */
function firstLine(stderr: string): string {
  return stderr.trim().split('\n')[0] || 'no reason given';
}

/** Each engine (by CLI, or by socket) is asked once per process, however many inputs choose it. */
const asked = new Map<string, Promise<void>>();

/** `ask()`'s answer for `key`, asked the first time only; a rejection waits for whoever asks for it. */
export function askedOnce(key: string, ask: () => Promise<void>): Promise<void> {
  let answered = asked.get(key);
  if (!answered) {
    answered = ask();
    answered.catch(() => undefined); // asked for by the engine's calls, or not at all
    asked.set(key, answered);
  }
  return answered;
}

/**
 * Runs `CLI version` beside whatever comes next: resolves when the engine (Docker's daemon, or
 * Podman itself) answers, rejects with why it does not. Asked in the background, as one CLI call
 * costs 70-200 ms: the engine's first real call goes at the same time, and its failure is
 * reported as this answer's when that failed too (Engine.start).
 */
export function answers(command: 'docker' | 'podman'): Promise<void> {
  return askedOnce(command, () => ask(command));
}

function ask(command: 'docker' | 'podman'): Promise<void> {
  const args = command === 'docker' ? ['version', '--format', '{{.Server.Version}}'] : ['version'];
  const child = startChild(command, args, { stdin: false });
  child.stdout.resume();
  return Promise.race([
    child.spawnError.then((error) => {
      throw cannotStart(command, error);
    }),
    child.closed.then(({ code }) => {
      if (code === 0) return;
      const stderr = child.stderrText();
      throw unreachable(command, stderr) ?? new EngineNotAnsweringError(`${command} does not answer: ${firstLine(stderr)}`);
    }),
  ]);
}

/** The engine's CLI could not be run at all (not found, not executable). */
export function cannotStart(command: string, error: Error): EngineError {
  return new EngineError(`${command} could not be started: ${error.message}`, { cause: error });
}

/**
 * The engine's own message, on one line: its stderr without deprecation notices, warnings and
 * log noise (`level=info …`), the remaining lines joined.
 */
export function engineMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(
      (l) =>
        l &&
        !/^(DEPRECATED|WARNING|WARN\[|time=".*level=(info|warning))/i.test(l) &&
        !/Install the buildx component|docs\.docker\.com\/go\/buildx/.test(l),
    );
  return (lines.join('; ') || stderr.trim()).slice(0, 1000);
}

/** `docker image inspect` → "docker image inspect"; options are left out. */
export function commandName(name: string, args: string[]): string {
  return [name, ...args.slice(0, 2).filter((a) => !a.startsWith('-'))].join(' ');
}

/** Docker's "Cannot connect to the Docker daemon at unix:///…" (or "permission denied … socket at …"), as ddiff's error. */
export function unreachable(name: string, stderr: string): EngineError | undefined {
  if (name !== 'docker') return undefined;
  const down = /Cannot connect to the Docker daemon at (\S+?)\.? Is the docker daemon running/.exec(stderr);
  if (down) return dockerUnreachable(down[1]!, 'down');
  const denied = /permission denied while trying to connect to the docker daemon socket at (\S+?):/i.exec(stderr);
  if (denied) return dockerUnreachable(denied[1]!, 'denied');
  return undefined;
}

/** The Docker daemon at `address` is not there (`down`) or refuses this user (`denied`), and what to do. */
export function dockerUnreachable(address: string, why: 'down' | 'denied'): EngineUnreachableError {
  const hint =
    why === 'down'
      ? 'is it running? start it, or pass --engine podman'
      : 'permission denied: run as a member of the docker group, or pass --engine podman';
  return new EngineUnreachableError('docker', address, hint);
}
