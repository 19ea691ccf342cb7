// The GraphQL console in a real browser with every origin but the gateway's cut off:
// it loads, runs the example query, signs in with the example login, holds a
// subscription open over graphql-transport-ws, and browses the schema, with no
// request leaving the gateway's origin and no script error or policy violation.
//
// Usage: node console.mjs <gateway /graphql URL>   (started by tests/platform.rs)
import { chromium } from "playwright-core";

const url = process.argv[2];
if (!url) {
  console.error("usage: node console.mjs <gateway /graphql URL>");
  process.exit(2);
}
const origin = new URL(url).origin;
const executablePath = process.env.SHOP_CHROMIUM || "/usr/bin/chromium";

const browser = await chromium.launch({
  executablePath,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const problems = [];
try {
  const context = await browser.newContext();
  // The network is cut: only the gateway's origin answers.
  const elsewhere = [];
  await context.route("**/*", (route) => {
    const target = new URL(route.request().url());
    if (target.origin === origin) return route.continue();
    elsewhere.push(target.href);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));

  const response = await page.goto(url);
  if (response.status() !== 200) throw new Error(`the page answered ${response.status()}`);
  const status = page.locator("#status");
  await status.getByText("ready").waitFor({ timeout: 10000 });

  // The example query, as a first-time visitor finds it.
  await page.selectOption("#operation", "Products");
  await page.click("#run");
  await page.locator("#result").getByText('"totalCount"').waitFor({ timeout: 10000 });
  const products = JSON.parse(await page.locator("#result").textContent());
  if (!(products.data.products.totalCount > 0)) throw new Error("no products in the answer");

  // The example login puts the token in Headers.
  await page.selectOption("#operation", "Login");
  await page.click("#run");
  await status.getByText("signed in").waitFor({ timeout: 10000 });
  const headers = JSON.parse(await page.inputValue("#headers"));
  if (!/^Bearer \S+$/.test(headers.Authorization || "")) throw new Error("no token in Headers");

  // The example subscription is acknowledged and stays open until stopped.
  await page.selectOption("#operation", "MyOrders");
  await page.click("#run");
  await status.getByText("subscribed").waitFor({ timeout: 10000 });
  await page.waitForTimeout(500);
  const still = await status.textContent();
  if (!still.startsWith("subscribed")) throw new Error(`the subscription ended: ${still}`);
  await page.click("#stop");
  await status.getByText("stopped").waitFor({ timeout: 5000 });

  // The schema browser loads the supergraph and follows a type link.
  await page.click("#toggle-docs");
  await page.locator("#docs-body a.type", { hasText: /^Query$/ }).first().click();
  await page.locator("#docs-body code", { hasText: /^products$/ }).first().waitFor({ timeout: 10000 });

  if (elsewhere.length) problems.push(`requests to other origins: ${elsewhere.join(", ")}`);
} catch (e) {
  problems.push(e.message);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("ok");
