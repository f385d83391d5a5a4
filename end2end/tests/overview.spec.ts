import { expect, test } from "@playwright/test";
import { OverviewPage } from "./pages";

test("overview lists the demo objects and refreshes live without a reload", async ({ page }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });

  const overview = new OverviewPage(page);
  await overview.open();
  expect((await overview.rowNames()).sort()).toEqual(["catalog-api", "orders-worker", "web-frontend"]);
  await expect(overview.row("web-frontend").locator("td.current")).toHaveText(/^\d+$/);

  // A marker on window survives only if the page is never reloaded.
  await page.evaluate(() => ((window as any).__swellMarker = "still-here"));
  let navigations = 0;
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame()) navigations++;
  });

  const before = await overview.liveText();
  await expect.poll(() => overview.liveText(), { timeout: 20_000, intervals: [500] }).not.toEqual(before);

  expect(await page.evaluate(() => (window as any).__swellMarker)).toBe("still-here");
  expect(navigations).toBe(0);
  expect(errors).toEqual([]);
});

test("tenant route shows the same tenant's objects", async ({ page }) => {
  const overview = new OverviewPage(page);
  await overview.open("/t/demo");
  expect(await overview.rowNames()).toHaveLength(3);
  await expect(page.locator("nav.tenants .tenant.current")).toHaveText("demo");
});

test("an unknown tenant is an error, not an empty page", async ({ page }) => {
  // Signed out: its sign-in says there is none (the same answer as for a tenant without one).
  await page.goto("/t/nobody");
  await expect(page.locator("p.error")).toContainText('no sign-in is set up for tenant "nobody"');
  // Signed in to demo: refused, naming the tenant the user is in.
  await new OverviewPage(page).open("/t/demo");
  expect((await page.goto("/t/nobody"))?.status()).toBe(403);
  await expect(page.locator("p.error")).toContainText('signed in to tenant "demo", not "nobody"');
});
