// Longer than most modules because the registry API is one client: each step of a push or a read is one method here.
import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { errorMessage, RegistryError } from '../errors.js';
import { MediaTypes } from '../image/media-types.js';
import type { Digest } from '../util/digest.js';
import { authorize, type Credentials, credentialsFor, parseChallenge } from './auth.js';
import { describeFailure, type HttpRequest, type HttpResponse, send } from './http.js';

interface ClientOptions {
  /** false (`--tls-verify=false`): no certificate check, and plain HTTP when the registry speaks no TLS. */
  tlsVerify: boolean;
  /** Token scopes asked for up front (`repository:team/app:pull,push`), so a streamed upload never meets a 401. */
  scopes: string[];
}

const MANIFEST_TYPES = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerManifestList];

/** Loopback registries may have no TLS or a self-signed certificate, as Docker allows without configuration. */
function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\./.test(name);
}

/**
 * The Docker Registry HTTP API v2 / OCI distribution API, as much as ddiff needs: blob HEAD,
 * cross-repository mount, monolithic and streamed uploads, manifests and small blobs. Basic and
 * bearer-token auth; credentials from the usual auth files. Every failure is one RegistryError
 * naming the registry and the step.
 */
export class RegistryClient {
  private authorization: string | undefined;
  private readonly credentials: Credentials | undefined;
  private scheme: 'https:' | 'http:' = 'https:';
  /** No certificate check, and plain HTTP when TLS fails: `--tls-verify=false`, or a loopback host (as Docker treats 127.0.0.0/8). */
  private readonly insecure: boolean;

  constructor(
    readonly host: string,
    private readonly options: ClientOptions,
  ) {
    this.credentials = credentialsFor(host);
    this.insecure = !options.tlsVerify || isLoopback(host);
  }

  private url(path: string): URL {
    return new URL(path, `${this.scheme}//${this.host}`);
  }

  /** Sends a request, authenticating once on a 401 (only for bodies that can be sent again); checks the status. */
  private async request(step: string, target: string | URL, init: HttpRequest, expect: number[]): Promise<HttpResponse> {
    const url = typeof target === 'string' ? this.url(target) : target;
    const attempt = () => {
      const headers = { ...init.headers, ...(this.authorization ? { Authorization: this.authorization } : {}) };
      return send(url, { ...init, headers, insecure: this.insecure }).catch((error: unknown) => {
        throw new RegistryError(this.host, step, `connection failed: ${errorMessage(error)}`, { cause: error });
      });
    };
    let response = await attempt();
    const replayable = init.body === undefined || Buffer.isBuffer(init.body);
    if (response.status === 401 && replayable) {
      const challenge = parseChallenge(String(response.headers['www-authenticate'] ?? ''));
      await response.drain();
      this.authorization = await authorize(this.host, step, challenge, {
        credentials: this.credentials,
        scopes: this.options.scopes,
        insecure: this.insecure,
      });
      response = await attempt();
    }
    if (!expect.includes(response.status)) {
      const why = await describeFailure(response);
      throw new RegistryError(
        this.host,
        step,
        response.status === 401 ? `${why}: not authorized (credentials from REGISTRY_AUTH_FILE or ~/.docker/config.json)` : why,
        {
          status: response.status,
        },
      );
    }
    return response;
  }

  /** `GET /v2/`: reachability, TLS (falling back to plain HTTP with --tls-verify=false) and credentials, before any upload. */
  async ping(): Promise<void> {
    try {
      await (await this.request('connecting', '/v2/', { method: 'GET' }, [200])).drain();
    } catch (error) {
      const broken = error instanceof RegistryError && error.status === undefined;
      if (!broken || !this.insecure || this.scheme === 'http:') throw error;
      this.scheme = 'http:';
      await (await this.request('connecting', '/v2/', { method: 'GET' }, [200])).drain();
    }
  }

  async hasBlob(repository: string, digest: Digest): Promise<boolean> {
    const response = await this.request(`checking blob ${digest}`, `/v2/${repository}/blobs/${digest}`, { method: 'HEAD' }, [200, 404]);
    await response.drain();
    return response.status === 200;
  }

