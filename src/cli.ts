#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { diff, type DiffOptions, type Reporter } from './commands/diff.js';
import fg from 'fast-glob';
import { build, type BuildOptions } from './commands/build.js';
import { have, type HaveOptions } from './commands/have.js';
import { inspect, verify } from './commands/inspect.js';
import { list } from './commands/list.js';
import { load, type LoadOptions } from './commands/load.js';
import { configureProgress } from './util/progress.js';
import { DdiffError, errorMessage, UsageError } from './errors.js';

const engineOption = () =>
  new Option('--engine <name>', 'container engine for image references (env DDIFF_ENGINE)').choices(['docker', 'podman']);

function out(text: string): void {
  if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function buildProgram(): Command {
  const program = new Command('ddiff')
    .description('Ship only the image layers an offline host lacks, and rebuild the image there.')
    .version('0.1.0', '-v, --version')
    .showHelpAfterError('(run ddiff --help for usage)')
    .option('-q, --quiet', 'no progress output')
    .hook('preAction', (command, action) =>
      configureProgress({ quiet: Boolean(command.opts().quiet || action.opts().quiet) }),
    )
    .enablePositionalOptions()
    .exitOverride();

  program
    .command('list')
    .description('list the images, platforms and layers of archives, directories or local images')
    .argument('<input...>', 'archive file, layout directory, - (stdin), or image reference')
    .option('--json', 'print JSON (full sha256: digests)')
    .addOption(engineOption())
    .action(async (inputs: string[], options: { json?: boolean; engine?: string }) => {
      await list(inputs, options, out);
    });

  program
    .command('diff')
    .description("write a bundle of the target images' layers that the base lacks")
    .usage('[options] BASE TARGET...  |  --have FILE TARGET...')
    .argument('<inputs...>', 'the base, then the target(s): image references, archive files (globs allowed) or layout directories')
    .option('--have <file>', "the base host's have-list (from ddiff have --json) instead of a base image")
    .option('-o, --output <file>', 'bundle file (- for stdout; default <name>_<tag>.ddiff)')
    .option('-q, --quiet', 'no progress output')
    .option('--compress <method>', 'how layers that arrive uncompressed are stored: gzip, zstd or none', 'gzip')
    .option('--level <n>', 'compression level (gzip 1-9, default 6; zstd 1-19, default 3)')
    .option('--platform <os/arch[/variant]>', 'platform to take from multi-platform targets (default: this host)')
    .option('--json', 'print a JSON summary')
    .addOption(engineOption())
    .action(async (inputs: string[], options: DiffOptions) => {
      await diff(await expandGlobs(inputs), options, reporter);
    });

  program
    .command('load')
    .description('verify a bundle, rebuild the full image from the base, and load it (or write it with -o)')
    .argument('<bundle>', 'bundle file written by ddiff diff')
    .option('-q, --quiet', 'no progress output')
    .option('--base <ref|archive>', 'where the base layers are (default: the recorded base, else any local image holding them)')
    .option('-o, --output <file>', 'write the rebuilt image archive here instead of loading it (- for stdout)')
    .option('--image <tag|id>', 'load only this image of the bundle')
    .option('--no-fast-path', "always send the complete image (skip Docker's classic-store shortcut)")
    .option('--json', 'print a JSON summary')
    .addOption(engineOption())
    .action(async (bundle: string, options: LoadOptions) => {
      await load(bundle, options, reporter);
    });

  program
    .command('inspect')
    .description('show what a bundle holds and needs, and its size against the full images')
    .argument('<bundle>')
    .option('--json', 'print JSON')
    .action(async (bundle: string, options: { json?: boolean }) => inspect(bundle, options, reporter));

  program
    .command('verify')
    .description('check every blob of a bundle and, with --base, that the base holds what is needed; loads nothing')
    .argument('<bundle>')
    .option('--base <ref|archive>', 'base to check')
    .option('--json', 'print JSON')
    .addOption(engineOption())
    .action(async (bundle: string, options: LoadOptions) => verify(bundle, options, reporter));

  program
    .command('have')
    .description("list the diffIDs this host has (all local images, or the given archives) for diff --have")
    .argument('[inputs...]', 'archives or image references (default: every local image)')
    .option('--json', 'print the have-list as JSON (the default when stdout is not a terminal)')
    .addOption(engineOption())
    .action(async (inputs: string[], options: HaveOptions) => have(inputs, options, reporter));

  program
    .command('build')
    .description('run docker/podman build with these arguments untouched; with --diff, bundle the result against its FROM')
    .usage('[--diff] [-o FILE] [--engine E] -- <docker build args...>')
    .option('--diff', 'write the bundle of the built image against the final stage\'s base')
    .option('-o, --output <file>', 'bundle file (with --diff)')
    .option('--json', 'print a JSON summary (with --diff)')
    .addOption(engineOption())
    .argument('<build-args...>')
    .passThroughOptions()
    .allowUnknownOption()
    .action(async (args: string[], options: BuildOptions) => build(args, options, reporter));

  return program;
}

/** Expands glob patterns among inputs (quoted by the user so the shell left them). */
async function expandGlobs(inputs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    if (!fg.isDynamicPattern(input)) {
      out.push(input);
      continue;
    }
    const matches = (await fg(input, { onlyFiles: false })).sort();
    if (matches.length === 0) throw new UsageError(`no file matches '${input}'`);
    out.push(...matches);
  }
  return out;
}

const reporter: Reporter = { out, warn: (text) => process.stderr.write(`${text}\n`) };

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const prefix = process.env.NO_COLOR || !process.stderr.isTTY ? 'ddiff: error: ' : '\u001b[31mddiff: error:\u001b[0m ';
    process.stderr.write(`${prefix}${errorMessage(error).split('\n')[0]}\n`);
    if (process.env.DDIFF_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return error instanceof DdiffError ? error.exitCode : 1;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
