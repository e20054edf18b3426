// config.md "Process" (and its POSIX/Linux parts): what `start` must apply to the user process.
// Each case runs a one-shot container with `run` and reads its stdout.

const statusField = (out, field) => (out.match(new RegExp(`^${field}:\\s*(.*)$`, 'm')) ?? [])[1]?.trim();

export default [
  {
    id: 'process.args',
    must: 'process.args are passed as argv, unsplit',
    ref: 'config.md#process (args)',
    async run(t) {
      const out = t.output(['/bin/printf', '[%s]\\n', 'a b', 'c', '']);
      t.eq(out, '[a b]\n[c]\n[]\n', 'stdout');
    },
  },
  {
    id: 'process.env',
    must: 'process.env is the environment; PATH in it is used for args[0]',
    ref: 'config.md#process (env, args)',
    async run(t) {
      // args[0] "sh" has no slash: execvp semantics look it up in PATH from process.env.
      const out = t.output(['sh', '-c', 'echo "$FOO|$EMPTY|$PATH"'], (c) => {
        c.process.env = ['PATH=/bin', 'FOO=bar baz', 'EMPTY='];
      });
      t.eq(out, 'bar baz||/bin\n', 'stdout');
    },
  },
  {
    id: 'process.env-not-inherited',
    must: "the runtime's own environment does not leak into the process",
    ref: 'config.md#process (env)',
    runcBehaviour: true,
    async run(t) {
      const out = t.output(['sh', '-c', 'echo "${CONFORMANCE_HOST_ONLY:-unset}"']);
      t.eq(out, 'unset\n', 'CONFORMANCE_HOST_ONLY in the container');
    },
  },
  {
    id: 'process.cwd',
    must: 'process.cwd is the working directory',
    ref: 'config.md#process (cwd)',
    async run(t) {
      t.eq(t.output(['pwd'], (c) => { c.process.cwd = '/tmp'; }), '/tmp\n', 'pwd');
    },
  },
  {
    id: 'process.user',
    must: 'process.user uid, gid and additionalGids are applied',
    ref: 'config.md#user (POSIX)',
    async run(t) {
      const out = t.output(['cat', '/proc/self/status'], (c) => {
        c.process.user = { uid: 1000, gid: 1001, additionalGids: [2000, 3000] };
      });
      t.eq(statusField(out, 'Uid'), '1000\t1000\t1000\t1000', 'Uid (real, effective, saved, fs)');
      t.eq(statusField(out, 'Gid'), '1001\t1001\t1001\t1001', 'Gid (real, effective, saved, fs)');
      const groups = (statusField(out, 'Groups') ?? '').split(/\s+/).filter(Boolean).map(Number);
      t.expect(groups.includes(2000) && groups.includes(3000), `Groups ${groups} lacks 2000 and 3000`);
      return `Groups: ${groups.join(' ')}`;
    },
  },
  {
    id: 'process.capabilities',
    must: 'process.capabilities sets bounding/effective/permitted/ambient',
    ref: 'config.md#linux-process (capabilities)',
    async run(t) {
      const out = t.output(['cat', '/proc/self/status'], (c) => {
        // uid 1000 so that ambient is what keeps the caps over the exec (root would get them anyway)
        c.process.user = { uid: 1000, gid: 1000 };
        c.process.noNewPrivileges = false;
        const caps = ['CAP_KILL', 'CAP_NET_BIND_SERVICE'];
        c.process.capabilities = { bounding: [...caps, 'CAP_CHOWN'], effective: caps, permitted: caps, inheritable: caps, ambient: caps };
      });
      const kill = 1n << 5n;
      const nbs = 1n << 10n;
      const chown = 1n << 0n;
      const want = { CapBnd: kill | nbs | chown, CapEff: kill | nbs, CapPrm: kill | nbs, CapInh: kill | nbs, CapAmb: kill | nbs };
      for (const [k, v] of Object.entries(want)) {
        const got = BigInt(`0x${statusField(out, k) ?? 'x'}`);
        t.expect(got === v, `${k}: expected ${v.toString(16)}, got ${got.toString(16)}`);
      }
    },
  },
  {
    id: 'process.rlimits',
    must: 'process.rlimits are set (soft and hard)',
    ref: 'config.md#posix-process (rlimits)',
    async run(t) {
      const out = t.output(['cat', '/proc/self/limits'], (c) => {
        c.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1000, hard: 1001 }, { type: 'RLIMIT_NPROC', soft: 4000, hard: 4001 }];
      });
      const line = (name) => (out.split('\n').find((l) => l.startsWith(name)) ?? '').trim().split(/\s{2,}/);
      t.eq(line('Max open files').slice(1, 3), ['1000', '1001'], 'Max open files (soft, hard)');
      t.eq(line('Max processes').slice(1, 3), ['4000', '4001'], 'Max processes (soft, hard)');
    },
  },
  {
    id: 'process.no-new-privileges',
    must: 'process.noNewPrivileges sets no_new_privs',
    ref: 'config.md#linux-process (noNewPrivileges)',
    async run(t) {
      t.eq(statusField(t.output(['cat', '/proc/self/status']), 'NoNewPrivs'), '1', 'NoNewPrivs with true');
      t.eq(statusField(t.output(['cat', '/proc/self/status'], (c) => { c.process.noNewPrivileges = false; }), 'NoNewPrivs'), '0', 'NoNewPrivs with false');
    },
  },
];
