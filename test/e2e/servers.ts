/**
 * Real servers for the end-to-end tests, started by the tests themselves: a CNCF distribution
 * registry (`docker-registry serve`) on 127.0.0.1 with its own storage, a counting (and, when
 * asked, failing) proxy in front of it, and the private containerd of scripts/engines.sh
 * (CONTAINERD_ADDRESS) driven with `ctr`. Each is stopped by its own handle and waited for.
 *
 * This module is compiled into dist/test/, where `node --test` may also run it as a file:
 * importing it must have no side effects.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { enginesRequired } from './engines.js';

/** Skips (or fails, when engines are required) unless every reason is undefined; true to go on. */
export function needs(t: TestContext, reasons: (string | undefined)[]): boolean {
  const missing = reasons.filter((r): r is string => r !== undefined);
  if (missing.length === 0) return true;
  if (enginesRequired) throw new Error(`required here but missing: ${missing.join('; ')}`);
  t.skip(missing.join('; '));
  return false;
}

function toolReason(command: string, args: string[], hint: string): string | undefined {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 ? undefined : `${command} not available (${hint}): ${r.error?.message ?? r.stderr.trim().split('\n').pop()}`;
}

export const registryReason = () => toolReason('docker-registry', ['--version'], 'apt-get install -y docker-registry');
export const skopeoReason = () => toolReason('skopeo', ['--version'], 'apt-get install -y skopeo');
export const containerdReason = () =>
  process.env.CONTAINERD_ADDRESS
    ? toolReason('ctr', ['version'], 'start the private containerd: eval "$(scripts/engines.sh start)"')
    : 'CONTAINERD_ADDRESS is not set; start the private containerd with: eval "$(scripts/engines.sh start)"';

/** A free TCP port on 127.0.0.1 (bound, then released for the server to take). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export interface Registry {
  /** `127.0.0.1:PORT` */
  host: string;
  stop(): Promise<void>;
}

/** bcrypt of `ddiff-secret` (cost 4), for a registry that wants user `ddiff`. */
export const HTPASSWD_LINE = 'ddiff:$2b$04$.zGhJ2sgIT5bd4vzWplvdOkaFBOwtJ/Gvt4AmbsdOkN8gyUjcCkJi';

/** Starts `docker-registry serve` on a free loopback port with storage under `dir`; resolves once `/v2/` answers. */
export async function startRegistry(dir: string, options: { htpasswd?: boolean; tls?: boolean } = {}): Promise<Registry> {
  await mkdir(join(dir, 'storage'), { recursive: true });
  const port = await freePort();
  let tls = '';
  if (options.tls) {
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { encoding: 'utf8' },
    );
    if (made.status !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
    tls = `  tls:\n    certificate: ${cert}\n    key: ${key}\n`;
  }
  const auth = options.htpasswd ? `auth:\n  htpasswd:\n    realm: ddiff-test\n    path: ${join(dir, 'htpasswd')}\n` : '';
  if (options.htpasswd) await writeFile(join(dir, 'htpasswd'), `${HTPASSWD_LINE}\n`);
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'storage')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${tls}${auth}`,
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (t: string) => (stderr = (stderr + t).slice(-4000)));
  const stop = async () => {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited(child);
    clearTimeout(killer);
  };
  for (let waited = 0; ; waited += 100) {
    const status = await new Promise<number>((resolve) => {
      const req = (options.tls ? httpsRequest : request)(
        `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}/v2/`,
        { rejectUnauthorized: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', () => resolve(0));
      req.end();
    });
    if (status === 200 || status === 401) break;
    if (child.exitCode !== null || waited > 15_000) {
      await stop();
      throw new Error(`docker-registry did not start on port ${port}: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { host: `127.0.0.1:${port}`, stop };
}

/** One request through the proxy: what was asked, how many body bytes went up, what came back. */
export interface ProxiedRequest {
  method: string;
  path: string;
  bodyBytes: number;
  status: number;
}

/** What the proxy does to a request instead of forwarding it whole. */
export type Fault = { status: number } | { cutAfter: number } | undefined;

export interface CountingProxy {
  host: string;
  requests: ProxiedRequest[];
  /** Decides, per request, whether to fail it; none by default. */
  fault: (method: string, path: string) => Fault;
  stop(): Promise<void>;
}

/**
 * A proxy in front of `target` that records every request and the body bytes it carried, and
 * can answer a request with an error status or cut its connection after some body bytes (a
 * network that breaks mid-upload). The Host header is passed on, so the registry's upload
 * locations point back at the proxy.
 */
export async function startProxy(target: string): Promise<CountingProxy> {
  const proxy: CountingProxy = { host: '', requests: [], fault: () => undefined, stop: async () => undefined };
  const server: Server = createServer((req, res) => {
    const record: ProxiedRequest = { method: req.method ?? '', path: req.url ?? '', bodyBytes: 0, status: 0 };
    proxy.requests.push(record);
    const fault = proxy.fault(record.method, record.path);
    if (fault && 'status' in fault) {
      req.on('data', (chunk: Buffer) => (record.bodyBytes += chunk.length));
      req.on('end', () => {
        record.status = fault.status;
        res.writeHead(fault.status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'injected by the test proxy' }] }));
      });
      return;
    }
    const upstream = request(`http://${target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      record.status = answer.statusCode ?? 0;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.on('data', (chunk: Buffer) => {
      record.bodyBytes += chunk.length;
      if (fault && 'cutAfter' in fault && record.bodyBytes > fault.cutAfter) {
        req.socket.destroy();
        upstream.destroy();
      }
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

/** Runs `ctr` in a namespace; resolves with stdout, rejects with stderr on failure. */
export function ctr(namespace: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ctr', ['--namespace', namespace, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ctr ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

/** The image ID (config digest) containerd holds under `name`, read from its manifest. */
export async function containerdImageId(namespace: string, name: string): Promise<string | undefined> {
  const line = (await ctr(namespace, ['images', 'ls'])).split('\n').find((l) => l.split(/\s+/)[0] === name);
  if (!line) return undefined;
  const manifest = JSON.parse(await ctr(namespace, ['content', 'get', line.split(/\s+/)[2]!])) as { config: { digest: string } };
  return manifest.config.digest;
}

/** Removes every image of a namespace, then the namespace (best effort: content may linger until GC). */
export async function dropNamespace(namespace: string): Promise<void> {
  const names = (await ctr(namespace, ['images', 'ls', '-q']).catch(() => '')).split('\n').filter(Boolean);
  if (names.length > 0) await ctr(namespace, ['images', 'rm', '--sync', ...names]).catch(() => undefined);
  await ctr('default', ['namespaces', 'rm', namespace]).catch(() => undefined);
}
