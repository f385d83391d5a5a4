// First paint of the overview in Debian Chromium: median of 10 cold loads (new context each).
// Usage: node bench/first-paint.mjs http://127.0.0.1:3000/   (after `bash dev.sh demo`)
import { createRequire } from "node:module";
const require = createRequire(new URL("../end2end/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const url = process.argv[2] ?? "http://127.0.0.1:3000/";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const runs = [];
for (let i = 0; i < 10; i++) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-hydrated=true]");
  runs.push(await page.evaluate(() => ({
    fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
    hydrated: performance.now(),
  })));
  await ctx.close();
}
await browser.close();
const median = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[runs.length >> 1].toFixed(0);
console.log(`${url}: first-contentful-paint median ${median("fcp")} ms; hydrated by ${median("hydrated")} ms (10 cold loads)`);
