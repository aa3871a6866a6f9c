/**
 * `cloudflare:workers` for the app's modules loaded in plain Node (the tools tests and
 * `npm run client:generate`, which build the OpenAPI document without a Worker): the base classes
 * the app's modules extend, so they load. Nothing in Node instantiates them; the Worker tests and
 * the Worker itself use workerd's own module.
 */
export class DurableObject<Env = unknown> {
  constructor(
    protected ctx: unknown,
    protected env: Env,
  ) {}
}

export class WorkerEntrypoint<Env = unknown> {
  constructor(
    protected ctx: unknown,
    protected env: Env,
  ) {}
}
