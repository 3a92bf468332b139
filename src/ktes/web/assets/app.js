// The ktes dashboard: fills the server-rendered page shells from the API. Hand-written, no build step, no
// library (see docs/dashboard.md). Every value from a task is put in the page as text (textContent), never
// as HTML. The API is called with the browser's own credentials (Basic: the browser asks) and, when the
// user signed in with the identity provider (or pasted one), a bearer token kept in sessionStorage.
"use strict";

const TES = "/ga4gh/tes/v1";
const KTES = "/ktes/v1";
const POLL_MS = 1000;
const FINAL = new Set(["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"]);
const STATES = ["QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "CANCELING", "COMPLETE", "EXECUTOR_ERROR",
  "SYSTEM_ERROR", "CANCELED", "PREEMPTED"];
const TOKEN_KEY = "ktes.token";
const EXPIRES_KEY = "ktes.token.expires";  // seconds since the epoch, when the token came from the sign-in
const USER_KEY = "ktes.user";
const PENDING_KEY = "ktes.signin";  // state, nonce and PKCE verifier of a sign-in under way
const SIGNIN_PATH = "/ui/signin";

// --- small helpers -------------------------------------------------------------------------------------

function $(selector) { return document.querySelector(selector); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function setStatus(text) {
  const status = $("#status");
  if (status && status.textContent !== text) status.textContent = text;
}

function stateBadge(state) {
  return el("span", { class: "state state-" + String(state || "UNKNOWN").toLowerCase(), text: state || "UNKNOWN" });
}

function timeText(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString();
}

function timeEl(iso) {
  return iso ? el("time", { datetime: iso, text: timeText(iso) }) : el("span", { text: "" });
}

function durationText(startIso, endIso) {
  if (!startIso) return "";
  const start = Date.parse(startIso);
  const end = endIso ? Date.parse(endIso) : Date.now();
  if (isNaN(start) || isNaN(end)) return "";
  let seconds = Math.max(0, Math.round((end - start) / 1000));
  const hours = Math.floor(seconds / 3600); seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60); seconds -= minutes * 60;
  const text = hours ? `${hours} h ${minutes} min` : minutes ? `${minutes} min ${seconds} s` : `${seconds} s`;
  return endIso ? text : text + " so far";
}

