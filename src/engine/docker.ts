import { type DockerApi, imagePath } from './docker-api.js';
import { Engine, type EngineImage } from './engine.js';
import { askedOnce } from './reachability.js';
import { isRecord } from '../util/json.js';
import type { Catalog } from '../archive/catalog.js';
import { type PassOver, spoolSave } from './spool-save.js';

/**
 * Docker on a local socket: what ddiff asks of the daemon goes to its Engine API (as skopeo's
 * docker-daemon: transport and crane's daemon package do), and so does a target's save, read
 * as it streams; the other saves and loads go to the CLI.
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

  /** The save streamed from the API, the base's layers left out as they pass (spool-save.ts). */
  override saveToRead(ref: string, spoolDir: string, passOver: Promise<PassOver>): Promise<Catalog> {
    const what = `docker save ${ref}`;
    const get = `/images/get?names=${encodeURIComponent(ref)}`;
    return spoolSave((sink) => this.api.stream(get, sink, what), `${spoolDir}/target-${Date.now()}.spool`, what, passOver);
  }

  override async imageIds(): Promise<string[]> {
    const listed = await this.api.getJson('/images/json', 'docker images');
    const ids = (Array.isArray(listed) ? listed : []).map((image) => (isRecord(image) ? image.Id : undefined));
    return [...new Set(ids.filter((id): id is string => typeof id === 'string'))];
  }
}
