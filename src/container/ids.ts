import * as path from 'node:path';
import { RuntimeError } from './errors';

// runc's rule: letters, digits and _ + . - ; never "." or "..", so that an id can be joined to
// the state root without escaping it.
const ID_PATTERN = /^[A-Za-z0-9_+.-]+$/;

export function validateId(id: string | undefined): string {
  if (id === undefined || id === '') throw new RuntimeError('container id cannot be empty');
  if (!ID_PATTERN.test(id) || id === '.' || id === '..' || id.length > 1024) {
    throw new RuntimeError(`invalid container id format: ${JSON.stringify(id)}`);
  }
  return id;
}

export function containerDir(root: string, id: string): string {
  return path.join(root, validateId(id));
}
