/**
 * Every failure ddiff reports to a user is one of these: a one-line message that names the
 * file or image and what is wrong, and the process exit code that goes with it.
 *
 * Exit codes (documented in README): 1 = the input or the operation failed, 2 = usage error,
 * 125 = the container engine failed or is missing (as `docker run` uses 125 for daemon errors),
 * 130 = interrupted.
 */
export class DdiffError extends Error {
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** The command line itself is wrong. */
export class UsageError extends DdiffError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}

/** An archive, directory or bundle is unreadable, malformed or not what it claims to be. */
export class ArchiveError extends DdiffError {
  readonly source: string;
  constructor(source: string, problem: string, options: { cause?: unknown } = {}) {
    super(`${source}: ${problem}`, options);
    this.source = source;
  }
}

/** Bytes read do not hash to the digest they are recorded under. */
export class DigestMismatchError extends ArchiveError {}

/** The archive uses a compression ddiff cannot read on this machine. */
export class UnsupportedCompressionError extends ArchiveError {}

/** `docker` / `podman` failed, or is not there; carries the engine's own message. */
export class EngineError extends DdiffError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { exitCode: 125, ...options });
  }
}

/** Layers needed to rebuild an image are not available from the base. */
export class MissingLayersError extends DdiffError {}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
