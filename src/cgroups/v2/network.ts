/** linux.resources.network on v2: net_cls/net_prio do not exist there (runc ignores them; a filter needs eBPF). */
import type { V2Controller } from './controller';

export const network: V2Controller = {
  name: 'network',
  async set(_dir, r, env) {
    if (r.network && (r.network.classID || r.network.priorities?.length)) env.warn('linux.resources.network is ignored on cgroup v2 (no net_cls/net_prio controllers)');
  },
};
