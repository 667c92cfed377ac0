/**
 * Node 20 is past its end of life; guard-aws still runs on it (engines: ^20.19 || ^22.12 || >=24). The broker's
 * AWS SDK says so too, but as a seven-line process warning printed whenever an STS client is made — in the middle
 * of the broker's JSON log. The broker and `dev` say it instead in one line, once they are listening (a bad config
 * still fails with its one error line), and switch the SDK's copy off with its documented variable
 * (@aws-sdk/core emitWarningIfUnsupportedVersion). An operator who set that variable either way has chosen:
 * nothing changes and nothing is added.
 *
 * Call before anything creates an AWS client; print the returned line (if any) when the server is up.
 */
export function nodeSupportNotice(env: NodeJS.ProcessEnv, version = process.version): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1] ?? 0);
  if (major >= 22 || env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED !== undefined) return undefined;
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  return `running on Node ${version}, past its end of life: the AWS SDK's releases after January 2027 need Node 22 or later; upgrade to Node 22 or 24`;
}
