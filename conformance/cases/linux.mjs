// config.md (root, mounts, hostname) and config-linux.md (namespaces, devices, masked and
// readonly paths): properties that create MUST apply.
import fs from 'node:fs';
import path from 'node:path';
import { baseConfig } from '../lib/config.mjs';

const NS = { pid: 'pid', network: 'net', ipc: 'ipc', uts: 'uts', mount: 'mnt', user: 'user', cgroup: 'cgroup' };
const hostNs = (f) => fs.readlinkSync(`/proc/self/ns/${f}`);

// Print "name link" for each namespace of the container process.
const nsScript = (files) => ['sh', '-c', files.map((f) => `echo ${f} $(readlink /proc/self/ns/${f})`).join('; ')];
const parseNs = (out) => Object.fromEntries(out.trim().split('\n').map((l) => l.split(' ')));

export default [
  {
    id: 'linux.namespaces-created',
    must: 'each listed namespace is a new one; unlisted ones are inherited',
    ref: 'config-linux.md#namespaces',
    async run(t) {
      const files = Object.values(NS).filter((f) => fs.existsSync(`/proc/self/ns/${f}`));
      const got = parseNs(t.output(nsScript(files)));
      const listed = ['pid', 'net', 'ipc', 'uts', 'mnt']; // base config: pid network ipc uts mount
      for (const f of files) {
        t.expect(got[f], `no ${f} namespace link printed`);
        if (listed.includes(f)) t.expect(got[f] !== hostNs(f), `${f}: container shares the host namespace ${got[f]}`);
        else t.eq(got[f], hostNs(f), `${f} (not listed: must be inherited)`);
      }
      return files.map((f) => `${f}${listed.includes(f) ? '≠' : '='}host`).join(' ');
    },
  },
  {
    id: 'linux.namespace-path',
    must: 'a namespace with a path joins that namespace',
    ref: 'config-linux.md#namespaces (path)',
    async run(t) {
      // Our own network namespace is one we know the link of: join it by path.
      const out = t.output(nsScript(['net', 'uts']), (c) => {
        c.linux.namespaces = c.linux.namespaces.map((n) => (n.type === 'network' ? { type: 'network', path: `/proc/${process.pid}/ns/net` } : n));
      });
      const got = parseNs(out);
      t.eq(got.net, hostNs('net'), 'net namespace');
      t.expect(got.uts !== hostNs('uts'), 'uts namespace is the host one (only network was joined)');
    },
  },
  {
    id: 'linux.hostname',
    must: 'hostname is set in the new uts namespace',
    ref: 'config.md#hostname',
    async run(t) {
      const out = t.output(['hostname'], (c) => { c.hostname = 'conformance-test-host'; });
      t.eq(out, 'conformance-test-host\n', 'hostname');
    },
  },
  {
    id: 'linux.root-readonly',
    must: 'root.readonly makes the root filesystem read-only',
    ref: 'config.md#root (readonly)',
    async run(t) {
      const b = t.bundle({
        args: ['sh', '-c', 'if touch /probe 2>/dev/null; then echo root-writable; else echo root-readonly; fi; touch /dev/shm/x && echo shm-writable'],
        mutate: (c) => { c.root.readonly = true; },
      });
      const r = t.ok(t.run(t.id(), b));
      t.eq(r.stdout, 'root-readonly\nshm-writable\n', 'stdout');
      t.expect(!fs.existsSync(t.rootfs(b, 'probe')), 'the probe file was created in the rootfs');
    },
  },
  {
    id: 'linux.root-writable',
    must: 'root.readonly false leaves the root filesystem writable',
    ref: 'config.md#root (readonly)',
    async run(t) {
      const b = t.bundle({ args: ['sh', '-c', 'echo hi > /probe'] });
      t.ok(t.run(t.id(), b));
      t.eq(fs.readFileSync(t.rootfs(b, 'probe'), 'utf8'), 'hi\n', 'probe file in the bundle rootfs');
    },
  },
  {
    id: 'linux.mounts-in-order',
    must: 'mounts are performed in the listed order',
    ref: 'config.md#mounts',
    async run(t) {
      // /m/sub lives inside the first mount: only mounting in order makes both files visible.
      const out = t.output(
        ['sh', '-c', "cat /m/a /m/sub/b; awk '$5 == \"/m\" || $5 == \"/m/sub\" { print $5 }' /proc/self/mountinfo"],
        (c, dir) => {
          const A = path.join(dir, 'srcA');
          const B = path.join(dir, 'srcB');
          fs.mkdirSync(path.join(A, 'sub'), { recursive: true });
          fs.mkdirSync(B);
          fs.writeFileSync(path.join(A, 'a'), 'A\n');
          fs.writeFileSync(path.join(B, 'b'), 'B\n');
          c.mounts.push({ destination: '/m', type: 'bind', source: A, options: ['rbind', 'rw'] });
          c.mounts.push({ destination: '/m/sub', type: 'bind', source: B, options: ['rbind', 'ro'] });
        },
      );
      t.eq(out, 'A\nB\n/m\n/m/sub\n', 'file contents, then mount order in mountinfo');
    },
  },
  {
    id: 'linux.mount-options',
    must: 'mount type, options and destination are applied (tmpfs, ro, size)',
    ref: 'config.md#mounts',
    async run(t) {
      const out = t.output(
        ['sh', '-c', "grep ' /scratch ' /proc/self/mounts; if touch /scratch/x 2>/dev/null; then echo writable; else echo readonly; fi"],
        (c) => { c.mounts.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'nosuid', 'size=1m'] }); },
      );
      const [line, w] = out.trim().split('\n');
      const [, mp, type, opts] = (line ?? '').split(' ');
      t.eq([mp, type], ['/scratch', 'tmpfs'], 'mount point and type');
      const o = (opts ?? '').split(',');
      t.expect(o.includes('ro') && o.includes('nosuid') && o.includes('size=1024k'), `options ${opts}`);
      t.eq(w, 'readonly', 'write to /scratch');
    },
  },
  {
    id: 'linux.masked-paths',
    must: 'maskedPaths cannot be read in the container',
    ref: 'config-linux.md#masked-paths',
    async run(t) {
      // Only paths this kernel has (and that have content on the host) prove anything.
      const masked = baseConfig().linux.maskedPaths.filter((p) => {
        try {
          return fs.statSync(p).isDirectory() ? fs.readdirSync(p).length > 0 : fs.readFileSync(p).length > 0;
        } catch { return false; }
      });
      if (masked.length === 0) t.skip('no masked path exists with content on this host');
      const out = t.output(['sh', '-c', masked.map((p) => `if [ -d ${p} ]; then echo "${p} $(ls -A ${p} | wc -l)"; else echo "${p} $(cat ${p} | wc -c)"; fi`).join('; ')]);
      t.eq(out.trim().split('\n'), masked.map((p) => `${p} 0`), 'entries/bytes visible in masked paths');
      return masked.join(' ');
    },
  },
  {
    id: 'linux.readonly-paths',
    must: 'readonlyPaths are read-only in the container',
    ref: 'config-linux.md#readonly-paths',
    async run(t) {
      // kernel.hostname is per uts namespace: even a failing check cannot touch the host.
      const out = t.output(['sh', '-c', 'if echo changed > /proc/sys/kernel/hostname 2>/dev/null; then echo writable; else echo readonly; fi; hostname']);
      t.eq(out, 'readonly\nconformance\n', 'write to /proc/sys, then hostname');
    },
  },
  {
    id: 'linux.default-devices',
    must: 'the default devices exist (null zero full random urandom tty ptmx)',
    ref: 'config-linux.md#default-devices',
    async run(t) {
      const devs = { null: '1:3', zero: '1:5', full: '1:7', random: '1:8', urandom: '1:9', tty: '5:0' };
      const out = t.output(['sh', '-c', `for d in ${Object.keys(devs).join(' ')}; do stat -c "%n %F %t:%T" /dev/$d; done; ls -l /dev/ptmx; echo x > /dev/null && head -c 4 /dev/zero | wc -c`]);
      const lines = out.trim().split('\n');
      Object.entries(devs).forEach(([d, mm], i) => {
        const [maj, min] = mm.split(':').map(Number);
        t.eq(lines[i], `/dev/${d} character special file ${maj.toString(16)}:${min.toString(16)}`, `/dev/${d}`);
      });
      t.expect(/\/dev\/ptmx/.test(lines[6] ?? ''), `/dev/ptmx missing: ${lines[6]}`);
      t.eq(lines[7], '4', 'bytes read from /dev/zero');
    },
  },
  {
    id: 'linux.dev-symlinks',
    must: '/dev/fd, /dev/stdin, /dev/stdout, /dev/stderr symlinks exist',
    ref: 'runtime-linux.md#dev-symbolic-links',
    async run(t) {
      const out = t.output(['sh', '-c', 'for l in fd stdin stdout stderr; do echo "$l $(readlink /dev/$l)"; done']);
      t.eq(out, 'fd /proc/self/fd\nstdin /proc/self/fd/0\nstdout /proc/self/fd/1\nstderr /proc/self/fd/2\n', 'links');
    },
  },
];
