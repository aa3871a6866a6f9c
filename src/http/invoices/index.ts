import type { App } from "../context";
import * as getInvoice from "./get-invoice";
import * as getUpcoming from "./get-upcoming";
import * as getUsage from "./get-usage";
import * as listInvoices from "./list-invoices";
import * as refundInvoice from "./refund-invoice";
import * as creditNote from "./credit-note";
import * as voidInvoice from "./void-invoice";
import * as patientCheck from "./patient-check";

export function registerInvoices(app: App) {
  getUsage.register(app);
  listInvoices.register(app);
  // Before /invoices/{invoiceId}: "upcoming" is a path of its own, not an invoice id.
  getUpcoming.register(app);
  getInvoice.register(app);
  voidInvoice.register(app);
  refundInvoice.register(app);
  creditNote.register(app);
  patientCheck.register(app);
}
