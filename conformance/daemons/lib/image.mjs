// Builds a one-layer busybox image as a docker-archive (the `docker save` format), which both
// `docker load` and `ctr image import` accept. No registry is reachable here, so we make our own.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { run } from './proc.mjs';

export const IMAGE_REF = 'tsrunconf/busybox:latest';
// containerd normalises the docker-archive's RepoTags the way docker does.
export const CTR_IMAGE_REF = 'docker.io/tsrunconf/busybox:latest';

const sha256File = (p) => crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');

export async function buildImage(dir, busybox = '/bin/busybox') {
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'var', 'run']) {
    fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  }
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  const list = await run([busybox, '--list']);
  if (list.code !== 0) throw new Error(`${busybox} --list failed: ${list.stderr}`);
  for (const applet of list.stdout.split('\n').map((s) => s.trim()).filter(Boolean)) {
    if (applet === 'busybox' || applet.includes('/')) continue;
    fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  }
  fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  // For podman's tmpfs mounts with tmpcopyup (--read-only, --tmpfs /run, systemd mode): a file
  // the tmpfs over /run must show if the image's content was copied up into it.
  fs.writeFileSync(path.join(rootfs, 'run', 'tsrunconf-copyup'), 'copied-up\n');

  const arch = path.join(dir, 'archive');
  fs.mkdirSync(arch);
  const layerTmp = path.join(dir, 'layer.tar');
  // Deterministic ownership: the image is root's whatever the host user ids are.
  const tar = await run(['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', layerTmp, '.'], { timeoutMs: 60000 });
  if (tar.code !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  const diffId = sha256File(layerTmp);
  fs.mkdirSync(path.join(arch, diffId));
  fs.renameSync(layerTmp, path.join(arch, diffId, 'layer.tar'));

  const config = {
    architecture: process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch,
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['sh'],
      WorkingDir: '/',
    },
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'tsrun conformance/daemons: busybox-static rootfs' }],
  };
  const configText = JSON.stringify(config);
  const configId = crypto.createHash('sha256').update(configText).digest('hex');
  fs.writeFileSync(path.join(arch, `${configId}.json`), configText);
  fs.writeFileSync(path.join(arch, 'manifest.json'), JSON.stringify([
    { Config: `${configId}.json`, RepoTags: [IMAGE_REF], Layers: [`${diffId}/layer.tar`] },
  ]));
  const out = path.join(dir, 'busybox-image.tar');
  const tar2 = await run(['tar', '--numeric-owner', '--owner=0', '--group=0', '-C', arch, '-cf', out, '.'], { timeoutMs: 60000 });
  if (tar2.code !== 0) throw new Error(`tar failed: ${tar2.stderr}`);
  return { archive: out, configId };
}
