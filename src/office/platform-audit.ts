import type { Env } from "../env";
import { PLATFORM_CHAIN } from "../security/audit-chain";
import { ChainWriter, type AuditInput } from "./chain-writer";
import { ok, type OfficeResult } from "./result";
import { SerializedObject } from "./serialized-object";

/**
 * The single writer of the platform audit chain: events not tied to an office the caller may
 * see (failed authentication, access denied to another office's resource, platform-wide reads).
 * One instance, addressed by name `platform`.
 */
export class PlatformAudit extends SerializedObject {
  readonly #chain: ChainWriter;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#chain = new ChainWriter(ctx.storage, PLATFORM_CHAIN);
  }

  protected before(): void {}

  async append(entries: AuditInput[]): Promise<OfficeResult<{ seq: number }>> {
    return this.exclusive(PLATFORM_CHAIN, "audit", async () => ({ seq: (await this.#chain.append(this.db, entries)).seq }));
  }

  async head(): Promise<OfficeResult<{ seq: number; hash: string } | null>> {
    return ok(this.#chain.head());
  }
}
