// The built-in dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core
// (never a downloaded browser). tests/blackbox/web.rs starts a node on a free port and runs this
// file with `node --test`, once per store backend:
//
//   TRIBUTARY_URL          the node's base URL (required)
//   TRIBUTARY_ADMIN_TOKEN  the node's admin token, typed into the restart dialog
//   CHROMIUM               the browser (default /usr/bin/chromium)
//   SCREENSHOTS            a folder to save the main states into (docs/screenshots for the README)
//   BULK_TABLES            tables in each of the upload's 12 bulk files (default 150; the local
//                          DynamoDB server, written in Python, takes a smaller upload)
//   EXPECTED_MODEL         the model the node's answers name (default extractive)
//   SLOW_ANSWER            set when the node's model is a stand-in that streams this text slowly:
//                          the page must then be seen showing part of it before the rest arrives
//
// The scenarios run in order against one page, as a person would use it.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.TRIBUTARY_URL;
const TOKEN = process.env.TRIBUTARY_ADMIN_TOKEN ?? "";
const SCREENSHOTS = process.env.SCREENSHOTS;
const BULK_TABLES = Number(process.env.BULK_TABLES ?? 150);
const EXPECTED_MODEL = process.env.EXPECTED_MODEL ?? "extractive";
const SLOW_ANSWER = process.env.SLOW_ANSWER;
if (!BASE) throw new Error("TRIBUTARY_URL is not set: run this through tests/blackbox/web.rs");

/** Flags that keep Chromium off the network (this machine has none) and fit running as root. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

/** A small warehouse: raw tables, staging views over them, a reporting view over those. */
const WAREHOUSE = `
CREATE TABLE raw.customers (id INT PRIMARY KEY, name TEXT, region TEXT);
CREATE TABLE raw.orders (id INT PRIMARY KEY, customer_id INT REFERENCES raw.customers(id), amount NUMERIC, ordered_at DATE);
CREATE VIEW staging.orders AS SELECT o.id, o.customer_id, o.amount, o.ordered_at FROM raw.orders o WHERE o.amount > 0;
CREATE VIEW staging.customers AS SELECT id, name, region FROM raw.customers;
CREATE VIEW reporting.revenue AS
  SELECT c.region, SUM(o.amount) AS revenue
  FROM staging.orders o JOIN staging.customers c ON c.id = o.customer_id
  GROUP BY c.region;
`;

/** Enough SQL that ingestion takes a moment, so its progress is seen. */
function bulkFile(index) {
  const statements = [];
  for (let table = 0; table < BULK_TABLES; table += 1) {
    const columns = Array.from({ length: 12 }, (_, column) => `c${column} INT`).join(", ");
    statements.push(`CREATE TABLE bulk${index}.t${table} (${columns});`);
    if (table > 0) statements.push(`CREATE VIEW bulk${index}.v${table} AS SELECT c0, c1 FROM bulk${index}.t${table - 1};`);
  }
  return { name: `bulk_${String(index).padStart(2, "0")}.sql`, mimeType: "text/plain", buffer: Buffer.from(statements.join("\n")) };
}

/** axe-core, the accessibility rules engine, injected into pages under test. */
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

/**
 * The WCAG 2 A and AA violations axe-core finds on `target` (labels, names, contrast, ARIA, ...).
 * The page's policy forbids injected scripts, so the context that runs this bypasses it.
 */
async function accessibilityViolations(target) {
  await target.addScriptTag({ path: AXE });
  const results = await target.evaluate(() => window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }));
  return results.violations.map((violation) => `${violation.id}: ${violation.help} (${violation.nodes.map((node) => node.target.join(" ")).join(", ")})`);
}

let browser;
let page;
/** Console errors and uncaught exceptions, as they happen. */
const problems = [];

/**
 * Waits until `locator` is on screen as a person sees it: rendered, scrolled into view, and the
 * topmost thing at its centre (not hidden, clipped away or covered); returns its rendered text.
 */
async function seen(locator) {
  await locator.waitFor({ state: "visible" });
  await locator.scrollIntoViewIfNeeded();
  const onTop = await locator.evaluate((element) => {
    const box = element.getBoundingClientRect();
    const top = document.elementFromPoint(box.left + Math.min(box.width / 2, 40), box.top + box.height / 2);
    return top !== null && (top === element || element.contains(top));
  });
  assert.ok(onTop, `${locator} is not what a person sees there`);
  return locator.innerText();
}

