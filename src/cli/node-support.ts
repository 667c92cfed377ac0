import type { IoHost } from '../io/host.js';

/**
 * Node 20 is past its end of life; guard-aws still runs on it (engines: ^20.19 || ^22.12 || >=24). The broker's
 * AWS SDK says so too, but as a seven-line process warning printed whenever the first STS client is made — in the
 * middle of the broker's JSON log, at the first grant. The broker and `dev` say it once, in one line, at start,
 * and switch the SDK's copy off with its documented variable (@aws-sdk/core emitWarningIfUnsupportedVersion).
 * Returns the line it printed, if any.
 */
export function noteNodeSupport(host: IoHost, env: NodeJS.ProcessEnv, version = process.version): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1] ?? 0);
  if (major >= 22) return undefined;
  // An operator who set the SDK's variable either way has chosen: 'true' silences both, anything else keeps the SDK's.
  if (env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED !== undefined) return undefined;
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const line = `running on Node ${version}, past its end of life: the AWS SDK's releases after January 2027 need Node 22 or later; upgrade to Node 22 or 24`;
  host.warn(line);
  return line;
}
