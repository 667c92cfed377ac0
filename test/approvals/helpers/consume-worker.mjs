// Runs in a worker thread: its own SQLite connection on the shared file, its own ApprovalService.
// For each id it receives: wait at the barrier until both workers are ready, then consume at the same moment.
import { parentPort, workerData } from 'node:worker_threads';

const { ApprovalService } = await import(workerData.servicePath);
const { openSqliteDb } = await import(workerData.dbPath);

const db = openSqliteDb(workerData.dbFile);
const service = new ApprovalService(db, { now: () => workerData.now });
const barrier = new Int32Array(workerData.barrier);

parentPort.on('message', async ({ id, round, invocation }) => {
  // Two-party barrier per round: arrive, then wait until the other has arrived too.
  Atomics.add(barrier, round, 1);
  while (Atomics.load(barrier, round) < 2) Atomics.wait(barrier, round, Atomics.load(barrier, round), 5);
  let result;
  try {
    await service.consume(id, { requester: workerData.requester, invocation, target: 'prod', grantId: `g-${workerData.name}` });
    result = 'ok';
  } catch (e) {
    result = e?.code ?? `error: ${e?.message}`;
  }
  parentPort.postMessage({ round, result });
});
parentPort.postMessage({ ready: true });
