import type { CommandModule } from 'yargs';
import { action, type GlobalArgs } from '../context';

interface IdArgs extends GlobalArgs {
  id: string;
}

/** pause and resume share everything but the direction. */
function freezeCommand(name: 'pause' | 'resume'): CommandModule<any, any> {
  return {
    command: `${name} <id>`,
    describe: name === 'pause' ? 'freeze every process of a container (cgroup freezer)' : 'thaw a paused container',
    builder: (y) => y.positional('id', { type: 'string', demandOption: true }),
    handler: action<IdArgs>(async (argv, ctx) => {
      const { pauseContainer, resumeContainer } = await import('../../container/pause');
      await (name === 'pause' ? pauseContainer : resumeContainer)(ctx, argv.id);
    }),
  };
}

export const pauseCmd = freezeCommand('pause');
export const resumeCmd = freezeCommand('resume');
