import { loadConfig } from "../config";
import type { Env } from "../env";
import { PLATFORM_CHAIN, type AuditCheckpoint, type ChainAnchor } from "../security/audit-chain";
import { auditKeyring } from "../security/data-keys";
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
    this.#chain = new ChainWriter(ctx.storage, PLATFORM_CHAIN, () => auditKeyring(loadConfig(this.env)));
  }

  protected before(): void {}

  async append(entries: AuditInput[]): Promise<OfficeResult<{ seq: number }>> {
    return this.exclusive(PLATFORM_CHAIN, "audit", async () => ({ seq: (await this.#chain.append(this.db, entries)).seq }));
  }

  /** The chain as its writer recorded it: the anchor for verification. */
  async anchor(): Promise<OfficeResult<ChainAnchor>> {
    return ok(this.#chain.anchor());
  }

  /** Logs (and returns) the chain's MAC'd checkpoint. */
  async checkpoint(): Promise<OfficeResult<AuditCheckpoint | null>> {
    return this.exclusive(PLATFORM_CHAIN, "audit.checkpoint", () => this.#chain.checkpoint());
  }

  async head(): Promise<OfficeResult<{ segment: string; seq: number; hash: string } | null>> {
    return ok(this.#chain.head());
  }
}
