// The storefront in a real browser, as a shopper uses it: browse, search, filter,
// open a product, fill a cart (the hold's countdown ticking), sign up, follow the
// verification link from the mail, sign in (the cart comes along), apply a promo code,
// check out with a declined card and then a good one, watch the order page change when
// an admin ships the order from the admin console in a second browser context, see
// the bell ring, and watch the admin make the new shopper a supplier.
// Every page on the way is checked with axe-core (no serious or critical violation)
// and photographed at 375 and 1440 px.
//
// Usage: node storefront.mjs <web app URL> <gateway /graphql URL> <mail dir> <screenshot dir>
// (started by tests/web.rs, which also makes the promo code WEB10).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { open, expect } from "./kit.mjs";

const [base, gateway, mailDir, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: node storefront.mjs <web URL> <gateway URL> <mail dir> <screenshot dir>");
  process.exit(2);
}
const { url, newPage, visit, finish } = await open(base, shots);
const origin = new URL(base).origin;

/// The newest mail in the mail directory whose text matches `pattern`.
function mailLink(pattern) {
  const files = readdirSync(mailDir).filter((f) => f.endsWith(".eml")).sort().reverse();
  for (const f of files) {
    // Quoted-printable: soft line breaks and `=3D`.
    const text = readFileSync(join(mailDir, f), "utf8").replace(/=\r?\n/g, "").replace(/=3D/g, "=");
    const m = text.match(pattern);
    if (m) return m[0];
  }
  return null;
}

