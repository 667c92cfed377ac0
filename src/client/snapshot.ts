// Moved to src/runner/snapshot.ts: the broker pins a remote run's files the same way.
export { snapshotFiles, type Snapshot } from '../runner/snapshot.js';
