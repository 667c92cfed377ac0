import { describe, expect, it } from 'vitest';
import { noteNodeSupport } from '../../src/cli/node-support.js';
import { RecordingHost } from '../../src/io/host.js';

describe('the Node version notice of `guard-aws broker` and `dev`', () => {
  it('on Node 20: one line at start, and the AWS SDK told not to print its seven-line copy later', () => {
    const host = new RecordingHost();
    const env: NodeJS.ProcessEnv = {};
    const line = noteNodeSupport(host, env, 'v20.20.2');
    expect(line).toMatch(/^running on Node v20\.20\.2, past its end of life: .*upgrade to Node 22 or 24$/);
    expect(host.stderr).toEqual([line]);
    expect(env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe('true');
  });

  it('on Node 22 and 24: nothing, and the SDK left alone', () => {
    for (const v of ['v22.12.0', 'v24.1.0']) {
      const host = new RecordingHost();
      const env: NodeJS.ProcessEnv = {};
      expect(noteNodeSupport(host, env, v)).toBeUndefined();
      expect(host.stderr).toEqual([]);
      expect(env).toEqual({});
    }
  });

  it('an operator who set the SDK variable has chosen: no second notice either way', () => {
    for (const v of ['true', 'false']) {
      const host = new RecordingHost();
      const env: NodeJS.ProcessEnv = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: v };
      expect(noteNodeSupport(host, env, 'v20.19.0')).toBeUndefined();
      expect(host.stderr).toEqual([]);
      expect(env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe(v);
    }
  });
});
