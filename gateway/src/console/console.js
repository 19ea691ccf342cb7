// The gateway's own GraphQL console. Everything it needs is served by the gateway
// itself, so it works offline, in air-gapped networks and under the strict content
// security policy the page is sent with.
"use strict";

(() => {
  const endpoint = window.location.pathname;
  const $ = (id) => document.getElementById(id);
  const queryBox = $("query");
  const variablesBox = $("variables");
  const headersBox = $("headers");
  const result = $("result");
  const status = $("status");
  const operationSelect = $("operation");
  const runButton = $("run");
  const stopButton = $("stop");

  const EXAMPLE = `# The shop's GraphQL API. Ctrl+Enter (or Run) runs the operation under the cursor;
# a subscription stays open until you stop it. "Schema" lists every type and field.
#
# To act as a user, run Login below with an account's e-mail and password (the demo
# shop's accounts are listed in the README). The console puts the returned token in
# Headers as {"Authorization": "Bearer ..."} for the operations that follow.

query Products {
  products(first: 5, sort: NEWEST) {
    totalCount
    nodes {
      id
      name
      price { amount currency }
      inStock
      onlyLeft
    }
  }
}

mutation Login {
  login(email: "customer@demo.shop", password: "shop-demo-2026") {
    accessToken
    user { id name roles }
  }
}

subscription MyOrders {
  myOrderUpdates { order { id number status } }
}
`;

  // ---- state kept between visits ----------------------------------------------------
  const STORE = "shop-console-v1";
  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE) || "null");
      if (saved && typeof saved.query === "string") return saved;
    } catch (_) { /* storage disabled or corrupt: start fresh */ }
    return { query: EXAMPLE, variables: "{}", headers: "{}" };
  }
  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify({
        query: queryBox.value, variables: variablesBox.value, headers: headersBox.value,
      }));
    } catch (_) { /* not fatal: the console works without storage */ }
  }
  const initial = load();
  queryBox.value = initial.query;
  variablesBox.value = initial.variables;
  headersBox.value = initial.headers;

  // ---- which operations the document holds ------------------------------------------
  // Blanks strings and comments so braces and keywords inside them are not counted.
  function blankNoise(text) {
    return text
      .replace(/"""[\s\S]*?"""/g, (m) => " ".repeat(m.length))
      .replace(/"(?:[^"\\\n]|\\.)*"/g, (m) => " ".repeat(m.length))
      .replace(/#[^\n]*/g, (m) => " ".repeat(m.length));
  }
  function operations(text) {
    const clean = blankNoise(text);
    const found = [];
    let depth = 0;
    const keyword = /\b(query|mutation|subscription|fragment)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/y;
    for (let i = 0; i < clean.length; i++) {
      const c = clean[i];
      if (c === "{") {
        if (depth === 0) {
          const last = found[found.length - 1];
          if (last && last.bodyStart === undefined) last.bodyStart = i;
          else found.push({ type: "query", name: null, start: i, bodyStart: i });
        }
        depth++;
      } else if (c === "}") {
        depth = Math.max(0, depth - 1);
        if (depth === 0 && found.length) found[found.length - 1].end = i;
      } else if (depth === 0 && /[a-z]/.test(c) && (i === 0 || !/[_0-9A-Za-z]/.test(clean[i - 1]))) {
        keyword.lastIndex = i;
        const m = keyword.exec(clean);
        if (m) {
          found.push({ type: m[1], name: m[2] || null, start: i });
          i = keyword.lastIndex - 1;
        }
      }
    }
    return found.filter((o) => o.type !== "fragment");
  }
  function refreshOperations() {
    const ops = operations(queryBox.value);
    const named = ops.filter((o) => o.name);
    const previous = operationSelect.value;
    operationSelect.replaceChildren(...named.map((o) => {
      const option = document.createElement("option");
      option.value = o.name;
      option.textContent = `${o.type} ${o.name}`;
      return option;
    }));
    operationSelect.hidden = named.length < 2;
    if (named.some((o) => o.name === previous)) operationSelect.value = previous;
    return ops;
  }
  // The operation under the cursor, else the one picked in the list, else the only one.
  function chosenOperation() {
    const ops = refreshOperations();
    if (ops.length <= 1) return ops[0] || { type: "query", name: null };
    const at = queryBox.selectionStart;
    const under = ops.find((o) => o.name && o.start <= at && at <= (o.end ?? Infinity));
    if (under) {
      operationSelect.value = under.name;
      return under;
    }
    return ops.find((o) => o.name === operationSelect.value) || ops[0];
  }

  // ---- running ----------------------------------------------------------------------
  function parseJson(box, what) {
    const text = box.value.trim();
    if (!text) return {};
    let value;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new Error(`${what} is not valid JSON: ${e.message}`);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new Error(`${what} must be a JSON object`);
    }
    return value;
  }
  function show(value, failed) {
    result.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    result.classList.toggle("failed", Boolean(failed));
  }
  function request() {
    const op = chosenOperation();
    const body = { query: queryBox.value, variables: parseJson(variablesBox, "Variables") };
    if (op.name) body.operationName = op.name;
    return { op, body, headers: parseJson(headersBox, "Headers") };
  }

  // The request to send, or null with the reason shown (bad variables or headers).
  function requestOrShow() {
    try {
      return request();
    } catch (e) {
      show(e.message, true);
      return null;
    }
  }

  // A successful login anywhere in the answer signs the console in.
  function adoptToken(response) {
    const data = response && response.data;
    if (!data || typeof data !== "object") return;
    for (const value of Object.values(data)) {
      if (value && typeof value.accessToken === "string") {
        const headers = (() => {
          try { return parseJson(headersBox, "Headers"); } catch (_) { return {}; }
        })();
        headers.Authorization = `Bearer ${value.accessToken}`;
        headersBox.value = JSON.stringify(headers, null, 2);
        save();
        status.textContent += " · signed in (token put in Headers)";
        return;
      }
    }
  }

  let socket = null;
  function stopSubscription(note) {
    if (socket) {
      const s = socket;
      socket = null;
      if (s.readyState === WebSocket.OPEN) {
        s.send(JSON.stringify({ id: "1", type: "complete" }));
        s.close(1000, "stopped");
      } else {
        s.close();
      }
    }
    stopButton.hidden = true;
    if (note) status.textContent = note;
  }

  async function run() {
    save();
    const req = requestOrShow();
    if (!req) return;
    stopSubscription();
    if (req.op.type === "subscription") {
      subscribe(req);
      return;
    }
    status.textContent = "running…";
    const started = performance.now();
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: Object.assign(
          { "content-type": "application/json", accept: "application/graphql-response+json, application/json" },
          req.headers,
        ),
        body: JSON.stringify(req.body),
      });
      const text = await response.text();
      const ms = Math.round(performance.now() - started);
      let parsed = null;
      try { parsed = JSON.parse(text); } catch (_) { /* shown as text below */ }
      status.textContent = `HTTP ${response.status} · ${ms} ms · ${text.length} bytes`;
      show(parsed ?? text, !response.ok || (parsed && parsed.errors));
      if (parsed) adoptToken(parsed);
    } catch (e) {
      status.textContent = "failed";
      show(`The request did not reach the gateway: ${e.message}`, true);
    }
  }

  function subscribe(req) {
    const url = new URL(endpoint, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const events = [];
    const s = new WebSocket(url, "graphql-transport-ws");
    socket = s;
    stopButton.hidden = false;
    status.textContent = "connecting…";
    show("");
    s.onopen = () => s.send(JSON.stringify({ type: "connection_init", payload: req.headers }));
    s.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (_) { return; }
      switch (msg.type) {
        case "connection_ack":
          status.textContent = "subscribed · waiting for events";
          s.send(JSON.stringify({ id: "1", type: "subscribe", payload: req.body }));
          break;
        case "ping":
          s.send(JSON.stringify({ type: "pong" }));
          break;
        case "next":
          events.unshift({ at: new Date().toLocaleTimeString(), ...msg.payload });
          status.textContent = `subscribed · ${events.length} event${events.length === 1 ? "" : "s"}`;
          show(events);
          break;
        case "error":
          show({ errors: msg.payload }, true);
          stopSubscription("refused");
          break;
        case "complete":
          stopSubscription(`completed · ${events.length} event${events.length === 1 ? "" : "s"}`);
          break;
        default:
          break;
      }
    };
    s.onclose = (event) => {
      if (socket !== s) return;
      socket = null;
      stopButton.hidden = true;
      status.textContent = `closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`;
    };
  }

  function curl() {
    const req = requestOrShow();
    if (!req) return;
    const quote = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;
    const parts = [`curl ${quote(new URL(endpoint, window.location.href))}`,
      "-H 'content-type: application/json'"];
    for (const [k, v] of Object.entries(req.headers)) parts.push(`-H ${quote(`${k}: ${v}`)}`);
    parts.push(`--data ${quote(JSON.stringify(req.body))}`);
    const command = parts.join(" \\\n  ");
    const done = () => { status.textContent = "curl command copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(command).then(done, () => show(command));
    } else {
      show(command);
    }
  }

  // ---- schema browser ---------------------------------------------------------------
  const INTROSPECTION = `query ConsoleSchema {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types {
      kind name description
      fields(includeDeprecated: true) {
        name description isDeprecated deprecationReason
        args { name description defaultValue type { ...Ref } }
        type { ...Ref }
      }
      inputFields { name description defaultValue type { ...Ref } }
      enumValues(includeDeprecated: true) { name description isDeprecated }
      possibleTypes { name }
    }
  }
}
fragment Ref on __Type {
  kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
}`;
  let schema = null;
  const docsBody = $("docs-body");
  const docsPath = $("docs-path");
  const docsFilter = $("docs-filter");

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function typeLink(name) {
    const a = el("a", name, "type");
    a.href = "#";
    a.addEventListener("click", (e) => { e.preventDefault(); showType(name); });
    return a;
  }
  // Renders `[Product!]!` with the named type as a link.
  function typeRef(ref) {
    const span = el("span");
    if (ref.kind === "NON_NULL") {
      span.append(typeRef(ref.ofType), "!");
    } else if (ref.kind === "LIST") {
      span.append("[", typeRef(ref.ofType), "]");
    } else {
      span.append(typeLink(ref.name));
    }
    return span;
  }
  function describe(parent, text) {
    if (text) parent.append(el("p", text));
  }
  function showRoots() {
    docsPath.replaceChildren();
    docsBody.replaceChildren();
    const s = schema.__schema;
    for (const root of [s.queryType, s.mutationType, s.subscriptionType]) {
      if (!root) continue;
      const h = el("h3");
      h.append(typeLink(root.name));
      docsBody.append(h);
    }
    docsBody.append(el("h3", "All types"));
    for (const t of s.types.filter((t) => !t.name.startsWith("__")).sort((a, b) => a.name.localeCompare(b.name))) {
      const line = el("div", undefined, "field");
      line.append(typeLink(t.name), ` ${t.kind.toLowerCase().replace("_", " ")}`);
      docsBody.append(line);
    }
  }
  function fieldLine(f, withArgs) {
    const line = el("div", undefined, "field");
    const name = el("code", f.name, f.isDeprecated ? "deprecated" : undefined);
    line.append(name, ": ", typeRef(f.type));
    if (f.defaultValue != null) line.append(` = ${f.defaultValue}`);
    if (withArgs && f.args && f.args.length) {
      const args = el("div", undefined, "args");
      for (const a of f.args) {
        const arg = el("div");
        arg.append(el("code", a.name), ": ", typeRef(a.type));
        if (a.defaultValue != null) arg.append(` = ${a.defaultValue}`);
        args.append(arg);
      }
      line.append(args);
    }
    describe(line, f.description);
    if (f.isDeprecated) describe(line, `Deprecated: ${f.deprecationReason || "no reason given"}`);
    return line;
  }
  function showType(name) {
    const t = schema.__schema.types.find((x) => x.name === name);
    if (!t) return;
    const back = typeLink("Schema");
    back.onclick = (e) => { e.preventDefault(); showRoots(); };
    docsPath.replaceChildren(back, ` › ${name}`);
    docsBody.replaceChildren(el("h3", `${t.name} (${t.kind.toLowerCase().replace("_", " ")})`));
    describe(docsBody, t.description);
    for (const f of t.fields || []) docsBody.append(fieldLine(f, true));
    for (const f of t.inputFields || []) docsBody.append(fieldLine(f, false));
    for (const v of t.enumValues || []) {
      const line = el("div", undefined, "field");
      line.append(el("code", v.name, v.isDeprecated ? "deprecated" : undefined));
      describe(line, v.description);
      docsBody.append(line);
    }
    if (t.possibleTypes && t.possibleTypes.length) {
      const line = el("div", "One of: ", "field");
      t.possibleTypes.forEach((p, i) => line.append(i ? ", " : "", typeLink(p.name)));
      docsBody.append(line);
    }
  }
  function filterDocs() {
    const term = docsFilter.value.trim().toLowerCase();
    if (!schema) return;
    if (!term) { showRoots(); return; }
    docsPath.replaceChildren(`Matching “${docsFilter.value.trim()}”`);
    docsBody.replaceChildren();
    for (const t of schema.__schema.types) {
      if (t.name.startsWith("__")) continue;
      const fields = (t.fields || []).concat(t.inputFields || []).filter((f) => f.name.toLowerCase().includes(term));
      if (!t.name.toLowerCase().includes(term) && !fields.length) continue;
      const h = el("h3");
      h.append(typeLink(t.name));
      docsBody.append(h);
      for (const f of fields) docsBody.append(fieldLine(f, false));
    }
  }
  async function loadSchema() {
    let headers = {};
    try { headers = parseJson(headersBox, "Headers"); } catch (_) { /* anonymous */ }
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: Object.assign({ "content-type": "application/json" }, headers),
        body: JSON.stringify({ query: INTROSPECTION, operationName: "ConsoleSchema" }),
      });
      const answer = await response.json();
      if (!answer.data) throw new Error(JSON.stringify(answer.errors || answer));
      schema = answer.data;
      filterDocs();
    } catch (e) {
      docsBody.textContent = `The schema could not be loaded: ${e.message}`;
    }
  }

  // ---- wiring -------------------------------------------------------------------------
  runButton.addEventListener("click", run);
  stopButton.addEventListener("click", () => stopSubscription("stopped"));
  $("curl").addEventListener("click", curl);
  $("toggle-docs").addEventListener("click", () => {
    const docs = $("docs");
    docs.hidden = !docs.hidden;
    if (!docs.hidden && !schema) loadSchema();
  });
  docsFilter.addEventListener("input", filterDocs);
  for (const box of [queryBox, variablesBox, headersBox]) {
    box.addEventListener("input", save);
    box.addEventListener("keydown", (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
        e.preventDefault();
        run();
      } else if (e.key === "Tab" && !e.shiftKey) {
        e.preventDefault();
        box.setRangeText("  ", box.selectionStart, box.selectionEnd, "end");
      }
    });
  }
  queryBox.addEventListener("input", refreshOperations);
  refreshOperations();
  status.textContent = "ready · Ctrl+Enter runs";
})();
