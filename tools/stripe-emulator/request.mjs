// What the emulator reads of a request: the API key it authenticates with, and its headers as the
// request log keeps them (keys masked).

/** The request's headers for the log: an Authorization value keeps only its kind and mode. */
export function clientHeaders(req) {
  const out = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    let value = req.rawHeaders[i + 1];
    if (name === "authorization") {
      const m = /^(\S+)\s+(sk|rk|pk)_(test|live)_/.exec(value);
      value = m ? `${m[1]} ${m[2]}_${m[3]}_***` : value.split(/\s+/)[0] + " ***";
    }
    out[name] = value;
  }
  return out;
}

/** The API key of a request (Bearer or Basic), or why there is none: only test-mode secret and restricted keys. */
export function apiKeyOf(req) {
  const h = req.headers.authorization;
  if (!h) return { error: "none" };
  let key;
  const bearer = /^Bearer\s+(.+)$/i.exec(h);
  const basic = /^Basic\s+(.+)$/i.exec(h);
  if (bearer) key = bearer[1].trim();
  else if (basic) key = Buffer.from(basic[1], "base64").toString().split(":")[0];
  if (!key) return { error: "none" };
  if (!/^(sk|rk)_test_[A-Za-z0-9_]{3,}$/.test(key)) return { error: "invalid", key };
  return { key };
}