function sizeText(bytes) {
  const n = Number(bytes);
  if (!isFinite(n)) return String(bytes ?? "");
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = n, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${n} bytes`;
}

function attempt(task) { return (task.logs && task.logs.length) ? task.logs[task.logs.length - 1] : {}; }

function ownerOf(task) {
  const meta = attempt(task).metadata || {};
  const tags = task.tags || {};
  return meta.owner || tags["ktes.owner"] || tags.owner || "";
}

// --- the API, with the browser's credentials ---------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

function forgetToken() {
  for (const key of [TOKEN_KEY, EXPIRES_KEY, USER_KEY]) sessionStorage.removeItem(key);
}

// A token from the sign-in that has expired is dropped before it is sent; the user is asked to sign in again.
function tokenExpired() {
  const expires = Number(sessionStorage.getItem(EXPIRES_KEY) || "0");
  return Boolean(sessionStorage.getItem(TOKEN_KEY)) && expires > 0 && Date.now() / 1000 >= expires;
}

async function api(path, options = {}) {
  if (tokenExpired()) {
    forgetToken();
    showSignIn("Your sign-in has expired. Sign in again.");
    throw new ApiError(401, "Your sign-in has expired. Sign in again.");
  }
  const hadToken = Boolean(sessionStorage.getItem(TOKEN_KEY));
  const response = await fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", ...authHeaders(), ...(options.headers || {}) },
  });
  if (response.status === 401 || response.status === 403) {
    let notice = "";
    if (response.status === 401 && hadToken) {
      forgetToken();  // refused (expired, revoked...): of no more use
      notice = "Your sign-in has expired or was refused. Sign in again.";
    }
    showSignIn(notice);
    throw new ApiError(response.status, notice || "Sign in to see this (the server answered " + response.status + ").");
  }
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).msg || message; } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  return response;
}

async function apiJson(path, options) { return (await api(path, options)).json(); }

// --- sign-in: OIDC authorization code + PKCE (the code is exchanged by ktes; see docs/dashboard.md) ---------

let signInConfig = null;

async function loadSignInConfig() {
  if (signInConfig === null) {
    signInConfig = fetch("/ui/signin/config", { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : { oidc: null }))
      .then((body) => body.oidc || null)
      .catch(() => null);
  }
  return signInConfig;
}

function showSignIn(notice) {
  const noticeEl = $("#signin-notice");
  if (noticeEl && notice) { noticeEl.textContent = notice; noticeEl.hidden = false; }
  if ($("#signed-in")) $("#signed-in").hidden = true;
  if ($("#signout")) $("#signout").hidden = !sessionStorage.getItem(TOKEN_KEY);
  loadSignInConfig().then((oidc) => {
    if (oidc) { if ($("#signin-start")) $("#signin-start").hidden = false; }
    else if ($("#signin")) $("#signin").hidden = false;
  });
}

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText() {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return base64url(bytes);
}

function callbackUrl() { return location.origin + SIGNIN_PATH; }

async function startSignIn() {
  const oidc = await loadSignInConfig();
  if (!oidc) { setStatus("Sign-in with an identity provider is not set up on this server."); return; }
  if (!window.crypto || !crypto.subtle) { setStatus("Signing in needs a secure page (https)."); return; }
  const pending = { state: randomText(), nonce: randomText(), verifier: randomText(), back: location.pathname + location.search };
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(pending.verifier));
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(oidc.authorization_endpoint);
  const params = {
    response_type: "code", client_id: oidc.client_id, redirect_uri: callbackUrl(), scope: oidc.scope,
    state: pending.state, nonce: pending.nonce, code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: "S256",
  };
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  location.assign(url.href);
}

// The provider sent the browser back to /ui/signin?code=...&state=...
async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  history.replaceState(null, "", location.pathname);  // the code leaves the address bar and the history
  const message = $("#signin-message");
  function fail(text) {
    message.textContent = text;
    $("#signin-retry").hidden = false;
  }
  let pending = null;
  try { pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null"); } catch (_) { pending = null; }
  sessionStorage.removeItem(PENDING_KEY);  // one answer per sign-in
  if (params.get("error")) {
    fail("The identity provider did not sign you in: " + (params.get("error_description") || params.get("error")));
    return;
  }
  const state = params.get("state") || "";
  if (!pending || !state || state !== pending.state || !params.get("code")) {
    fail("Sign-in refused: this answer does not belong to a sign-in started in this tab. Sign in again.");
    return;
  }
  let answer = null;
  try {
    const response = await fetch("/ui/signin/token", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ code: params.get("code"), code_verifier: pending.verifier, redirect_uri: callbackUrl(), nonce: pending.nonce }),
    });
    answer = await response.json().catch(() => ({}));
    if (!response.ok) { fail(answer.msg || "Sign-in failed (" + response.status + ")."); return; }
  } catch (err) { fail("Sign-in failed: " + err.message); return; }
  sessionStorage.setItem(TOKEN_KEY, answer.token);
  sessionStorage.setItem(EXPIRES_KEY, String(answer.expires_at));
  sessionStorage.setItem(USER_KEY, answer.user);
  const back = typeof pending.back === "string" && pending.back.startsWith("/ui/") && !pending.back.startsWith(SIGNIN_PATH) ? pending.back : "/ui/";
  location.replace(back);  // the callback page does not stay in the history either
}

function setUpSignIn() {
  const form = $("#signin"), signout = $("#signout");
  if (!form) return;
  if (tokenExpired()) { forgetToken(); showSignIn("Your sign-in has expired. Sign in again."); }
  if (sessionStorage.getItem(TOKEN_KEY)) {
    signout.hidden = false;
    const user = sessionStorage.getItem(USER_KEY);
    if (user) { $("#signed-in-user").textContent = user; $("#signed-in").hidden = false; }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#token").value.trim();
    forgetToken();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    location.reload();
  });
  $("#signin-start").addEventListener("click", () => { startSignIn().catch((err) => setStatus("Could not start the sign-in: " + err.message)); });
  signout.addEventListener("click", () => { forgetToken(); location.assign("/ui/"); });
}

// A loop that runs `step` every POLL_MS while the page is visible, never two at once.
function every(step, ms = POLL_MS) {
  let timer = null, stopped = false;
  async function tick() {
    timer = null;
    if (stopped) return;
    if (!document.hidden) {
      try { if ((await step()) === false) { stopped = true; return; } } catch (err) { setStatus(err.message); }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden && !timer && !stopped) tick(); });
  tick();
  return { stop() { stopped = true; if (timer) clearTimeout(timer); }, now() { if (timer) { clearTimeout(timer); tick(); } } };
}

function renderCounts(list, counts, activeState) {
  list.replaceChildren();
  for (const state of STATES) {
    const n = counts[state] || 0;
    const link = el("a", { href: "/ui/?state=" + state, "aria-current": state === activeState ? "true" : null },
      stateBadge(state), el("span", { class: "count", text: n.toLocaleString() }));
    link.setAttribute("aria-label", `${state}: ${n} tasks`);
    list.append(el("li", { "data-state": state }, link));
  }
}

// --- task list ---------------------------------------------------------------------------------------

function listQuery() {
  const params = new URLSearchParams(location.search);
  return {
    state: params.get("state") || "",
    name_prefix: params.get("name_prefix") || "",
    tags: params.get("tags") || "",
    page_token: params.get("page_token") || "",
    page_size: params.get("page_size") || "50",
  };
}

function listApiPath(query) {
  const params = new URLSearchParams({ view: "BASIC", page_size: query.page_size });
  if (query.state) params.set("state", query.state);
  if (query.name_prefix) params.set("name_prefix", query.name_prefix);
  for (const tag of query.tags.split(/\s+/).filter(Boolean)) {
    const at = tag.indexOf("=");
    params.append("tag_key", at < 0 ? tag : tag.slice(0, at));
    params.append("tag_value", at < 0 ? "" : tag.slice(at + 1));
  }
  if (query.page_token) params.set("page_token", query.page_token);
  return TES + "/tasks?" + params.toString();
}

function taskRow(task) {
  const log = attempt(task);
  const name = task.name || "(no name)";
  const row = el("tr", { "data-id": task.id, "data-state": task.state },
    el("td", { "data-label": "State" }, stateBadge(task.state)),
    el("td", { "data-label": "Name" },
      el("a", { href: "/ui/tasks/" + encodeURIComponent(task.id), class: task.name ? "" : "unnamed" }, name),
      el("div", { class: "id", text: task.id })),
    el("td", { class: "owner-col", "data-label": "Owner", hidden: true, text: ownerOf(task) }),
    el("td", { "data-label": "Created" }, timeEl(task.creation_time)),
    el("td", { "data-label": "Duration", text: durationText(log.start_time, log.end_time) }));
  return row;
}

function updateRow(row, task) {
  // In place, so a focused link keeps its focus while the rows update.
  if (row.dataset.state === task.state && FINAL.has(task.state)) return;
  const fresh = taskRow(task);
  if (row.dataset.state !== task.state) {
    row.dataset.state = task.state;
    row.cells[0].replaceChildren(...fresh.cells[0].childNodes);
  }
  for (const i of [2, 4]) if (row.cells[i].textContent !== fresh.cells[i].textContent) row.cells[i].textContent = fresh.cells[i].textContent;
}

function startList() {
  const query = listQuery();
  const form = $("#filters");
  form.elements.state.value = query.state;
  form.elements.name_prefix.value = query.name_prefix;
  form.elements.tags.value = query.tags;
  $("#page-size").value = query.page_size;
  function go(changes) {
    const next = { ...query, ...changes };
    const params = new URLSearchParams();
    for (const key of ["state", "name_prefix", "tags", "page_token"]) if (next[key]) params.set(key, next[key]);
    if (next.page_size !== "50") params.set("page_size", next.page_size);
    location.search = params.toString();
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go({ state: form.elements.state.value, name_prefix: form.elements.name_prefix.value.trim(),
      tags: form.elements.tags.value.trim(), page_token: "" });
  });
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    go({ state: "", name_prefix: "", tags: "", page_token: "" });
  });
  $("#page-size").addEventListener("change", (event) => go({ page_size: event.target.value, page_token: "" }));
  $("#page-first").disabled = !query.page_token;
  $("#page-first").addEventListener("click", () => go({ page_token: "" }));
  let nextToken = "";
  $("#page-next").addEventListener("click", () => { if (nextToken) go({ page_token: nextToken }); });

  const body = $("#tasks tbody");
  const path = listApiPath(query);
  let first = true;
  every(async () => {
    const [page, summary] = await Promise.all([apiJson(path), first || !query.page_token ? apiJson(KTES + "/summary") : null]);
    const tasks = page.tasks || [];
    nextToken = page.next_page_token || "";
    $("#page-next").disabled = !nextToken;
    const rows = new Map([...body.rows].map((row) => [row.dataset.id, row]));
    let previous = null;
    for (const task of tasks) {
      let row = rows.get(task.id);
      if (row) { rows.delete(task.id); updateRow(row, task); }
      else row = taskRow(task);
      if (previous ? previous.nextSibling !== row : body.firstChild !== row) {
        if (previous) previous.after(row); else body.prepend(row);
      }
      previous = row;
    }
    for (const row of rows.values()) row.remove();
    const owners = tasks.some((task) => ownerOf(task));
    for (const cell of document.querySelectorAll(".owner-col")) cell.hidden = !owners;
    if (summary) renderCounts($("#counts"), summary.counts || {}, query.state);
    setStatus(tasks.length ? "" : "No tasks match.");
    first = false;
  });
}

// --- one task ----------------------------------------------------------------------------------------

function failureReason(task) {
  const log = attempt(task);
  const system = log.system_logs || [];
  switch (task.state) {
    case "SYSTEM_ERROR":
    case "PREEMPTED":
      return system.length ? system[system.length - 1] : `The task ended ${task.state}.`;
    case "EXECUTOR_ERROR": {
      const logs = log.logs || [];
      for (let i = 0; i < logs.length; i++) {
        if (logs[i].exit_code && !(task.executors[i] || {}).ignore_error) {
          const image = (task.executors[i] || {}).image || "?";
          const lastLine = (logs[i].stderr || "").trim().split("\n").pop();
          return `Executor ${i} (${image}) exited with code ${logs[i].exit_code}.` + (lastLine ? ` Its last error line: ${lastLine}` : "");
        }
      }
      return system.length ? system[system.length - 1] : "An executor failed.";
    }
    case "CANCELED":
      return "The task was canceled.";
    default:
      return "";
  }
}

function fact(list, term, value) {
  list.append(el("dt", { text: term }), el("dd", {}, value));
}

function submission(task) {
  const copy = JSON.parse(JSON.stringify(task));
  for (const key of ["id", "state", "logs", "creation_time"]) delete copy[key];
  return copy;
}

class OutputView {
  // One executor stream shown in a <pre>, read from the logs endpoint (following while the executor runs).
  constructor(taskId, index, stream, pre) {
    Object.assign(this, { taskId, index, stream, pre, offset: 0, reading: false, done: false });
    this.decoder = new TextDecoder();
  }

  async read(follow) {
    if (this.reading || this.done) return;
    this.reading = true;
    const params = new URLSearchParams({ executor: this.index, stream: this.stream, offset: this.offset, follow });
    try {
      const response = await api(`${KTES}/tasks/${encodeURIComponent(this.taskId)}/logs?${params}`, { headers: { Accept: "text/plain" } });
      const reader = response.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.offset += value.length;
        this.append(this.decoder.decode(value, { stream: true }));
      }
      this.append(this.decoder.decode());
      this.done = true;
      this.pre.classList.add("ended");
    } catch (err) {
      this.pre.dataset.error = err.message;
    } finally {
      this.reading = false;
      this.pre.setAttribute("aria-busy", "false");
    }
  }

  append(text) {
    if (!text) return;
    const atEnd = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 4;
    this.pre.append(document.createTextNode(text));
    this.pre.classList.remove("empty");
    if (atEnd) this.pre.scrollTop = this.pre.scrollHeight;
  }
}

function executorSection(task, index, views) {
  const section = el("section", { class: "executor", id: `executor-${index}`, "aria-labelledby": `executor-${index}-heading` });
  section.append(el("h3", { id: `executor-${index}-heading`, text: `Executor ${index}` }));
  const facts = el("dl", { class: "facts", id: `executor-${index}-facts` });
  section.append(facts);
  const outputs = el("div", { class: "outputs" });
  for (const stream of ["stdout", "stderr"]) {
    const id = `${stream}-${index}`;
    const pre = el("pre", { id, class: "output empty", tabindex: "0", role: "log", "aria-label": `Executor ${index} ${stream}`, "aria-busy": "true" });
    outputs.append(el("div", { class: "stream" }, el("h4", { text: stream }), pre));
    views.set(id, new OutputView(task.id, index, stream, pre));
  }
  section.append(outputs);
  return section;
}

function fillExecutorFacts(task, index) {
  const executor = task.executors[index];
  const log = (attempt(task).logs || [])[index] || {};
  const facts = $(`#executor-${index}-facts`);
  facts.replaceChildren();
  fact(facts, "Image", el("code", { text: executor.image }));
  fact(facts, "Command", el("code", { text: (executor.command || []).map(shellQuote).join(" ") }));
  if (executor.workdir) fact(facts, "Working directory", el("code", { text: executor.workdir }));
  const running = task.state === "RUNNING" && index === (attempt(task).logs || []).length;
  const exit = log.exit_code !== undefined ? String(log.exit_code) + (executor.ignore_error ? " (ignored)" : "") : running ? "running" : "not run";
  fact(facts, "Exit code", exit);
  if (log.start_time) fact(facts, "Started", timeEl(log.start_time));
  if (log.end_time) fact(facts, "Ended", timeEl(log.end_time));
}

