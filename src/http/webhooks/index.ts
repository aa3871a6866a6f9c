import type { App } from "../context";
import * as receiveStripe from "./receive-stripe";

export function registerWebhooks(app: App) {
  receiveStripe.register(app);
}
