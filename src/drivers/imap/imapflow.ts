import { createRequire } from 'node:module';

/**
 * The one place imapflow is loaded at run time: every mailferry module takes ImapFlow, its
 * command compiler and its tools from here (types may still be imported from 'imapflow').
 *
 * imapflow ships an ES module build and a CommonJS build (package.json `exports`: "import" and
 * "require"). This file loads the CommonJS one, so that ImapFlow, the compiler multi-append.ts
 * uses and the tools are one instance, and so that a test can watch the compiler imapflow itself
 * calls (its CommonJS build calls it through the handler module at each call; the ES module build
 * binds it at load time): test/contract/imapflow.test.ts.
 *
 * Up to imapflow 2.1.2 this file also wrapped that compiler: imapflow compiled every untagged
 * FETCH response back into a log line before asking the logger whether it wanted it (1.6 s of
 * CPU per GB, -14% user CPU with the wrapper). imapflow 2.10.2 asks first (`isLogLevelEnabled`:
 * FETCH lines go to `trace`, which mailferry's logger never takes, and nothing with `logger:
 * false`), so the wrapper never fired any more and is gone; the contract test fails if a later
 * imapflow compiles those lines again.
 */
type Compiler = typeof import('imapflow/lib/handler/imap-compiler.js').default;

const require = createRequire(import.meta.url);
const flow = require('imapflow') as typeof import('imapflow');
const handler = require('imapflow/lib/handler/imap-handler.js') as { compiler: Compiler };
const tools = require('imapflow/lib/tools.js') as typeof import('imapflow/lib/tools.js');

export const ImapFlow = flow.ImapFlow;
export type ImapFlow = import('imapflow').ImapFlow;
export const { encodePath, enhanceCommandError, formatDateTime, formatFlag, normalizePath } = tools;

/** imapflow's command compiler. */
export const compiler: Compiler = handler.compiler;