function shellQuote(word) {
  return /^[A-Za-z0-9_.,:/=+@%^-]+$/.test(word) ? word : "'" + String(word).replace(/'/g, "'\\''") + "'";
}

function cliCommand(task) {
  const json = JSON.stringify(submission(task), null, 2);
  return "ktes task create - <<'KTES_TASK'\n" + json + "\nKTES_TASK";
}

function startTask() {
  const taskId = document.body.dataset.taskId;
  const views = new Map();
  let task = null, built = false, poll = null;

  $("#cancel").addEventListener("click", () => $("#confirm-cancel").showModal());
  $("#confirm-cancel").addEventListener("close", async () => {
    if ($("#confirm-cancel").returnValue !== "cancel") return;
    try {
      await api(`${TES}/tasks/${encodeURIComponent(taskId)}:cancel`, { method: "POST" });
      setStatus("Cancel requested.");
      poll.now();
    } catch (err) { setStatus("Could not cancel: " + err.message); }
  });
  $("#resubmit").addEventListener("click", async () => {
    if (!task) return;
    try {
      const created = await apiJson(`${TES}/tasks`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(submission(task)),
      });
      location.href = "/ui/tasks/" + encodeURIComponent(created.id);
    } catch (err) { setStatus("Could not submit again: " + err.message); }
  });
  $("#copy-cli").addEventListener("click", async () => {
    if (!task) return;
    const area = $("#cli-command");
    area.value = cliCommand(task);
    area.hidden = false;
    area.select();
    try { await navigator.clipboard.writeText(area.value); setStatus("Command copied."); }
    catch (_) { setStatus("Select the command below and copy it."); }
  });

  function build() {
    const container = $("#executors");
    container.replaceChildren(...task.executors.map((_, index) => executorSection(task, index, views)));
    built = true;
  }

  function render() {
    document.title = `${task.name || task.id} (${task.state}) · ktes`;
    const badge = $("#task-state");
    badge.replaceChildren(stateBadge(task.state));
    const reason = failureReason(task);
    $("#reason").hidden = !reason;
    $("#reason").textContent = reason;
    $("#cancel").hidden = FINAL.has(task.state) || task.state === "CANCELING";
    const log = attempt(task);
    const overview = $("#overview");
    overview.replaceChildren();
    fact(overview, "Name", task.name || "(no name)");
    if (task.description) fact(overview, "Description", task.description);
    const owner = ownerOf(task);
    if (owner) fact(overview, "Owner", owner);
    fact(overview, "Created", timeEl(task.creation_time));
    if (log.start_time) fact(overview, "Started", timeEl(log.start_time));
    if (log.end_time) fact(overview, "Ended", timeEl(log.end_time));
    if (log.start_time) fact(overview, "Duration", durationText(log.start_time, log.end_time));
    const tags = Object.entries(task.tags || {});
    if (tags.length) fact(overview, "Tags", el("span", {}, ...tags.map(([k, v]) => el("code", { class: "tag", text: v ? `${k}=${v}` : k }))));
    const res = task.resources || {};
    const resText = [res.cpu_cores && `${res.cpu_cores} CPU`, res.ram_gb && `${res.ram_gb} GB RAM`, res.disk_gb && `${res.disk_gb} GB disk`].filter(Boolean).join(", ");
    if (resText) fact(overview, "Resources", resText);

    for (let i = 0; i < task.executors.length; i++) fillExecutorFacts(task, i);
    const inputs = $("#inputs tbody");
    inputs.replaceChildren(...(task.inputs || []).map((input) => el("tr", {},
      el("td", {}, el("code", { text: input.path })),
      el("td", { text: input.url || (input.content !== undefined ? `inline content (${sizeText(new TextEncoder().encode(input.content).length)})` : "") }),
      el("td", { text: input.type || "FILE" }))));
    if (!(task.inputs || []).length) inputs.append(el("tr", {}, el("td", { colspan: 3, text: "No inputs." })));
    const sizes = new Map((log.outputs || []).map((out) => [out.url, out.size_bytes]));
    const outputs = $("#outputs tbody");
    const uploaded = (log.outputs || []);
    const rows = uploaded.length
      ? uploaded.map((out) => el("tr", {}, el("td", {}, el("code", { text: out.path })), el("td", { text: out.url }), el("td", { text: sizeText(out.size_bytes) })))
      : (task.outputs || []).map((out) => el("tr", {}, el("td", {}, el("code", { text: out.path })), el("td", { text: out.url }), el("td", { text: sizes.has(out.url) ? sizeText(sizes.get(out.url)) : "not uploaded" })));
    outputs.replaceChildren(...rows);
    if (!rows.length) outputs.append(el("tr", {}, el("td", { colspan: 3, text: "No outputs." })));
    $("#system-logs").replaceChildren(...(log.system_logs || []).map((line) => el("li", { text: line })));
    if (!(log.system_logs || []).length) $("#system-logs").append(el("li", { class: "none", text: "None." }));
    $("#task-json").textContent = JSON.stringify(task, null, 2);
  }

  function readOutputs() {
    const finished = (attempt(task).logs || []).length;
    const active = !FINAL.has(task.state);
    for (let i = 0; i < task.executors.length; i++) {
      const ended = i < finished || !active;
      const running = active && i === finished && (task.state === "RUNNING" || task.state === "INITIALIZING");
      if (!ended && !running) continue;
      for (const stream of ["stdout", "stderr"]) views.get(`${stream}-${i}`).read(!ended);
    }
  }

  poll = every(async () => {
    task = await apiJson(`${TES}/tasks/${encodeURIComponent(taskId)}?view=FULL`);
    if (!built) build();
    render();
    readOutputs();
    setStatus(FINAL.has(task.state) ? "" : "Updating live.");
    return !FINAL.has(task.state);
  });
}

