// A generic page driver for the browser tests: one headless Debian chromium (through npm's
// playwright-core; no browser is downloaded), one page, driven by JSON commands on stdin.
//
//   node drive_page.mjs --tools <dir holding node_modules/playwright-core> --url <url>
//                       [--screenshot-dir <dir>]
//
// It opens the url and writes one line, {"ok":true,"ready":true} (or {"ok":false,"error":...}
// and exits 1). Then it reads one JSON command per line and answers each with one JSON line,
// in order; a command's "id", when given, is echoed in its answer. Selectors are CSS (any
// Playwright selector works). Every answer is {"ok":true,...} or {"ok":false,"error":"..."}:
//
//   {"cmd":"wait","selector":s,"timeout_ms":n,"state":st}  -> {"ms": elapsed}
//        st: "attached" (default: the DOM matches, whatever its visibility), "visible",
//        "hidden" or "detached"; timeout_ms defaults to 5000.
//   {"cmd":"text","selector":s}                -> {"text": innerText of the first match}
//   {"cmd":"text","selector":s,"all":true}     -> {"texts": [innerText of every match]}
//   {"cmd":"attr","selector":s,"name":a}       -> {"value": the attribute, null when absent}
//   {"cmd":"count","selector":s}               -> {"count": matches}
//   {"cmd":"visible","selector":s}             -> {"visible": the first match is visible}
//   {"cmd":"fill","selector":s,"value":v}      types v into an input or textarea
//   {"cmd":"select","selector":s,"value":v}    chooses the option of value v in a select
//   {"cmd":"click","selector":s}
//   {"cmd":"goto","url":u}                     loads u anew (by way of about:blank, so a url
//                                              that differs only in its fragment reloads too)
//   {"cmd":"screenshot","path":p}              -> {"path": absolute}; the full page; a
//                                              relative p is under --screenshot-dir
//   {"cmd":"console"}                          -> {"messages": [{type, text, location}],
//                                              "page_errors": [{message, stack}]} so far
//   {"cmd":"quit"}                             closes the browser, answers, exits 0
//
// Page errors (uncaught exceptions and unhandled rejections in the page) are also forwarded as
// they happen: every answer carries "page_errors": [...] with those not yet reported, and each
// is written to stderr as a line {"page_error": ...}, so the caller can fail on them. A
// command that fails (no match within its timeout, a bad selector) answers ok:false and the
// driver goes on; stdin's end closes the browser. Dialogs (alert, confirm, prompt) are accepted
// and listed among the console messages as {"type":"dialog"}.
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

const CHROMIUM = '/usr/bin/chromium';
const DEFAULT_TIMEOUT_MS = 5000;

function parseArgs(argv) {
  const out = { tools: null, url: null, screenshotDir: process.cwd() };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split(/=(.*)/s, 2);
    const value = inline !== undefined ? inline : argv[++i];
    if (name === '--tools') out.tools = value;
    else if (name === '--url') out.url = value;
    else if (name === '--screenshot-dir') out.screenshotDir = value;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!out.tools || !out.url) throw new Error('--tools and --url are required');
  return out;
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const options = (() => {
  try {
    return parseArgs(process.argv.slice(2));
  } catch (e) {
    reply({ ok: false, error: e.message });
    process.exit(2);
  }
})();

let chromium;
try {
  // Resolved from the tools folder (build/browser-tools), not from this file's folder.
  const require = createRequire(path.join(path.resolve(options.tools), 'package.json'));
  ({ chromium } = require('playwright-core'));
} catch (e) {
  reply({ ok: false, error: `playwright-core not found under ${options.tools} ` +
                           `(bash tools/install-browser-tools.sh installs it): ${e.message}` });
  process.exit(1);
}

const messages = [];    // every console message of the page
const pageErrors = [];  // every uncaught exception of the page
let reported = 0;       // pageErrors[0, reported) went out with an answer already

function answer(obj) {
  const fresh = pageErrors.slice(reported);
  reported = pageErrors.length;
  reply(fresh.length ? { ...obj, page_errors: fresh } : obj);
}

