import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadBrokerConfig } from '../../src/broker/config.js';

// The deployment examples (docs/deployment.md) must be what the broker accepts, not prose that drifted.
const examples = resolve(__dirname, '../../examples');

describe('deployment examples', () => {
  it('broker-postgres.yaml is a valid broker config on PostgreSQL with an audit key file', () => {
    const c = loadBrokerConfig(resolve(examples, 'broker-postgres.yaml'));
    expect(c.storage.postgres).toBeDefined();
    expect(c.storage.auditKeyFile).toBe('/etc/guard-aws/secrets/audit-key.pem');
    expect(c.console?.publicUrl).toBe('https://guard.example.com');
  });

  it('the systemd unit and the Containerfile run `guard-aws broker --config` and stop it with SIGTERM', () => {
    const unit = readFileSync(resolve(examples, 'guard-aws-broker.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\S*guard-aws broker --config \/etc\/guard-aws\/broker\.yaml$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    // A config error (exit 78) is not retried in a loop.
    expect(unit).toMatch(/^RestartPreventExitStatus=78$/m);
    const container = readFileSync(resolve(examples, 'Containerfile'), 'utf8');
    expect(container).toMatch(/^ENTRYPOINT \["node", "\/opt\/guard-aws\/bin\/guard-aws\.js", "broker", "--config", "\/etc\/guard-aws\/broker\.yaml"\]$/m);
    expect(container).toMatch(/^STOPSIGNAL SIGTERM$/m);
  });
});
