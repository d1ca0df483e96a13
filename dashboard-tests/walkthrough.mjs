// The dashboard walkthrough in headless Chromium, driven by playwright-core. Started by the
// ignored Rust test `dashboard::browser_walkthrough` (scripts/browser-tests), which runs a real
// graphhooks and HTTPS receivers, passes their URLs and credentials in GH_* variables, and
// afterwards checks on its side what the receivers got. Screenshots go to GH_SCREENSHOTS.

import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through scripts/browser-tests)`);
  return value;
};

const base = env('GH_BASE');
const adminToken = env('GH_ADMIN_TOKEN');
const appA = { id: env('GH_APP_A_ID'), secret: env('GH_APP_A_SECRET') };
const appB = { id: env('GH_APP_B_ID'), delivery: env('GH_APP_B_DELIVERY'), marker: env('GH_APP_B_MARKER') };
const callbackUrl = env('GH_CALLBACK_URL');
const verifyToken = env('GH_VERIFY_TOKEN');
const testValue = env('GH_TEST_VALUE');
const shots = env('GH_SCREENSHOTS');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--font-render-hinting=none'],
});

let steps = 0;
function step(text) {
  steps += 1;
  console.log(`walkthrough ${String(steps).padStart(2)}: ${text}`);
}

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: path.join(shots, name), fullPage });
}

/** Basic accessibility checks of the page as it is now. */
async function checkAccessible(page, where) {
  const problems = await page.evaluate(() => {
    const out = [];
    if (document.documentElement.getAttribute('lang') !== 'en') out.push('no lang="en"');
    if (document.querySelectorAll('h1').length !== 1) out.push(`${document.querySelectorAll('h1').length} h1 elements`);
    for (const control of document.querySelectorAll('input, select, textarea')) {
      if (control.type === 'hidden' || control.getAttribute('aria-hidden') === 'true') continue;
      const labelled = (control.id && document.querySelector(`label[for="${control.id}"]`))
        || control.closest('label') || control.getAttribute('aria-label') || control.getAttribute('aria-labelledby');
      if (!labelled) out.push(`unlabelled ${control.tagName.toLowerCase()} ${control.name || control.id}`);
    }
    for (const button of document.querySelectorAll('button, a.button')) {
      const name = (button.getAttribute('aria-label') || button.textContent || '').trim();
      if (!name) out.push('a button without a name');
    }
    const ids = [...document.querySelectorAll('[id]')].map((e) => e.id);
    const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
    if (duplicate) out.push(`duplicate id ${duplicate}`);
    if (!document.querySelector('main')) out.push('no main landmark');
    return out;
  });
  assert.deepEqual(problems, [], `accessibility problems on ${where}`);
}

const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
const page = await context.newPage();
const errors = [];
page.on('pageerror', (error) => errors.push(error.message));
page.on('console', (message) => {
  if (message.type() === 'error' && !/status of (401|403|404|422)/.test(message.text())) {
    errors.push(message.text());
  }
});

// 1. Sign in as app A (a wrong secret first).
step('sign-in page');
await page.goto(`${base}/dashboard/login`);
await checkAccessible(page, 'sign-in');
await shot(page, '01-sign-in.png', false);
await page.keyboard.press('Tab');
assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content', 'the skip link is focused first');
await page.keyboard.press('Tab');
await page.keyboard.press('Tab');
assert.equal(await page.evaluate(() => document.activeElement.id), 'app_id', 'then the sign-in fields, in order');
await page.fill('#app_id', appA.id);
await page.fill('#app_secret', '0'.repeat(64));
await page.click('button:has-text("Sign in")');
await page.waitForSelector('#app-error');
assert.match(await page.textContent('#app-error'), /app ID or app secret is wrong/);
await page.fill('#app_secret', appA.secret);
await page.click('button:has-text("Sign in") >> nth=0');
await page.waitForURL(`**/dashboard/apps/${appA.id}/webhooks`);
step('signed in as app A');

// 2. Verify and save: a wrong verify token shows the handshake's answer inline.
const webhooks = `${base}/dashboard/apps/${appA.id}/webhooks`;
await page.click('nav.objects a:has-text("user")');
await page.waitForURL('**object=user');
await checkAccessible(page, 'webhooks (new subscription)');
await page.fill('#callback_url', callbackUrl);
await page.fill('#verify_token', 'wrong-token');
await page.check('#include_values');
await page.check('#pick-email');
await page.click('button:has-text("Verify and save")');
await page.waitForSelector('#verify-error');
const handshakeError = await page.textContent('#verify-error');
assert.match(handshakeError, /Verification failed/);
assert.match(handshakeError, /\(#2200\)/);
assert.match(handshakeError, /HTTP 403 Forbidden/);
assert.match(handshakeError, /bad token/);
assert.equal(await page.inputValue('#verify_token'), 'wrong-token', 'the form keeps what was typed');
step('handshake error shown inline: ' + handshakeError.replace(/\s+/g, ' ').trim().slice(0, 120));
await page.locator('#verify-error').scrollIntoViewIfNeeded();
await shot(page, '02-handshake-error.png', false);

// 3. The right token: saved; the field list appears with versions.
await page.fill('#verify_token', verifyToken);
await page.click('button:has-text("Verify and save")');
await page.waitForSelector('text=Verified and saved');
assert.equal(await page.getAttribute('#field-email', 'data-subscribed'), 'true');
assert.match(await page.textContent('#field-email .version'), /v25\.0/);
step('verified and saved; email subscribed at v25.0');

// 4. Subscribe a second field.
await page.click('button[aria-label="Subscribe to name"]');
await page.waitForSelector('text=Subscribed to name.');
assert.equal(await page.getAttribute('#field-name', 'data-subscribed'), 'true');
step('subscribed to name');
await checkAccessible(page, 'webhooks');
await shot(page, '03-webhooks.png');

// 5. Test: edit the sample, send it, watch the attempt's result.
await page.click('a[aria-label="Test email"]');
await page.waitForSelector('#test-dialog[open]');
assert.match(await page.inputValue('#test-value'), /@/);
await page.fill('#test-value', JSON.stringify(testValue));
await page.fill('#test-object-id', '1021');
await page.click('#test-send');
await page.waitForSelector('#test-result.ok', { timeout: 20000 });
const testResult = await page.textContent('#test-result');
assert.match(testResult, /Delivered to your server/);
assert.match(testResult, /HTTP 200/);
const testDelivery = (await page.textContent('#test-result a')).match(/#(\d+)/)[1];
step(`test notification delivered as delivery ${testDelivery}`);
await shot(page, '04-test-dialog.png', false);
await page.click('#test-dialog button:has-text("Close")');

// 6. The paused page subscription: banner, then Resume.
await page.goto(`${webhooks}?object=page`);
await page.waitForSelector('#paused-banner');
assert.match(await page.textContent('#paused-banner'), /paused/);
await shot(page, '05-paused-banner.png', false);
await page.click('#paused-banner button:has-text("Resume")');
await page.waitForSelector('text=1 held notification will go out now');
assert.equal(await page.locator('#paused-banner').count(), 0);
step('paused subscription resumed');

// 7. The delivery log: newest first, the test delivery expanded, then redelivered.
await page.click('nav.tabs a:has-text("Delivery log")');
await page.waitForURL('**/deliveries');
await checkAccessible(page, 'delivery log');
const first = page.locator('details.delivery').first();
assert.equal(await first.getAttribute('data-delivery'), testDelivery, 'newest first');
await first.locator(':scope > summary').click();
const detail = page.locator(`#delivery-${testDelivery}`);
assert.match(await detail.locator('pre.json').textContent(), new RegExp(testValue.replace('.', '\\.')));
assert.match(await detail.locator('pre.headers').textContent(), /x-hub-signature-256: sha256=[0-9a-f]{64}/);
assert.match(await detail.locator('table.attempts').textContent(), /200/);
await detail.locator('button:has-text("Redeliver")').click();
await page.waitForSelector('text=Queued for redelivery');
// The redelivery's attempt is recorded after the receiver answers: reload until it shows.
for (let i = 0; i < 50; i += 1) {
  const rows = await page.locator(`#delivery-${testDelivery} table.attempts tbody tr`).count();
  if (rows >= 2) break;
  await page.waitForTimeout(200);
  await page.goto(`${base}/dashboard/apps/${appA.id}/deliveries?open=${testDelivery}`);
}
assert.equal(await page.locator(`#delivery-${testDelivery} table.attempts tbody tr`).count(), 2, 'two attempts after redelivery');
step('redelivered: two attempts in the log');
await shot(page, '06-delivery-log.png');

