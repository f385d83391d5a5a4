// Sets up the two identity providers of the browser tests against the `swell demo` dev.sh
// started: a Keycloak realm (imported from JSON through the admin API) for tenant demo, and
// an npm oidc-provider (end2end/oidc/provider.mjs) for tenant b, then tells Swell about them
// with its own CLI. The users' credentials go to the tests through the environment.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests through bash dev.sh test`);
  return v;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function waitFor(url: string, child: ChildProcess) {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: the provider exited (${child.exitCode})`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url}`);
}

export default async function globalSetup() {
  const base = need("SWELL_E2E_URL");
  const kc = need("TEST_KEYCLOAK_URL");
  const kcAdmin = need("TEST_KEYCLOAK_ADMIN_PASSWORD");
  const swell = need("SWELL_BIN");
  const db = need("SWELL_E2E_DB");
  const dir = mkdtempSync(join(tmpdir(), "swell-e2e-idp-"));
  const callback = `${base}/auth/callback`;

  // Tenant demo: Keycloak realm e2e-a, alice is an operator through the a-ops group.
  const realm = "e2e-a";
  const kcSecret = `kc-${Math.random().toString(36).slice(2)}`;
  const token = await fetch(`${kc}/realms/master/protocol/openid-connect/token`, {
    method: "POST",
    body: new URLSearchParams({ grant_type: "password", client_id: "admin-cli", username: "admin", password: kcAdmin }),
  }).then((r) => r.json());
  const admin = { Authorization: `Bearer ${token.access_token}`, "Content-Type": "application/json" };
  await fetch(`${kc}/admin/realms/${realm}`, { method: "DELETE", headers: admin });
  const imported = await fetch(`${kc}/admin/realms`, {
    method: "POST",
    headers: admin,
    body: JSON.stringify({
      realm,
      enabled: true,
      sslRequired: "none",
      groups: [{ name: "a-ops" }],
      users: [
        {
          username: "alice",
          email: "alice@a.example",
          emailVerified: true,
          firstName: "Alice",
          lastName: "Tester",
          enabled: true,
          credentials: [{ type: "password", value: "alice-pw", temporary: false }],
          groups: ["/a-ops"],
        },
      ],
      clients: [
        {
          clientId: "swell",
          enabled: true,
          publicClient: false,
          secret: kcSecret,
          standardFlowEnabled: true,
          redirectUris: [callback],
          webOrigins: ["+"],
          attributes: { "pkce.code.challenge.method": "S256", "post.logout.redirect.uris": `${base}/*` },
          protocolMappers: [
            {
              name: "groups",
              protocol: "openid-connect",
              protocolMapper: "oidc-group-membership-mapper",
              config: { "claim.name": "groups", "full.path": "false", "id.token.claim": "true" },
            },
          ],
        },
      ],
    }),
  });
  if (!imported.ok) throw new Error(`Keycloak realm import: ${imported.status} ${await imported.text()}`);

  // Tenant b: oidc-provider, bob is an operator through b-ops.
  const opPort = await freePort();
  const opSecret = `op-${Math.random().toString(36).slice(2)}`;
  const opConfig = join(dir, "provider.json");
  writeFileSync(
    opConfig,
    JSON.stringify({
      port: opPort,
      clients: [
        {
          client_id: "swell-b",
          client_secret: opSecret,
          redirect_uris: [callback],
          post_logout_redirect_uris: [`${base}/t/b/signed-out`],
          token_endpoint_auth_method: "client_secret_basic",
        },
      ],
      accounts: [{ login: "bob", email: "bob@b.example", groups: ["b-ops"] }],
    }),
  );
  const op = spawn("node", [join(__dirname, "oidc", "provider.mjs"), opConfig], { stdio: "ignore" });
  process.on("exit", () => op.kill());
  const opIssuer = `http://127.0.0.1:${opPort}`;
  await waitFor(`${opIssuer}/.well-known/openid-configuration`, op);

  // Swell reads SWELL_* variables as its configuration: pass on only the secret key.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SWELL_") || k === "SWELL_SECRET_KEY"));
  const cli = (...args: string[]) => execFileSync(swell, [...args, "--database-url", db], { stdio: ["ignore", "pipe", "pipe"], env });
  writeFileSync(join(dir, "kc-secret"), kcSecret);
  writeFileSync(join(dir, "op-secret"), opSecret);
  cli("tenant", "set-oidc", "demo", "--issuer", `${kc}/realms/${realm}`, "--client-id", "swell", "--client-secret-file", join(dir, "kc-secret"), "--group-role", "a-ops=operator");
  try {
    cli("tenant", "add", "b", "--name", "Tenant B");
  } catch {}
  cli("tenant", "set-oidc", "b", "--issuer", opIssuer, "--client-id", "swell-b", "--client-secret-file", join(dir, "op-secret"), "--scopes", "openid email profile groups", "--group-role", "b-ops=operator");

  process.env.SWELL_E2E_KEYCLOAK = `${kc}/realms/${realm}`;
  process.env.SWELL_E2E_PROVIDER_B = opIssuer;
  return async () => {
    op.kill();
  };
}
