/**
 * schemas/plan.schema.json compiled with ajv, for tests only: the CLI never validates its own
 * plans (tsrun-init checks every plan, from the same schema), so this costs it nothing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import * as assert from 'uvu/assert';

export const PLAN_SCHEMA_FILE = path.resolve(__dirname, '../../schemas/plan.schema.json');
export const planSchema = JSON.parse(fs.readFileSync(PLAN_SCHEMA_FILE, 'utf8'));

const validate = new Ajv({ strict: true, allErrors: true, discriminator: true }).compile(planSchema);

/** ajv's problems with a plan ("" when it fits the schema). */
export function planProblems(plan: unknown): string {
  if (validate(plan)) return '';
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`).join('; ');
}

export function assertValidPlan(plan: unknown, what = 'plan') {
  const problems = planProblems(plan);
  assert.is(problems, '', `${what} does not fit schemas/plan.schema.json: ${problems}`);
}