// Filters: state and object.
await page.selectOption('#filter-state', 'paused');
await page.click('button:has-text("Apply")');
await page.waitForURL('**state=paused**');
assert.equal(await page.locator(`#delivery-${testDelivery}`).count(), 0);
await page.selectOption('#filter-state', 'delivered');
await page.selectOption('#filter-object', 'user');
await page.click('button:has-text("Apply")');
await page.waitForURL('**object=user**');
assert.equal(await page.locator(`#delivery-${testDelivery}`).count(), 1);
step('filters by state and object');

// 8. App A's session cannot see app B.
for (const url of [
  `${base}/dashboard/apps/${appB.id}/deliveries`,
  `${base}/dashboard/apps/${appB.id}/webhooks`,
  `${base}/dashboard/apps/${appB.id}/deliveries/${appB.delivery}`,
  `${base}/dashboard/apps/${appB.id}/deliveries/${appB.delivery}/status`,
]) {
  const response = await page.goto(url);
  assert.equal(response.status(), 403, url);
  assert.ok(!(await page.content()).includes(appB.marker), `B's data on ${url}`);
}
const viaOwn = await page.goto(`${base}/dashboard/apps/${appA.id}/deliveries/${appB.delivery}`);
assert.equal(viaOwn.status(), 404);
step("app A's session gets 403 on app B's log and 404 on B's delivery");

