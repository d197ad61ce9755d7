// The reviewer's screening page: one clip of the page is current (highlighted); a verdict by
// its button or key (A accept, F no face, E no emotion, B broken) is held on the page for a
// few seconds with a visible confirmation, so Z (or the Undo button) takes it back, then sent
// through the same form endpoint as without script (services.clip_screen, the one rule): a
// stored screening is never edited, so undo happens before anything is stored. J / K move
// between clips. The current clip's face crops are marked where its face track has no face.
(() => {
  "use strict";
  const UNDO_MS = 3000;
  const root = document.getElementById("screening");
  if (!root) return;
  const strings = JSON.parse(document.getElementById("i18n-strings").textContent);
  const notice = document.getElementById("notice");
  const undoButton = document.getElementById("undo");
  const waitingEl = document.getElementById("waiting-count");
  const pageDone = document.getElementById("page-done");
  const cards = Array.from(root.querySelectorAll("article.screening"));
  let current = null;
  let held = null;  // {card, verdict, reason, timer}: decided, waiting out the undo window

  function format(text, values) {
    return text.replace(/%\((\w+)\)s/g, (_, key) => (key in values ? values[key] : ""));
  }

  function say(text, kind = "") {
    notice.textContent = text;
    notice.className = `notice ${kind}`;
  }

  function statusOf(card, text, kind = "") {
    const line = card.querySelector(".verdict-status");
    line.textContent = text;
    line.className = `verdict-status ${kind}`;
  }

  const isOpen = (card) => !card.dataset.state;

  function select(card) {
    if (current) {
      current.classList.remove("current");
      current.removeAttribute("aria-current");
    }
    current = card || null;
    if (!current) return;
    current.classList.add("current");
    current.setAttribute("aria-current", "true");
    current.scrollIntoView({ block: "nearest" });
    markNoFace(current);
  }

  function neighbour(card, step) {
    let i = cards.indexOf(card);
    for (i += step; i >= 0 && i < cards.length; i += step) {
      if (isOpen(cards[i])) return cards[i];
    }
    return null;
  }

  // --- the face track over the contact sheet ---------------------------------------------
  async function markNoFace(card) {
    const url = card.dataset.track;
    const marks = card.querySelector(".sheet-marks");
    if (!url || !marks || marks.dataset.loaded) return;
    marks.dataset.loaded = "1";
    let body;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      body = await response.json();
    } catch (e) {
      return;
    }
    const columns = Number(card.dataset.columns) || 16;
    const rows = Math.ceil(body.frames.length / columns);
    marks.style.gridTemplateColumns = `repeat(${columns}, 1fr)`;
    marks.style.gridTemplateRows = `repeat(${rows}, 1fr)`;
    for (const frame of body.frames) {
      const cell = document.createElement("div");
      if (frame.box === null) {
        cell.className = "none";
        cell.title = strings.no_face;
      }
      marks.appendChild(cell);
    }
    const count = card.querySelector(".no-face-count");
    if (count && body.no_face_frames) {
      count.textContent = ` · ${format(strings.no_face_n, { n: body.no_face_frames })}`;
    }
  }

  // --- verdicts: held for undo, then sent --------------------------------------------------
  function decide(card, verdict) {
    if (!card || !isOpen(card) || !(verdict in strings.verdicts)) return;
    if (held) send(held);
    const reason = card.querySelector("input[name=reason]").value;
    const text = format(strings.held, {
      clip: card.dataset.number,
      verdict: strings.verdicts[verdict],
    });
    card.dataset.state = "held";
    card.classList.add("held");
    statusOf(card, text);
    say(text, "ok");
    undoButton.hidden = false;
    held = { card, verdict, reason, timer: setTimeout(() => send(held), UNDO_MS) };
    select(neighbour(card, 1) || neighbour(card, -1));
  }

  function undo() {
    if (!held) return;
    clearTimeout(held.timer);
    const card = held.card;
    held = null;
    undoButton.hidden = true;
    delete card.dataset.state;
    card.classList.remove("held");
    statusOf(card, "");
    say(format(strings.undone, { clip: card.dataset.number }), "ok");
    select(card);
  }

  function post(item, keepalive = false) {
    const form = item.card.querySelector("form");
    const body = new URLSearchParams({
      verdict: item.verdict,
      reason: item.reason,
      csrfmiddlewaretoken: form.querySelector("input[name=csrfmiddlewaretoken]").value,
    });
    return fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body,
      keepalive,
    });
  }

  async function send(item) {
    if (!item || held !== item) return;
    clearTimeout(item.timer);
    held = null;
    undoButton.hidden = true;
    const { card, verdict } = item;
    card.dataset.state = "sending";
    const number = card.dataset.number;
    let response;
    let body = {};
    try {
      response = await post(item);
      body = await response.json().catch(() => ({}));
    } catch (e) {
      response = null;
    }
    if (response && response.ok) {
      card.dataset.state = "done";
      card.classList.remove("held");
      card.classList.add("done");
      say(format(strings.saved, { clip: number, verdict: strings.verdicts[verdict] }), "ok");
      if (typeof body.waiting === "number") waitingEl.textContent = String(body.waiting);
      if (!cards.some(isOpen) && cards.every((c) => c.dataset.state === "done")) {
        pageDone.hidden = false;
      }
      return;
    }
    // Refused (decided by another reviewer meanwhile) or not sent: the clip is open again.
    delete card.dataset.state;
    card.classList.remove("held");
    const reason = response ? body.detail || String(response.status) : strings.offline;
    const text = format(strings.failed, { clip: number, reason });
    statusOf(card, text, "warn");
    say(text, "warn");
  }

  // --- wiring ------------------------------------------------------------------------------
  const keyed = {};
  for (const button of root.querySelectorAll("article.screening form button[data-key]")) {
    keyed[button.dataset.key] = button.value;
  }

  for (const card of cards) {
    card.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      const verdict = event.submitter ? event.submitter.value : "";
      decide(card, verdict);
    });
    card.addEventListener("focusin", () => { if (isOpen(card) && card !== current) select(card); });
    card.addEventListener("click", () => { if (isOpen(card) && card !== current) select(card); });
  }
  undoButton.addEventListener("click", undo);

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA"
      || target.tagName === "SELECT")) {
      // Enter in the note would send the form's first verdict (accept): never by accident.
      if (event.key === "Enter" && target.tagName === "INPUT") event.preventDefault();
      if (event.key === "Escape" || event.key === "Enter") target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // A key held down repeats: only its first press counts.
    if (event.repeat) return;
    const key = event.key.toLowerCase();
    if (key in keyed) {
      decide(current, keyed[key]);
    } else if (key === "z") {
      undo();
    } else if (key === "j") {
      if (current) select(neighbour(current, 1) || current);
    } else if (key === "k") {
      if (current) select(neighbour(current, -1) || current);
    } else {
      return;
    }
    event.preventDefault();
  });

  // Leaving: a held verdict is sent now (keepalive outlives the page).
  window.addEventListener("pagehide", () => {
    if (!held) return;
    clearTimeout(held.timer);
    post(held, true);
    held = null;
  });

  select(cards.find(isOpen) || null);
})();