// Playwright's messages run on to a call log with terminal colours: the first lines, plain.
function plain(message) {
  return String(message).replace(/\u001b\[[0-9;]*m/g, '').split('\n').slice(0, 6).join('\n')
    .trimEnd();
}

function locate(page, cmd) {
  if (typeof cmd.selector !== 'string' || !cmd.selector) throw new Error('"selector" is required');
  return page.locator(cmd.selector);
}

function timeoutOf(cmd) {
  return Number.isFinite(cmd.timeout_ms) ? cmd.timeout_ms : DEFAULT_TIMEOUT_MS;
}

async function run(page, browser, cmd) {
  switch (cmd.cmd) {
    case 'wait': {
      const started = performance.now();
      await locate(page, cmd).first().waitFor({ state: cmd.state || 'attached',
                                                timeout: timeoutOf(cmd) });
      return { ms: Math.round(performance.now() - started) };
    }
    case 'text': {
      const loc = locate(page, cmd);
      if (cmd.all) return { texts: await loc.allInnerTexts() };
      return { text: await loc.first().innerText({ timeout: timeoutOf(cmd) }) };
    }
    case 'attr':
      if (!cmd.name) throw new Error('"name" is required');
      return { value: await locate(page, cmd).first().getAttribute(cmd.name,
                                                                   { timeout: timeoutOf(cmd) }) };
    case 'count':
      return { count: await locate(page, cmd).count() };
    case 'visible':
      return { visible: await locate(page, cmd).first().isVisible() };
    case 'fill':
      await locate(page, cmd).first().fill(String(cmd.value ?? ''), { timeout: timeoutOf(cmd) });
      return {};
    case 'select':
      await locate(page, cmd).first().selectOption(String(cmd.value ?? ''),
                                                   { timeout: timeoutOf(cmd) });
      return {};
    case 'click':
      await locate(page, cmd).first().click({ timeout: timeoutOf(cmd) });
      return {};
    case 'goto':
      if (!cmd.url) throw new Error('"url" is required');
      await page.goto('about:blank');
      await page.goto(cmd.url, { timeout: timeoutOf(cmd) });
      return {};
    case 'screenshot': {
      if (!cmd.path) throw new Error('"path" is required');
      const file = path.resolve(options.screenshotDir, cmd.path);
      await page.screenshot({ path: file, fullPage: true, timeout: timeoutOf(cmd) });
      return { path: file };
    }
    case 'console':
      return { messages: messages.slice(), page_errors: pageErrors.slice() };
    case 'quit':
      await browser.close();
      return {};
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`);
  }
}

async function main() {
  let browser;
  let page;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
                                      args: ['--no-sandbox'] });  // the tests run as root
    page = await browser.newPage();
    page.on('console', (m) => {
      const loc = m.location();
      messages.push({ type: m.type(), text: m.text(),
                      location: loc.url ? `${loc.url}:${loc.lineNumber}` : '' });
    });
    // alert/confirm/prompt are accepted (a prompt with its default text), and logged.
    page.on('dialog', (d) => {
      messages.push({ type: 'dialog', text: `${d.type()}: ${d.message()}`, location: '' });
      d.accept().catch(() => {});
    });
    page.on('pageerror', (e) => {
      const err = { message: e.message, stack: e.stack || '' };
      pageErrors.push(err);
      process.stderr.write(JSON.stringify({ page_error: err }) + '\n');
    });
    await page.goto(options.url);
  } catch (e) {
    reply({ ok: false,
            error: `could not open ${options.url} in ${CHROMIUM}: ${plain(e.message)}` });
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
  answer({ ok: true, ready: true });

  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      answer({ ok: false, error: `not JSON: ${e.message}` });
      continue;
    }
    const id = cmd.id !== undefined ? { id: cmd.id } : {};
    try {
      answer({ ok: true, ...id, ...(await run(page, browser, cmd)) });
    } catch (e) {
      answer({ ok: false, ...id, error: plain(e.message) });
    }
    if (cmd.cmd === 'quit') process.exit(0);
  }
  await browser.close().catch(() => {});
}

main();
