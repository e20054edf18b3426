/**
 * runc's logging contract: with --log FILE every line appended to FILE is one record, either
 * logrus text (`time="…" level=error msg="…"`) or, with --log-format json,
 * `{"level":"error","msg":"…","time":"<RFC 3339>"}`. containerd shows the user the last error
 * line of that file, so errors must say what went wrong. Without --log, records go to stderr.
 */
import * as fs from 'node:fs';
import type { Logger } from '../container/context';
import { openAppendFile } from '../container/files';

type Level = 'debug' | 'info' | 'warning' | 'error';

function rfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function textQuote(s: string): string {
  return /^[A-Za-z0-9_.:/+-]+$/.test(s) ? s : JSON.stringify(s);
}

export class CliLogger implements Logger {
  private fd: number;
  constructor(
    file: string | undefined,
    private readonly format: 'text' | 'json',
    private readonly debugEnabled: boolean,
  ) {
    // Never through a symlink someone planted at the log's name (tsrun runs as root).
    this.fd = file ? openAppendFile(file, 0o644) : 2;
  }

  private write(level: Level, msg: string): void {
    const time = rfc3339();
    const line =
      this.format === 'json'
        ? JSON.stringify({ level, msg, time })
        : `time=${textQuote(time)} level=${level} msg=${textQuote(msg)}`;
    try {
      fs.writeSync(this.fd, line + '\n');
    } catch {
      // Logging must never turn a success into a failure.
    }
  }

  debug(msg: string): void {
    if (this.debugEnabled) this.write('debug', msg);
  }
  info(msg: string): void {
    this.write('info', msg);
  }
  warn(msg: string): void {
    this.write('warning', msg);
  }
  error(msg: string): void {
    this.write('error', msg);
  }
  /** Errors also go to stderr as a plain line when the log itself is a file. */
  get toFile(): boolean {
    return this.fd !== 2;
  }
}
