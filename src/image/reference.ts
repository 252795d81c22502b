import { UsageError } from '../errors.js';

/** An image reference split as registries and containerd read it. */
export interface ImageReference {
  /** Registry host, with its port when it has one: `docker.io`, `127.0.0.1:5000`. */
  domain: string;
  /** Repository path inside the registry: `library/alpine`, `team/app`. */
  repository: string;
  /** Tag, or undefined when the reference names a digest. */
  tag?: string;
  digest?: string;
}

const DEFAULT_DOMAIN = 'docker.io';
const REPOSITORY_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** The first path component is a registry host when it looks like one (as Docker decides). */
function isDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/** Parses `[HOST[:PORT]/]REPO[:TAG][@DIGEST]`; a missing host is Docker Hub, a missing tag `latest`. */
export function parseReference(text: string): ImageReference {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new UsageError(`'${text}': '${digest}' is not a sha256 digest`);
  }
  const slash = rest.indexOf('/');
  let domain = DEFAULT_DOMAIN;
  if (slash !== -1 && isDomain(rest.slice(0, slash))) {
    domain = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new UsageError(`'${text}': '${tag}' is not a valid tag`);
  }
  if (domain === DEFAULT_DOMAIN && !rest.includes('/')) rest = `library/${rest}`;
  if (!REPOSITORY_RE.test(rest)) throw new UsageError(`'${text}' is not a valid image reference`);
  const ref: ImageReference = { domain, repository: rest };
  if (tag !== undefined || digest === undefined) ref.tag = tag ?? 'latest';
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** The full name containerd and Kubernetes use: `alpine` → `docker.io/library/alpine:latest`. */
export function normalizedName(text: string): string {
  return formatReference(parseReference(text));
}

export function formatReference(ref: ImageReference): string {
  const tag = ref.tag === undefined ? '' : `:${ref.tag}`;
  const digest = ref.digest === undefined ? '' : `@${ref.digest}`;
  return `${ref.domain}/${ref.repository}${tag}${digest}`;
}
