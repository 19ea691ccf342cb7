// What every browser script here needs: chromium launched the way this machine has
// it, pages that report script errors and requests leaving the app, axe-core audits,
// and screenshots at 375 and 1440 px. `open(base, shots)` starts a session of them.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export function expect(condition, message) {
  if (!condition) throw new Error(message);
}

export async function open(base, shots) {
  mkdirSync(shots, { recursive: true });
  // A picture of an earlier run's failure would mislead whoever looks at this one's.
  rmSync(join(shots, "failure.png"), { force: true });
  const origin = new URL(base).origin;
  const browser = await chromium.launch({
    executablePath: process.env.SHOP_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const problems = [];
  const checked = [];
  const url = (path) => new URL(path, base).href;

  /// A browser context whose page reports script errors, CSP violations and failed
  /// requests; nothing leaves the web app's origin.
  async function newPage(label) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.route("**/*", (route) => {
      const target = new URL(route.request().url());
      if (target.origin === origin) return route.continue();
      problems.push(`${label}: a request left the web app: ${target.href}`);
      return route.abort("internetdisconnected");
    });
    const page = await context.newPage();
    page.on("pageerror", (e) => problems.push(`${label}: script error: ${e.message}`));
    page.on("console", (m) => {
      // A form sent back with its errors answers 4xx, which the browser logs.
      if (m.type() === "error" && !/status of 4(00|22)/.test(m.text())) {
        problems.push(`${label}: console error: ${m.text()}`);
      }
    });
    return { context, page };
  }

  /// axe-core on the page as it is now: serious and critical violations are failures.
  async function audit(page, name) {
    await page.evaluate(axeSource);
    const result = await page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      axe.run(document, { resultTypes: ["violations"] }),
    );
    for (const v of result.violations) {
      if (v.impact === "serious" || v.impact === "critical") {
        const where = v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ");
        problems.push(`${name}: axe ${v.impact} ${v.id}: ${v.help} at ${where}`);
      }
    }
    checked.push(name);
  }

  /// Audits, then photographs at both widths (the page is reloaded at 375 px, so only
  /// pages that a GET shows again are photographed narrow).
  async function visit(page, name, { narrow = true } = {}) {
    await audit(page, name);
    await page.screenshot({ path: join(shots, `${name}-1440.png`), fullPage: true });
    if (narrow) {
      await page.setViewportSize({ width: 375, height: 800 });
      await page.reload();
      await audit(page, `${name} (375 px)`);
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      if (overflow > 1) problems.push(`${name}: ${overflow} px wider than a 375 px screen`);
      await page.screenshot({ path: join(shots, `${name}-375.png`), fullPage: true });
      await page.setViewportSize({ width: 1440, height: 900 });
      await page.reload();
    }
  }

  /// Signs in through the form in a new context.
  async function signedIn(label, email, password) {
    const p = await newPage(label);
    await p.page.goto(url("/sign-in"));
    await p.page.fill("#email", email);
    await p.page.fill("#password", password);
    await p.page.click("button:has-text('Sign in')");
    await p.page.locator("button:has-text('Sign out')").waitFor();
    return p;
  }

  /// Ends the session: the failure's screenshot, the report, the exit code.
  async function finish(error, page) {
    if (error) {
      problems.push(`stopped: ${error.stack || error}`);
      if (page) {
        await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
        problems.push(`the page then: ${page.url()} (see failure.png)`);
      }
    }
    await browser.close();
    console.log(`checked with axe: ${checked.join(", ")}`);
    if (problems.length) {
      console.error(problems.join("\n"));
      process.exit(1);
    }
  }

  return { browser, problems, url, newPage, audit, visit, signedIn, finish };
}
