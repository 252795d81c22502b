import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AnswerError, EngineError, EngineNotAnsweringError } from '../errors.js';
import { isRecord } from '../util/json.js';
import { type BodySink, streamGet } from './api-stream.js';
import { dockerUnreachable } from './reachability.js';

/** Where the Docker daemon listens when nothing says otherwise (the CLI's and the API client's default). */
const DEFAULT_SOCKET = '/var/run/docker.sock';

/** The CLI's current context from its config file ($DOCKER_CONFIG/config.json), or undefined. */
function configuredContext(env: NodeJS.ProcessEnv): string | undefined {
  const dir = env.DOCKER_CONFIG || join(homedir(), '.docker');
  try {
    const config: unknown = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    return isRecord(config) && typeof config.currentContext === 'string' ? config.currentContext : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The daemon's unix socket, when the Docker CLI would talk to one on this host: DOCKER_HOST
 * `unix://PATH`, or no DOCKER_HOST and the default context. Anything else (tcp with TLS, ssh, a
 * named context) is left to the CLI, which knows how to reach it: undefined.
 */
export function localDockerSocket(env: NodeJS.ProcessEnv = process.env, context = configuredContext): string | undefined {
  const host = env.DOCKER_HOST;
  if (host) return host.startsWith('unix://') && host.length > 'unix://'.length ? host.slice('unix://'.length) : undefined;
  const named = env.DOCKER_CONTEXT || context(env);
  if (named && named !== 'default') return undefined;
  return DEFAULT_SOCKET;
}

/** The daemon's `{"message": …}`, else its body as it came. */
function daemonMessage(body: string): string {
  try {
    const doc: unknown = JSON.parse(body);
    if (isRecord(doc) && typeof doc.message === 'string') return doc.message;
  } catch {}
  return body.trim().slice(0, 1000) || 'no reason given';
}

/**
 * The Docker Engine API on a local socket, for the questions ddiff asks before it saves or
 * loads (version, image inspect, info, image list): one HTTP request each, where a CLI call
 * costs a Go process (0.3-0.5 s on a busy 2-core host, in series with the load); and for the
 * saves a diff reads, as they stream. `load` and the saves it reads stay with the CLI.
 */
export class DockerApi {
  constructor(readonly socket: string) {}

  /** `unix:///…`, as the CLI names the daemon. */
  get address(): string {
    return `unix://${this.socket}`;
  }

  /**
   * One GET (api-stream.ts): a 200 body to `sink`; else the status and the daemon's message. A
   * failed connection is said as the CLI says it, an answer that stops short as `what` failing.
   */
  private async get(path: string, sink: BodySink, what: string): Promise<{ status: number; body: string }> {
    try {
      return await streamGet(this.socket, path, sink);
    } catch (error) {
      if (error instanceof AnswerError) throw new EngineError(`${what} failed: ${error.message}`, { cause: error });
      if ((error as NodeJS.ErrnoException).syscall === 'connect') throw this.connectionError(error as NodeJS.ErrnoException);
      throw error;
    }
  }

  /** A GET whose whole answer is kept (small JSON documents). */
  private async send(path: string, what: string): Promise<{ status: number; body: string }> {
    const parts: Buffer[] = [];
    const { status, body } = await this.get(path, (view) => void parts.push(Buffer.from(view)), what);
    return { status, body: status === 200 ? Buffer.concat(parts).toString('utf8') : body };
  }

  /** Connecting failed: said as the CLI says it (EngineUnreachableError), else as not answering. */
  private connectionError(error: NodeJS.ErrnoException): Error {
    if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') return dockerUnreachable(this.address, 'down');
    if (error.code === 'EACCES') return dockerUnreachable(this.address, 'denied');
    return new EngineNotAnsweringError(`docker does not answer at ${this.address}: ${error.message}`, { cause: error });
  }

  /** Resolves once the daemon answers `/_ping`; rejects with why it does not. */
  async ping(): Promise<void> {
    const { status, body } = await this.send('/_ping', 'docker ping');
    if (status !== 200) throw new EngineNotAnsweringError(`docker does not answer at ${this.address}: ${status} ${daemonMessage(body)}`);
  }

  /** GET of a JSON document; a refusal is an EngineError saying `what` failed, with the daemon's message. */
  async getJson(path: string, what: string): Promise<unknown> {
    const { status, body } = await this.send(path, what);
    if (status !== 200) throw new EngineError(`${what} failed: ${daemonMessage(body)}`);
    try {
      return JSON.parse(body) as unknown;
    } catch (error) {
      throw new EngineError(`${what}: the daemon's answer is not JSON`, { cause: error });
    }
  }

  /**
   * GET of a stream (an image save), its body passed to `sink` as it arrives; a refusal, or an
   * answer that stops short, is an EngineError saying `what` failed.
   */
  async stream(path: string, sink: BodySink, what: string): Promise<void> {
    const { status, body } = await this.get(path, sink, what);
    if (status !== 200) throw new EngineError(`${what} failed: ${daemonMessage(body)}`);
  }
}

/** A reference as one path segment of the API (`/images/{name}/json` takes slashes and colons as they are). */
export function imagePath(ref: string): string {
  return `/images/${encodeURIComponent(ref).replace(/%2F/g, '/').replace(/%3A/gi, ':').replace(/%40/g, '@')}/json`;
}
