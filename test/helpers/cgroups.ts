/** Cleanup shared by the cgroup manager tests (test/cgroups-v1.test.ts, test/cgroups-v2.test.ts). */
import type { ChildProcess } from 'node:child_process';
import type { CgroupManager } from '../../src/cgroups';

/**
 * After the tests: kills the processes they started and destroys every manager they made (a
 * frozen cgroup is thawed first, or its processes could not die). Each step on its own: one
 * failure must not leave the other cgroups behind.
 */
export async function releaseCgroups(children: ChildProcess[], managers: CgroupManager[]): Promise<void> {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
  for (const m of managers) {
    try {
      if (m.isFrozen()) await m.thaw();
    } catch {}
    try {
      await m.destroy({ killLeftovers: true });
    } catch (e) {
      console.error(`cleanup: ${(e as Error).message}`);
    }
  }
}
