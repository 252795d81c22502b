import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { isRecord } from '../util/json.js';
import { HttpsAgent, httpRequest, httpsRequest } from '../util/node-http.js';

/** JSON documents (manifests, configs, token answers, error bodies) longer than this are refused. */
const MAX_DOCUMENT = 8 << 20;

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as text (up to MAX_DOCUMENT bytes; longer is an error). */
  text(): Promise<string>;
  /** The body as bytes (up to MAX_DOCUMENT). */
  bytes(): Promise<Buffer>;
  /** Reads and drops the body, so the connection can be reused. */
  drain(): Promise<void>;
}

export interface HttpRequest {
  method: string;
  headers?: Record<string, string>;
  /** A Buffer is sent with its length; a stream is sent as it comes (chunked unless Content-Length is given). */
  body?: Buffer | Readable;
  /** Skip certificate verification (`--tls-verify=false`). */
  insecure?: boolean;
}

const insecureAgent = new HttpsAgent({ rejectUnauthorized: false, keepAlive: true });
const secureAgent = new HttpsAgent({ keepAlive: true });

function collect(message: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    message.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > MAX_DOCUMENT) {
        message.destroy(new Error(`response longer than ${MAX_DOCUMENT} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    message.on('end', () => resolve(Buffer.concat(chunks)));
    message.on('error', reject);
    message.on('aborted', () => reject(new Error('the connection was closed mid-response')));
  });
}

/**
 * One HTTP request. A streamed body is piped as it is read (never held); the promise settles
 * with the response as soon as its head arrives, or rejects when the connection breaks or the
 * body stream fails.
 */
export function send(url: URL, options: HttpRequest): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (Buffer.isBuffer(options.body)) headers['Content-Length'] = String(options.body.length);
    else if (options.body === undefined && !['GET', 'HEAD', 'DELETE'].includes(options.method)) headers['Content-Length'] = '0';
    const isHttps = url.protocol === 'https:';
    const req = (isHttps ? httpsRequest : httpRequest)(url, {
      method: options.method,
      headers,
      ...(isHttps ? { agent: options.insecure ? insecureAgent : secureAgent } : {}),
    });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      reject(error);
    };
    req.on('error', fail);
    req.on('response', (message) => {
      if (settled) {
        message.resume();
        return;
      }
      settled = true;
      let body: Promise<Buffer> | undefined;
      const bytes = () => (body ??= collect(message));
      resolve({
        status: message.statusCode ?? 0,
        headers: message.headers,
        bytes,
        text: async () => (await bytes()).toString('utf8'),
        drain: async () => {
          if (body) await body.catch(() => undefined);
          else {
            message.resume();
            await new Promise<void>((done) => {
              message.on('end', done);
              message.on('close', done);
              message.on('error', () => done());
            });
          }
        },
      });
    });
    const body = options.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (error) => {
        fail(error);
        req.destroy(error);
      });
      body.pipe(req);
    }
  });
}

/** The registry's own error text (`{"errors":[{"code","message"}]}`), else the status line. */
export async function describeFailure(response: HttpResponse): Promise<string> {
  const text = await response.text().catch(() => '');
  let said = '';
  try {
    const doc = JSON.parse(text) as unknown;
    if (isRecord(doc) && Array.isArray(doc.errors)) {
      said = doc.errors
        .filter(isRecord)
        .map((e) => [e.code, e.message].filter((x) => typeof x === 'string' && x).join(' '))
        .join('; ');
    }
  } catch {
    said = text.trim().split('\n')[0]?.slice(0, 200) ?? '';
  }
  return `HTTP ${response.status}${said ? ` (${said})` : ''}`;
}
