import { expect, type Locator, type Page } from "@playwright/test";

/** The overview page: one row per ScaledObject. */
export class OverviewPage {
  constructor(readonly page: Page) {}

  async open(path = "/") {
    await this.page.goto(path);
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
