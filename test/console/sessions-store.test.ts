import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionStore } from '../../src/console/sessions.js';
import { DIALECTS, testDatabases } from '../helpers/postgres.js';

// Console sign-ins live in the broker's database, so every broker behind the load balancer knows them.
describe.each(DIALECTS)('console sessions on %s', (dialect) => {
  const dbs = testDatabases(dialect);
  beforeAll(() => dbs.setup());
  afterAll(() => dbs.teardown());

  it('a session made on one broker is found on another, until it expires or is deleted; only its hash is stored', async () => {
    let now = Date.parse('2026-11-30T12:00:00Z');
    const one = new SessionStore(await dbs.open('shared'), () => now);
    const two = new SessionStore(await dbs.open('shared'), () => now);
    const { id, session } = await one.create({ subject: 'alice', groups: ['approvers'], name: 'Alice' }, 60_000);
    expect(await two.get(id)).toEqual(session);
    const raw = await dbs.open('shared');
    expect(JSON.stringify(await raw.all('SELECT * FROM console_sessions'))).not.toContain(id);
    now += 60_000;
    expect(await two.get(id)).toBeUndefined();
    now -= 30_000;
    await two.delete(id);
    expect(await one.get(id)).toBeUndefined();
    expect(await one.get('not-a-session-id')).toBeUndefined();
  });
});
