import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics of one broker instance. Each broker has its own registry (not prom-client's global one) so
 * several brokers in one process — tests, `guard-aws dev` — never mix their counts. Labels are bounded: target
 * names come from the config, codes and routes from the code.
 */
export interface BrokerMetrics {
  registry: Registry;
  grants: Counter<'target'>;
  denials: Counter<'target' | 'code'>;
  approvalsRequired: Counter<'target'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  grantDuration: Histogram<'outcome'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): BrokerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'guard_aws_broker_' });
  return {
    registry,
    grants: new Counter({ name: 'guard_aws_grants_total', help: 'Grants issued (STS sessions minted)', labelNames: ['target'], registers: [registry] }),
    denials: new Counter({
      name: 'guard_aws_denials_total',
      help: 'Grant requests refused, by reason code (denied, unparseable, policy_too_large, …)',
      labelNames: ['target', 'code'],
      registers: [registry],
    }),
    approvalsRequired: new Counter({
      name: 'guard_aws_approvals_required_total',
      help: 'Grant requests whose policy decision needs a human approval',
      labelNames: ['target'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'guard_aws_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    grantDuration: new Histogram({
      name: 'guard_aws_grant_duration_seconds',
      help: 'Time to decide a grant request, including STS AssumeRole when allowed',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
