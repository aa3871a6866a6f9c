/** Request ids: accepted from the caller when they look like ours, otherwise freshly made. */
const REQUEST_ID_RE = /^[A-Za-z0-9_-]{8,128}$/;

export function newId(prefix: string): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return `${prefix}_${hex}`;
}

export function requestIdFrom(header: string | undefined | null): string {
  return header && REQUEST_ID_RE.test(header) ? header : newId("req");
}
