/**
 * The protobuf messages the shim speaks, by their short names, from the code that
 * scripts/build-proto.mjs generates out of src/shim/proto (one definition: the .proto files).
 * Static protobufjs code: `T.X.encode(plainObject).finish()`, `T.X.decode(bytes)`.
 */
import * as pb from './gen/proto';

const task = pb.containerd.task.v2;
const events = pb.containerd.events;

export const T = {
  ...task,
  TaskCreate: events.TaskCreate,
  TaskStart: events.TaskStart,
  TaskDelete: events.TaskDelete,
  TaskExit: events.TaskExit,
  TaskOOM: events.TaskOOM,
  TaskExecAdded: events.TaskExecAdded,
  TaskExecStarted: events.TaskExecStarted,
  TaskPaused: events.TaskPaused,
  TaskResumed: events.TaskResumed,
  ForwardRequest: pb.containerd.services.events.ttrpc.v1.ForwardRequest,
  Empty: pb.google.protobuf.Empty,
  RuncOptions: pb.containerd.runc.v1.Options,
  ProcessDetails: pb.containerd.runc.v1.ProcessDetails,
  MetricsV1: pb.io.containerd.cgroups.v1.Metrics,
  MetricsV2: pb.io.containerd.cgroups.v2.Metrics,
};

/** containerd's task status enum (api/types/task). */
export const Status = pb.containerd.v1.types.Status;

interface Encoder {
  encode(m: any): { finish(): Uint8Array };
}

export function encode(type: Encoder, m: object): Uint8Array {
  return type.encode(m).finish();
}

export function encodeAny(typeUrl: string, type: Encoder, m: object): { typeUrl: string; value: Uint8Array } {
  return { typeUrl, value: type.encode(m).finish() };
}

export function timestamp(d: Date): { seconds: number; nanos: number } {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}