/** Drops files (name → content) on the upload area, as a person drags them from their desktop. */
function drop(files) {
  return page.locator("#drop-zone").evaluate((zone, files) => {
    const transfer = new DataTransfer();
    for (const [name, content] of Object.entries(files)) transfer.items.add(new File([content], name, { type: "text/plain" }));
    zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, files);
}

async function screenshot(name, fullPage = true) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage, animations: "disabled" });
}

/** The tile's number, as the page shows it (digits only). */
async function tile(stat) {
  const text = await page.locator(`.tile[data-stat="${stat}"] .value`).textContent();
  return Number(text.replace(/\D/g, ""));
}

/** Starts recording every value the attribute `attribute` of `selector` takes. */
async function recordAttribute(selector, attribute, name) {
  await page.evaluate(
    ({ selector, attribute, name }) => {
      const target = document.querySelector(selector);
      const seen = [target.getAttribute(attribute)];
      window[name] = seen;
      new MutationObserver(() => seen.push(target.getAttribute(attribute))).observe(target, { attributes: true, attributeFilter: [attribute] });
    },
    { selector, attribute, name },
  );
}

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS, headless: true });
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, colorScheme: "light" });
  page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`exception: ${error.message}`));
});

after(async () => {
  await browser?.close();
});

describe("the dashboard", () => {
  test("loads with no console errors and goes live", async () => {
    const response = await page.goto(BASE);
    assert.equal(response.status(), 200);
    assert.match(response.headers()["content-security-policy"], /script-src 'self'/);
    await page.locator("#connection[data-state=live]").waitFor({ timeout: 10_000 });
    // This page's own connection is counted (by the stats_update it asked for when it connected).
    await page.waitForFunction(() => Number(document.querySelector('.tile[data-stat="activeConnections"] .value').textContent) >= 1);
    // The feed starts from the stored activity. The store is fresh and the recorder writes in the
    // background, so this visit's own requests may not be there yet: come back until they are.
    for (let visit = 1; ; visit += 1) {
      // "attached", not the default "visible": an empty list has no height, and empty is the case
      // this loop is here for.
      await page.locator("#activity-feed[data-loaded]").waitFor({ state: "attached" });
      if ((await page.locator("#activity-feed li:not(.failed)").count()) > 0) break;
      assert.ok(visit < 20, "the feed never showed the stored activity");
      await page.waitForTimeout(500);
      await page.reload();
    }
    assert.deepEqual(problems, []);
  });

  test("files dropped on the upload area are ingested, and a refused one says why", async () => {
    await drop({ "dropped.sql": "CREATE TABLE dropped.items (id INT, label TEXT);" });
    await page.locator("#upload-results > li", { hasText: "dropped.sql: processed" }).waitFor();
    assert.equal(await page.locator("#upload-results > li").count(), 1);
    // An empty file refuses the whole upload (a 4xx in the contract's shape), and the page says so.
    await drop({ "empty.sql": "" });
    await page.locator("#upload-bar[data-phase=failed]").waitFor();
    assert.match(await page.locator("#upload-status").textContent(), /empty.*\(request [0-9a-f-]+\)/i);
    // Chromium logs every 4xx answer to the console; this one was asked for.
    const refused = problems.findIndex((problem) => problem.includes("status of 422"));
    assert.ok(refused >= 0, `console: ${problems}`);
    problems.splice(refused, 1);
  });

  test("an upload's warnings show with their lines, and the ones not listed page in", async () => {
    // A statement nothing can read, on line 2.
    await drop({ "warned.sql": "CREATE TABLE warned.items (id INT);\nFROBNICATE the_items;\n" });
    const warned = page.locator("#upload-results > li", { hasText: "warned.sql: processed" });
    await warned.waitFor();
    assert.match(await seen(warned.locator(".warnings li").first()), /^line 2: statement skipped: .+/);
    assert.match(await warned.innerText(), /1 warning\b/);
    assert.equal(await warned.locator("button").count(), 0, "nothing more to show");

    // 150 of them: the answer lists 100, and the page offers the rest.
    await drop({ "unreadable.sql": "FROBNICATE x;\n".repeat(150) });
    const unreadable = page.locator("#upload-results > li", { hasText: "unreadable.sql: processed" });
    await unreadable.waitFor();
    assert.match(await unreadable.locator(":scope > span").innerText(), /150 warnings/);
    const shown = unreadable.locator(".warnings li");
    assert.equal(await shown.count(), 100);
    assert.match(await seen(shown.nth(99)), /^line 100: statement skipped/);
    assert.equal(await unreadable.getByText("line 101:", { exact: false }).count(), 0);
    const more = unreadable.getByRole("button", { name: "Show 50 more warnings" });
    assert.ok(await seen(more));
    await more.click();
    await shown.nth(100).waitFor();
    assert.match(await seen(shown.nth(100)), /^line 101: statement skipped/);
    assert.match(await seen(shown.nth(149)), /^line 150: statement skipped/);
    assert.equal(await shown.count(), 150, "every warning, once");
    assert.equal(await more.count(), 0, "nothing more to show");
  });

  test("an upload shows its progress and the tiles change", async () => {
    const nodesBefore = await tile("totalNodes");
    const filesBefore = await tile("filesProcessed");
    await recordAttribute("#upload-bar", "data-phase", "uploadPhases");
    await recordAttribute("#upload-bar", "aria-valuetext", "uploadSteps");
    const files = [{ name: "warehouse.sql", mimeType: "text/plain", buffer: Buffer.from(WAREHOUSE) }];
    for (let index = 1; index <= 12; index += 1) files.push(bulkFile(index));
    await page.locator("#upload-files").setInputFiles(files);
    await page.locator("#upload-status").filter({ hasText: "file(s) ingested" }).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator("#upload-bar").evaluate((bar) => bar.value), 100);
    const phases = await page.evaluate(() => window.uploadPhases);
    const steps = await page.evaluate(() => window.uploadSteps);
    // The bar followed this upload's ingestion_progress events ("Parsing 13 of 13: … 50 %" is one;
    // ingestion_started alone gives "Parsing… 0 %"), then finished.
    const fromProgress = steps.filter((step) => /^(Parsing|Storing) \d+ of 13: .+ ([1-9]\d*) %$/.test(step ?? ""));
    assert.ok(fromProgress.length > 0, `steps seen: ${steps.join(" | ")}`);
    assert.equal(phases.at(-1), "done");
    assert.equal(await page.locator("#upload-results > li").count(), 13);
    // The next stats_update carries the new graph.
    await page.waitForFunction(([nodes, filesCount]) => {
      const read = (stat) => Number(document.querySelector(`.tile[data-stat="${stat}"] .value`).textContent.replace(/\D/g, ""));
      return read("totalNodes") > nodes && read("filesProcessed") >= filesCount + 13;
    }, [nodesBefore, filesBefore], { timeout: 15_000 });
    await page.locator("#activity-feed li", { hasText: "Ingested 13 file(s)" }).waitFor();
  });

  test("the lineage of an object is drawn and its nodes lead on", async () => {
    await page.locator("#lineage-node").fill("staging.orders");
    await page.locator("#lineage-form button[type=submit]").click();
    const root = page.locator('#lineage-graph .node.root[data-node="staging.orders"]');
    await root.waitFor();
    // Upstream: raw.orders; downstream: reporting.revenue.
    await page.locator('#lineage-graph .node[data-node="raw.orders"]').waitFor();
    await page.locator('#lineage-graph .node[data-node="reporting.revenue"]').waitFor();
    assert.ok((await page.locator("#lineage-graph path.edge").count()) >= 2);
    // The keyboard follows a node: focus it and press Enter.
    await page.locator('#lineage-graph .node[data-node="reporting.revenue"]').focus();
    await page.keyboard.press("Enter");
    await page.locator('#lineage-graph .node.root[data-node="reporting.revenue"]').waitFor();
    await page.locator('#lineage-graph .node[data-node="staging.customers"]').waitFor();
    assert.match(await page.locator("#lineage-status").textContent(), /reads from \d+ and is read by 0/);
  });

  test("a chat question gets a streamed answer with sources", async () => {
    await page.locator('input[name=mode][value=deep]').check();
    await page.evaluate(() => {
      // Every text the answer shows while it streams.
      window.streamed = [];
      new MutationObserver(() => {
        const streaming = document.querySelector("#chat-log .message.assistant.streaming .answer");
        if (streaming) window.streamed.push(streaming.textContent);
      }).observe(document.getElementById("chat-log"), { childList: true, subtree: true, characterData: true });
    });
    const answered = page.waitForResponse((response) => response.url().endsWith("/api/chat/deep/stream"));
    await page.locator("#chat-query").fill("Where does staging.orders get its data from?");
    await page.locator("#chat-query").press("Enter");
    const response = await answered;
    assert.match(response.headers()["content-type"], /text\/event-stream/);
    const frames = (await response.text()).split("\n").filter((line) => line.startsWith("data:")).map((line) => JSON.parse(line.slice(5)));
    assert.equal(frames[0].type, "start");
    assert.ok(frames.filter((frame) => frame.type === "delta").length > 1, "the answer came in pieces");
    assert.equal(frames.at(-1).type, "done");

    const answer = page.locator(".message.assistant").last();
    await answer.locator(".sources li").first().waitFor({ state: "attached" });
    assert.ok(await answer.locator('.sources li[data-source="node"]').count() >= 1);
    assert.equal((await answer.locator(".meta").last().textContent()).replace(/ · \d+ ms$/, ""), `deep · ${EXPECTED_MODEL}`);
    assert.match(await answer.locator(".answer").textContent(), /staging\.orders/);
    if (SLOW_ANSWER) {
      // The model took its time: the page showed the start of the answer, and only the start,
      // before the rest had been written.
      const shown = await page.evaluate(() => window.streamed);
      const partial = shown.filter((text) => text.length > 0 && text.length < SLOW_ANSWER.length);
      assert.ok(partial.length > 0 && partial.every((text) => SLOW_ANSWER.startsWith(text)), `texts shown while streaming: ${JSON.stringify(shown)}`);
      assert.equal(await answer.locator(".answer").textContent(), SLOW_ANSWER.replaceAll("`", ""));
    }
    await page.locator("#activity-feed li", { hasText: "Answered a deep question" }).waitFor();
    await screenshot("dashboard");
    // A node among the sources opens in the lineage view (which showed reporting.revenue).
    await answer.locator("details").evaluate((details) => {
      details.open = true;
    });
    await answer.locator('.sources li[data-source="node"] button', { hasText: "staging.orders" }).first().click();
    await page.locator('#lineage-graph .node.root[data-node="staging.orders"]').waitFor();
  });

  test("meets WCAG 2.1 AA in both colour schemes, filled in, and fits a phone", async () => {
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea, button")]
        .filter((control) => !(control.labels?.length || control.getAttribute("aria-label") || control.textContent.trim()))
        .map((control) => control.outerHTML),
    );
    assert.deepEqual(unlabelled, []);
    for (const colorScheme of ["light", "dark"]) {
      const context = await browser.newContext({ colorScheme, bypassCSP: true, reducedMotion: "reduce" });
      const checked = await context.newPage();
      await checked.goto(BASE);
      await checked.locator("#connection[data-state=live]").waitFor({ timeout: 10_000 });
      await checked.locator("#activity-feed li").first().waitFor();
      // With content in every part: a drawn graph and an answer with its sources.
      await checked.locator("#lineage-node").fill("staging.orders");
      await checked.locator("#lineage-form button[type=submit]").click();
      await checked.locator('#lineage-graph .node.root[data-node="staging.orders"]').waitFor();
      await checked.locator("input[name=mode][value=graph]").check();
      await checked.locator("#chat-query").fill("What reads from staging.orders?");
      await checked.locator("#chat-query").press("Enter");
      await checked.locator(".message.assistant .sources li").first().waitFor({ state: "attached" });
      assert.deepEqual(await accessibilityViolations(checked), [], `${colorScheme} scheme`);
      await context.close();
    }
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await phone.goto(BASE);
    await phone.locator("#connection[data-state=live]").waitFor({ timeout: 10_000 });
    await phone.locator("#lineage-node").fill("staging.orders");
    await phone.locator("#lineage-form button[type=submit]").click();
    await phone.locator('#lineage-graph .node.root[data-node="staging.orders"]').waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
    if (SCREENSHOTS) await phone.screenshot({ path: join(SCREENSHOTS, "dashboard-phone.png"), animations: "disabled" });
    await phone.close();
  });

  test("after a restart the badge goes offline and comes back live by itself", async () => {
    assert.deepEqual(problems, [], "no errors before the restart");
    await recordAttribute("#connection", "data-state", "linkStates");
    await page.locator("#restart-open").click();
    await page.locator("#restart-token").fill(TOKEN);
    await screenshot("dashboard-restart", false);
    await page.locator("#restart-confirm").click();
    await page.locator("#restart-dialog").waitFor({ state: "hidden" });
    await page.locator("#connection[data-state=offline]").waitFor({ timeout: 10_000 });
    await page.locator("#connection[data-state=live]").waitFor({ timeout: 20_000 });
    const states = await page.evaluate(() => window.linkStates);
    const offline = states.indexOf("offline");
    assert.ok(offline > 0 && states.indexOf("live", offline) > offline, `states: ${states}`);
    // The server's own `restarting` message (the close code 1012 adds a line of its own).
    await page.locator("#activity-feed li", { hasText: "Server is restarting" }).first().waitFor();
    // While the node was away the browser logged refused connections; nothing else went wrong.
    const unexpected = problems.filter((problem) => !/net::ERR_CONNECTION_REFUSED|WebSocket connection to .* failed/.test(problem));
    assert.deepEqual(unexpected, []);
  });
});
