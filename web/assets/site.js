// Progressive enhancement only: every page works without this script.
"use strict";

// Filter forms apply as soon as a choice changes.
document.querySelectorAll("form[data-autosubmit]").forEach((form) => {
  form.addEventListener("change", () => form.requestSubmit());
});

// The cart's hold: a live countdown, extended (at most once a minute) when the
// shopper is active on the page.
const hold = document.getElementById("hold");
if (hold) {
  const countdown = document.getElementById("countdown");
  const form = document.getElementById("rehold");
  let expires = Date.parse(hold.dataset.expires || "");
  const tick = () => {
    if (!countdown || Number.isNaN(expires)) return;
    const left = Math.max(0, Math.round((expires - Date.now()) / 1000));
    countdown.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    if (left === 0) hold.classList.add("expired");
  };
  tick();
  setInterval(tick, 1000);
  let last = Date.now();
  const extend = async () => {
    if (Date.now() - last < 60000 || !form) return;
    last = Date.now();
    const res = await fetch(form.action, {
      method: "POST",
      headers: { accept: "application/json" },
      body: new URLSearchParams(new FormData(form)),
    });
    if (!res.ok) return;
    const body = await res.json();
    if (body.holdsExpireAt) expires = Date.parse(body.holdsExpireAt);
    if (body.shortfalls) location.reload();
    tick();
  };
  ["click", "keydown", "scroll"].forEach((e) => addEventListener(e, extend, { passive: true }));
}

// A form that places something (an order) is sent once: a second click waits.
document.querySelectorAll("form[data-once]").forEach((form) => {
  form.addEventListener("submit", (e) => {
    if (form.dataset.sent) {
      e.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    form.querySelectorAll("button[type=submit]").forEach((b) => b.setAttribute("aria-disabled", "true"));
  });
});

// An order's page follows its status live.
const live = document.getElementById("order-live");
if (live && window.EventSource) {
  const status = document.getElementById("order-status");
  const history = document.getElementById("history");
  const source = new EventSource(live.dataset.events);
  source.addEventListener("status", (e) => {
    const u = JSON.parse(e.data);
    // The stream starts with the order as it is: only a change is news.
    if (u.status === live.dataset.status) return;
    live.dataset.status = u.status;
    status.textContent = u.label;
    status.className = `status status-${u.status.toLowerCase()}`;
    const item = document.createElement("li");
    const strong = document.createElement("strong");
    strong.textContent = u.label;
    const time = document.createElement("time");
    time.textContent = u.at;
    item.append(strong, " ", time);
    if (u.note) item.append(`: ${u.note}`);
    history.append(item);
    // Cancelling is offered only while the order allows it.
    const cancel = document.getElementById("cancel-form");
    if (cancel && !["PENDING", "PAID"].includes(u.status)) cancel.remove();
  });
}

// The bell's count follows new notifications while a page is open.
const bell = document.getElementById("bell");
if (bell && window.EventSource) {
  const count = document.getElementById("bell-count");
  const source = new EventSource(bell.dataset.events);
  source.addEventListener("notification", () => {
    const n = (parseInt(count.textContent, 10) || 0) + 1;
    count.textContent = String(n);
    count.setAttribute("aria-label", `${n} unread`);
    count.classList.remove("empty");
  });
}

// Choosing another way to ship prices the order again.
document.querySelectorAll("input[data-requote]").forEach((radio) => {
  radio.addEventListener("change", () => document.getElementById("quote")?.click());
});

// An import's page follows the job live: the bar, the counts and the state; when the
// job stops (ready for review, applied, failed...) the page reloads to show the outcome.
const importLive = document.getElementById("import-live");
if (importLive && importLive.dataset.events && window.EventSource) {
  const source = new EventSource(importLive.dataset.events);
  const bar = document.getElementById("import-progress");
  const percent = document.getElementById("import-percent");
  const status = document.getElementById("import-status");
  const counts = document.getElementById("import-counts");
  source.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    bar.value = p.percent;
    bar.textContent = `${p.percent}%`;
    percent.textContent = `${p.percent}%`;
    status.textContent = p.label;
    counts.textContent = `${p.rows} rows read · ${p.failed} with errors · ${p.applied} changes applied`;
    if (!p.moving && p.status !== importLive.dataset.status) {
      source.close();
      location.reload();
    }
  });
}

// On a phone the filters fold away above the results (open without script, and on
// wider screens, where the summary is hidden).
const filterBox = document.getElementById("filter-box");
if (filterBox && window.matchMedia("(max-width: 48rem)").matches) filterBox.open = false;
