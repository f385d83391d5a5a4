import { expect, test } from "@playwright/test";
import { ObjectPage, OverviewPage } from "./pages";

test("object page explains decisions and applies an override, a pause and a resume", async ({ page }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));

  const object = new ObjectPage(page);
  await object.openFromOverview("web-frontend");

  // The decision log grows live and every row explains itself.
  await expect(object.decisionRows().first()).toBeVisible();
  await expect(object.decisionRows().first().locator("td.explanation")).toHaveText(/^(held|scaled) \d+/);
  await expect(object.overrideText()).toHaveText("none");

  await object.setReplicas(9, "e2e load test");
  await expect(object.overrideText()).toHaveText("replicas fixed at 9 by user:alice@a.example: e2e load test", { timeout: 10_000 });
  await expect(object.currentReplicas()).toHaveText("9", { timeout: 10_000 });
  await expect(object.decisionRows().first().locator("td.rule")).toHaveText("override_replicas", { timeout: 10_000 });

  await object.pause("e2e freeze");
  await expect(object.overrideText()).toHaveText("paused by user:alice@a.example: e2e freeze", { timeout: 10_000 });
  await expect(object.decisionRows().first().locator("td.rule")).toHaveText("override_pause", { timeout: 10_000 });
  await expect(object.currentReplicas()).toHaveText("9");

  await object.resume();
  await expect(object.overrideText()).toHaveText("none", { timeout: 10_000 });
  await expect(object.decisionRows().first().locator("td.rule")).not.toHaveText(/override_replicas|override_pause/, { timeout: 10_000 });
  expect(errors).toEqual([]);

  // The audit log names who did it and why, newest first, and filters by action.
  await page.goto("/t/demo/audit?action=override.");
  const first = page.locator("table.audit tbody tr").first();
  await expect(first.locator("td.actor")).toHaveText("user:alice@a.example");
  await expect(first.locator("td.action")).toHaveText("override.clear");
  await expect(page.locator("table.audit tbody tr[data-action='override.replicas'] td.reason").first()).toHaveText("e2e load test");
  expect(await page.locator("table.audit tbody tr").evaluateAll((rows) => rows.every((r) => (r.getAttribute("data-action") ?? "").startsWith("override.")))).toBe(true);
});

test("an object of another tenant or a missing one is an error", async ({ page }) => {
  await new OverviewPage(page).open("/t/demo");
  const other = await page.goto("/t/nobody/o/1");
  expect(other?.status()).toBe(403);
  await expect(page.locator("p.error")).toContainText('signed in to tenant "demo", not "nobody"');
  await page.goto("/t/demo/o/999");
  await expect(page.locator("p.error")).toContainText('no scaled object 999 in tenant "demo"');
});
