import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A stand-in identity provider for the tests: a real HTTP server on loopback publishing a JWKS
 * with one RS256 and one ES256 key. The private keys go to the tests so they can sign tokens the
 * Worker verifies exactly as in production (AUTH_JWKS_URL).
 */
export async function startJwksServer() {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const rsaJwk = { ...rsa.publicKey.export({ format: "jwk" }), kid: "test-rsa-1", alg: "RS256", use: "sig" };
  const ecJwk = { ...ec.publicKey.export({ format: "jwk" }), kid: "test-ec-1", alg: "ES256", use: "sig" };
  const server = createServer((req, res) => {
    if (req.url === "/.well-known/jwks.json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [rsaJwk, ecJwk] }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    privateKeys: {
      rsa: { ...rsa.privateKey.export({ format: "jwk" }), kid: rsaJwk.kid },
      ec: { ...ec.privateKey.export({ format: "jwk" }), kid: ecJwk.kid },
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
