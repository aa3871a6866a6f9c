import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt, lt, sql } from "drizzle-orm";
import { currentPatientKeyVersion } from "../../config";
import { offices } from "../../db/offices";
import { officeObject } from "../../office/client";
import { auditor } from "../../security/audit";
import { authorize } from "../../security/auth";
import type { App } from "../context";
import { OfficeIdSchema } from "../ids";
import { problemResponses } from "../problem";

export const ROLES = ["platform_admin"] as const;

const BodySchema = z
  .object({
    batchSize: z.number().int().min(1).max(50).default(10).openapi({ description: "Offices re-keyed in this call (each in one transaction, by its own Durable Object)." }),
    cursor: OfficeIdSchema.optional().openapi({ description: "`nextCursor` of the previous call: continue after the offices it examined." }),
    officeId: OfficeIdSchema.optional().openapi({ description: "Only this office." }),
  })
  .strict()
  .openapi("RotatePatientKeysRequest");

const ResultSchema = z
  .object({
    currentVersion: z.number().int().openapi({ description: "The pseudonym version PATIENT_KEY_CHAIN makes current.", example: 2 }),
    rekeyed: z.number().int().openapi({ description: "Offices moved to the current version by this call." }),
    patients: z.number().int().openapi({ description: "Distinct pseudonyms rewritten by this call." }),
    failed: z.array(z.object({ officeId: z.string(), code: z.string() })).openapi({ description: "Offices this call could not re-key (left as they were; the next run retries them)." }),
    remaining: z.number().int().openapi({ description: "Offices still under an older version (failed ones included)." }),
    nextCursor: z.string().nullable().openapi({ description: "Pass back to continue; null when this pass has examined every office." }),
  })
  .openapi("RotatePatientKeysResult");

export const route = createRoute({
  method: "post",
  path: "/v1/admin/patient-keys/rotate",
  operationId: "rotatePatientKeys",
  tags: ["Admin"],
  summary: "Move stored patient pseudonyms to the current patient key version (platform_admin)",
  description:
    "After a new secret is appended to `PATIENT_KEY_CHAIN`, each call re-keys up to `batchSize` offices still under an older version, continuing from `cursor`: each office's Durable Object derives every new pseudonym from the stored one (no raw id is needed) and rewrites the office's patients, patient events and billed-patient rows, with the new version, in one transaction, while the office's events wait behind it. Events keep being accepted throughout: an office answers under whichever version it is at. `npm run keys:rotate -- patients` calls it until `nextCursor` is null. Re-running it is harmless. Required role: platform_admin.",
  security: [{ bearerAuth: [] }],
  request: { body: { required: false, content: { "application/json": { schema: BodySchema } } } },
  responses: {
    200: { description: "What this call did and what remains.", content: { "application/json": { schema: ResultSchema } } },
    ...problemResponses(400, 401, 403),
  },
});

export function register(app: App) {
  app.openapi(route, async (c) => {
    const body = BodySchema.parse(c.req.valid("json") ?? {});
    const principal = await authorize(c, { action: "patient_keys.rotate", roles: ROLES });
    const current = currentPatientKeyVersion(c.var.config);
    const db = c.var.db;
    const behind = and(lt(offices.patientKeyVersion, current), body.officeId ? eq(offices.id, body.officeId) : undefined);
    const due = await db
      .select({ id: offices.id })
      .from(offices)
      .where(and(behind, body.cursor ? gt(offices.id, body.cursor) : undefined))
      .orderBy(asc(offices.id))
      .limit(body.batchSize);
    const actor = { actorSub: principal.sub, actorRole: principal.role, requestId: c.var.requestId };
    let rekeyed = 0;
    let patients = 0;
    const failed: { officeId: string; code: string }[] = [];
    // One office at a time: each is a transaction of its own, and the job must not starve offices' traffic.
    for (const { id } of due) {
      try {
        const result = await officeObject(c.env, id).rekeyPatients(actor);
        if (result.toVersion !== result.fromVersion) rekeyed++;
        patients += result.patients;
      } catch (err) {
        failed.push({ officeId: id, code: err instanceof Error && "code" in err ? String((err as { code: unknown }).code) : "INTERNAL" });
      }
    }
    const [{ n }] = (await db.select({ n: sql<number>`count(*)` }).from(offices).where(behind)) as [{ n: number }];
    const nextCursor = due.length === body.batchSize ? due.at(-1)!.id : null;
    await auditor(c.env, principal, c.var.requestId).platform({
      action: "patient_keys.rotate",
      outcome: failed.length ? "failed" : "succeeded",
      officeId: body.officeId ?? null,
      details: { currentVersion: current, rekeyed, patients, failed: failed.length, remaining: Number(n) },
    });
    return c.json({ currentVersion: current, rekeyed, patients, failed, remaining: Number(n), nextCursor }, 200);
  });
}
