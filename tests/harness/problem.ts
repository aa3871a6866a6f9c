import { expect } from "vitest";

/** Asserts a response is RFC 9457 problem+json in the API's one shape, and returns its body. */
export async function expectProblem(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code, title: expect.any(String), detail: expect.any(String), type: expect.stringMatching(/^https:\/\//) });
  expect(body.requestId).toBe(res.headers.get("x-request-id"));
  expect(String(body.requestId).length).toBeGreaterThanOrEqual(8);
  return body;
}
