import type { Readable, Writable } from 'node:stream';
import type { Catalog } from '../archive/catalog.js';
import { openSeekableArchive } from '../archive/open.js';
import type { PassOver } from './spool-save.js';
import { EngineError, EngineNotAnsweringError } from '../errors.js';
import { cannotStart, commandName, engineMessage, unreachable } from './reachability.js';
import { type Child, startChild } from './child.js';
import type { Platform } from '../image/image.js';
import type { BlobDescriptor } from '../image/layer.js';
import { isDigest, type Digest } from '../util/digest.js';
import { isRecord } from '../util/json.js';

export type EngineName = 'docker' | 'podman' | 'containerd';

export interface EngineChoice {
  engine?: string;
  /** containerd's namespace (`--namespace`). */
  namespace?: string;
}

/** What `image inspect` tells of a local image: enough to diff against it without saving it. */
export interface EngineImage {
  id: Digest;
  tags: string[];
  platform: Platform;
  diffIds: Digest[];
  /** The stored blob of each layer, in diffID order, when the engine keeps layers as blobs. */
  storedLayers?: BlobDescriptor[];
}

export function isEngineName(value: string | undefined): value is EngineName {
  return value === 'docker' || value === 'podman' || value === 'containerd';
}

/** A local container engine driven through its CLI (`docker` or `podman`). */
export class Engine {
  readonly name: EngineName;
  private classicStore: Promise<boolean> | undefined;

  /** `answered`: whether the engine answers, when chooseEngine asked (reachability.ts). */
  constructor(
    name: EngineName,
    private readonly answered: Promise<void> = Promise.resolve(),
  ) {
    this.name = name;
  }

  /** Settles once it is known whether the engine answers: rejects with why it does not. */
  ready(): Promise<void> {
    return this.answered;
  }

  /**
   * Starts the engine CLI. `exit` settles when it has exited: rejecting, on failure, with its
   * own message (see engineMessage) and how it ended.
   */
  protected start(args: string[], options: { stdin: boolean; ownInterrupt?: boolean }): { child: Child; exit: Promise<void> } {
    const [command, fullArgs] = this.commandLine(args);
    const child = startChild(command, fullArgs, options);
    const exit = Promise.race([
      child.spawnError.then((error) => {
        throw cannotStart(command, error);
      }),
      child.closed.then(async ({ code, signal }) => {
        if (code === 0) return;
        // An engine that does not answer is said as such, not as what this call made of it.
        await this.answered;
        const how = signal ? `killed by ${signal}` : `exit ${code}`;
        const said = engineMessage(child.stderrText());
        const down = unreachable(this.name, child.stderrText());
        if (down) throw down;
        throw new EngineError(`${commandName(command, args)} failed: ${said ? (signal ? `${said} (${how})` : said) : how}`);
      }),
    ]);
    exit.catch(() => undefined);
    return { child, exit };
  }

  /** The program to run and its arguments (containerd's `ctr` takes its socket and namespace first). */
  protected commandLine(args: string[]): [string, string[]] {
    return [this.name, args];
  }

  /** Runs the engine CLI; resolves with its stdout (or pipes it to `io.stdout`). */
  async run(args: string[], io: { stdout?: Writable } = {}): Promise<string> {
    const { child, exit } = this.start(args, { stdin: false });
    let out = '';
    if (io.stdout) child.stdout.pipe(io.stdout, { end: false });
    else child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    await exit;
    return out;
  }

  async inspect(ref: string): Promise<EngineImage> {
    let images: EngineImage[];
    try {
      images = await this.inspectAll([ref]);
    } catch (error) {
      if (error instanceof EngineNotAnsweringError) throw error;
      throw new EngineError(`${ref}: no such local image in ${this.name} (${(error as Error).message})`, { cause: error });
    }
    if (!images[0]) throw new EngineError(`${ref}: no such local image in ${this.name}`);
    return images[0];
  }

