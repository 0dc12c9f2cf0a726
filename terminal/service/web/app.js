// The cashier screen: sign in, take a payment, follow it live, show its outcome and receipts.
// Plain ES modules, no build step: every state change is a POST to the payment API with the
// session's CSRF token; what the terminal shows arrives as server-sent events (/v1/events).

import { initDevices, showRoll } from "./devices.js";
import { language, setLanguage, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let csrf = "";
let session = null;
let amountMinor = 0;
let activeOrder = null;
let lastTrace = null;
let events = null;

export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRF-Token"] = csrf;
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    const error = (data && data.error) || { code: String(res.status), message: res.statusText };
    if (res.status === 401 && path !== "/ui/login") showLogin();
    throw new ApiFailure(res.status, error.code, error.message);
  }
  return data;
}

function say(id, text) {
  $(id).textContent = text || "";
}

function money(minor) {
  return (minor / 100).toFixed(2);
}

// -- sign in / out ---------------------------------------------------------------------------
function showLogin() {
  session = null;
  if (events) events.close();
  events = null;
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  say("operator", "");
  $("login-operator").focus();
}

async function login(event) {
  event.preventDefault();
  say("login-error", "");
  try {
    const who = await api("POST", "/ui/login", { operator: $("login-operator").value.trim(), pin: $("login-pin").value });
    $("login-pin").value = "";
    await start(who);
  } catch (err) {
    say("login-error", err.message);
  }
}

async function logout() {
  try {
    await api("POST", "/ui/logout", {});
  } finally {
    showLogin();
  }
}

// -- the screen ------------------------------------------------------------------------------
async function start(who) {
  session = who;
  csrf = who.csrf;
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  say("operator", `${who.operator} (${who.role})`);
  const status = await api("GET", "/v1/status");
  showState(status.state);
  if (status.display) showLine(status.display);
  if (status.emulated && status.emulated.length) {
    $("tab-devices").hidden = false;
    initDevices(api, status.emulated); // the panels fill in beside; the cashier need not wait for them
  }
  showTab(currentTab);
  activeOrder = status.order_id;
  showState(status.state);
  if (activeOrder) {
    // A reload mid-sale: the sale where it is (its amount, the state, the last line shown).
    const payment = await api("GET", `/v1/payments/${encodeURIComponent(activeOrder)}`);
    setAmount(payment.amount_minor);
    busy(true);
  } else {
    busy(false);
    const last = localStorage.getItem("opentill.order");
    if (last) {
      try {
        showOutcome(await api("GET", `/v1/payments/${encodeURIComponent(last)}`));
      } catch {
        localStorage.removeItem("opentill.order");
      }
    }
  }
  listen(status.event_id);
}

function listen(after) {
  if (events) events.close();
  // After a reload the page starts from the status it read; EventSource itself sends
  // Last-Event-ID when it reconnects, so nothing is missed either way.
  events = new EventSource(`/v1/events?after=${after || 0}`);
  events.onerror = () => {
    // A stream refused (401: the session ended) is not retried by the browser: sign in again.
    if (events && events.readyState === EventSource.CLOSED) api("GET", "/ui/session").then(() => listen(0), () => {});
  };
  events.addEventListener("display", (e) => showLine(JSON.parse(e.data).line));
  events.addEventListener("state", (e) => {
    const { state } = JSON.parse(e.data);
    showState(state);
    if (["IDLE", "PRINTER_PAUSED"].includes(state) && !$("dev-printer").hidden) showRoll();
  });
  events.addEventListener("payment", (e) => {
    const data = JSON.parse(e.data);
    if (data.status === "done") {
      if (data.order_id === activeOrder) finish(data.order_id);
      if (!$("panel-pending").hidden) loadPending();
    }
  });
  events.addEventListener("receipts", () => lastTrace && showReceipts(lastTrace));
  events.addEventListener("device", (e) => {
    const data = JSON.parse(e.data);
    say("dev-reply", `${data.slot}: ${data.condition} ${data.detail || ""}`);
  });
}

function showState(state) {
  say("state", state);
  document.body.dataset.state = state;
  if (state === "QR_SHOWING") showCode();
  else $("qr-code").hidden = true;
}

function showCode() {
  // Our code for the customer to scan (qr-merchant), drawn by the terminal from its order. The
  // state comes before the wallet has made the code: until then the image is a 404, asked again.
  const code = $("qr-code");
  if (!activeOrder || document.body.dataset.state !== "QR_SHOWING") return;
  code.onerror = () => setTimeout(showCode, 250);
  code.src = `/v1/payments/${encodeURIComponent(activeOrder)}/qr?t=${Date.now()}`;
  code.hidden = false;
}

function showLine(line) {
  say("display", line);
  const item = document.createElement("li");
  item.textContent = line;
  const log = $("display-log");
  log.prepend(item);
  while (log.children.length > 4) log.lastChild.remove();
}

function setAmount(minor) {
  amountMinor = minor;
  say("amount", money(minor));
}

