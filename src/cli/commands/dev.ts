import { Command, Option } from 'commander';
import { join, resolve } from 'node:path';
import { dataDir as dataHome } from '../../config/paths.js';
import type { CliContext } from '../context.js';

const int = (v: string) => {
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new Error(`not a port: ${v}`);
  return Number(v);
};

export function command(ctx: CliContext): Command {
  return new Command('dev')
    .description('run the broker, a local identity provider and SQLite in one process (development and demos)')
    .option('--aws-endpoint <url>', 'AWS endpoint of the default target, e.g. a local moto_server')
    .option('--start-moto', 'start moto_server on a free loopback port and use it as the AWS endpoint')
    .option('--policy <path>', 'policy file (repeatable; default: the shipped policies/default.yaml)', (v: string, a: string[]) => [...a, v], [] as string[])
    .option('--port <port>', 'broker port', int, 8740)
    .option('--idp-port <port>', 'identity provider port', int, 8741)
    .option('--users <file>', 'YAML list of users: [{username, password, groups}]')
    .option('--data-dir <dir>', 'where the SQLite file and keys live (default: $XDG_DATA_HOME/guard-aws/dev)')
    .addOption(new Option('--role-arn <arn>', 'role of the default target').default('arn:aws:iam::123456789012:role/guard-aws-dev'))
    .option('--region <region>', 'region of the default target', 'us-east-1')
    .action(async (opts) => {
      const [{ startEmbedded, describeEmbedded }, { defaultPolicyPath }] = await Promise.all([
        import('../../dev/embedded.js'),
        import('../../policy/paths.js'),
      ]);
      const policies = opts.policy.length ? opts.policy.map((p: string) => resolve(ctx.cwd, p)) : [defaultPolicyPath()];
      const settings = {
        host: ctx.host,
        dataDir: resolve(ctx.cwd, opts.dataDir ?? join(dataHome(ctx.env), 'dev')),
        policies,
        brokerPort: opts.port,
        idpPort: opts.idpPort,
        ...(opts.awsEndpoint ? { awsEndpoint: opts.awsEndpoint } : {}),
        startMoto: !!opts.startMoto,
        ...(opts.users ? { usersFile: resolve(ctx.cwd, opts.users) } : {}),
        roleArn: opts.roleArn,
        region: opts.region,
      };
      const running = await startEmbedded(settings);
      ctx.host.info(describeEmbedded(running, settings));
      await new Promise<void>((done) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          done();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      ctx.host.info('guard-aws dev: stopping');
      await running.close();
    });
}
