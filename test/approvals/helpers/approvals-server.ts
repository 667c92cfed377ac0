import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Db } from '../../../src/store/db.js';
import { migratedSqlite } from '../../helpers/postgres.js';
import { Hono } from 'hono';
import { ApprovalService, type ApprovalServiceOptions } from '../../../src/approvals/service.js';
import { createTokenVerifier } from '../../../src/auth/verify.js';
import type { BrokerEnv } from '../../../src/broker/env.js';
import { silentLog } from '../../../src/broker/log.js';
import { bearerAuth } from '../../../src/broker/middleware/bearer-auth.js';
import { errorHandler, notFound } from '../../../src/broker/middleware/error-handler.js';
import { requestId } from '../../../src/broker/middleware/request-id.js';
import { mountApprovals } from '../../../src/broker/routes/approvals.js';
import { startIdp, userToken, type StartedIdp } from '../../helpers/idp.js';
import { FakeClock } from '../fixtures.js';

/** People for the approval tests; subjects equal usernames in the embedded IdP. */
export const USERS = [
  { username: 'alice', password: 'alice-pw', groups: ['developers', 'approvers'], name: 'Alice' },
  { username: 'bob', password: 'bob-pw', groups: ['approvers'], name: 'Bob' },
  { username: 'carol', password: 'carol-pw', groups: ['approvers', 'sre'], name: 'Carol' },
  { username: 'dave', password: 'dave-pw', groups: ['developers'], name: 'Dave' },
  { username: 'erin', password: 'erin-pw', groups: ['auditors'], name: 'Erin' },
];

export interface ApprovalsServer {
  url: string;
  idp: StartedIdp;
  tokens: Record<string, string>;
  service: ApprovalService;
  db: Db;
  clock: FakeClock;
  close(): Promise<void>;
}

/**
 * The approval routes on a real socket, behind the broker's real bearer-auth middleware, verifying real access
 * tokens that the real embedded IdP (oidc-provider) issued through the device flow. Real SQLite (in memory).
 */
export async function startApprovalsServer(opts: ApprovalServiceOptions = {}): Promise<ApprovalsServer> {
  const idp = await startIdp({ users: USERS, enforcePollInterval: false, pollIntervalSec: 1 });
  const tokens: Record<string, string> = {};
  for (const u of USERS) tokens[u.username] = (await userToken(idp, u.username)).accessToken;
  const verify = createTokenVerifier({ issuer: idp.issuer, audience: idp.audience, jwksUri: idp.jwksUri, groupsClaim: idp.groupsClaim });
  const db = await migratedSqlite();
  const clock = new FakeClock(Date.now());
  const service = new ApprovalService(db, { now: clock.now, ...opts });
  const app = new Hono<BrokerEnv>();
  app.onError(errorHandler(silentLog));
  app.notFound(notFound);
  app.use('*', requestId());
  app.use('/v1/*', bearerAuth({ verify }));
  mountApprovals(app, service);
  let server: ServerType;
  const addr = await new Promise<AddressInfo>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => resolve(info));
  });
  return {
    url: `http://127.0.0.1:${addr.port}`,
    idp,
    tokens,
    service,
    db,
    clock,
    async close() {
      await new Promise<void>((r) => server.close(() => r()));
      await idp.close();
      await db.close();
    },
  };
}
