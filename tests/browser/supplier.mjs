// The supplier portal in a real browser, as a supplier uses it: a new catalog and a
// category, a file of thousands of rows uploaded for review (its row errors and
// changes shown), applied while the progress bar follows the job live (the page
// reloads itself when the job is done), rolled back, and applied again; a product's
// stock received and explained by its ledger; what runs low. Then the admin console's
// import jobs and mail log. Every page is checked with axe-core and photographed at
// 375 and 1440 px.
//
// Usage: node supplier.mjs <web app URL> <screenshot dir>   (started by tests/web.rs)
import { open, expect } from "./kit.mjs";

const [base, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: node supplier.mjs <web URL> <screenshot dir>");
  process.exit(2);
}
const { url, visit, signedIn, finish } = await open(base, shots);
const PASSWORD = "shop-demo-2026";

/// A catalog file: `rows` good products in two categories and two broken rows.
function catalogFile(rows) {
  const lines = ["sku,name,price,currency,category,attr:color,stock"];
  const colors = ["amber", "white", "green", "black"];
  for (let i = 1; i <= rows; i++) {
    const sku = `LAMP-${String(i).padStart(5, "0")}`;
    const cents = 1500 + (i % 50) * 100;
    const category = i % 2 ? "Lamps > Desk" : "Lamps > Floor";
    lines.push(`${sku},Lamp ${i},${(cents / 100).toFixed(2)},EUR,${category},${colors[i % 4]},${i % 40}`);
    if (i === 7) lines.push("LAMP-BAD-1,Broken lamp,twelve,EUR,Lamps > Desk,red,3");
    if (i === 11) lines.push("LAMP-BAD-2,,9.00,EUR,Lamps > Desk,red,3");
  }
  return Buffer.from(lines.join("\n") + "\n");
}

/// Progress values the bar shows while the job runs, sampled until `done` appears.
async function watchProgress(page, doneSelector) {
  const seen = new Set();
  for (let i = 0; i < 600; i++) {
    if (await page.locator(doneSelector).count()) break;
    const v = await page
      .locator("#import-progress")
      .evaluate((el) => el.value)
      .catch(() => null);
    if (v !== null) seen.add(v);
    await page.waitForTimeout(50);
  }
  await page.locator(doneSelector).waitFor({ timeout: 30000 });
  return [...seen].sort((a, b) => a - b);
}

let page;
try {
  const supplier = await signedIn("supplier", "northwind@demo.shop", PASSWORD);
  page = supplier.page;
  await page.click("a:has-text('Sell')");
  await page.locator("h1", { hasText: "Your catalogs" }).waitFor();
  await visit(page, "supplier-home");

  await page.click("summary:has-text('Create a catalog')");
  await page.fill("#new-catalog-name", "Lighting");
  await page.fill("#new-catalog-description", "Lamps for desks and floors");
  await page.click("button:has-text('Create catalog')");
  await page.locator("h1", { hasText: "Lighting" }).waitFor();
  await page.fill("#new-category-name", "Lamps");
  await page.click("button:has-text('Add category')");
  await page.locator("#categories summary", { hasText: "Lamps" }).waitFor();

  // A file of 40,000 rows, reviewed before anything is applied.
  const rows = 40000;
  await page.setInputFiles("#import-file", { name: "lamps.csv", mimeType: "text/csv", buffer: catalogFile(rows) });
  expect(await page.isChecked("input[name=review]"), "review is the default");
  await page.selectOption("#import-on-error", "SKIP_ROWS");
  await visit(page, "supplier-catalog", { narrow: false });
  await page.click("button:has-text('Upload and check')");
  await page.waitForURL(/\/supplier\/imports\//);
  const checking = await watchProgress(page, "#apply-import");
  console.log(`validation progress seen: ${checking.join(", ")}`);
  expect((await page.locator("#import-status").textContent()) === "Ready for review", "the dry run is ready");
  expect((await page.locator("#count-create").textContent()) === String(rows), "every good row is new");
  expect((await page.locator("#count-failed").textContent()) === "2", "two rows fail");
  const errors = await page.locator("#import-errors tbody tr").allTextContents();
  expect(errors.length === 2, `two error rows, not ${errors.length}`);
  expect(errors.some((e) => e.includes("twelve")), "the bad price is quoted");
  expect((await page.locator("#import-changes tbody tr").count()) === 50, "a page of changes");
  await visit(page, "supplier-import-review");

  // Applied: the bar follows the job until the page shows it applied, by itself.
  const job = page.url();
  let navigations = 0;
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame()) navigations++;
  });
  await page.click("#apply-import");
  const applying = await watchProgress(page, "#rollback-import");
  console.log(`apply progress seen: ${applying.join(", ")}`);
  expect(applying.some((v) => v > 0 && v < 100), `the bar moved on its way: ${applying}`);
  expect(navigations >= 2, "the page reloaded itself when the job was done");
  expect((await page.locator("#import-status").textContent()) === "Applied", "applied");
  expect(Number(await page.locator("#import-progress").evaluate((el) => el.value)) === 100, "the bar is full");
  await visit(page, "supplier-import-done");

  // The catalog now lists them; one product's stock, received and explained.
  await page.click(".crumbs a:has-text('Lighting')");
  await page.locator("p[role=status]", { hasText: `${rows} products` }).waitFor();
  await page.click("#products a:has-text('Lamp 1')");
  await page.locator("#stock-on-hand").waitFor();
  const before = Number(await page.locator("#stock-on-hand").textContent());
  await page.fill("#stock-delta", "12");
  await page.fill("#stock-delta-reason", "spring delivery");
  await page.click("button:has-text('Change stock')");
  await page.locator("#stock-on-hand", { hasText: String(before + 12) }).waitFor();
  await page.locator("#stock-ledger", { hasText: "spring delivery" }).waitFor();
  await page.fill("#stock-threshold", String(before + 20));
  await page.click("button:has-text('Save alert level')");
  await page.locator("#low-stock-alert").waitFor();
  await visit(page, "supplier-product");
  await page.click("nav.admin-nav a:has-text('Running low')");
  await page.locator("#stock-levels").waitFor();
  await visit(page, "supplier-stock");

  // Rolled back from the job's page: the products are gone again.
  await page.goto(job);
  await page.click("#rollback-import");
  await watchProgress(page, "#import-status:has-text('Rolled back')");
  await page.goto(url("/supplier"));
  await page.click("a:has-text('Lighting')");
  await page.locator("p[role=status]", { hasText: "0 products" }).waitFor();

  // The admin sees the job among all and the mail log.
  const admin = await signedIn("admin", "admin@demo.shop", PASSWORD);
  await admin.page.goto(url("/admin/imports"));
  await admin.page.locator("#admin-imports", { hasText: "lamps.csv" }).waitFor();
  await visit(admin.page, "admin-imports");
  await admin.page.click("nav.admin-nav a:has-text('Mail')");
  await admin.page.locator("#admin-mail").waitFor();
  await visit(admin.page, "admin-mail");
  await admin.context.close();
  await finish(null, page);
} catch (e) {
  await finish(e, page);
}