function key(k) {
  if (k === "C") setAmount(0);
  else if (k === "00") setAmount(Math.min(amountMinor * 100, 99999999));
  else setAmount(Math.min(amountMinor * 10 + Number(k), 99999999));
}

function busy(on) {
  for (const b of document.querySelectorAll(".tender, .key")) b.disabled = on;
  $("cancel").disabled = !on;
}

async function pay(tender) {
  say("sale-error", "");
  if (amountMinor <= 0) {
    say("sale-error", t("enter_amount"));
    return;
  }
  const orderId = `WEB-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`.toUpperCase();
  $("outcome").hidden = true;
  $("receipts").hidden = true;
  $("reprint").disabled = true;
  try {
    activeOrder = orderId;
    busy(true);
    const payment = await api("POST", "/v1/payments", { order_id: orderId, amount_minor: amountMinor, tender });
    if (payment.status !== "in_progress") finish(orderId);
  } catch (err) {
    activeOrder = null;
    busy(false);
    say("sale-error", err.message);
  }
}

async function cancel() {
  if (!activeOrder) return;
  try {
    await api("POST", `/v1/payments/${encodeURIComponent(activeOrder)}/cancel`, {});
  } catch (err) {
    say("sale-error", err.message);
  }
}

async function finish(orderId) {
  const payment = await api("GET", `/v1/payments/${encodeURIComponent(orderId)}`);
  activeOrder = null;
  localStorage.setItem("opentill.order", orderId);
  busy(false);
  setAmount(0);
  showOutcome(payment);
}

function showOutcome(payment) {
  const box = $("outcome");
  box.hidden = false;
  box.dataset.status = payment.status;
  const card = payment.card ? ` ${payment.card.masked_pan} (${payment.card.entry_mode})` : "";
  const trace = payment.trace ? ` · ${t("trace")} ${payment.trace}` : "";
  box.textContent = `${t(payment.status)} ¥${payment.amount}${card}${trace}`;
  if (payment.status !== "approved" && payment.response_code) box.textContent += ` · ${payment.response_code}`;
  if (payment.reason && payment.status !== "approved") box.textContent += ` — ${payment.reason}`;
  lastTrace = payment.trace || null;
  if (lastTrace) {
    $("sup-trace").value = lastTrace;
    showReceipts(lastTrace);
  }
}

function showReceipts(trace) {
  const stamp = Date.now();
  $("receipt-merchant").src = `/v1/receipts/${trace}?format=png&copy=merchant&t=${stamp}`;
  $("receipt-cardholder").src = `/v1/receipts/${trace}?format=png&copy=cardholder&t=${stamp}`;
  $("receipts").hidden = false;
  $("reprint").disabled = false;
}

// -- the supervisor's PIN, for one operation --------------------------------------------------
export function supervisorPrompt(reasonKey, action) {
  const dialog = $("pin-dialog");
  $("pin-supervisor").value = session && session.role === "supervisor" ? session.operator : "";
  $("pin-pin").value = "";
  $("pin-reason").value = t(reasonKey);
  say("pin-error", "");
  dialog.hidden = false;
  ($("pin-supervisor").value ? $("pin-pin") : $("pin-supervisor")).focus();
  return new Promise((resolve) => {
    const form = $("pin-form");
    const close = (value) => {
      dialog.hidden = true;
      form.onsubmit = null;
      $("pin-cancel").onclick = null;
      resolve(value);
    };
    form.onsubmit = async (event) => {
      event.preventDefault();
      const who = { supervisor: $("pin-supervisor").value.trim(), pin: $("pin-pin").value, reason: $("pin-reason").value };
      $("pin-ok").disabled = true;
      try {
        close(await action(who));
      } catch (err) {
        $("pin-pin").value = "";
        say("pin-error", err.message);
      } finally {
        $("pin-ok").disabled = false;
      }
    };
    $("pin-cancel").onclick = () => close(null);
  });
}

async function reprint() {
  if (!lastTrace) return;
  const done = await supervisorPrompt("reason_reprint", (who) =>
    api("POST", `/v1/transactions/${lastTrace}/reprint`, { ...who, copy: "cardholder" }));
  if (done) say("sale-error", `${t("reprinted")} ${done.copy} ${(done.problems || []).join("; ")}`);
}

// -- supervisor functions ---------------------------------------------------------------------
function supResult(text) {
  say("sup-error", "");
  say("sup-result", text);
  $("sup-slip").hidden = true;
}

async function showSlip() {
  // The settlement slip as the printer put it on paper (emulator mode: the roll's newest page).
  if ($("dev-printer").hidden) return;
  try {
    const { pages } = await api("GET", "/v1/emulators/printer/pages");
    if (!pages) return;
    $("sup-slip").src = `/v1/emulators/printer/pages/${pages}?t=${Date.now()}`;
    $("sup-slip").hidden = false;
  } catch {
    // no picture: the text above is the settlement
  }
}

