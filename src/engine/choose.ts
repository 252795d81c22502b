import { spawnSync } from 'node:child_process';
import { EngineError, UsageError } from '../errors.js';
import { Containerd } from './containerd.js';
import { DockerApi, localDockerSocket } from './docker-api.js';
import { DockerEngine } from './docker.js';
import { Engine, type EngineChoice, isEngineName } from './engine.js';
import { answers, onPath } from './reachability.js';

/** containerd's namespace: `--namespace`, else CONTAINERD_NAMESPACE, else `k8s.io` when it exists (Kubernetes nodes), else `default`. */
function containerdNamespace(choice: EngineChoice): string {
  const given = choice.namespace ?? process.env.CONTAINERD_NAMESPACE;
  if (given) return given;
  const listed = spawnSync('ctr', ['namespaces', 'ls', '-q'], { encoding: 'utf8', timeout: 20_000 });
  if (listed.error || listed.status !== 0) {
    const said = listed.error?.message ?? listed.stderr.trim().split('\n').pop() ?? '';
    throw new EngineError(`ctr namespaces ls failed: ${said} (is containerd running at CONTAINERD_ADDRESS?)`);
  }
  return listed.stdout.split('\n').includes('k8s.io') ? 'k8s.io' : 'default';
}

/** Docker through its API when it listens on a local socket, else through its CLI alone. */
function docker(): Engine {
  const socket = localDockerSocket();
  return socket === undefined ? new Engine('docker', answers('docker')) : new DockerEngine(new DockerApi(socket));
}

/**
 * The engine to use: `--engine`, else `DDIFF_ENGINE`, else Podman when `DDIFF_FORCE_PODMAN=1`
 * (as the original tool had), else Docker when its CLI is installed, else Podman. containerd is
 * used only when asked for. A Docker CLI whose daemon is down is an error, not a silent switch
 * to Podman: the user would load into an engine they did not mean. Whether the chosen engine
 * answers is asked in the background (Engine.ready). `noEngineHint` says what to do instead
 * when neither is installed.
 */
export function chooseEngine(choice: EngineChoice = {}, noEngineHint = 'pass image archives instead'): Engine {
  const requested = choice.engine ?? process.env.DDIFF_ENGINE;
  if (requested !== undefined && requested !== '') {
    if (!isEngineName(requested)) throw new UsageError(`unknown engine '${requested}' (expected docker, podman or containerd)`);
    if (requested === 'containerd') return new Containerd(containerdNamespace(choice));
    return requested === 'docker' ? docker() : new Engine(requested);
  }
  if (process.env.DDIFF_FORCE_PODMAN === '1') return new Engine('podman');
  if (onPath('docker')) return docker();
  if (onPath('podman')) return new Engine('podman', answers('podman'));
  throw new EngineError(`no container engine found (neither docker nor podman is installed); ${noEngineHint}`);
}
