// Takes the README's screenshot of a board: starts `serve --demo`, plays a
// few customers in the phone simulator, an agent answers one, and saves
// docs/board.png. Run: SWITCHBOARD_BIN=… node tests/browser/screenshot.mjs

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bin = process.env.SWITCHBOARD_BIN ?? join(root, "target", "debug", "switchboard");
const dir = mkdtempSync(join(tmpdir(), "switchboard-shot-"));
const server = spawn(bin, ["serve", "--demo"], {
  cwd: root,
  env: { ...process.env, SWITCHBOARD_DATABASE_URL: `sqlite://${join(dir, "demo.db")}`, SWITCHBOARD_LISTEN: "127.0.0.1:0", RUST_LOG: "warn" },
  stdio: ["ignore", "ignore", "pipe"],
});
const base = await new Promise((resolve) => {
  createInterface({ input: server.stderr }).on("line", (line) => {
    const m = line.match(/^Switchboard is listening on (http:\/\/\S+)/);
    if (m) resolve(m[1]);
  });
});
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
const phone = await (await browser.newContext()).newPage();
const customers = [
  ["5511987650001", "Maria Souza", "Oi, quero um reembolso do pedido 8812"],
  ["5511987650002", "João Lima", "Meu pedido 7731 ainda não chegou"],
  ["5521987650003", "Carla Dias", "Vocês entregam no sábado?"],
  ["5511987650004", "Pedro Alves", "Como troco o endereço de entrega?"],
];
for (const [from, name, text] of customers) {
  await phone.goto(`${base}/demo/phone?from=${from}&name=${encodeURIComponent(name)}&to=551140001000`);
  await phone.fill("textarea[name=text]", text);
  await Promise.all([phone.waitForURL(/\/demo\/phone\?/), phone.click("form.phone-form button[type=submit]")]);
}
const agent = await (await browser.newContext({ viewport: { width: 1280, height: 640 } })).newPage();
await agent.goto(`${base}/login`);
await agent.fill("input[name=email]", "admin@acme.com");
await agent.fill("input[name=password]", "switchboard-demo");
await Promise.all([agent.waitForURL(`${base}/`), agent.click("button[type=submit]")]);
await agent.goto(`${base}/cards/c_support_2`);
await agent.fill("textarea[name=text]", "Olá João, vou verificar agora.");
await Promise.all([agent.waitForURL(/\/cards\//), agent.click("form.reply button[type=submit]")]);
await agent.goto(`${base}/pipes/support`);
await agent.screenshot({ path: join(root, "docs", "board.png") });
await browser.close();
server.kill("SIGTERM");
rmSync(dir, { recursive: true, force: true });
console.log("wrote docs/board.png");
