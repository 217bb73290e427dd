// Browser tests of the web UI: Debian's headless Chromium driven by
// playwright-core. A newcomer's first minute, as the issue describes it: a
// customer writes in the phone simulator, the card appears live on the
// board, an agent opens it and replies, the simulator shows the reply and the
// card turns green. Plus: markup from customers stays text, an agent of
// another pipe cannot open the card by its URL, a forbidden move shows why
// (from the card page and by dragging on the board).
//
// Run by scripts/test: `node --test tests/browser/demo.test.mjs` with
// SWITCHBOARD_BIN pointing at the built binary.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = process.env.SWITCHBOARD_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug", "switchboard");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const PASSWORD = "switchboard-demo";

let server, base, browser, dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "switchboard-browser-"));
  server = spawn(bin, ["serve", "--demo"], {
    cwd: root,
    env: { ...process.env, SWITCHBOARD_DATABASE_URL: `sqlite://${join(dir, "demo.db")}`, SWITCHBOARD_LISTEN: "127.0.0.1:0", RUST_LOG: "warn" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  base = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: server.stderr });
    const timer = setTimeout(() => reject(new Error("the server did not say where it listens within 60 s")), 60_000);
    lines.on("line", (line) => {
      const m = line.match(/^Switchboard is listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on("exit", (code) => reject(new Error(`the server exited with ${code}`)));
  });
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function logIn(email, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.on("dialog", () => assert.fail("a script from a message ran in the agent's page"));
  await page.goto(`${base}/login`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", PASSWORD);
  await Promise.all([page.waitForURL(`${base}/`), page.click("button[type=submit]")]);
  return page;
}

async function customerWrites(phone, text, from = "5511987650001", name = "Maria Souza") {
  await phone.goto(`${base}/demo/phone?from=${from}&name=${encodeURIComponent(name)}&to=551140001000`);
  await phone.fill("textarea[name=text]", text);
  await Promise.all([phone.waitForURL(/\/demo\/phone\?/), phone.click("form.phone-form button[type=submit]")]);
}

test("a customer writes, the card appears live, an agent replies, the simulator shows it and the card turns green", async () => {
  const ana = await logIn("ana@acme.com");
  await ana.goto(`${base}/pipes/support`);
  await ana.waitForSelector("body.connected");
  assert.equal(await ana.locator("a.card").count(), 0);

  const phone = await (await browser.newContext()).newPage();
  await customerWrites(phone, "Oi, meu pedido 8812 não chegou");

  // Live: no reload on the agent's side.
  const card = ana.locator("a.card", { hasText: "Maria Souza" });
  await card.waitFor({ timeout: 15_000 });
  await Promise.all([ana.waitForURL(/\/cards\/c_support_1$/), card.click()]);
  await ana.fill("textarea[name=text]", "Olá Maria, vou verificar o pedido.");
  await Promise.all([ana.waitForURL(/\/cards\/c_support_1$/), ana.click("form.reply button[type=submit]")]);
  await ana.locator("h1.sla-green").waitFor({ timeout: 15_000 });

  await phone.locator("#phone-messages li.out", { hasText: "Olá Maria, vou verificar o pedido." }).waitFor({ timeout: 15_000 });
});

test("markup a customer sends is shown as text and never runs", async () => {
  const phone = await (await browser.newContext()).newPage();
  await customerWrites(phone, `<script>alert("x")</script><img src=x onerror="alert('y')">`, "5511987650002", "Mallory");
  const ana = await logIn("ana@acme.com");
  await ana.goto(`${base}/pipes/support`);
  await Promise.all([ana.waitForURL(/\/cards\//), ana.locator("a.card", { hasText: "Mallory" }).click()]);
  const text = await ana.locator("li.message.in .text").first().textContent();
  assert.ok(text.includes(`<script>alert("x")</script>`), text);
  assert.equal(await ana.locator("li.message img").count(), 0);
});

test("an agent of another pipe cannot open a support card by its URL", async () => {
  const rafael = await logIn("rafael@acme.com");
  const answer = await rafael.goto(`${base}/cards/c_support_1`);
  assert.equal(answer.status(), 404);
  assert.ok(!(await rafael.content()).includes("Maria Souza"));
});

test("a move the flow forbids shows the reason", async () => {
  const ana = await logIn("ana@acme.com");
  await ana.goto(`${base}/cards/c_support_1`);
  await ana.selectOption("select[name=status]", "closed");
  await ana.click("form.move button[type=submit]");
  const error = await ana.locator("#error").textContent();
  assert.match(error, /does not allow `new` -> `closed`/);
});

test("dragging a card onto another column moves it, and a forbidden column says why", async () => {
  const phone = await (await browser.newContext()).newPage();
  await customerWrites(phone, "Quero trocar o endereço", "5511987650003", "Dora Dragão");
  // Wide enough for every column of the support board.
  const ana = await logIn("ana@acme.com", { viewport: { width: 1700, height: 900 } });
  await ana.goto(`${base}/pipes/support`);
  const card = () => ana.locator("a.card", { hasText: "Dora Dragão" });
  await card().waitFor({ timeout: 15_000 });
  // `new` -> `closed` is not in the flow: the card stays and the reason shows.
  await card().dragTo(ana.locator(".column[data-status=closed]"));
  await ana.locator("#error:not([hidden])").waitFor({ timeout: 15_000 });
  assert.match(await ana.locator("#error").textContent(), /does not allow `new` -> `closed`/);
  assert.equal(await ana.locator(".column[data-status=new] a.card", { hasText: "Dora Dragão" }).count(), 1);
  // `new` -> `in_progress` is allowed: the board shows it there.
  await card().dragTo(ana.locator(".column[data-status=in_progress]"));
  await ana.locator(".column[data-status=in_progress] a.card", { hasText: "Dora Dragão" }).waitFor({ timeout: 15_000 });
});
