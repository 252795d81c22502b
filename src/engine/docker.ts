import { type DockerApi, imagePath } from './docker-api.js';
import { Engine, type EngineImage } from './engine.js';
import { askedOnce } from './reachability.js';
import { isRecord } from '../util/json.js';

/**
 * Docker on a local socket: what ddiff asks of the daemon goes to its Engine API (as skopeo's
 * docker-daemon: transport and crane's daemon package do), `save` and `load` to the CLI.
 */
export class DockerEngine extends Engine {
  private info: Promise<unknown> | undefined;

  constructor(private readonly api: DockerApi) {
    // Pinged once per process per socket, however many inputs choose it.
    super(
      'docker',
      askedOnce(api.address, () => api.ping()),
    );
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
