/**
 * The broker's own log: one JSON object per line. Entries are built from chosen fields only — never request
 * bodies, tokens or credentials — so nothing secret can reach it by accident.
 */
export interface BrokerLogEntry {
  level: 'info' | 'warn' | 'error';
  msg: string;
  requestId?: string;
  [field: string]: unknown;
}

export type BrokerLog = (entry: BrokerLogEntry) => void;

export function jsonLineLog(write: (line: string) => void, now: () => Date = () => new Date()): BrokerLog {
  return (entry) => write(`${JSON.stringify({ time: now().toISOString(), ...entry })}\n`);
}

export const silentLog: BrokerLog = () => {};
