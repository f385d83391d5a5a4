import AxeBuilder from "@axe-core/playwright";
import { expect, type Locator, type Page, type TestInfo } from "@playwright/test";

/** Alice, an operator of tenant demo, signs in on Keycloak's own login page. */
export async function signInToDemo(page: Page) {
  await new KeycloakLogin(page).signIn("alice", "alice-pw");
}

/** Keycloak's login page (tenant demo's provider). */
export class KeycloakLogin {
  constructor(readonly page: Page) {}

  async signIn(user: string, password: string) {
    await expect(this.page.locator("#kc-form-login")).toBeVisible({ timeout: 30_000 });
    await this.page.locator("#username").fill(user);
    await this.page.locator("#password").fill(password);
    await this.page.locator("#kc-login").click();
  }
}

/** oidc-provider's development login page (tenant b's provider). */
export class ProviderLogin {
  constructor(readonly page: Page) {}

  async signIn(user: string, password: string) {
    await expect(this.page.locator("input[name=login]")).toBeVisible({ timeout: 30_000 });
    await this.page.locator("input[name=login]").fill(user);
    await this.page.locator("input[name=password]").fill(password);
    await this.page.locator("button[type=submit]").first().click();
  }
}

/**
 * Goes to `path`, signing in as Alice when a fresh browser context is sent to Keycloak
 * first, and waits for hydration.
 */
export async function openPage(page: Page, path: string) {
  await page.goto(path);
  if (page.url().startsWith(process.env.SWELL_E2E_KEYCLOAK ?? "\u0000")) {
    await signInToDemo(page);
    await page.waitForURL(/\/t\/demo/);
  }
  // Hydration sets this attribute from the client side only.
  await expect(page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
}

/** The overview page: one row per ScaledObject. */
export class OverviewPage {
  constructor(readonly page: Page) {}

  async open(path = "/") {
    await openPage(this.page, path);
  }

  row(name: string): Locator {
    return this.page.locator(`tr[data-object="${name}"]`);
  }

  async rowNames(): Promise<string[]> {
    return this.page.locator("tr[data-object]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-object") ?? ""));
  }

  /** Everything that changes live: replicas, state, metric and decision of every row. */
  async liveText(): Promise<string> {
    return this.page.locator("table.objects tbody").innerText();
  }

  total(name: "objects" | "active" | "attention" | "replicas"): Locator {
    return this.page.locator(`section.totals .${name}-total`);
  }

  sparkline(name: string): Locator {
    return this.row(name).locator("td.spark polyline[data-series=spark]");
  }

  /** The numbers a reader sees: totals and every row's replicas. */
  async numbers(): Promise<string[]> {
    return this.page.locator("section.totals .value, table.objects td.num").allInnerTexts();
  }
}

/** Waits until the page's websocket is open (`<body data-live=open>`). */
export async function liveOpen(page: Page, timeout = 15_000) {
  await expect(page.locator("body[data-live=open]")).toBeAttached({ timeout });
}

/** axe-core on the page: no serious or critical violation. */
export async function checkAccessibility(page: Page) {
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21aa"]).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`)).toEqual([]);
}

/** A full-page screenshot kept as a test artefact in end2end/test-results/. */
export async function screenshot(page: Page, info: TestInfo, name: string) {
  const path = info.outputPath(`${name}.png`);
  await page.screenshot({ path, fullPage: true });
  await info.attach(name, { path, contentType: "image/png" });
}

/** A chart on the object page, read from its SVG's data attributes. */
export class Chart {
  constructor(readonly page: Page, readonly id: "metric" | "replicas") {}

  svg(): Locator {
    return this.page.locator(`figure.chart[data-chart=${this.id}] svg[data-chart=${this.id}]`);
  }

  series(name: string): Locator {
    return this.svg().locator(`polyline[data-series="${name}"]`);
  }

  async seriesNames(): Promise<string[]> {
    return this.svg().locator("polyline[data-series]").evaluateAll((ls) => ls.map((l) => l.getAttribute("data-series") ?? ""));
  }

  async points(name: string): Promise<number> {
    return Number(await this.series(name).getAttribute("data-points"));
  }

  level(name: string): Locator {
    return this.svg().locator(`polyline[data-level="${name}"]`);
  }

  summary(): Locator {
    return this.page.locator(`figure.chart[data-chart=${this.id}] figcaption`);
  }
}

/** The sources page: webhooks and trigger authentications. */
export class SourcesPage {
  constructor(readonly page: Page) {}

  async open(tenant = "demo") {
    await openPage(this.page, `/t/${tenant}/sources`);
  }

  webhook(name: string): Locator {
    return this.page.locator(`table.webhooks tr[data-source="${name}"]`);
  }
}

/** The clusters page. */
export class ClustersPage {
  constructor(readonly page: Page) {}

  async open(tenant = "demo") {
    await openPage(this.page, `/t/${tenant}/clusters`);
  }

  cluster(name: string): Locator {
    return this.page.locator(`table.clusters tr[data-cluster="${name}"]`);
  }
}

/** The audit log. */
export class AuditPage {
  constructor(readonly page: Page) {}

  async open(tenant = "demo", action = "") {
    await openPage(this.page, `/t/${tenant}/audit${action ? `?action=${action}` : ""}`);
  }

  rows(): Locator {
    return this.page.locator("table.audit tbody tr");
  }
}

/** One ScaledObject's page: summary, override controls, decision log. */
export class ObjectPage {
  constructor(readonly page: Page) {}

  async openFromOverview(name: string) {
    const overview = new OverviewPage(this.page);
    await overview.open();
    await overview.row(name).locator("td.name a").click();
    await expect(this.page.locator("h1.object-name")).toContainText(name);
  }

  currentReplicas(): Locator {
    return this.page.locator("dd.replicas .current");
  }

  chart(id: "metric" | "replicas"): Chart {
    return new Chart(this.page, id);
  }

  trigger(metric: string): Locator {
    return this.page.locator(`table.triggers tr[data-metric="${metric}"]`);
  }

  /** The numbers a reader sees: replicas, targets, the triggers' values, the log's replicas. */
  async numbers(): Promise<string[]> {
    return this.page.locator("dl.summary dd.replicas span, table.triggers td.num, table.decisions td.num").allInnerTexts();
  }

  overrideText(): Locator {
    return this.page.locator("dd.override");
  }

  decisionRows(): Locator {
    return this.page.locator("table.decisions tbody tr");
  }

  async setReplicas(replicas: number, reason: string) {
    const form = this.page.locator("form.override-form");
    await form.locator("input[name=replicas]").fill(String(replicas));
    await form.locator("input[name=reason]").fill(reason);
    await form.locator("button").click();
  }

  async pause(reason: string) {
    const form = this.page.locator("form.pause-form");
    await form.locator("input[name=reason]").fill(reason);
    await form.locator("button").click();
  }

  async resume() {
    await this.page.locator("form.resume-form button").click();
  }
}
