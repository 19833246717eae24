import { MailferryError } from './errors.js';

/**
 * Every problem a loader finds, reported together (exit 2) before any I/O. It sits with the typed
 * errors, below the config, auth and profiles code that uses it, so none of them imports another's
 * folder for it.
 */
export type Problems = string[];

/** Run a check that throws; its MailferryError message becomes one more problem. */
export function attempt<T>(problems: Problems, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e: unknown) {
    problems.push(e instanceof MailferryError ? e.message : String(e));
    return undefined;
  }
}
