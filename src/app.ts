import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { ConfigError, loadConfig } from "./config";
import { createDatabase } from "./db/client";
import { loggableError } from "./db/errors";
import type { AppEnv } from "./http/context";
import { registerAdmin } from "./http/admin";
import { registerAnalytics } from "./http/analytics";
import { registerExports } from "./http/exports";
import { registerAudit } from "./http/audit";
import { registerHealth } from "./http/health";
import { registerInvoices } from "./http/invoices";
import { registerOffices } from "./http/offices";
import { registerPatients } from "./http/patients";
import { registerPlans } from "./http/plans";
import { registerCoupons } from "./http/coupons";
import { registerWebhooks } from "./http/webhooks";
import { registerDocs } from "./http/docs";
import { registerConsole } from "./http/console";
import { ApiError, problemResponse } from "./http/problem";
import { refuseUndeclaredQuery } from "./http/query";
import { readBody, requireTls, securityHeaders } from "./http/transport";
import { authenticate } from "./security/auth";
import { newId } from "./security/request-id";

/** The Hono application: request id, validated config, per-request services, one error model. */
export function createApp() {
  const app = new OpenAPIHono<AppEnv>({
    // zod validation failures of any route become one VALIDATION_FAILED problem.
    defaultHook: (result) => {
      if (!result.success) {
        // Office text the PHI guard would block answers OFFICE_TEXT_LOOKS_LIKE_PHI, when it is the
        // only problem (any other one is a plain VALIDATION_FAILED, listing every issue).
        const coded = result.error.issues.filter((i) => i.code === "custom" && i.params?.code === "OFFICE_TEXT_LOOKS_LIKE_PHI");
        if (coded.length > 0 && coded.length === result.error.issues.length) {
          const what = coded.map((i) => `${i.path.join(".")} ${i.message}`).join("; ");
          throw new ApiError("OFFICE_TEXT_LOOKS_LIKE_PHI", `The office's ${what}. An office's legal name, billing e-mail and address are sent to Stripe, which must receive no patient data: write them without identifiers.`, {
            errors: coded.map((i) => ({ path: i.path.join("."), message: i.message })),
          });
        }
        throw new ApiError("VALIDATION_FAILED", `The request ${result.target} is invalid.`, {
          errors: result.error.issues.map((i) => ({ path: i.path.join(".") || result.target, message: i.message })),
        });
      }
    },
  });

  app.use("*", securityHeaders());
  app.use("*", async (c, next) => {
    // Always our own id: a caller's id could carry anything into the audit trail.
    const requestId = newId("req");
    c.set("requestId", requestId);
    c.header("X-Request-Id", requestId);
    c.set("config", loadConfig(c.env));
    await next();
  });
  // Refusals before any work they do not need: the database client is made only once the request
  // got through transport checks, authentication and the query check.
  app.use("*", requireTls());
  app.use("*", readBody());
  app.use("/v1/*", authenticate());
  app.use("*", refuseUndeclaredQuery(app));
  app.use("*", async (c, next) => {
    c.set("db", createDatabase(c.var.config));
    await next();
  });

  registerHealth(app);
  registerAudit(app);
  registerOffices(app);
  registerInvoices(app);
  registerPatients(app);
  registerAdmin(app);
  registerPlans(app);
  registerCoupons(app);
  registerAnalytics(app);
  registerExports(app);
  registerWebhooks(app);
  registerDocs(app);
  registerConsole(app);

  // The path is not echoed back: it may carry a patient id.
  app.notFound((c) => problemResponse("NOT_FOUND", `No route matches this ${c.req.method} request's path.`, c.get("requestId") ?? newId("req")));

  app.onError((err, c) => {
    const requestId = c.get("requestId") ?? newId("req");
    if (err instanceof ApiError) {
      return problemResponse(err.code, err.message, requestId, { errors: err.errors, headers: err.headers });
    }
    if (err instanceof ConfigError) {
      console.error(JSON.stringify({ level: "error", msg: "configuration invalid", variables: err.variables, requestId }));
      return problemResponse("CONFIG_INVALID", `Configuration variable(s) missing or invalid: ${err.variables.join(", ")}.`, requestId);
    }
    if (err instanceof HTTPException) {
      // Hono's own 4xx (e.g. a malformed JSON body in a validator) keeps its status, in our shape.
      const code = err.status === 413 ? "PAYLOAD_TOO_LARGE" : err.status === 415 ? "UNSUPPORTED_MEDIA_TYPE" : err.status < 500 ? "BAD_REQUEST" : "INTERNAL";
      return problemResponse(code, err.status < 500 ? err.message || "The request could not be read." : "An unexpected error occurred.", requestId);
    }
    console.error(JSON.stringify({ level: "error", msg: "unhandled error", requestId, error: loggableError(err) }));
    return problemResponse("INTERNAL", "An unexpected error occurred. Quote the request id when reporting it.", requestId);
  });

  return app;
}
