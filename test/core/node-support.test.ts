import { describe, expect, it } from 'vitest';
import { nodeSupportNotice } from '../../src/cli/node-support.js';

describe('the Node version notice of `guard-aws broker` and `dev`', () => {
  it('on Node 20: one line, and the AWS SDK told not to print its seven-line copy later', () => {
    const env: NodeJS.ProcessEnv = {};
    expect(nodeSupportNotice(env, 'v20.20.2')).toMatch(/^running on Node v20\.20\.2, past its end of life: .*upgrade to Node 22 or 24$/);
    expect(env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('true');
  });

  it('on Node 22 and 24: nothing, and the SDK left alone', () => {
    for (const v of ['v22.12.0', 'v24.1.0']) {
      const env: NodeJS.ProcessEnv = {};
      expect(nodeSupportNotice(env, v)).toBeUndefined();
      expect(env).toEqual({});
    }
  });

  it('an operator who set the SDK variable has chosen: no second notice either way', () => {
    for (const v of ['true', 'false']) {
      const env: NodeJS.ProcessEnv = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: v };
      expect(nodeSupportNotice(env, 'v20.19.0')).toBeUndefined();
      expect(env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe(v);
    }
  });
});
