export { consoleConfigSchema, consoleRedirectUri, type ConsoleConfig, type ConsoleConfigInput } from './config.js';
export { mountConsole, type ConsoleOptions } from './routes.js';
