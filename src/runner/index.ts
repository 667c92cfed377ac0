export { findAws, assertNotNested, packageRoot, SHIM_MARKER, ACTIVE_ENV, type AwsBinary, type FindAwsOptions } from './find-aws.js';
export { runAws, type RunAwsOptions, type RunAwsResult, type OutputName, type SignalSource, type RunIsolation } from './run-aws.js';
export { assertRunnableArgv, commandWords, type CommandWords } from './argv-guard.js';
export type { ScopedCredentials } from './sandbox.js';
export { installShim, defaultShimDir, type InstallShimOptions, type InstalledShim } from './shim.js';
export { installedCliVersion, parseCliVersion, resolveCliRelease } from './cli-version.js';
