import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errorMessage, RegistryError } from '../errors.js';
import { isRecord } from '../util/json.js';
import { describeFailure, send } from './http.js';

export interface Credentials {
  username: string;
  password: string;
}

/** A `WWW-Authenticate` challenge: the scheme and its parameters (realm, service, scope). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="https://auth",service="reg",scope="repository:a:pull"` (or `Basic realm="x"`). */
export function parseChallenge(header: string): Challenge | undefined {
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const m of match[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

/**
 * The files credentials are read from, in this order (the first naming the registry wins): REGISTRY_AUTH_FILE (as skopeo and
 * Podman take it), Podman's `$XDG_RUNTIME_DIR/containers/auth.json`, then Docker's
 * `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
 */
function authFiles(): string[] {
  const env = process.env;
  if (env.REGISTRY_AUTH_FILE) return [env.REGISTRY_AUTH_FILE];
  const files: string[] = [];
  if (env.XDG_RUNTIME_DIR) files.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  files.push(join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json'));
  return files;
}

/** `https://host/v1/`, `host`, `http://host` all name the registry `host`. */
function hostOfKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
}

function fromEntry(entry: unknown): Credentials | undefined {
  if (!isRecord(entry)) return undefined;
  if (typeof entry.auth === 'string' && entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string')
    return { username: entry.username, password: entry.password };
  return undefined;
}

/** Credentials for `host` (undefined: anonymous). */
export function credentialsFor(host: string): Credentials | undefined {
  for (const file of authFiles()) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    } catch {
      continue;
    }
    const auths = isRecord(doc) && isRecord(doc.auths) ? doc.auths : {};
    for (const [key, entry] of Object.entries(auths)) {
      if (hostOfKey(key) === host) return fromEntry(entry);
    }
  }
  return undefined;
}

function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/**
 * The Authorization header a 401's challenge asks for: Basic with the configured credentials,
 * or a bearer token from the challenge's realm for its scope plus `scopes` (all a push will
 * need, so that later streamed uploads never meet a 401 they could not replay).
 */
export async function authorize(
  host: string,
  step: string,
  challenge: Challenge | undefined,
  options: { credentials: Credentials | undefined; scopes: string[]; insecure: boolean },
): Promise<string> {
  const { credentials } = options;
  if (challenge?.scheme === 'basic' || (challenge === undefined && credentials)) {
    if (!credentials) {
      throw new RegistryError(host, step, 'HTTP 401: the registry wants credentials and none are configured for it', { status: 401 });
    }
    return basicAuthorization(credentials);
  }
  const realm = challenge?.scheme === 'bearer' ? challenge.params.realm : undefined;
  if (!realm) throw new RegistryError(host, step, 'HTTP 401 without a usable authentication challenge', { status: 401 });
  const tokenUrl = new URL(realm);
  if (challenge?.params.service) tokenUrl.searchParams.set('service', challenge.params.service);
  for (const scope of new Set([...(challenge?.params.scope ? [challenge.params.scope] : []), ...options.scopes])) {
    tokenUrl.searchParams.append('scope', scope);
  }
  const tokenStep = `${step} (token from ${tokenUrl.host})`;
  const headers: Record<string, string> = credentials ? { Authorization: basicAuthorization(credentials) } : {};
  const answer = await send(tokenUrl, { method: 'GET', headers, insecure: options.insecure }).catch((error: unknown) => {
    throw new RegistryError(host, tokenStep, `connection failed: ${errorMessage(error)}`);
  });
  if (answer.status !== 200) throw new RegistryError(host, tokenStep, await describeFailure(answer), { status: answer.status });
  let token: unknown;
  try {
    const doc = JSON.parse(await answer.text()) as unknown;
    token = isRecord(doc) ? (doc.token ?? doc.access_token) : undefined;
  } catch {
    token = undefined;
  }
  if (typeof token !== 'string' || !token) throw new RegistryError(host, tokenStep, 'the token server answered without a token');
  return `Bearer ${token}`;
}
