// The annotator page: plays the leased clip, takes one label per clip (buttons or keys 1-9),
// shows the next clip at once, and saves labels in the background.
//
// A label is held on the page for a few seconds before it is sent, so Z can take it back and
// the clip can be labelled again: a stored annotation is never edited, so undo happens before
// anything is stored. The next clip (prefetched while this one played) appears without
// waiting for the save; saves that fail for a network or server reason are retried with
// backoff, and one the server refuses is shown with its reason. It talks only to the REST API
// (session auth + CSRF), the same one scripts use.
(() => {
  "use strict";
  const UNDO_MS = 3000;
  const root = document.getElementById("annotator");
  const strings = JSON.parse(document.getElementById("i18n-strings").textContent);
  const video = document.getElementById("clip-video");
  const prefetchVideo = document.getElementById("prefetch");
  const labelsBox = document.getElementById("labels");
  const notice = document.getElementById("notice");
  const saveStatus = document.getElementById("save-status");
  const retryButton = document.getElementById("retry-saves");
  const againButton = document.getElementById("check-again");
  const progressEl = document.getElementById("progress");
  const countdownEl = document.getElementById("countdown");
  const clipNumberEl = document.getElementById("clip-number");
  const earningsEl = document.getElementById("earnings");
  const undoButton = document.getElementById("undo");
  const keysSheet = document.getElementById("keys-sheet");
  const campaignNameEl = document.getElementById("campaign-name");
  const guides = Array.from(document.querySelectorAll("details.guide"));
  const campaign = root.dataset.campaign;

  let current = null;     // the assignment on screen
  let shownAt = 0;        // when it was shown (performance.now())
  let upcoming = null;    // a Promise of the prefetched assignment (or null)
  let upcomingId = null;  // its id once known
  let held = null;        // {assignment, label, timer}: labelled, waiting out the undo window
  const outbox = [];      // labels being sent: {assignment, label, attempts, inFlight, failed}
  let submitted = 0;      // the server's count of this annotator's labels
  let timer = null;
  let earningsTimer = null;

  function csrfToken() {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function api(path, options = {}) {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      ...options,
    });
    let body = null;
    if (response.status !== 204) {
      try { body = await response.json(); } catch (e) { body = null; }
    }
    return { status: response.status, body };
  }

  function say(text, kind = "") {
    notice.textContent = text;
    notice.className = `notice ${kind}`;
  }

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
  }

  // --- leases ---------------------------------------------------------------------------

  function ownLeases() {
    // Leases this page holds: the server must not hand any of them back as "the next one".
    return [current, held && held.assignment].filter(Boolean).map((a) => a.assignment)
      .concat(upcomingId ? [upcomingId] : [])
      .concat(outbox.map((item) => item.assignment.assignment));
  }

  async function fetchNext() {
    // Leasing is a POST: a GET never changes anything.
    const request = { skip: ownLeases() };
    if (campaign) request.campaign = Number(campaign);
    const { status, body } = await api("/api/v1/tasks/next/", {
      method: "POST",
      body: JSON.stringify(request),
    });
    if (status === 200) return { assignment: body };
    if (status === 204) return { done: true };
    if (status === 429) return { busy: strings.too_many };
    throw new Error((body && body.detail) || `HTTP ${status}`);
  }

  function prefetch() {
    if (upcoming || !current) return;
    const promise = fetchNext().then((result) => {
      if (upcoming !== promise) return result;
      if (result.busy) {
        // At the server's open-lease cap: forget this answer, so the prefetch is tried again
        // when a save lands (or the next label asks afresh); nothing is shown for it.
        upcoming = null;
        return result;
      }
      if (result.assignment) {
        upcomingId = result.assignment.assignment;
        if (result.assignment.clip.video_url) {
          prefetchVideo.src = result.assignment.clip.video_url;
          prefetchVideo.load();
        }
      }
      return result;
    }).catch(() => ({ failed: true }));
    upcoming = promise;
  }

  async function takeUpcoming() {
    let result = upcoming ? await upcoming : null;
    upcoming = null;
    upcomingId = null;
    if (!result || !result.assignment) result = await fetchNext();
    return result;
  }

  // --- what is on screen ----------------------------------------------------------------

  function guideFor(campaignId) {
    // The campaign's name and its codebook panel; the others' panels are hidden.
    const guide = guides.find((g) => g.dataset.campaign === String(campaignId));
    if (guides.length > 1) guides.forEach((g) => { g.hidden = g !== guide; });
    if (guide) campaignNameEl.textContent = guide.dataset.name;
    return guide;
  }

  function describe(guide, name) {
    // A label's description from the codebook, as its button's tooltip.
    const entry = guide && guide.querySelector(`dd[data-label="${CSS.escape(name)}"] .description`);
    return entry ? entry.textContent : "";
  }

  function renderLabels(labels, guide) {
    labelsBox.replaceChildren(...labels.map((label, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "label";
      b.dataset.label = label.name;
      if (i < 9) {
        const key = document.createElement("kbd");
        key.textContent = String(i + 1);
        b.append(key, " ");
      }
      b.append(strings.labels[label.name] || label.display_name);
      const description = describe(guide, label.name);
      if (description) b.title = description;
      b.addEventListener("click", () => label_(label.name));
      return b;
    }));
  }

  function tick() {
    if (!current) { countdownEl.textContent = "–"; return; }
    const left = Math.round((Date.parse(current.expires_at) - Date.now()) / 1000);
    if (left <= 0) {
      countdownEl.textContent = "0:00";
      countdownEl.classList.add("expired");
      say(strings.expired, "warn");
      return;
    }
    countdownEl.classList.remove("expired");
    countdownEl.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  }

  function showProgress(progress) {
    if (progress) submitted = Math.max(submitted, progress.submitted);
    const pending = outbox.filter((item) => !item.failed).length + (held ? 1 : 0);
    const total = progress && progress.clips ? progress.clips : Number(root.dataset.clips || 0);
    if (progress && progress.clips) root.dataset.clips = progress.clips;
    progressEl.textContent = total
      ? format(strings.n_of_m, { n: submitted + pending, m: total })
      : String(submitted + pending);
  }

  function empty(message, kind = "") {
    // Nothing to label: no player, no labels, no controls; a way to look again.
    current = null;
    clearInterval(timer);
    video.removeAttribute("src");
    video.removeAttribute("poster");
    video.load();
    labelsBox.replaceChildren();
    clipNumberEl.textContent = "–";
    root.dataset.assignment = "";
    root.classList.add("empty");
    say(message, kind);
    tick();
  }

  function show(assignment) {
    current = assignment;
    clearInterval(timer);
    // A warning about getting a clip ("too many open clips", offline, expired) is over once a
    // clip is on screen; an "ok" notice (the held label's "press Z") stays.
    if (notice.classList.contains("warn")) say("");
    root.classList.remove("empty");
    root.dataset.assignment = assignment.assignment;
    shownAt = performance.now();
    // The lease runs from when the clip is shown: a prefetched clip never arrives expired.
    api(`/api/v1/assignments/${assignment.assignment}/shown/`, { method: "POST" }).then(({ status, body }) => {
      if (status === 200 && current && current.assignment === body.assignment) {
        current.expires_at = body.expires_at;
        tick();
      }
    }).catch(() => {});
    clipNumberEl.textContent = String(assignment.clip.number).padStart(5, "0");
    showProgress(assignment.progress);
    renderLabels(assignment.labels, guideFor(assignment.campaign));
    video.poster = assignment.clip.poster_url || "";
    video.src = assignment.clip.video_url;
    video.playbackRate = document.getElementById("slow").getAttribute("aria-pressed") === "true" ? 0.5 : 1;
    video.play().catch(() => {});
    tick();
    timer = setInterval(tick, 1000);
  }

  async function advance() {
    const result = await takeUpcoming();
    if (result.assignment) {
      show(result.assignment);
      prefetch();
    } else if (result.busy) {
      // Too many open clips (429) is not "nothing left": say so, and look again once saved.
      empty(result.busy, "warn");
    } else if (result.failed) {
      empty(strings.offline, "warn");
    } else {
      empty(strings.done);
    }
  }

  // --- labels: held for undo, then saved in the background ------------------------------

  function label_(name) {
    if (!current) return;
    const minimum = (current.min_view_seconds || 0) * 1000;
    if (performance.now() - shownAt < minimum) {
      say(strings.too_soon, "warn");
      return;
    }
    if (held) sendHeld();
    const assignment = current;
    held = { assignment, label: name, timer: setTimeout(sendHeld, UNDO_MS) };
    renderUndo();
    say(format(strings.held, { label: strings.labels[name] || name }), "ok");
    showProgress();
    // Until the next clip is on screen no key labels anything (the next one may still be
    // on its way; a second key must not label the same clip again).
    current = null;
    clearInterval(timer);
    advance().catch((e) => empty(e.message, "warn"));
  }

  function renderUndo() {
    undoButton.disabled = !held;
  }

  function undo() {
    if (!held) { say(strings.undo_none, "warn"); return; }
    clearTimeout(held.timer);
    const back = held.assignment;
    held = null;
    if (current) {
      // The clip on screen goes back to being the next one; its lease is kept.
      const again = current;
      upcoming = Promise.resolve({ assignment: again });
      upcomingId = again.assignment;
    }
    show(back);
    say(strings.undone, "ok");
    renderUndo();
  }

  function sendHeld() {
    if (!held) return;
    clearTimeout(held.timer);
    outbox.push({ assignment: held.assignment, label: held.label, attempts: 0 });
    held = null;
    renderUndo();
    pump();
  }

  // Earnings follow the saves, read back from the ledger a moment after the last one.
  function refreshEarnings() {
    clearTimeout(earningsTimer);
    earningsTimer = setTimeout(async () => {
      try {
        const { status, body } = await api(earningsEl.dataset.url);
        if (status === 200 && body) earningsEl.textContent = format(strings.earned, body.earnings);
      } catch (e) { /* shown again after the next save */ }
    }, 1500);
  }

  function renderSaves() {
    const failed = outbox.filter((item) => item.failed);
    const waiting = outbox.filter((item) => !item.failed && item.attempts > 0);
    retryButton.hidden = waiting.length === 0;
    if (failed.length) {
      saveStatus.textContent = failed.map((item) => item.failed).join(" ");
      saveStatus.className = "save-status warn";
    } else if (waiting.length) {
      saveStatus.textContent = format(strings.retrying, { n: waiting.length });
      saveStatus.className = "save-status warn";
    } else {
      saveStatus.textContent = "";
      saveStatus.className = "save-status";
    }
  }

  async function save(item) {
    item.inFlight = true;
    item.attempts += 1;
    let status = 0;
    let body = null;
    try {
      ({ status, body } = await api(`/api/v1/assignments/${item.assignment.assignment}/submit/`, {
        method: "POST", body: JSON.stringify({ label: item.label }),
      }));
    } catch (e) {
      status = 0; // the network: try again
    }
    item.inFlight = false;
    if (status === 200 || status === 201) {
      outbox.splice(outbox.indexOf(item), 1);
      if (status === 201) { submitted += 1; refreshEarnings(); }
      showProgress();
      if (!upcoming && current) prefetch();
      if (!current && root.classList.contains("empty")) advance().catch(() => {});
    } else if (status === 409 && body && body.retry_after_s) {
      setTimeout(pump, body.retry_after_s * 1000 + 50);
    } else if (status >= 400 && status < 500) {
      // Refused for a reason a retry cannot change (the lease went to someone else, …).
      const number = String(item.assignment.clip.number).padStart(5, "0");
      item.failed = format(strings.not_saved, { clip: number, reason: (body && body.detail) || `HTTP ${status}` });
      showProgress();
    } else {
      const delay = Math.min(30000, 1000 * 2 ** Math.min(item.attempts - 1, 5));
      setTimeout(pump, delay);
    }
    renderSaves();
  }

  function pump() {
    outbox.filter((item) => !item.inFlight && !item.failed).forEach((item) => { save(item); });
    renderSaves();
  }

  // --- other actions ----------------------------------------------------------------------

  async function report(kind) {
    if (!current) return;
    try {
      const { status, body } = await api(`/api/v1/assignments/${current.assignment}/report/`, {
        method: "POST", body: JSON.stringify({ kind }),
      });
      if (status === 201) {
        say(strings.reported, "ok");
        await advance();
      } else {
        say((body && body.detail) || strings.error, "warn");
      }
    } catch (e) {
      say(strings.report_failed, "warn");
    }
  }

  document.getElementById("replay").addEventListener("click", () => { video.currentTime = 0; video.play().catch(() => {}); });
  document.getElementById("slow").addEventListener("click", (e) => {
    const slow = e.currentTarget.getAttribute("aria-pressed") !== "true";
    e.currentTarget.setAttribute("aria-pressed", String(slow));
    video.playbackRate = slow ? 0.5 : 1;
  });
  undoButton.addEventListener("click", undo);
  const openKeys = () => { if (!keysSheet.open) keysSheet.showModal(); };
  document.getElementById("keys-open").addEventListener("click", openKeys);
  document.getElementById("loop").addEventListener("change", (e) => { video.loop = e.currentTarget.checked; });
  document.querySelectorAll("button.report").forEach((b) => b.addEventListener("click", () => report(b.dataset.kind)));
  retryButton.addEventListener("click", () => {
    outbox.forEach((item) => { item.attempts = Math.min(item.attempts, 1); });
    pump();
  });
  againButton.addEventListener("click", () => { advance().catch((e) => empty(e.message, "warn")); });

  document.addEventListener("keydown", (e) => {
    // Keys label unless the focus is somewhere text is typed; a clicked button or checkbox
    // keeps the keys working.
    if (e.target.matches("textarea, select, input:not([type=checkbox])") || e.ctrlKey || e.metaKey || e.altKey) return;
    // A key held down repeats: only its first press counts, or one held "1" labels a run of clips.
    if (e.repeat) return;
    // The keys sheet is open: its own keys (Esc, Tab, Enter) only.
    if (keysSheet.open) return;
    if (e.key === "?") { e.preventDefault(); openKeys(); return; }
    if (/^[1-9]$/.test(e.key)) {
      const button = labelsBox.querySelectorAll("button.label")[Number(e.key) - 1];
      if (button) { e.preventDefault(); button.click(); }
    } else if (e.key === "z" || e.key === "Z") {
      e.preventDefault();
      undo();
    } else if (e.key === "r" || e.key === "R") {
      document.getElementById("replay").click();
    } else if (e.key === "s" || e.key === "S") {
      document.getElementById("slow").click();
    }
  });

  window.addEventListener("beforeunload", (e) => {
    // Leaving: a held label is sent now (keepalive outlives the page); unsaved ones warn.
    if (held) {
      fetch(`/api/v1/assignments/${held.assignment.assignment}/submit/`, {
        method: "POST", credentials: "same-origin", keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ label: held.label }),
      });
      held = null;
    }
    if (outbox.some((item) => !item.failed)) { e.preventDefault(); e.returnValue = ""; }
  });

  advance().catch((e) => empty(e.message, "warn"));
})();