// 9. Sign out.
await page.goto(webhooks);
await page.click('button:has-text("Sign out")');
await page.waitForSelector('text=You are signed out.');
await page.goto(webhooks);
await page.waitForURL('**/dashboard/login?next=**');
step('signed out; pages need signing in again');

// 10. The operator: apps with health, create an app, mode, roles, grants.
await page.fill('#admin_token', adminToken);
await page.click('button:has-text("Sign in as operator")');
await page.waitForURL(`**/dashboard/apps/${appA.id}/webhooks`);
await page.goto(`${base}/dashboard/apps`);
await checkAccessible(page, 'apps');
assert.equal(await page.locator('table.apps tbody tr').count(), 2);
await page.fill('#new-name', 'Photo Sharer');
await page.selectOption('#new-mode', 'development');
await page.click('button:has-text("Create app")');
await page.waitForSelector('#created-secret');
const created = (await page.textContent('#created-app-id')).trim();
assert.match((await page.textContent('#created-secret')).trim(), /^[0-9a-f]{64}$/);
step(`operator created app ${created}; secret shown once`);
await shot(page, '07-operator-apps.png');

await page.click('.secret-card a:has-text("Settings")');
await page.waitForURL(`**/dashboard/apps/${created}/settings`);
await page.selectOption('#mode', 'live');
await page.click('button:has-text("Switch mode")');
await page.waitForSelector('text=The app is now in live mode.');
await page.fill('#role-user', '1021');
await page.selectOption('#role-role', 'developer');
await page.click('button:has-text("Add role")');
await page.waitForSelector('text=Role saved.');
await page.fill('#role-user', '1022');
await page.selectOption('#role-role', 'tester');
await page.click('button:has-text("Add role")');
await page.selectOption('#grant-type', 'user');
await page.fill('#grant-id', '1021');
await page.fill('#grant-permissions', 'email, user_likes');
await page.click('button:has-text("Save grant")');
await page.waitForSelector('text=Grant saved.');
await page.selectOption('#grant-type', 'page');
await page.fill('#grant-id', '1234');
await page.fill('#grant-permissions', 'pages_read_engagement');
await page.click('button:has-text("Save grant")');
await page.waitForSelector('text=Grant saved.');
await checkAccessible(page, 'settings');
step('mode switched, roles and grants saved');
await shot(page, '08-app-settings.png');

await page.goto(`${base}/dashboard/apps`);
await page.click(`tr[data-app="${appA.id}"] a:has-text("Webhooks")`);
await page.waitForURL(`**/dashboard/apps/${appA.id}/webhooks`);
assert.match(await page.textContent('.app-name'), /Acme Social/);
step("operator opened app A's webhooks page");

// 11. Phone width.
await page.setViewportSize({ width: 390, height: 844 });
await page.goto(`${webhooks}?object=user`);
const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
assert.ok(overflow <= 0, `the webhooks page scrolls sideways by ${overflow}px on a phone`);
await shot(page, '09-phone-webhooks.png', false);
await page.goto(`${base}/dashboard/apps/${appA.id}/deliveries?open=${testDelivery}`);
const logOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
assert.ok(logOverflow <= 0, `the log scrolls sideways by ${logOverflow}px on a phone`);
await shot(page, '10-phone-delivery-log.png', false);
step('phone-width pages fit the screen');

assert.deepEqual(errors, [], 'no script errors');
await browser.close();
console.log(`walkthrough: ${steps} steps passed`);