  /** Cross-repository mount; false when the registry cannot (it then opened an upload, which is cancelled). */
  async mountBlob(repository: string, digest: Digest, from: string): Promise<boolean> {
    const path = `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const response = await this.request(`mounting blob ${digest} from ${from}`, path, { method: 'POST' }, [201, 202]);
    await response.drain();
    if (response.status === 202) await this.cancel(this.location(response, `/v2/${repository}/blobs/uploads/`));
    return response.status === 201;
  }

  private location(response: HttpResponse, fallback: string): URL {
    const value = response.headers.location;
    return new URL(typeof value === 'string' && value ? value : fallback, this.url('/'));
  }

  private async startUpload(repository: string, step: string): Promise<URL> {
    const response = await this.request(step, `/v2/${repository}/blobs/uploads/`, { method: 'POST' }, [202]);
    await response.drain();
    return this.location(response, `/v2/${repository}/blobs/uploads/`);
  }

  private async cancel(location: URL): Promise<void> {
    await send(location, {
      method: 'DELETE',
      headers: this.authorization ? { Authorization: this.authorization } : {},
      insecure: this.insecure,
    }).then(
      (r) => r.drain(),
      () => undefined,
    );
  }

  private static withDigest(location: URL, digest: Digest): URL {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    return url;
  }

  /** Uploads a blob whose digest and size are known: one streamed PUT (monolithic upload). */
  async uploadBlob(repository: string, blob: { digest: Digest; size: number }, body: Buffer | (() => Readable)): Promise<void> {
    const step = `uploading blob ${blob.digest}`;
    const location = await this.startUpload(repository, step);
    try {
      const payload = Buffer.isBuffer(body) ? body : body();
      const headers = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.size) };
      const response = await this.request(
        step,
        RegistryClient.withDigest(location, blob.digest),
        { method: 'PUT', headers, body: payload },
        [201],
      );
      await response.drain();
    } catch (error) {
      await this.cancel(location);
      throw error;
    }
  }

  /**
   * Uploads a stream whose digest is learned only at its end (a layer in an engine's `save`):
   * PATCH as it streams, hashing, then PUT `?digest=`. `keep` decides from the digest whether
   * the blob is wanted; if not, the upload is cancelled and nothing is stored.
   */
  async uploadStream(
    repository: string,
    stream: Readable,
    keep: (digest: Digest) => boolean,
  ): Promise<{ digest: Digest; size: number } | undefined> {
    const location = await this.startUpload(repository, 'uploading a streamed layer');
    try {
      const hash = createHash('sha256');
      let size = 0;
      const counted = new PassThrough();
      counted.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
      });
      stream.on('error', (error) => counted.destroy(error));
      stream.pipe(counted);
      const patched = await this.request(
        'uploading a streamed layer',
        location,
        { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' }, body: counted },
        [202, 204],
      );
      await patched.drain();
      const digest: Digest = `sha256:${hash.digest('hex')}`;
      const next = this.location(patched, location.href);
      if (!keep(digest)) {
        await this.cancel(next);
        return undefined;
      }
      const done = await this.request(`uploading blob ${digest}`, RegistryClient.withDigest(next, digest), { method: 'PUT' }, [201]);
      await done.drain();
      return { digest, size };
    } catch (error) {
      await this.cancel(location);
      throw error;
    }
  }

  /** A manifest or index by tag or digest: its bytes exactly, its media type and digest. */
  async getManifest(repository: string, reference: string): Promise<{ bytes: Buffer; mediaType: string }> {
    const response = await this.request(
      `reading manifest ${repository}:${reference}`,
      `/v2/${repository}/manifests/${reference}`,
      { method: 'GET', headers: { Accept: MANIFEST_TYPES.join(', ') } },
      [200],
    );
    const bytes = await response.bytes();
    return {
      bytes,
      mediaType: String(response.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim(),
    };
  }

  /** A small blob (an image config). */
  async getBlob(repository: string, digest: Digest): Promise<Buffer> {
    const step = `reading blob ${digest}`;
    const response = await this.request(step, `/v2/${repository}/blobs/${digest}`, { method: 'GET' }, [200, 302, 307]);
    if (response.status === 200) return response.bytes();
    // Registries with object storage redirect blob reads there; the redirect carries its own authorization.
    await response.drain();
    const moved = await send(this.location(response, '/'), { method: 'GET', insecure: this.insecure }).catch((error: unknown) => {
      throw new RegistryError(this.host, step, `connection failed: ${errorMessage(error)}`);
    });
    if (moved.status !== 200) throw new RegistryError(this.host, step, await describeFailure(moved), { status: moved.status });
    return moved.bytes();
  }

  async putManifest(repository: string, tag: string, bytes: Buffer, mediaType: string): Promise<void> {
    const response = await this.request(
      `putting manifest ${repository}:${tag}`,
      `/v2/${repository}/manifests/${tag}`,
      { method: 'PUT', headers: { 'Content-Type': mediaType }, body: bytes },
      [201],
    );
    await response.drain();
  }
}
