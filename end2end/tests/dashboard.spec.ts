import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { expect, test } from "@playwright/test";
import { AuditPage, ClustersPage, ObjectPage, OverviewPage, SourcesPage, checkAccessibility, liveOpen, screenshot } from "./pages";

test("every page renders, hydrates, passes axe-core and is kept as a screenshot", async ({ page }, info) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));

  const overview = new OverviewPage(page);
  await overview.open("/t/demo");
  await liveOpen(page);
  await expect(overview.total("objects")).toHaveText("3");
  await expect(overview.sparkline("web-frontend")).toHaveAttribute("data-points", /^[1-9]\d*$/, { timeout: 15_000 });
  await checkAccessibility(page);
  await screenshot(page, info, "overview");

  const object = new ObjectPage(page);
  await object.openFromOverview("web-frontend");
  await liveOpen(page);
  await expect(object.chart("metric").svg()).toBeVisible();
  await checkAccessibility(page);
  await screenshot(page, info, "object");

  const sources = new SourcesPage(page);
  await sources.open();
  await expect(page.locator("h1")).toHaveText("Event sources");
  await checkAccessibility(page);
  await screenshot(page, info, "sources");

  const clusters = new ClustersPage(page);
  await clusters.open();
  await expect(clusters.cluster("simulated").locator("td.connected")).toHaveText("yes");
  await expect(clusters.cluster("simulated").locator("td.objects")).toHaveText("3");
  await checkAccessibility(page);
  await screenshot(page, info, "clusters");

  await page.goto("/t/demo/jobs");
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
  await expect(page.locator("p.empty")).toContainText("No ScaledJobs");
  await checkAccessibility(page);
  await screenshot(page, info, "jobs");

  await page.goto("/t/demo/models");
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
  await expect(page.locator('section.models[data-object$="/web-frontend"] p.model-status')).not.toBeEmpty();
  await checkAccessibility(page);
  await screenshot(page, info, "models");

  await page.goto("/t/demo/new");
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
  await checkAccessibility(page);
  await screenshot(page, info, "create");

  const audit = new AuditPage(page);
  await audit.open();
  await checkAccessibility(page);
  await screenshot(page, info, "audit");

  // Dark mode follows the system, and a phone width still reads.
  await page.emulateMedia({ colorScheme: "dark" });
  await overview.open("/t/demo");
  await checkAccessibility(page);
  await screenshot(page, info, "overview-dark");
  await page.setViewportSize({ width: 375, height: 800 });
  await object.openFromOverview("web-frontend");
  await checkAccessibility(page);
  await screenshot(page, info, "object-phone");
  expect(errors).toEqual([]);
});

test("the object page updates live and its charts carry their series", async ({ page }) => {
  const object = new ObjectPage(page);
  await object.openFromOverview("web-frontend");
  await liveOpen(page);
  let navigations = 0;
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame()) navigations++;
  });

  const metric = object.chart("metric");
  const names = await metric.seriesNames();
  expect(names.length).toBeGreaterThan(0);
  await expect(metric.level("target")).toHaveCount(1);
  const before = await metric.points(names[0]);
  // Every poll pushed adds a point, drawn in the browser.
  await expect.poll(() => metric.points(names[0]), { timeout: 20_000 }).toBeGreaterThan(before);
  await expect(metric.summary()).toContainText(`${names[0]} now`);

  const replicas = object.chart("replicas");
  expect(await replicas.seriesNames()).toEqual(["desired", "current", "predicted"]);
  await expect.poll(() => replicas.points("current"), { timeout: 20_000 }).toBeGreaterThan(0);
  await expect(object.trigger(names[0]).locator("td.last")).toHaveText(/^\d/);
  expect(navigations).toBe(0);
});

test("an override made in one browser appears in another within a second", async ({ browser }) => {
  const [a, b] = [await browser.newContext(), await browser.newContext()];
  const [pa, pb] = [await a.newPage(), await b.newPage()];
  const [objA, objB] = [new ObjectPage(pa), new ObjectPage(pb)];
  await objA.openFromOverview("catalog-api");
  await objB.openFromOverview("catalog-api");
  await liveOpen(pb);
  await expect(objB.overrideText()).toHaveText("none");

  await objA.setReplicas(4, "seen from afar");
  await expect(objA.overrideText()).toHaveText(/replicas fixed at 4/, { timeout: 10_000 });
  await expect(objB.overrideText()).toHaveText(/replicas fixed at 4 .*: seen from afar/, { timeout: 1_000 });

  await objA.resume();
  await expect(objA.overrideText()).toHaveText("none", { timeout: 10_000 });
  await expect(objB.overrideText()).toHaveText("none", { timeout: 1_000 });
  await a.close();
  await b.close();
});

