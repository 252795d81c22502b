import { spawnSync } from 'node:child_process';
import { type EngineError, EngineUnreachableError } from '../errors.js';

interface Probe {
  installed: boolean;
  answers: boolean;
  stderr: string;
}

/** Runs `CLI version`: is the CLI installed, and does its daemon (or Podman itself) answer? */
export function probe(command: 'docker' | 'podman'): Probe {
  const args = command === 'docker' ? ['version', '--format', '{{.Server.Version}}'] : ['version'];
  try {
    const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 20_000 });
    const missing = (result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    return { installed: !missing, answers: result.status === 0, stderr: result.stderr ?? result.error?.message ?? '' };
  } catch (error) {
    return { installed: false, answers: false, stderr: (error as Error).message };
  }
}

/** Docker's "Cannot connect to the Docker daemon at unix:///…" (or "permission denied … socket at …"), as ddiff's error. */
export function unreachable(name: string, stderr: string): EngineError | undefined {
  if (name !== 'docker') return undefined;
  const down = /Cannot connect to the Docker daemon at (\S+?)\.? Is the docker daemon running/.exec(stderr);
  if (down) return new EngineUnreachableError(name, down[1]!, 'is it running? start it, or pass --engine podman');
  const denied = /permission denied while trying to connect to the docker daemon socket at (\S+?):/i.exec(stderr);
  if (denied)
    return new EngineUnreachableError(name, denied[1]!, 'permission denied: run as a member of the docker group, or pass --engine podman');
  return undefined;
}
