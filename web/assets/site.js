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
