/**
 * Task events to containerd: `containerd.services.events.ttrpc.v1.Events/Forward` on
 * $TTRPC_ADDRESS, in the order they happen, each retried until containerd takes it (a restarting
 * containerd comes back on the same address). Type URLs are containerd's unprefixed names
 * ("containerd.events.TaskExit").
 */
import { TtrpcClient } from './ttrpc';
import { T, encodeAny, timestamp } from './messages';

export type Topic =
  | '/tasks/create'
  | '/tasks/start'
  | '/tasks/exec-added'
  | '/tasks/exec-started'
  | '/tasks/oom'
  | '/tasks/paused'
  | '/tasks/resumed'
  | '/tasks/exit'
  | '/tasks/delete';

const EVENT_TYPE: Record<Topic, keyof typeof T & string> = {
  '/tasks/create': 'TaskCreate',
  '/tasks/start': 'TaskStart',
  '/tasks/exec-added': 'TaskExecAdded',
  '/tasks/exec-started': 'TaskExecStarted',
  '/tasks/oom': 'TaskOOM',
  '/tasks/paused': 'TaskPaused',
  '/tasks/resumed': 'TaskResumed',
  '/tasks/exit': 'TaskExit',
  '/tasks/delete': 'TaskDelete',
};

export class EventPublisher {
  private queue: { topic: Topic; payload: Uint8Array }[] = [];
  private running = false;
  private client: TtrpcClient | null = null;
  private idle: (() => void)[] = [];

  constructor(
    private readonly address: string,
    private readonly namespace: string,
    private readonly log: (m: string) => void,
  ) {}

  publish(topic: Topic, event: Record<string, unknown>): void {
    const name = EVENT_TYPE[topic];
    const envelope = {
      timestamp: timestamp(new Date()),
      namespace: this.namespace,
      topic,
      event: encodeAny(`containerd.events.${name}`, (T as any)[name], event),
    };
    this.queue.push({ topic, payload: T.ForwardRequest.encode({ envelope }).finish() });
    if (!this.running) void this.drain();
  }

  /** Resolves once every event published so far has been delivered (or dropped). */
  flushed(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const ev = this.queue[0];
        let delivered = false;
        for (let attempt = 0; attempt < 40 && !delivered; attempt++) {
          try {
            if (!this.address) break;
            if (!this.client) this.client = await TtrpcClient.connect(this.address);
            await this.client.call('containerd.services.events.ttrpc.v1.Events', 'Forward', ev.payload, { timeoutMs: 5000 });
            delivered = true;
          } catch (e) {
            this.client?.close();
            this.client = null;
            if (attempt === 0) this.log(`publish ${ev.topic}: ${(e as Error).message} (retrying)`);
            await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 2000)));
          }
        }
        if (!delivered) this.log(`publish ${ev.topic}: dropped after retries`);
        this.queue.shift();
      }
    } finally {
      this.running = false;
      for (const r of this.idle.splice(0)) r();
    }
  }

  close(): void {
    this.client?.close();
    this.client = null;
  }
}
