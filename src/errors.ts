/**
 * Every failure ddiff reports to a user is one of these: a one-line message that names the
 * file or image and what is wrong, and the process exit code that goes with it. Lower-level
 * "problem" errors (a bad tar header, a malformed config) carry no file name; the code that
 * knows which file it was reading wraps them in an ArchiveError.
 */

/** Process exit codes (documented in README), as `docker run` and skopeo use them. */
export const ExitCode = {
  ok: 0,
  /** the input or the operation failed */
  failure: 1,
  usage: 2,
  /** the container engine failed or is missing (as `docker run` uses 125 for daemon errors) */
  engine: 125,
  /** 128 + the signal number */
  sigint: 130,
  sigterm: 143,
} as const;

export class DdiffError extends Error {
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? ExitCode.failure;
  }
}

/** The command line itself is wrong. */
export class UsageError extends DdiffError {
  constructor(message: string) {
    super(message, { exitCode: ExitCode.usage });
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

/** The one message for stored bytes that are not what their digest says. */
export function corrupt(source: string, what: string, detail: string): DigestMismatchError {
  return new DigestMismatchError(source, `${what} is corrupt: ${detail}`);
}

/** The archive uses a compression ddiff cannot read on this machine. */
export class UnsupportedCompressionError extends ArchiveError {}

/** `docker` / `podman` failed, or is not there; carries the engine's own message. */
export class EngineError extends DdiffError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { exitCode: ExitCode.engine, ...options });
  }
}

/** The engine does not answer at all (its CLI fails before any image is looked at): said as such, never as a missing image. */
export class EngineNotAnsweringError extends EngineError {}

/** The engine's CLI is installed but its daemon does not answer: never a silent fall-back to another engine. */
export class EngineUnreachableError extends EngineNotAnsweringError {
  constructor(engine: string, address: string, detail: string) {
    super(`${engine} daemon not reachable at ${address}${detail ? ` (${detail})` : ''}`);
  }
}

/**
 * A registry refused, failed or broke off: one line naming the registry and the step (as
 * `registry HOST: STEP: what happened`), exit 125 like an engine failure.
 */
export class RegistryError extends DdiffError {
  readonly status: number | undefined;
  constructor(registry: string, step: string, problem: string, options: { status?: number; cause?: unknown } = {}) {
    super(`registry ${registry}: ${step}: ${problem}`, { exitCode: ExitCode.engine, cause: options.cause });
    this.status = options.status;
  }
}

/** Layers needed to rebuild an image are not available from the base. */
export class MissingLayersError extends DdiffError {}

/** The command would succeed but surely not do what was meant (swapped arguments, binary to a terminal). */
export class RefusedError extends DdiffError {}

// Problems found below the level that knows the user's file name; wrapped into ArchiveError
// (or reported as they are, exit 1) by the caller.

/** A tar header is malformed. */
export class TarFormatError extends Error {}
/** An entry was given more or fewer bytes than its header says (`got`: at least that many, when more). */
export class EntrySizeError extends Error {
  constructor(
    readonly expected: number,
    readonly got: number,
  ) {
    super(`${got > expected ? 'at least ' : ''}${got} bytes for an entry of ${expected}`);
  }
}
/** A tar stream or file ends inside an entry or header. */
export class TarTruncatedError extends Error {}
/** An entry name or link points outside the archive. */
export class UnsafePathError extends Error {}
/** An image config is malformed. */
export class ConfigError extends Error {}
/** A bundle's metadata is malformed or too new. */
export class BundleFormatError extends Error {}
/** A Dockerfile cannot be parsed for its base image. */
export class DockerfileError extends Error {}
/** An HTTP answer on an engine's socket is malformed or stops short (engine/api-stream.ts). */
export class AnswerError extends Error {}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** A stable, machine-readable name for an error (the `code` of `--json` errors). */
export function errorCode(error: unknown): string {
  if (error instanceof UsageError) return 'usage';
  if (error instanceof EngineUnreachableError) return 'engine-unreachable';
  if (error instanceof EngineError) return 'engine';
  if (error instanceof RegistryError) return 'registry';
  if (error instanceof MissingLayersError) return 'missing-layers';
  if (error instanceof DigestMismatchError) return 'corrupt';
  if (error instanceof RefusedError) return 'refused';
  if (error instanceof ArchiveError) return 'bad-input';
  return 'failure';
}
