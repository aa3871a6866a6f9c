import type { Env } from "../env";
import type { AuditInput } from "../office/chain-writer";
import { unwrap } from "../office/result";
import type { Principal } from "./auth";

export type AuditEvent = Omit<AuditInput, "actorSub" | "actorRole" | "requestId">;

const ANONYMOUS = { sub: "anonymous", role: "none" } as const;

/**
 * Writes audit entries through the chain's single writer: an office's chain through its
 * OfficeBilling object, the platform chain through PlatformAudit. Awaited before the response is
 * sent, so a decision is on record before the caller learns of it.
 */
export function auditor(env: Pick<Env, "OFFICE_BILLING" | "PLATFORM_AUDIT">, actor: Principal | null, requestId: string) {
  const who = actor ? { actorSub: actor.sub, actorRole: actor.role } : { actorSub: ANONYMOUS.sub, actorRole: ANONYMOUS.role };
  const complete = (e: AuditEvent): AuditInput => ({ ...who, requestId, ...e });
  return {
    async platform(event: AuditEvent): Promise<void> {
      const stub = env.PLATFORM_AUDIT.get(env.PLATFORM_AUDIT.idFromName("platform"));
      unwrap(await stub.append([complete(event)]));
    },
    async office(officeId: string, event: AuditEvent): Promise<void> {
      const stub = env.OFFICE_BILLING.get(env.OFFICE_BILLING.idFromName(officeId));
      unwrap(await stub.audit(officeId, [complete({ ...event, officeId })]));
    },
  };
}

export type Auditor = ReturnType<typeof auditor>;
