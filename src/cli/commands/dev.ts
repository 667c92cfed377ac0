import { Command, Option } from 'commander';
import { join, resolve } from 'node:path';
import { dataDir as dataHome } from '../../config/paths.js';
import type { CliContext } from '../context.js';
import { nodeSupportNotice } from '../node-support.js';
import { portOption, repeatable } from '../options.js';


export function command(ctx: CliContext): Command {
  return new Command('dev')
    .description('run the broker, a local identity provider and SQLite in one process (development and demos)')
    .option('--aws-endpoint <url>', 'AWS endpoint of the default target, e.g. a local moto_server')
    .option('--start-moto', 'start moto_server on a free loopback port and use it as the AWS endpoint')
    .addOption(repeatable('--policy <path>', 'policy file (repeatable; default: the shipped policies/default.yaml)'))
    .addOption(portOption('--port <port>', 'broker port (0: any free port)', 8740))
    .addOption(portOption('--idp-port <port>', 'identity provider port (0: any free port)', 8741))
    .option('--users <file>', 'YAML list of users: [{username, password, groups}]')
    .option('--data-dir <dir>', 'where the SQLite file and keys live (default: $XDG_DATA_HOME/guard-aws/dev)')
    .addOption(new Option('--role-arn <arn>', 'role of the default target').default('arn:aws:iam::123456789012:role/guard-aws-dev'))
    .option('--region <region>', 'region of the default target', 'us-east-1')
    .action(async (opts) => {
      const [{ startEmbedded, describeEmbedded }, { defaultPolicyPath }] = await Promise.all([
        import('../../dev/embedded.js'),
        import('../../policy/paths.js'),
      ]);
      const notice = nodeSupportNotice(process.env);
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
      if (notice) ctx.host.warn(notice);
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