async function waitForMail(pattern) {
  for (let i = 0; i < 100; i++) {
    const link = mailLink(pattern);
    if (link) return link;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no mail matching ${pattern}`);
}

let page;
try {
  ({ page } = await newPage("shopper"));

  // Home → a category.
  await page.goto(url("/"));
  await visit(page, "home");
  await page.locator(".categories a").first().click();
  await page.locator("#results-count").waitFor();
  await visit(page, "category");
  // On a phone the filters fold away above the results, and open on a tap.
  await page.setViewportSize({ width: 375, height: 800 });
  await page.reload();
  expect(!(await page.locator("#sort").isVisible()), "the filters are folded on a phone");
  await page.click("#filter-box > summary");
  expect(await page.locator("#sort").isVisible(), "a tap opens the filters");
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.reload();
  expect(await page.locator("#sort").isVisible(), "the filters show beside the results");

  // Search, then a facet: the page narrows to the count shown beside it.
  await page.fill("#site-q", "jacket");
  await page.press("#site-q", "Enter");
  await page.locator("#results-count").getByText(/products?$/).waitFor();
  const facet = page.locator("input[name=attr]").first();
  const label = await facet.locator("xpath=..").textContent();
  const expected = Number(label.match(/\((\d+)\)/)[1]);
  await Promise.all([page.waitForURL(/attr=/), facet.check()]);
  const shown = Number((await page.locator("#results-count").textContent()).match(/\d+/)[0]);
  expect(shown === expected, `the facet said ${expected}, the page lists ${shown}`);
  await visit(page, "search");

  // An in-stock product into the cart.
  await page.goto(url("/search?stock=1&sort=price-asc"));
  await page.locator(".card-link").first().click();
  await page.locator("#price").waitFor();
  const productName = (await page.locator("h1").textContent()).trim();
  await visit(page, "product");
  await page.fill("#qty", "2");
  await page.click("text=Add to cart");
  await page.waitForURL(/\/cart$/);
  await page.locator(`text=${productName}`).first().waitFor();
  // The hold's countdown ticks.
  const first = await page.locator("#countdown").textContent();
  await page.waitForFunction(
    (before) => document.getElementById("countdown").textContent !== before,
    first,
    { timeout: 5000 },
  );
  expect(/^\d+:\d\d$/.test(first), `countdown reads ${first}`);
  await visit(page, "cart");

  // Sign up, then the link in the mail.
  const email = `shopper-${Date.now()}@example.com`;
  await page.click("text=Create account");
  await page.fill("#name", "Robin Shopper");
  await page.fill("#email", email);
  await page.fill("#password", "correct horse battery");
  await visit(page, "sign-up", { narrow: false });
  await page.click("button:has-text('Create account')");
  await page.locator("h1", { hasText: "Check your e-mail" }).waitFor();
  const link = await waitForMail(/https?:\/\/[^\s"<>]*\/verify-email\?token=[A-Za-z0-9_\-.%]+/);
  expect(link.startsWith(origin), `the mail links to ${link}, not the web app`);
  await page.goto(link);
  await page.locator("h1", { hasText: "E-mail address confirmed" }).waitFor();
  await visit(page, "verified", { narrow: false });

  // Sign in: the anonymous cart comes along.
  await page.goto(url("/sign-in?next=/cart"));
  await page.fill("#email", email);
  await page.fill("#password", "correct horse battery");
  await visit(page, "sign-in", { narrow: false });
  await page.click("button:has-text('Sign in')");
  await page.waitForURL(/\/cart$/);
  await page.locator(`text=${productName}`).first().waitFor();
  expect((await page.inputValue("input[name=quantity]")) === "2", "the merged line lost its quantity");

  // Promo code.
  await page.fill("#promo-code", "nosuchcode");
  await page.click("button:has-text('Apply')");
  await page.locator(".notice.error").waitFor();
  const refusal = await page.locator(".notice.error").textContent();
  expect(!/[A-Z]{4,}_[A-Z]+/.test(refusal), `a raw code reached the shopper: ${refusal}`);
  await page.fill("#promo-code", "WEB10");
  await page.click("button:has-text('Apply')");
  await page.locator("#discount").waitFor();
  await visit(page, "cart-signed-in");

  // Checkout: a declined card, explained; then a good one.
  await page.click("text=Check out");
  await page.waitForURL(/\/checkout$/);
  // Where to, first: the shipping is priced for it, and the button names the total.
  await page.fill("#name", "Robin Shopper");
  await page.fill("#line1", "Hauptstr. 1");
  await page.fill("#postal_code", "10115");
  await page.fill("#city", "Berlin");
  await page.fill("#country", "DE");
  await page.click("#quote");
  await page.locator("#shipping-cost").waitFor();
  const total = (await page.locator("#grand-total").textContent()).trim();
  const button = (await page.locator("#place-order").textContent()).trim();
  expect(button.endsWith(total), `the button says "${button}", the total is ${total}`);
  const fill = async (card) => {
    await page.fill("#card_number", card);
    await page.fill("#card_expiry", "12/30");
    await page.fill("#card_cvc", "123");
  };
  await fill("4000 0000 0000 0002");
  await visit(page, "checkout", { narrow: false });
  await page.click("#place-order");
  await page.locator("#checkout-error").waitFor();
  const declined = await page.locator("#checkout-error").textContent();
  expect(/declined/i.test(declined) && !/PAYMENT_DECLINED/.test(declined), `declined says: ${declined}`);
  await visit(page, "checkout-declined", { narrow: false });
  await fill("4242 4242 4242 4242");
  // A double click places one order.
  await page.dblclick("#place-order");
  await page.waitForURL(/\/orders\/[0-9a-f-]+$/);
  const orderId = page.url().split("/").pop();
  await page.locator("#order-status", { hasText: "Paid" }).waitFor();
  const charged = (await page.locator(".totals .grand").last().textContent()).trim();
  expect(charged === total, `the order totals ${charged}, the checkout said ${total}`);
  await visit(page, "order");

  // An admin, elsewhere, packs and ships it: the open page follows, and the bell rings.
  await page.waitForTimeout(500);
  const steps = await page.locator("#history li").count();
  const before = Number(await page.locator("#bell-count").textContent());
  const admin = await newPage("admin");
  await admin.page.goto(url("/sign-in"));
  await admin.page.fill("#email", "admin@demo.shop");
  await admin.page.fill("#password", "shop-demo-2026");
  await admin.page.click("button:has-text('Sign in')");
  await admin.page.locator("a[href='/admin']").waitFor();
  await admin.page.goto(url(`/admin/orders/${orderId}`));
  await visit(admin.page, "admin-order");
  await admin.page.fill("#note-FULFILLED", "packed with care");
  await admin.page.click("#move-fulfilled");
  await admin.page.locator("#admin-order-status", { hasText: "Packed" }).waitFor();
  await page.locator("#order-status", { hasText: "Packed" }).waitFor({ timeout: 10000 });
  await admin.page.click("#move-shipped");
  await admin.page.locator("#admin-order-status", { hasText: "On its way" }).waitFor();
  await page.locator("#order-status", { hasText: "On its way" }).waitFor({ timeout: 10000 });
  await page.waitForFunction(
    (n) => Number(document.getElementById("bell-count").textContent) > n,
    before,
    { timeout: 10000 },
  );
  await page.waitForTimeout(500);
  const history = await page.locator("#history li").count();
  expect(history === steps + 2, `the history went from ${steps} to ${history} steps, not 2 more`);
  // The admin makes the new shopper a supplier too.
  await admin.page.goto(url("/admin/users"));
  await admin.page.fill("#users-q", email);
  await admin.page.press("#users-q", "Enter");
  await admin.page.locator(`text=${email}`).waitFor();
  await visit(admin.page, "admin-users");
  await admin.page.click("a:has-text('Robin Shopper')");
  await admin.page.check("input[name=role][value=SUPPLIER]");
  await admin.page.click("button:has-text('Save roles')");
  await admin.page.locator("#user-roles", { hasText: "Customer, Supplier" }).waitFor();
  await visit(admin.page, "admin-user");
  await admin.context.close();

  // Order history and notifications.
  await page.goto(url("/orders"));
  expect((await page.locator(".order-row").count()) === 1, "one order for a double click");
  await visit(page, "orders");
  await page.goto(url("/notifications"));
  await visit(page, "notifications");
  await page.goto(url("/account"));
  await visit(page, "account");
  await finish(null, page);
} catch (e) {
  await finish(e, page);
}
