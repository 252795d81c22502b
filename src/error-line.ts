import { DdiffError, errorCode, errorMessage } from './errors.js';

const SYSTEM_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EROFS: 'read-only file system',
  EPIPE: 'the reader closed the pipe',
};

/** Node's system errors (ENOSPC, EACCES …) as one line naming the path. */
export function describeSystemError(error: unknown): unknown {
  if (error instanceof DdiffError || !(error instanceof Error)) return error;
  const { code, path } = error as NodeJS.ErrnoException;
  const text = code ? SYSTEM_ERRORS[code] : undefined;
  if (!text) return error;
  return new DdiffError(path ? `${path}: ${text}` : `${text} (${error.message})`);
}

/**
 * A message as one printable line: control characters (which a hostile archive can put in entry
 * names, tags or JSON it quotes) are shown escaped, so they can neither drive the terminal nor
 * end the line early.
 */
function printable(message: string): string {
  const text = message.replace(/\n+$/, '');
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** `--json` among ddiff's own arguments (not those `build` passes on after `--`). */
export function wantsJson(argv: string[]): boolean {
  const own = argv.indexOf('--');
  return (own < 0 ? argv : argv.slice(0, own)).includes('--json');
}

export function reportError(error: unknown, json: boolean): void {
  const message = printable(errorMessage(error));
  if (json) {
    process.stderr.write(`${JSON.stringify({ error: { code: errorCode(error), message } })}\n`);
    return;
  }
  const prefix = process.env.NO_COLOR || !process.stderr.isTTY ? 'ddiff: error: ' : '\u001b[31mddiff: error:\u001b[0m ';
  process.stderr.write(`${prefix}${message}\n`);
}