  /** `image inspect` of several images in one call. */
  async inspectAll(refs: string[]): Promise<EngineImage[]> {
    if (refs.length === 0) return [];
    const text = (await this.run(['image', 'inspect', '--format', '{{json .}}', ...refs])).trim();
    // Docker prints one JSON object per line; Podman 4.3 takes `{{json .}}` for `--format json`
    // and prints one pretty-printed array.
    return this.fromInspect(
      text.startsWith('[')
        ? (JSON.parse(text) as unknown[])
        : text
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as unknown),
    );
  }

  /** The images `image inspect` describes (the CLI's documents are the API's). */
  protected fromInspect(docs: unknown[]): EngineImage[] {
    return docs.filter(isRecord).map((doc) => {
      const rootfs = (isRecord(doc.RootFS) ? doc.RootFS : {}) as { Layers?: unknown[] };
      const id = String(doc.Id ?? '');
      const fullId = id.startsWith('sha256:') ? id : `sha256:${id}`;
      if (!isDigest(fullId)) throw new EngineError(`${this.name} image inspect: unexpected image ID '${id}'`);
      const platform: Platform = { os: String(doc.Os ?? 'linux'), architecture: String(doc.Architecture ?? 'unknown') };
      if (typeof doc.Variant === 'string' && doc.Variant) platform.variant = doc.Variant;
      return {
        id: fullId,
        tags: Array.isArray(doc.RepoTags) ? doc.RepoTags.map(String) : [],
        platform,
        diffIds: (rootfs.Layers ?? []).filter(isDigest),
      };
    });
  }

  /** Every local image, inspected in one call. */
  async localImages(): Promise<EngineImage[]> {
    const ids = await this.imageIds();
    // An image removed between the listing and the inspect fails the one call: then one by one.
    return this.inspectAll(ids).catch(async () => (await Promise.all(ids.map((id) => this.inspectAll([id]).catch(() => [])))).flat());
  }

  /** `save` of the given images into a docker-archive file. */
  async save(refs: string[], file: string): Promise<void> {
    const args = ['save', '-o', file];
    if (this.name === 'podman' && refs.length > 1) args.push('--multi-image-archive');
    if (this.name === 'podman') args.push('--format', 'docker-archive');
    await this.run([...args, ...refs]);
  }

  /** Saves `ref` whole into a file under `spoolDir` to read its layers (docker.ts leaves out `passOver`'s). */
  async saveToRead(ref: string, spoolDir: string, _passOver: Promise<PassOver>): Promise<Catalog> {
    const file = `${spoolDir}/target-${Date.now()}.tar`;
    await this.save([ref], file);
    return openSeekableArchive(file, spoolDir, process.stdin, `${this.name} save ${ref}`);
  }

  /**
   * `save` of images as one docker-archive stream; `done` settles when the engine exits,
   * rejecting with its own message; `stop` ends it early and waits for it.
   */
  saveStream(refs: string[]): { stream: Readable; done: Promise<void>; stop: () => Promise<void> } {
    const args = ['save'];
    if (this.name === 'podman') args.push('--format', 'docker-archive', ...(refs.length > 1 ? ['--multi-image-archive'] : []));
    const { child, exit } = this.start([...args, ...refs], { stdin: false });
    return { stream: child.stdout, done: exit, stop: () => child.stop() };
  }

  /**
   * Starts `load`, reading an archive from `input`. `done` resolves with what the engine printed
   * or rejects with its message; `stop` ends the input, stops the engine and waits for it. The
   * caller handles interrupts (see load/sinks.ts).
   */
  startLoad(): { input: Writable; done: Promise<string>; stop: () => Promise<void> } {
    const { child, exit } = this.start(['load'], { stdin: true, ownInterrupt: true });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    const done = exit.then(() => out);
    done.catch(() => undefined);
    if (!child.stdin) throw new EngineError(`${this.name} load: no input stream`);
    return { input: child.stdin, done, stop: () => child.stop() };
  }

  /** True when Docker keeps images in its classic graphdriver store (not containerd's); asked once. */
  hasClassicStore(): Promise<boolean> {
    if (this.name !== 'docker') return Promise.resolve(false);
    this.classicStore ??= this.run(['info', '--format', '{{json .DriverStatus}}']).then(
      (out) => !out.includes('io.containerd.snapshotter'),
    );
    return this.classicStore;
  }

  /** Removes images (by ID or reference), ignoring those already gone. */
  async removeImages(refs: string[]): Promise<void> {
    if (refs.length > 0) await this.run(['rmi', '--force', ...refs]).catch(() => undefined);
  }

  /** Points `ref` at the image `id` again. */
  async retag(id: Digest, ref: string): Promise<void> {
    await this.run(['tag', id, ref]).catch(() => undefined);
  }

  /** IDs of all local images. */
  async imageIds(): Promise<string[]> {
    const out = await this.run(['images', '-q', '--no-trunc']);
    return [
      ...new Set(
        out
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean),
      ),
    ];
  }
}
