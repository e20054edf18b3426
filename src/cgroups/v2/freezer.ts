/** v2 freezer: cgroup.freeze is a request; the cgroup is frozen once cgroup.events says so. */
import * as path from 'node:path';
import { CgroupError, parseFlatKeyed, readOptional, sleep, writeCgroupFile } from '../util';

function frozenNow(dir: string): boolean {
  return parseFlatKeyed(readOptional(path.join(dir, 'cgroup.events'))).frozen === 1;
}

export async function freeze(dir: string): Promise<void> {
  const file = path.join(dir, 'cgroup.freeze');
  writeCgroupFile(file, '1');
  for (let i = 0; i < 1000; i++) {
    if (frozenNow(dir)) return;
    await sleep(10);
  }
  writeCgroupFile(file, '0');
  throw new CgroupError(`${file}: unable to freeze: not frozen after 10 s`);
}

export async function thaw(dir: string): Promise<void> {
  const file = path.join(dir, 'cgroup.freeze');
  writeCgroupFile(file, '0');
  for (let i = 0; i < 1000; i++) {
    if (!frozenNow(dir)) return;
    await sleep(10);
  }
  throw new CgroupError(`${file}: unable to thaw`);
}

/** What was asked (cgroup.freeze), as runc's fs2 reports a paused container. */
export function isFrozen(dir: string): boolean {
  const t = readOptional(path.join(dir, 'cgroup.freeze'));
  return t !== null && t.trim() === '1';
}
