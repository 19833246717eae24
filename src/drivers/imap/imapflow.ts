import { createRequire } from 'node:module';

/**
 * The one place imapflow is loaded at run time: every mailferry module takes ImapFlow, its
 * command compiler and its tools from here (types may still be imported from 'imapflow').
 *
 * It loads imapflow's CommonJS build, not its ES module build, for one reason: imapflow compiles
 * every server response back into a log line (`handleResponse`: `compiler(parsed, { isLogging:
 * true })`) before it asks the logger whether it wants it. For an untagged FETCH response, one per
 * message, that line goes to `log.trace`, which mailferry never has (its logger has no trace level,
 * and without --debug imapflow gets `logger: false`), and compiling it walks the whole response
 * again: measured 1.6 s of CPU per GB of mail (mbox backup, 12.6 -> 11.0 s user per GB). The
 * CommonJS build calls the compiler as a property of its handler module at each call, so it can
 * be wrapped here; the ES module build binds it at load time and cannot.
 *
 * The wrapper returns an empty line for exactly that case (a log compile of an untagged FETCH
 * response) and calls imapflow's compiler for everything else: commands, the log lines of other
 * responses and the text of command errors are unchanged. `skippedLogCompiles` counts the skipped
 * calls, so a test can prove the wrapper is in imapflow's path (a later imapflow that binds the
 * compiler at load time would leave it at 0).
 */
type Compiler = typeof import('imapflow/lib/handler/imap-compiler.js').default;

const require = createRequire(import.meta.url);
const flow = require('imapflow') as typeof import('imapflow');
const handler = require('imapflow/lib/handler/imap-handler.js') as { compiler: Compiler };
const tools = require('imapflow/lib/tools.js') as typeof import('imapflow/lib/tools.js');

export const ImapFlow = flow.ImapFlow;
export type ImapFlow = import('imapflow').ImapFlow;
export const { encodePath, enhanceCommandError, formatDateTime, formatFlag, normalizePath } = tools;

const compile: Compiler = handler.compiler;
/** imapflow's command compiler (without the wrapper). */
export const compiler: Compiler = compile;

const EMPTY = Buffer.alloc(0);
let skipped = 0;

/** How many log compiles of FETCH responses were skipped in this process. */
export function skippedLogCompiles(): number {
  return skipped;
}

function isUntaggedFetch(response: unknown): boolean {
  if (typeof response !== 'object' || response === null) return false;
  const r = response as { tag?: unknown; attributes?: unknown };
  if (r.tag !== '*' || !Array.isArray(r.attributes)) return false;
  const first: unknown = r.attributes[0];
  return typeof first === 'object' && first !== null && (first as { value?: unknown }).value === 'FETCH';
}

handler.compiler = ((response: Parameters<Compiler>[0], options?: Parameters<Compiler>[1]) => {
  if (options?.isLogging === true && isUntaggedFetch(response)) {
    skipped++;
    return Promise.resolve(EMPTY);
  }
  return compile(response, options);
}) as Compiler;
