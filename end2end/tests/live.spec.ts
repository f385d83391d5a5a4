import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { expect, test } from "@playwright/test";
import { OverviewPage, liveOpen } from "./pages";

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on("error", rej);
  });
}

async function ready(url: string, log: string) {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url}; the server said:\n${readFileSync(log, "utf8")}`);
}

test("the live stream reconnects after a server restart and updates resume without a reload", async ({ browser }) => {
  test.setTimeout(120_000);
  const swell = process.env.SWELL_BIN;
  if (!swell) throw new Error("SWELL_BIN is not set: run the browser tests through bash dev.sh test");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "swell-e2e-live-"));
  const base = `http://127.0.0.1:${port}`;
  // Swell reads SWELL_* variables as configuration: only the secret key goes through.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SWELL_") || k === "SWELL_SECRET_KEY"));
  const log = openSync(join(dir, "server.log"), "a");
  const start = (): ChildProcess =>
    spawn(swell, ["demo", "--bind", `127.0.0.1:${port}`, "--database-url", `sqlite://${dir}/swell.db`, "--site-root", resolve("..", "target/site"), "--log", "warn"], {
      stdio: ["ignore", log, log],
      env,
    });
  let server = start();
  try {
    await ready(`${base}/readyz`, join(dir, "server.log"));
    const context = await browser.newContext({ baseURL: base });
    const page = await context.newPage();
    await page.goto("/t/demo");
    await page.locator("form.local-sign-in button").click();
    await page.waitForURL(/\/t\/demo$/);
    const overview = new OverviewPage(page);
    await expect(page.locator("body[data-hydrated=true]")).toBeAttached({ timeout: 30_000 });
    await liveOpen(page);
    await page.evaluate(() => ((window as any).__swellMarker = "still-here"));
    let navigations = 0;
    page.on("framenavigated", (f) => {
      if (f === page.mainFrame()) navigations++;
    });

    server.kill("SIGKILL");
    await expect(page.locator("body[data-live=reconnecting]")).toBeAttached({ timeout: 10_000 });
    server = start();
    await ready(`${base}/readyz`, join(dir, "server.log"));
    await liveOpen(page, 30_000);
    const after = await overview.liveText();
    await expect.poll(() => overview.liveText(), { timeout: 20_000, intervals: [300] }).not.toEqual(after);
    expect(await page.evaluate(() => (window as any).__swellMarker)).toBe("still-here");
    expect(navigations).toBe(0);
    await context.close();
  } finally {
    server.kill("SIGKILL");
  }
});