// --- service -----------------------------------------------------------------------------------------

function startService() {
  every(async () => {
    const [summary, info] = await Promise.all([apiJson(KTES + "/summary"), apiJson(TES + "/service-info")]);
    const load = $("#load");
    load.replaceChildren();
    fact(load, "Queue length", String(summary.queue_length));
    const running = (summary.counts.RUNNING || 0) + (summary.counts.INITIALIZING || 0);
    fact(load, "Running now", String(running));
    fact(load, "Tasks stored", Number(summary.total).toLocaleString());
    const tp = summary.throughput || {};
    fact(load, "Recent throughput", tp.per_minute === null || tp.per_minute === undefined
      ? "measuring (open this page a little longer)"
      : `${tp.per_minute} tasks/min (${tp.finished} finished in the last ${Math.round(tp.window_seconds / 60) || 1} min)`);
    renderCounts($("#counts"), summary.counts || {}, "");
    const backend = $("#backend");
    backend.replaceChildren();
    if (summary.backend) {
      fact(backend, "Backend", summary.backend.name);
      for (const [key, value] of Object.entries(summary.backend.capacity || {})) fact(backend, key, String(value));
    } else fact(backend, "Backend", "none in this process (API only)");
    const infoList = $("#service-info");
    infoList.replaceChildren();
    fact(infoList, "Name", `${info.name} ${info.version || ""}`);
    fact(infoList, "Id", info.id);
    if (info.description) fact(infoList, "Description", info.description);
    fact(infoList, "TES", `${info.type.group}:${info.type.artifact} ${info.type.version}`);
    if (info.organization) fact(infoList, "Organization", info.organization.name);
    if (info.environment) fact(infoList, "Environment", info.environment);
    fact(infoList, "Storage", (info.storage || []).join(" "));
    const params = info.tesResources_backend_parameters || [];
    fact(infoList, "Backend parameters", params.length ? params.join(", ") : "none");
    setStatus("");
  }, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "signin") { finishSignIn(); return; }
  setUpSignIn();
  const nav = document.querySelector(`[data-nav="${page === "task" ? "list" : page}"]`);
  if (nav) nav.setAttribute("aria-current", "page");
  if (page === "list") startList();
  else if (page === "task") startTask();
  else if (page === "service") startService();
});
