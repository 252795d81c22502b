import { spawnSync } from 'node:child_process';
import { EngineError, EngineUnreachableError, UsageError } from '../errors.js';

export type EngineName = 'docker' | 'podman';

interface Probe {
  installed: boolean;
  answers: boolean;
  stderr: string;
}

/** Runs `CLI version`: is the CLI installed, and does its daemon (or Podman itself) answer? */
function probe(command: EngineName): Probe {
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
export function unreachable(name: EngineName, stderr: string): EngineError | undefined {
  if (name !== 'docker') return undefined;
  const down = /Cannot connect to the Docker daemon at (\S+?)\.? Is the docker daemon running/.exec(stderr);
  if (down) return new EngineUnreachableError(name, down[1]!, 'is it running? start it, or pass --engine podman');
  const denied = /permission denied while trying to connect to the docker daemon socket at (\S+?):/i.exec(stderr);
  if (denied)
    return new EngineUnreachableError(name, denied[1]!, 'permission denied: run as a member of the docker group, or pass --engine podman');
  return undefined;
}

function isEngineName(value: string | undefined): value is EngineName {
  return value === 'docker' || value === 'podman';
}

/** The engine's complaint, on one line. */
function firstLine(stderr: string): string {
  return stderr.trim().split('\n')[0] || 'no reason given';
}

/**
 * The engine to use: `requested` (`--engine`), else `DDIFF_ENGINE`, else Podman when
 * `DDIFF_FORCE_PODMAN=1` (as the original tool had), else Docker when its CLI is installed,
 * else Podman. A Docker CLI whose daemon is down is an error, not a silent switch to Podman:
 * the user would load into an engine they did not mean. `noEngineHint` says what to do
 * instead when neither is installed.
 */
export function chooseEngine(requested = process.env.DDIFF_ENGINE, noEngineHint = 'pass image archives instead'): EngineName {
  if (requested !== undefined && requested !== '') {
    if (!isEngineName(requested)) throw new UsageError(`unknown engine '${requested}' (expected docker or podman)`);
    return requested;
  }
  if (process.env.DDIFF_FORCE_PODMAN === '1') return 'podman';
  const docker = probe('docker');
  if (docker.answers) return 'docker';
  if (docker.installed)
    throw unreachable('docker', docker.stderr) ?? new EngineError(`docker does not answer: ${firstLine(docker.stderr)}`);
  const podman = probe('podman');
  if (podman.answers) return 'podman';
  if (podman.installed) throw new EngineError(`podman does not answer: ${firstLine(podman.stderr)}`);
  throw new EngineError(`no container engine found (neither docker nor podman is installed); ${noEngineHint}`);
}
