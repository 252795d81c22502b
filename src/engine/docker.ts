import { type DockerApi, imagePath } from './docker-api.js';
import { Engine, type EngineImage } from './engine.js';
import { isRecord } from '../util/json.js';

/** Each daemon is pinged once per process, however many inputs choose it. */
const pinged = new Map<string, Promise<void>>();

function ping(api: DockerApi): Promise<void> {
  let answered = pinged.get(api.socket);
  if (!answered) {
    answered = api.ping();
    answered.catch(() => undefined); // asked for by the engine's calls, or not at all
    pinged.set(api.socket, answered);
  }
  return answered;
}

/**
 * Docker on a local socket: what ddiff asks of the daemon goes to its Engine API (as skopeo's
 * docker-daemon: transport and crane's daemon package do), `save` and `load` to the CLI.
 */
export class DockerEngine extends Engine {
  private info: Promise<unknown> | undefined;

  constructor(private readonly api: DockerApi) {
    super('docker', ping(api));
  }

  override async inspectAll(refs: string[]): Promise<EngineImage[]> {
    return this.fromInspect(await Promise.all(refs.map((ref) => this.api.getJson(imagePath(ref), 'docker image inspect'))));
  }

  override hasClassicStore(): Promise<boolean> {
    this.info ??= this.api.getJson('/info', 'docker info');
    return this.info.then((info) => !JSON.stringify(isRecord(info) ? info.DriverStatus : '').includes('io.containerd.snapshotter'));
  }

  override async imageIds(): Promise<string[]> {
    const listed = await this.api.getJson('/images/json', 'docker images');
    const ids = (Array.isArray(listed) ? listed : []).map((image) => (isRecord(image) ? image.Id : undefined));
    return [...new Set(ids.filter((id): id is string => typeof id === 'string'))];
  }
}
