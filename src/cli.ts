#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { diff, type DiffOptions, type Reporter } from './commands/diff.js';
import { list } from './commands/list.js';
import { load, type LoadOptions } from './commands/load.js';
import { DdiffError, errorMessage } from './errors.js';

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
    .argument('<base>', 'base: image reference, archive file or layout directory')
    .argument('<target...>', 'target(s): image reference, archive file or layout directory')
    .option('-o, --output <file>', 'bundle file (- for stdout; default <name>_<tag>.ddiff)')
    .option('--level <n>', 'gzip level for layers that arrive uncompressed (1-9)', '6')
    .option('--platform <os/arch[/variant]>', 'platform to take from multi-platform targets (default: this host)')
    .option('--json', 'print a JSON summary')
    .addOption(engineOption())
    .action(async (base: string, targets: string[], options: DiffOptions) => {
      await diff(base, targets, options, reporter);
    });

  program
    .command('load')
    .description('verify a bundle, rebuild the full image from the base, and load it (or write it with -o)')
    .argument('<bundle>', 'bundle file written by ddiff diff')
    .option('--base <ref|archive>', 'where the base layers are (default: the recorded base, else any local image holding them)')
    .option('-o, --output <file>', 'write the rebuilt image archive here instead of loading it (- for stdout)')
    .option('--image <tag|id>', 'load only this image of the bundle')
    .option('--json', 'print a JSON summary')
    .addOption(engineOption())
    .action(async (bundle: string, options: LoadOptions) => {
      await load(bundle, options, reporter);
    });

  return program;
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
