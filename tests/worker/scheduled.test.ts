import { createExecutionContext, createMessageBatch, createScheduledController, env, getQueueResult } from "cloudflare:test";
import { and, eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { jobRuns } from "../../src/db/job-runs";
import worker from "../../src/index";
import { INVOICING_JOB, type CloseMessage } from "../../src/jobs/invoicing-run";
import { CRON_INVOICING } from "../../src/jobs/scheduled";
import { monthlyInvoices, onboardOffice } from "../harness/billing";
import { testDb } from "../harness/seed";

/**
 * The real queue binding, recording what it is given. (Each test file runs as its own worker and a
 * queue takes one consumer, so the tests hand the recorded messages to the consumer themselves.)
 */
function recordingQueue() {
  const sent: CloseMessage[] = [];
  const batches: number[] = [];
  const queue = {
    send: (body: CloseMessage, opts?: QueueSendOptions) => {
      sent.push(body);
      return env.INVOICING_QUEUE.send(body, opts);
    },
    sendBatch: (messages: Iterable<MessageSendRequest<CloseMessage>>, opts?: QueueSendBatchOptions) => {
      const list = [...messages];
      batches.push(list.length);
      sent.push(...list.map((m) => m.body));
      return env.INVOICING_QUEUE.sendBatch(list, opts);
    },
  } as Queue<CloseMessage>;
  return { queue, sent, batches };
}

async function consume(messages: CloseMessage[]) {
  const batch = createMessageBatch<CloseMessage>(
    "office-billing-invoicing",
    messages.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, env);
  return getQueueResult(batch, ctx);
}

// These offices live in 2025, before every other test file's cycles end, so the run's scan of all
// offices finds only offices of this file.
describe("scheduled(): the hourly invoicing Cron Trigger", () => {
  it("fans out the offices whose cycle ended through the queue; the consumer closes them", async () => {
    const due = await onboardOffice({ startsOn: "2025-10-05", timeZone: "Pacific/Kiritimati", anchor: 1 }); // ends 2025-10-31T10:00Z
    const notYet = await onboardOffice({ startsOn: "2025-10-05", timeZone: "America/New_York", anchor: 1 }); // ends 2025-11-01T04:00Z
    const scheduledTime = Date.UTC(2025, 9, 31, 10, 5);
    const recorder = recordingQueue();
    await worker.scheduled(createScheduledController({ cron: CRON_INVOICING, scheduledTime }), { ...env, INVOICING_QUEUE: recorder.queue });

    const runKey = new Date(scheduledTime).toISOString();
    const [run] = await testDb().select().from(jobRuns).where(and(eq(jobRuns.job, INVOICING_JOB), eq(jobRuns.runKey, runKey)));
    expect(run).toMatchObject({ status: "succeeded", attempts: 1, cron: CRON_INVOICING });
    expect(recorder.sent.map((m) => m.officeId)).toContain(due);
    expect(recorder.sent.map((m) => m.officeId)).not.toContain(notYet);
    expect(recorder.batches.every((n) => n <= 100)).toBe(true);
    expect((run!.summary as { messages: number }).messages).toBe(recorder.sent.length);

    const result = await consume(recorder.sent.filter((m) => m.officeId === due));
    expect(result.explicitAcks).toEqual(["m0"]);
    expect((await monthlyInvoices(due)).map((i) => [i.periodStart, i.status])).toEqual([
      ["2025-10-01", "open"],
      ["2025-11-01", "draft"],
    ]);
    expect((await monthlyInvoices(notYet)).map((i) => i.status)).toEqual(["draft"]);
  });

  it("can be re-run: the same trigger is a second attempt of the same run, and a redelivered message closes nothing twice", async () => {
    const office = await onboardOffice({ startsOn: "2025-06-03", timeZone: "Europe/Berlin", anchor: 3 }); // ends 2025-07-02T22:00Z
    const scheduledTime = Date.UTC(2025, 6, 2, 22, 5);
    const controller = createScheduledController({ cron: CRON_INVOICING, scheduledTime });
    const first = recordingQueue();
    await worker.scheduled(controller, { ...env, INVOICING_QUEUE: first.queue });
    await consume(first.sent.filter((m) => m.officeId === office));
    const second = recordingQueue();
    await worker.scheduled(controller, { ...env, INVOICING_QUEUE: second.queue });
    await consume(second.sent.filter((m) => m.officeId === office)); // office no longer due: not even sent
    await consume(first.sent.filter((m) => m.officeId === office)); // a redelivery of the first message
    const runs = await testDb().select().from(jobRuns).where(eq(jobRuns.runKey, new Date(scheduledTime).toISOString()));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: "succeeded", attempts: 2 });
    expect(second.sent.map((m) => m.officeId)).not.toContain(office);
    expect((await monthlyInvoices(office)).map((i) => i.periodStart)).toEqual(["2025-06-03", "2025-07-03"]);
  });

  it("the consumer retries a message whose close fails", async () => {
    const result = await consume([{ officeId: "off_00000000000000000000000000000000", at: Date.now(), runKey: "test" }]);
    expect(result.retryMessages.map((m: { msgId: string }) => m.msgId)).toEqual(["m0"]);
  });

  it("fails loudly on a cron with no job", async () => {
    const controller = createScheduledController({ cron: "0 0 * * *", scheduledTime: Date.now() });
    await expect(worker.scheduled(controller, env)).rejects.toThrow(/no job is configured/);
  });
});
