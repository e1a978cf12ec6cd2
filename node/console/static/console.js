// rrn console: live countdowns, live refresh, and (with consent) a sound and a
// notification when something new is asked of this organisation. Every page works
// without this file; it only adds what cannot be done without a script.
"use strict";
(function () {
  const main = document.getElementById("main");
  const liveState = document.getElementById("live-state");

  function tick() {
    const now = Date.now();
    for (const t of document.querySelectorAll("time[data-deadline]")) {
      const left = Number(t.dataset.deadline) - now;
      if (!t.dataset.text) t.dataset.text = t.textContent;
      const s = Math.max(0, Math.floor(Math.abs(left) / 1000));
      const hms = Math.floor(s / 3600) + ":" + String(Math.floor(s / 60) % 60).padStart(2, "0") +
        ":" + String(s % 60).padStart(2, "0");
      t.textContent = t.dataset.text + " · " + (left >= 0 ? hms : "−" + hms);
      t.classList.toggle("overdue", left < 0);
    }
  }

  function askedIds(root) {
    return new Set(Array.from(root.querySelectorAll("[data-asked]"), (e) => e.dataset.asked));
  }

  let known = askedIds(document);

  function beep() {
    try {
      const ctx = new AudioContext();
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.6);
    } catch (e) { /* no sound available */ }
  }

  function alertPeople(count) {
    if (localStorage.getItem("rrn-notify") !== "1") return;
    beep();
    if ("Notification" in window && Notification.permission === "granted") {
      // No alert content in the notification: it may show on a locked screen.
      new Notification("rrn", { body: main.dataset.notice + " (" + count + ")", tag: "rrn-asked" });
    }
  }

  let typing = false; // something typed or chosen in a form: never thrown away
  document.addEventListener("input", () => { typing = true; });

  async function refresh() {
    if (typing || document.getElementById("details") || document.querySelector("main form.raise")) {
      if (liveState) liveState.textContent = liveState.dataset.stale || "";
      return; // never throw away opened details or a half-filled form
    }
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (response.redirected || !response.ok) { location.assign(location.href); return; }
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById("main");
    if (!fresh) return;
    const active = document.activeElement && document.activeElement.id;
    main.replaceChildren(...fresh.childNodes);
    if (active && document.getElementById(active)) document.getElementById(active).focus();
    const now = askedIds(document);
    const added = [...now].filter((id) => !known.has(id));
    known = now;
    if (added.length) alertPeople(added.length);
    setupNotify();
    tick();
  }

  function setupNotify() {
    const button = document.getElementById("notify");
    if (!button) return;
    button.classList.toggle("hidden", localStorage.getItem("rrn-notify") === "1");
    button.onclick = async () => {
      localStorage.setItem("rrn-notify", "1");
      if ("Notification" in window) await Notification.requestPermission();
      beep();
      button.classList.add("hidden");
    };
  }

  if (main && main.dataset.live === "1" && "EventSource" in window) {
    const source = new EventSource("/live");
    source.addEventListener("change", () => { refresh().catch(() => {}); });
  }
  setupNotify();
  tick();
  setInterval(tick, 1000);
})();
