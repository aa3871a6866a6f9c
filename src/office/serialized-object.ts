import { DurableObject } from "cloudflare:workers";
import { loadConfig } from "../config";
import { createDatabase, type Database } from "../db/client";
import type { Env } from "../env";
import { failure, ok, type OfficeResult } from "./result";

/**
 * Base of the Durable Objects that are single writers. Durable Object input gates do not hold
 * across outbound fetches (the database is reached over HTTP), so operations are additionally
 * queued here and run strictly one at a time.
 */
export abstract class SerializedObject extends DurableObject<Env> {
  #tail: Promise<unknown> = Promise.resolve();
  #db: Database | undefined;

  /** The billing database, created on first use from the validated env. */
  protected get db(): Database {
    this.#db ??= createDatabase(loadConfig(this.env));
    return this.#db;
  }

  /** Called before each operation (e.g. to check the object serves the right office). */
  protected abstract before(key: string, operation: string): void;
  /** Called after each operation, whatever its outcome. */
  protected after(_operation: string): void {}
  /** Awaited after each successful operation, still inside the queue (its errors are the hook's own). */
  protected async settled(_key: string): Promise<void> {}

  /**
   * Runs `fn` after every operation queued before it has settled, so operations never
   * interleave, even across awaits on network I/O. A failing operation does not stop the queue;
   * it comes back as a failure result.
   */
  protected exclusive<T>(key: string, operation: string, fn: () => Promise<T>): Promise<OfficeResult<T>> {
    const run = async (): Promise<OfficeResult<T>> => {
      try {
        this.before(key, operation);
        const value = await fn();
        await this.settled(key);
        return ok(value);
      } catch (err) {
        return failure(err);
      } finally {
        this.after(operation);
      }
    };
    const result = this.#tail.then(run, run);
    this.#tail = result;
    return result;
  }
}
