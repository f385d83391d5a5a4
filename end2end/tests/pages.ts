import { expect, type Locator, type Page } from "@playwright/test";

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

/** The overview page: one row per ScaledObject. */
export class OverviewPage {
  constructor(readonly page: Page) {}

  async open(path = "/") {
    await this.page.goto(path);
    if (this.page.url().startsWith(process.env.SWELL_E2E_KEYCLOAK ?? "\u0000")) {
      await signInToDemo(this.page);
      await this.page.waitForURL(/\/t\/demo/);
    }
    // Hydration sets this attribute from the client side only.
    await expect(this.page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
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
