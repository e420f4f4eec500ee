// Browser tests of the web console, in Debian's Chromium driven by
// playwright-core (no downloaded browser). TestBrowser (browser_test.go)
// starts the orchestrator and a worker and runs this script with:
//   BASE           the orchestrator's URL
//   ALICE, BOB     client tokens; ADMIN the admin token
//   REGISTER_WORKER a file to create when a worker ("live-worker") is to register
//   CHROMIUM       the browser's executable
//   PLAYWRIGHT     the folder install.sh filled
//   SCREENSHOTS    optional: a folder to save screenshots of the main pages in
"use strict";
const assert = require("node:assert/strict");
const path = require("node:path");
const { chromium } = require(path.join(process.env.PLAYWRIGHT, "node_modules", "playwright-core"));

const base = process.env.BASE;
const tokens = { alice: process.env.ALICE, bob: process.env.BOB, admin: process.env.ADMIN };

async function api(method, p, token, body) {
  const resp = await fetch(base + p, {
    method,
    headers: { "X-Client-Token": token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  return { status: resp.status, json: text ? JSON.parse(text) : null };
}

async function create(token, endpoint, data) {
  const r = await api("POST", "/api/v1/jobs/" + endpoint, token, { initial_data: data || {} });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  return r.json.job_id;
}

async function status(token, id) {
  const r = await api("GET", "/api/v1/jobs/" + id, token);
  assert.equal(r.status, 200);
  return r.json.status;
}

async function until(what, fn) {
  for (let i = 0; i < 200; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("never: " + what);
}

async function login(browser, token, options) {
  const context = await browser.newContext(Object.assign({ viewport: { width: 1280, height: 800 } }, options || {}));
  const page = await context.newPage();
  await page.goto(base + "/");
  assert.match(page.url(), /\/console\/login/);
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForURL(/\/console\/jobs$/);
  watchCSP(page);
  return page;
}

// bulkByFilter waits for alice's jobs ids to be in status, opens the jobs
// list of filter, starts its bulk action (cancel, retry), checks that the
// confirmation counts the jobs, confirms, and checks the outcome.
async function bulkByFilter(ids, status_, filter, action, done) {
  for (const id of ids) await until(id + " is " + status_, async () => (await status(tokens.alice, id)) === status_);
  await alice.goto(base + "/console/jobs?" + filter);
  await alice.click(`form[action="/console/jobs/${action}"] button`);
  assert.equal(await alice.locator("#bulk-count").innerText(), String(ids.length));
  await alice.click(".confirm button[type=submit]");
  await alice.waitForLoadState();
  assert.match(await alice.locator("main").innerText(), done);
}

const steps = [];
function step(name, fn) { steps.push({ name, fn }); }

let browser, alice, admin, aliceJob, bobJob;
// Content-Security-Policy violations the pages report (there must be none).
const cspErrors = [];
function watchCSP(page) {
  page.on("console", (msg) => {
    if (/Content Security Policy|Content-Security-Policy/i.test(msg.text())) cspErrors.push(page.url() + ": " + msg.text());
  });
}

step("a client token sees only its own jobs", async () => {
  aliceJob = await create(tokens.alice, "review");
  bobJob = await create(tokens.bob, "review");
  alice = await login(browser, tokens.alice);
  await alice.reload();
  assert.equal(await alice.locator(`a[href="/console/jobs/${aliceJob}"]`).count(), 1, "alice's job is listed");
  assert.equal(await alice.locator(`a[href="/console/jobs/${bobJob}"]`).count(), 0, "bob's job is not listed");
  assert.match(await alice.locator("header").innerText(), /client alice/);
});

step("the counts by status follow new jobs live, without reload", async () => {
  await alice.goto(base + "/console/jobs");
  const waiting = alice.locator('nav.counts a.count[href$="status=waiting_for_human"] b');
  await waiting.waitFor();
  const before = Number(await waiting.innerText());
  await alice.evaluate(() => { window.notReloaded = true; });
  await until("the live stream is open", async () => alice.evaluate(() => document.body.classList.contains("live")));
  const id = await create(tokens.alice, "review");
  await until(id + " waits", async () => (await status(tokens.alice, id)) === "waiting_for_human");
  await until("the count rises", async () => Number(await waiting.innerText()) === before + 1);
  const r = await api("POST", "/api/v1/jobs/" + id + "/cancel", tokens.alice);
  assert.ok(r.status < 300, JSON.stringify(r.json));
  await until("the count falls", async () => Number(await waiting.innerText()) === before);
  assert.equal(await alice.evaluate(() => window.notReloaded), true, "the page was reloaded");
});

step("another client's job id gives the not-found page", async () => {
  const resp = await alice.goto(base + "/console/jobs/" + bobJob);
  assert.equal(resp.status(), 404);
  assert.equal(await alice.locator("h1").innerText(), "Not found");
  assert.equal(await status(tokens.bob, bobJob), "waiting_for_human");
});

step("an action without the CSRF token is refused", async () => {
  await alice.goto(base + "/console/jobs/" + aliceJob);
  const code = await alice.evaluate(async (id) => {
    const r = await fetch("/console/jobs/" + id + "/cancel", {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "",
    });
    return r.status;
  }, aliceJob);
  assert.equal(code, 403);
  assert.equal(await status(tokens.alice, aliceJob), "waiting_for_human");
});

step("approve a waiting job from its page", async () => {
  await alice.goto(base + "/console/jobs/" + aliceJob);
  assert.match(await alice.locator(".approval").innerText(), /ship it\?/);
  await alice.click('button[name=decision][value=approved]');
  await alice.waitForURL(base + "/console/jobs/" + aliceJob);
  await alice.locator('#job-status[data-status="finished"]').waitFor({ timeout: 20000 });
  assert.equal(await status(tokens.alice, aliceJob), "finished");
});

step("a job created through the API reaches finished on its page, live, without reload", async () => {
  const id = await create(tokens.alice, "work", { ms: 1500 });
  await alice.goto(base + "/console/jobs/" + id);
  await alice.evaluate(() => { window.notReloaded = true; });
  const first = await alice.locator("#job-status").getAttribute("data-status");
  assert.notEqual(first, "finished", "the job finished before its page opened; the step shows nothing");
  await alice.locator('#job-status[data-status="finished"]').waitFor({ timeout: 20000 });
  assert.equal(await alice.evaluate(() => window.notReloaded), true, "the page was reloaded");
  await alice.locator("text=task_result").first().waitFor();
});

step("cancel in bulk by filter, after a confirmation that counts the jobs", async () => {
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await create(tokens.alice, "review"));
  await bulkByFilter(ids, "waiting_for_human", "status=waiting_for_human&blueprint=review", "cancel", /3 jobs cancelled/);
  for (const id of ids) assert.equal(await status(tokens.alice, id), "cancelled");
  assert.equal(await status(tokens.bob, bobJob), "waiting_for_human", "bob's job is untouched");
});

step("retry a failed job from its page and watch it run again", async () => {
  const id = await create(tokens.alice, "work", { fail_once: true });
  await until(id + " fails", async () => (await status(tokens.alice, id)) === "failed");
  await alice.goto(base + "/console/jobs/" + id);
  assert.equal(await alice.locator("#job-status").getAttribute("data-status"), "failed");
  await alice.click("form.retry button");
  await alice.waitForURL(base + "/console/jobs/" + id);
  await alice.locator('#job-status[data-status="finished"]').waitFor({ timeout: 20000 });
  await alice.locator("text=job_retried").first().waitFor();
  assert.match(await alice.locator(".path").innerText(), /start → failed → start → finished/);
  assert.equal(await status(tokens.alice, id), "finished");
});

step("retry in bulk by filter, after a confirmation that counts the jobs", async () => {
  const ids = [];
  for (let i = 0; i < 2; i++) ids.push(await create(tokens.alice, "work", { fail_once: true }));
  await bulkByFilter(ids, "failed", "status=failed&blueprint=work", "retry", /2 jobs retried/);
  for (const id of ids) await until(id + " finishes", async () => (await status(tokens.alice, id)) === "finished");
});

step("a worker's reputation falls after failures", async () => {
  const reputation = async () => {
    await alice.goto(base + "/console/workers");
    return Number(await alice.locator('tr[data-worker="echo-worker"] .reputation').innerText());
  };
  const before = await reputation();
  for (let i = 0; i < 2; i++) {
    const id = await create(tokens.alice, "work", { fail: true });
    await until(id + " fails", async () => (await status(tokens.alice, id)) === "failed");
  }
  const after = await reputation();
  assert.ok(after < before, `reputation ${before} -> ${after}`);
});

step("the job page shows the blueprint graph as SVG, the current state highlighted", async () => {
  const id = await create(tokens.alice, "review");
  await until(id + " waits", async () => (await status(tokens.alice, id)) === "waiting_for_human");
  await alice.goto(base + "/console/jobs/" + id);
  const current = alice.locator("#graph svg g.node.current");
  await current.waitFor();
  assert.equal(await current.count(), 1);
  assert.equal(await current.locator("title").textContent(), "start");
  assert.ok((await alice.locator("#graph svg g.node").count()) >= 3, "every state is drawn");
  await alice.click('button[name=decision][value=approved]');
  await alice.locator('#job-status[data-status="finished"]').waitFor({ timeout: 20000 });
  await until("the graph follows the job", async () =>
    (await alice.locator("#graph svg g.node.current title").textContent()) === "finished");
  assert.equal(await alice.locator("#graph svg g.node.visited title").textContent(), "start");
  assert.ok((await alice.locator("#graph svg g.edge.taken").count()) >= 1, "the transition taken is marked");
  // The theme's colours: the current state's outline is the accent colour.
  const stroke = await alice.locator("#graph svg g.node.current path").first().evaluate((el) => getComputedStyle(el).stroke);
  const accent = await alice.evaluate(() => getComputedStyle(document.body).getPropertyValue("--accent").trim());
  assert.ok(stroke !== "rgb(0, 0, 0)" && accent !== "", `current state stroke ${stroke}, accent ${accent}`);
});

step("a chart renders on the queues page", async () => {
  admin = await login(browser, tokens.admin);
  await admin.goto(base + "/console/queues");
  await admin.locator("#jobs-chart canvas").waitFor();
  assert.match(await admin.locator("#jobs-chart .u-legend").innerText(), /created[\s\S]*finished[\s\S]*failed/);
  assert.equal(await admin.locator("#jobs-chart").getAttribute("data-points"), "60");
  await admin.locator("#latency-chart canvas").waitFor();
  // The jobs of the steps before reach the figures (written every 2 s).
  await until("the chart counts the jobs", async () => {
    await admin.goto(base + "/console/queues");
    return !/^Every orchestrator of the deployment: 0 jobs created/.test(await admin.locator("#hour-totals").innerText());
  });
});

step("the workers page updates live when a worker registers", async () => {
  await admin.goto(base + "/console/workers");
  await admin.locator('tr[data-worker="echo-worker"]').waitFor();
  assert.equal(await admin.locator('tr[data-worker="live-worker"]').count(), 0);
  await admin.evaluate(() => { window.notReloaded = true; });
  await until("the live stream is open", async () => admin.evaluate(() => document.body.classList.contains("live")));
  require("node:fs").writeFileSync(process.env.REGISTER_WORKER, "");
  await admin.locator('tr[data-worker="live-worker"]').waitFor({ timeout: 15000 });
  assert.equal(await admin.evaluate(() => window.notReloaded), true, "the page was reloaded");
});

step("a worker's page charts its reputation history", async () => {
  await alice.goto(base + "/console/workers/echo-worker");
  await alice.locator("#reputation-chart canvas").waitFor();
  assert.ok(Number(await alice.locator("#reputation-chart").getAttribute("data-points")) >= 2, "the failures' changes are recorded");
  assert.ok(Number(await alice.locator(".samples tbody tr td:nth-child(2)").first().innerText()) < 1);
});

step("at phone width (390 px) no page is wider than the screen", async () => {
  const fan = await create(tokens.alice, "fan", { ms: 10 });
  await until(fan + " ends", async () => (await status(tokens.alice, fan)) === "finished");
  const phone = await login(browser, tokens.admin, { viewport: { width: 390, height: 844 } });
  const pages = ["/console/jobs", "/console/jobs/" + fan, "/console/workers", "/console/workers/echo-worker",
    "/console/queues", "/console/schedules", "/console/quarantine"];
  const wide = [];
  for (const p of pages) {
    await phone.goto(base + p);
    await phone.waitForLoadState("networkidle");
    const w = await phone.evaluate(() => document.documentElement.scrollWidth);
    if (w > 390) wide.push(p + ": " + w + " px");
  }
  assert.deepEqual(wide, [], "pages wider than 390 px");
  await phone.context().close();
});

step("no page broke the Content-Security-Policy", async () => {
  assert.deepEqual(cspErrors, []);
});

step("screenshots", async () => {
  const dir = process.env.SCREENSHOTS;
  if (!dir) return;
  const fanned = await create(tokens.alice, "work", { ms: 10 });
  await until("the screenshot job ends", async () => (await status(tokens.alice, fanned)) === "finished");
  const stuck = await create(tokens.alice, "strict", { fail: true });
  await until("the screenshot job is quarantined", async () => (await status(tokens.alice, stuck)) === "quarantined");
  await admin.goto(base + "/console/jobs");
  await admin.locator("nav.counts").waitFor();
  await admin.screenshot({ path: path.join(dir, "jobs.png"), fullPage: true });
  await admin.goto(base + "/console/jobs/" + fanned);
  await admin.screenshot({ path: path.join(dir, "job.png"), fullPage: true });
  await admin.goto(base + "/console/workers");
  await admin.screenshot({ path: path.join(dir, "workers.png") });
  await admin.goto(base + "/console/quarantine");
  await admin.screenshot({ path: path.join(dir, "quarantine.png") });
  await admin.goto(base + "/console/queues");
  await admin.locator("#jobs-chart canvas").waitFor();
  await admin.screenshot({ path: path.join(dir, "queues.png"), fullPage: true });
  await admin.goto(base + "/console/workers/echo-worker");
  await admin.locator("#reputation-chart canvas").waitFor();
  await admin.screenshot({ path: path.join(dir, "worker.png"), fullPage: true });
  const phone = await login(browser, tokens.admin, { viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  await phone.goto(base + "/console/jobs");
  await phone.locator("nav.counts").waitFor();
  await phone.screenshot({ path: path.join(dir, "jobs-phone-dark.png") });
  await phone.goto(base + "/console/jobs/" + fanned);
  await phone.locator("#graph svg").waitFor();
  await phone.screenshot({ path: path.join(dir, "job-phone-dark.png"), fullPage: true });
});

(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  let failed = 0;
  try {
    for (const s of steps) {
      try {
        await s.fn();
        console.log("ok   " + s.name);
      } catch (err) {
        failed++;
        console.log("FAIL " + s.name + "\n" + (err && err.stack ? err.stack : err));
      }
    }
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
})();