test("the page without JavaScript shows the same numbers as after hydration", async ({ browser }) => {
  const js = await browser.newContext();
  const page = await js.newPage();
  await new OverviewPage(page).open("/t/demo");
  // The stream is held (open, silent) so the hydrated page shows what hydration made of
  // the served HTML, not a newer push.
  await page.routeWebSocket(/\/live\//, () => {});
  const noJs = await browser.newContext({ javaScriptEnabled: false, storageState: await js.storageState() });
  const plain = await noJs.newPage();

  for (const [path, read] of [
    ["/t/demo", (p: typeof page) => new OverviewPage(p).numbers()],
    ["/t/demo/o/1", (p: typeof page) => new ObjectPage(p).numbers()],
  ] as const) {
    const served = await page.goto(path);
    const html = await served!.text();
    await expect(page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
    const hydrated = await read(page);
    await plain.setContent(html);
    const without = await read(plain);
    expect(without.length).toBeGreaterThan(3);
    expect(hydrated).toEqual(without);
  }
  await js.close();
  await noJs.close();
});

test("the create form refuses a bad field by its name and makes an object that then scales", async ({ page }) => {
  await new OverviewPage(page).open("/t/demo");
  await page.goto("/t/demo/new");
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
  const form = page.locator("form.object-form");
  await form.locator("input[name=name]").fill("playground-e2e");
  await form.locator("input[name=target_name]").fill("playground");
  await form.locator("input[name=min_replicas]").fill("1");
  await form.locator("input[name=max_replicas]").fill("ten");
  await form.locator("input[name=polling_interval]").fill("1");
  await form.locator("input[name=cooldown_period]").fill("5");
  await form.locator("input[name=actuation]").fill("direct");
  await form.locator("select[name=trigger_type]").selectOption("simulated");
  await form.locator("textarea[name=metadata]").fill("workload: web-requests\ntarget: 1\nactivationTarget: 0");
  // The YAML beside the form follows it.
  await expect(page.locator("#yaml-text")).toHaveValue(/maxReplicaCount: "ten"/);
  await form.locator("button[type=submit]").click();
  await expect(page.locator(".form-side p.apply-error")).toContainText("spec.maxReplicaCount");

  await form.locator("input[name=max_replicas]").fill("6");
  await form.locator("button[type=submit]").click();
  await expect(page.locator(".form-side p.applied a")).toBeVisible({ timeout: 10_000 });
  await page.locator(".form-side p.applied a").click();
  const object = new ObjectPage(page);
  await expect(page.locator("h1.object-name")).toContainText("playground-e2e");
  await liveOpen(page);
  await expect.poll(async () => Number(await object.currentReplicas().innerText()), { timeout: 30_000 }).toBeGreaterThan(1);

  // Delete asks for the name; then the object is gone from the overview.
  await page.locator("a.edit-link").click();
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached();
  const del = page.locator("form.delete-form");
  await del.locator("input[name=confirm]").fill("wrong");
  await del.locator("button").click();
  await expect(page.locator("section.danger p.error")).toContainText("confirm: type the object's name");
  await del.locator("input[name=confirm]").fill("playground-e2e");
  await del.locator("button").click();
  await expect(page.locator("section.danger p.applied")).toHaveText("Deleted.", { timeout: 10_000 });
  const overview = new OverviewPage(page);
  await overview.open("/t/demo");
  await expect(overview.row("playground-e2e")).toHaveCount(0);
});

test("what-if replays an object's own history as it is and edited, side by side", async ({ page }) => {
  const object = new ObjectPage(page);
  await object.openFromOverview("web-frontend");
  await page.locator("a.what-if-link").click();
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
  const form = page.locator("form.what-if-form");
  await form.locator("input[name=max_replicas]").fill("many");
  await form.locator("button").click();
  await expect(page.locator("p.error")).toContainText("max_replicas");
  await form.locator("input[name=max_replicas]").fill("2");
  await form.locator("button").click();
  const charts = page.locator("div.side-by-side svg[data-chart^=replay-]");
  await expect(charts).toHaveCount(2, { timeout: 30_000 });
  for (const series of ["needed", "ready", "asked"]) {
    await expect(charts.nth(1).locator(`polyline[data-series=${series}]`)).toHaveCount(1);
  }
  // Capped at 2 replicas, the edited replay never asks for more.
  const asked = await charts.nth(1).locator("polyline[data-series=asked]").getAttribute("points");
  expect(asked).toBeTruthy();
  await expect(page.locator("table.what-if tbody tr")).toHaveCount(2);
  await checkAccessibility(page);

  // An uploaded trace instead of the history: 120 minutes, 40/s for an hour, then 200/s.
  const rows = Array.from({ length: 120 }, (_, i) => `${1_700_000_000 + i * 60},${i < 60 ? 40 : 200}`);
  const csv = ["time,value", ...rows].join("\n");
  await form.locator("textarea[name=trace]").fill("time,value\n1700000000,lots");
  await form.locator("button").click();
  await expect(page.locator("p.error")).toContainText("trace");
  await form.locator("input.trace-file").setInputFiles({ name: "burst.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await expect(form.locator("textarea[name=trace]")).toHaveValue(/^time,value\n1700000000,40/);
  await form.locator("button").click();
  // web-frontend's target is 20 per replica: the trace needs 10 at the end. The replay
  // steps at the object's polling interval, so there is at least one point per minute.
  const needed = charts.nth(1).locator("polyline[data-series=needed]");
  // The trace's own two hours (2023-11-14 22:13 UTC on), never a last-hour history range.
  await expect(charts.nth(1).locator("xpath=ancestor::figure")).toContainText("from 22:13 to 00:12 UTC: needed now 10", { timeout: 30_000 });
  await expect(needed).toHaveAttribute("data-last", "10");
  expect(Number(await needed.getAttribute("data-points"))).toBeGreaterThanOrEqual(120);
  await expect(charts.nth(1).locator("polyline[data-series=asked]")).toHaveAttribute("data-last", "2");
  expect(Number(await charts.nth(0).locator("polyline[data-series=asked]").getAttribute("data-last"))).toBeGreaterThan(2);
});

test("the sources page shows a webhook push as it happens, with no reload", async ({ page }) => {
  const swell = process.env.SWELL_BIN;
  const db = process.env.SWELL_E2E_DB;
  if (!swell || !db) throw new Error("SWELL_BIN and SWELL_E2E_DB are not set: run the browser tests through bash dev.sh test");
  const name = `e2e-hook-${Date.now()}`;
  // The CLI prints the source's secret once (it needs SWELL_SECRET_KEY, as the server has).
  const secret = execFileSync(swell, ["webhook", "add", name, "--tenant", "demo", "--database-url", db], {
    stdio: ["ignore", "pipe", "pipe"],
    // Only the key: other SWELL_* variables of the test run would be read as config keys.
    env: { PATH: process.env.PATH, SWELL_SECRET_KEY: process.env.SWELL_SECRET_KEY },
  }).toString().trim();
  const sources = new SourcesPage(page);
  await sources.open();
  await liveOpen(page);
  const row = sources.webhook(name);
  await expect(row.locator("td.last-push")).toHaveText("never");
  await page.evaluate(() => { (window as unknown as { marker: number }).marker = 1; });
  const body = JSON.stringify({ value: 42 });
  const ts = Math.floor(Date.now() / 1000).toString();
  const signature = createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex");
  const res = await page.request.post(`/hooks/demo/${name}`, { data: body, headers: { "Content-Type": "application/json", "X-Swell-Timestamp": ts, "X-Swell-Signature": `sha256=${signature}` } });
  // Accepted: the value is stored and pushed to the object's trigger.
  expect(res.status()).toBe(202);
  await expect(row.locator("td.value")).toHaveText("42", { timeout: 5_000 });
  await expect(row.locator("td.last-push")).not.toHaveText("never");
  // The same page: no navigation happened.
  expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(1);
});
