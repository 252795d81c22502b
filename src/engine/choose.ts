import { spawnSync } from 'node:child_process';
import { EngineError, UsageError } from '../errors.js';
import { Containerd } from './containerd.js';
import { answers, Engine, type EngineChoice, isEngineName } from './engine.js';

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

/**
 * The engine to use: `--engine`, else `DDIFF_ENGINE`, else Podman when `DDIFF_FORCE_PODMAN=1`
 * (as the original tool had), else Docker when its daemon answers, else Podman. containerd is
 * used only when asked for.
 */
export function chooseEngine(choice: EngineChoice = {}): Engine {
  const requested = choice.engine ?? process.env.DDIFF_ENGINE;
  if (requested !== undefined && requested !== '') {
    if (!isEngineName(requested)) throw new UsageError(`unknown engine '${requested}' (expected docker, podman or containerd)`);
    if (requested === 'containerd') return new Containerd(containerdNamespace(choice));
    return new Engine(requested);
  }
  if (process.env.DDIFF_FORCE_PODMAN === '1') return new Engine('podman');
  if (answers('docker', ['version', '--format', '{{.Server.Version}}'])) return new Engine('docker');
  if (answers('podman', ['version'])) return new Engine('podman');
  throw new EngineError('no container engine answers (tried docker, then podman); pass image archives instead');
}
