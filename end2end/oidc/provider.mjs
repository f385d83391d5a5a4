// A real OpenID Provider for Swell's tests (npm oidc-provider, with its development login
// pages), on 127.0.0.1 only: `node provider.mjs CONFIG.json`. The config names the port,
// the clients and the accounts with their email and groups; consent is given
// automatically (first-party clients). Keys are generated at start, so a restart rotates
// them (the tests use that to prove Swell fetches unknown keys).
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const accounts = new Map(config.accounts.map((a) => [a.login, a]));
const issuer = `http://127.0.0.1:${config.port}`;

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: randomUUID(), alg: "RS256", use: "sig" };

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: [signingKey] },
  scopes: ["openid", "email", "profile", "groups"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
  // Scope claims go in the ID token itself (Swell reads email and groups from it).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: { IdToken: config.idTokenTtl ?? 3600, AccessToken: 600, Session: 3600, Interaction: 600, Grant: 3600 },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(_ctx, id) {
    const a = accounts.get(id);
    if (!a) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: a.email, email_verified: true, name: a.name ?? id, groups: a.groups ?? [] };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile groups");
    grant.addOIDCClaims(["email", "email_verified", "name", "groups"]);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
provider.on("server_error", (_ctx, err) => console.error("server_error", err));

provider.listen(config.port, "127.0.0.1", () => console.log(`oidc-provider ${issuer} ready`));