async function credit(kind) {
  const trace = $("sup-trace").value.trim();
  if (!trace) return say("sup-error", t("trace"));
  const body = kind === "refund" ? { amount: $("sup-amount").value.trim() } : {};
  const done = await supervisorPrompt(`reason_${kind}`, (who) =>
    api("POST", `/v1/transactions/${encodeURIComponent(trace)}/${kind}`, { ...who, ...body }));
  if (!done) return;
  const txn = done.transaction || {};
  supResult(`${t(kind)}: ${done.outcome} ${done.reason || ""}\n${t("trace")} ${txn.trace || "-"} ¥${money(txn.amount_minor || 0)} ${txn.state || ""}`);
}

async function settle() {
  const done = await supervisorPrompt("reason_settle", (who) => api("POST", "/v1/settlement", who));
  if (!done) return;
  supResult(`${t("settle")}\n${JSON.stringify(done.settlement, null, 2)}`);
  showSlip();
}

// -- operators: every change under the supervisor's own PIN, audited by the till --------------
async function listOperators() {
  try {
    const { operators } = await api("GET", "/v1/operators");
    supResult(`${t("operators")}\n` + operators.map((o) =>
      `${o.id.padEnd(16)} ${o.role.padEnd(11)} ${o.disabled ? "disabled" : o.locked ? "locked" : "ok"}`).join("\n"));
  } catch (err) {
    say("sup-error", err.message);
  }
}

async function changeOperator(action) {
  const id = $("op-id").value.trim();
  if (!id) return say("sup-error", t("op_id"));
  const pin = $("op-pin").value;
  const extra = action === "add" ? { id, role: $("op-role").value, new_pin: pin }
    : action === "reset-pin" ? { new_pin: pin } : {};
  const path = action === "add" ? "/v1/operators" : `/v1/operators/${encodeURIComponent(id)}/${action}`;
  const done = await supervisorPrompt("reason_operators", (who) => api("POST", path, { ...who, ...extra }));
  $("op-pin").value = "";
  if (done) await listOperators();
}

async function report(path, title) {
  try {
    supResult(`${title}\n${JSON.stringify(await api("GET", path), null, 2)}`);
  } catch (err) {
    say("sup-error", err.message);
  }
}

async function loadPending() {
  const body = $("pending-list");
  try {
    const { payments } = await api("GET", "/v1/payments?status=pending_confirmation");
    body.replaceChildren(...payments.map((p) => {
      const row = document.createElement("tr");
      for (const text of [p.order_id, `¥${p.amount}`, t(p.status), p.created_at]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
    if (!payments.length) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 4;
      cell.textContent = t("nothing_pending");
      row.append(cell);
      body.append(row);
    }
  } catch (err) {
    body.textContent = err.message;
  }
}

// On a laptop-sized window the emulated devices stay beside the cashier screen; on the 800x480
// touchscreen they are a tab of their own.
const WIDE = window.matchMedia("(min-width: 1400px)");
let currentTab = "sale";

function showTab(name) {
  const devices = !$("tab-devices").hidden || document.body.classList.contains("wide");
  const wide = WIDE.matches && devices;
  document.body.classList.toggle("wide", wide);
  $("tab-devices").hidden = wide || !devices;
  if (wide && name === "devices") name = "sale";
  currentTab = name;
  for (const button of document.querySelectorAll(".tabs button")) button.classList.toggle("active", button.dataset.tab === name);
  for (const panel of document.querySelectorAll(".panel")) {
    panel.hidden = panel.id !== `panel-${name}` && !(wide && panel.id === "panel-devices");
  }
  if (name === "pending") loadPending();
}

function wire() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("lang").addEventListener("click", () => setLanguage(language() === "zh" ? "en" : "zh"));
  for (const b of document.querySelectorAll(".key")) b.addEventListener("click", () => key(b.dataset.key));
  for (const b of document.querySelectorAll(".tender")) b.addEventListener("click", () => pay(b.dataset.tender));
  for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("cancel").addEventListener("click", cancel);
  $("reprint").addEventListener("click", reprint);
  $("sup-void").addEventListener("click", () => credit("void"));
  $("sup-refund").addEventListener("click", () => credit("refund"));
  $("sup-settle").addEventListener("click", settle);
  $("sup-exceptions").addEventListener("click", () => report("/v1/reports/exceptions", t("exceptions")));
  $("sup-journal").addEventListener("click", () => report("/v1/transactions", t("journal")));
  $("pending-refresh").addEventListener("click", loadPending);
  $("sup-cancellations").addEventListener("click", () => report("/v1/reports/cancellations", t("cancellations")));
  $("op-list").addEventListener("click", listOperators);
  $("op-add").addEventListener("click", () => changeOperator("add"));
  $("op-disable").addEventListener("click", () => changeOperator("disable"));
  $("op-enable").addEventListener("click", () => changeOperator("enable"));
  $("op-reset").addEventListener("click", () => changeOperator("reset-pin"));
  WIDE.addEventListener("change", () => showTab(currentTab));
}

async function boot() {
  setLanguage(language());
  wire();
  try {
    await start(await api("GET", "/ui/session"));
  } catch {
    showLogin();
  }
  document.body.dataset.ready = "1";
  performance.mark("opentill-ready"); // interactive: signed in, status shown, events streaming (bench/web.py)
}

boot();
