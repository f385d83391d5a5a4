import { execFileSync } from "node:child_process";
import { expect, test } from "@playwright/test";
import { KeycloakLogin, OverviewPage, ProviderLogin } from "./pages";

const keycloak = () => process.env.SWELL_E2E_KEYCLOAK ?? "";
const providerB = () => process.env.SWELL_E2E_PROVIDER_B ?? "";

test("a user of tenant demo signs in through Keycloak's login page and sees only demo", async ({ page }) => {
  await page.goto("/t/demo");
  expect(page.url().startsWith(keycloak())).toBe(true);
  await new KeycloakLogin(page).signIn("alice", "alice-pw");
  await page.waitForURL(/\/t\/demo$/);
  const overview = new OverviewPage(page);
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
  expect((await overview.rowNames()).sort()).toEqual(["catalog-api", "orders-worker", "web-frontend"]);
  const other = await page.goto("/t/b");
  expect(other?.status()).toBe(403);
  await expect(page.locator("p.error")).toContainText('signed in to tenant "demo"');
});

test("a user of tenant b signs in through the other provider and sees only b", async ({ page }) => {
  await page.goto("/t/b");
  expect(page.url().startsWith(providerB())).toBe(true);
  await new ProviderLogin(page).signIn("bob", "any");
  await page.waitForURL(/\/t\/b$/);
  await expect(page.locator("p.empty")).toContainText("No ScaledObjects");
  await expect(page.locator("tr[data-object]")).toHaveCount(0);
  const other = await page.goto("/t/demo");
  expect(other?.status()).toBe(403);
});

test("logout ends the session here and at the provider", async ({ page }) => {
  await page.goto("/t/demo");
  await new KeycloakLogin(page).signIn("alice", "alice-pw");
  await page.waitForURL(/\/t\/demo$/);
  await page.locator("form.logout button").click();
  await page.waitForURL(/\/t\/demo\/signed-out$/);
  await expect(page.locator("p.signed-out")).toBeVisible();
  // Signed out at Keycloak too: its login page asks again.
  await page.goto("/t/demo");
  await expect(page.locator("#kc-form-login")).toBeVisible();
});

test("an expired session goes back to the login", async ({ page }) => {
  await page.goto("/t/b");
  await new ProviderLogin(page).signIn("bob", "any");
  await page.waitForURL(/\/t\/b$/);
  expect((await page.request.get("/t/b", { maxRedirects: 0 })).status()).toBe(200);
  // Time passes: every stored session is past its expiry (as the TTL would make it).
  const file = (process.env.SWELL_E2E_DB ?? "").replace(/^sqlite:\/\//, "");
  // The running Swell writes to the same file all the time: wait for its lock, as it does.
  execFileSync("sqlite3", ["-cmd", ".timeout 10000", file, "UPDATE sessions SET expires_at = '2000-01-01 00:00:00+00:00'"]);
  // A running Swell rereads a session from SQL at least every 5 s.
  await expect.poll(async () => (await page.request.get("/t/b", { maxRedirects: 0 })).status(), { timeout: 15_000 }).toBe(303);
  const res = await page.request.get("/t/b", { maxRedirects: 0 });
  expect(res.headers()["location"]).toBe("/t/b/login?next=%2Ft%2Fb");
  const toLogin = page.waitForRequest((r) => r.url().includes("/t/b/login"));
  await page.goto("/t/b");
  await toLogin;
});
