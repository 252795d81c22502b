// The JSON Schemas of schemas/ (each command's --json output), for tests to check output against.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { repoRoot } from './cli.js';

export const schemasDir = join(repoRoot, 'schemas');
const ajv = new Ajv({ allErrors: true, strict: true });
for (const file of readdirSync(schemasDir)) ajv.addSchema(JSON.parse(readFileSync(join(schemasDir, file), 'utf8')) as object);

/** The validator of `schemas/<name>.schema.json`, or of a definition in it (`common#/definitions/base`). */
export function schemaValidator(name: string): ValidateFunction {
  const [file, pointer] = name.split('#');
  const validate = ajv.getSchema(`https://ddiff.invalid/schemas/${file}.schema.json${pointer ? `#${pointer}` : ''}`);
  assert.ok(validate, `schema ${name} exists`);
  return validate;
}

export function assertMatchesSchema(name: string, value: unknown, what: string): void {
  const validate = schemaValidator(name);
  assert.ok(validate(value), `${what} does not match schemas/${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
}
