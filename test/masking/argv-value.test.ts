import { describe, expect, it } from 'vitest';
import { maskArgv } from '../../src/masking/argv.js';

describe('maskArgv: ssm put-parameter --value', () => {
  it('masks the parameter value, in both option forms', () => {
    expect(maskArgv(['ssm', 'put-parameter', '--name', '/db/pw', '--type', 'SecureString', '--value', 'hunter2'])).not.toContain('hunter2');
    expect(maskArgv(['ssm', 'put-parameter', '--value=hunter2', '--name', 'x']).join(' ')).not.toContain('hunter2');
  });
  it('leaves --value of other commands alone (metric data is not secret)', () => {
    expect(maskArgv(['cloudwatch', 'put-metric-data', '--metric-name', 'm', '--namespace', 'n', '--value', '42'])).toContain('42');
  });
});
