// Verifies onceonly's published SD-JWT VC vectors with the OpenWallet Foundation
// @sd-jwt libraries (an implementation independent of onceonly), using Web Crypto.
// stdin: JSON array of {name, presentation, issuer_jwk, now, skew, aud, nonce}
// (aud/nonce null: no key binding). stdout: JSON array of {name, ok, claims | error}.
import { SDJwtVcInstance } from "@sd-jwt/sd-jwt-vc";
import { digest } from "@sd-jwt/crypto-nodejs";

const algorithmOf = (jwk) =>
  jwk.kty === "OKP"
    ? { name: "Ed25519" }
    : { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

async function verifierFor(jwk) {
  const { kty, crv, x, y } = jwk; // key material only: alg/kid are onceonly's to police
  const algorithm = algorithmOf(jwk);
  const key = await crypto.subtle.importKey("jwk", { kty, crv, x, y }, algorithm, false, [
    "verify",
  ]);
  return (data, signature) =>
    crypto.subtle.verify(
      algorithm,
      key,
      Buffer.from(signature, "base64url"),
      new TextEncoder().encode(data),
    );
}

async function verifyCase(item) {
  const issuerVerifier = await verifierFor(item.issuer_jwk);
  const sdjwt = new SDJwtVcInstance({
    hasher: digest,
    hashAlg: "sha-256",
    verifier: issuerVerifier,
    kbVerifier: async (data, signature, payload) =>
      (await verifierFor(payload.cnf.jwk))(data, signature),
  });
  const options = { currentDate: item.now, skewSeconds: item.skew };
  if (item.nonce !== null) options.keyBindingNonce = item.nonce;
  const result = await sdjwt.verify(item.presentation, options);
  if (item.aud !== null && result.kb?.payload?.aud !== item.aud) {
    throw new Error("KB-JWT aud is not the expected audience");
  }
  return result.payload;
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const item of JSON.parse(input)) {
  try {
    results.push({ name: item.name, ok: true, claims: await verifyCase(item) });
  } catch (error) {
    results.push({ name: item.name, ok: false, error: String(error?.message ?? error) });
  }
}
console.log(JSON.stringify(results));
