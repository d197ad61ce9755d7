// The annotator page: plays the leased clip, takes one label per clip (buttons or keys 1-9),
// prefetches the next clip while this one plays, and shows the lease countdown.
// It talks only to the REST API (session auth + CSRF), the same one scripts use.
(() => {
  "use strict";
  const root = document.getElementById("annotator");
  const strings = JSON.parse(document.getElementById("i18n-strings").textContent);
  const video = document.getElementById("clip-video");
  const prefetchVideo = document.getElementById("prefetch");
  const labelsBox = document.getElementById("labels");
  const notice = document.getElementById("notice");
  const progressEl = document.getElementById("progress");
  const countdownEl = document.getElementById("countdown");
  const clipNumberEl = document.getElementById("clip-number");
  const campaign = root.dataset.campaign;

  let current = null;    // the assignment on screen
  let upcoming = null;   // a Promise of the prefetched assignment (or null)
  let busy = false;
  let timer = null;

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

  async function fetchNext(skip) {
    // Leasing is a POST: a GET never changes anything.
    const request = { skip };
    if (campaign) request.campaign = Number(campaign);
    const { status, body } = await api("/api/v1/tasks/next/", {
      method: "POST",
      body: JSON.stringify(request),
    });
    if (status === 200) return body;
    if (status === 204 || status === 429) return null;
    throw new Error((body && body.detail) || `HTTP ${status}`);
  }

  function say(text, kind = "") {
    notice.textContent = text;
    notice.className = `notice ${kind}`;
  }

  function renderLabels(labels) {
    labelsBox.replaceChildren(...labels.map((label, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "label";
      b.dataset.label = label.name;
      const key = i < 9 ? `<kbd>${i + 1}</kbd> ` : "";
      b.innerHTML = key;
      b.append(strings.labels[label.name] || label.display_name);
      b.addEventListener("click", () => submit(label.name));
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

  function show(assignment) {
    current = assignment;
    clearInterval(timer);
    if (!assignment) {
      video.removeAttribute("src");
      video.load();
      labelsBox.replaceChildren();
      clipNumberEl.textContent = "–";
      root.dataset.assignment = "";
      say(strings.done);
      tick();
      return;
    }
    root.dataset.assignment = assignment.assignment;
    // The lease runs from when the clip is shown: a prefetched clip never arrives expired.
    api(`/api/v1/assignments/${assignment.assignment}/shown/`, { method: "POST" }).then(({ status, body }) => {
      if (status === 200 && current && current.assignment === body.assignment) {
        current.expires_at = body.expires_at;
        tick();
      }
    }).catch(() => {});
    clipNumberEl.textContent = String(assignment.clip.number).padStart(5, "0");
    // A prefetched clip carries the count from when it was fetched; never step backwards.
    progressEl.textContent = Math.max(Number(progressEl.textContent), assignment.progress.submitted);
    renderLabels(assignment.labels);
    video.poster = assignment.clip.poster_url || "";
    video.src = assignment.clip.video_url;
    video.playbackRate = document.getElementById("slow").getAttribute("aria-pressed") === "true" ? 0.5 : 1;
    video.play().catch(() => {});
    tick();
    timer = setInterval(tick, 1000);
  }

  function prefetch() {
    upcoming = current ? fetchNext([current.assignment]).catch(() => null) : null;
    if (upcoming) {
      upcoming.then((next) => {
        if (next && next.clip.video_url) { prefetchVideo.src = next.clip.video_url; prefetchVideo.load(); }
      });
    }
  }

  async function advance() {
    let next = upcoming ? await upcoming : null;
    if (!next) next = await fetchNext([]);
    show(next);
    prefetch();
  }

  async function submit(labelName) {
    if (!current || busy) return;
    busy = true;
    labelsBox.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      const { status, body } = await api(`/api/v1/assignments/${current.assignment}/submit/`, {
        method: "POST", body: JSON.stringify({ label: labelName }),
      });
      if (status === 200 || status === 201) {
        say(`${strings.submitted}: ${strings.labels[labelName] || labelName}`, "ok");
        progressEl.textContent = Number(progressEl.textContent) + (status === 201 ? 1 : 0);
      } else {
        say((body && body.detail) || strings.error, "warn");
      }
      await advance();
    } catch (e) {
      say(strings.error, "warn");
      labelsBox.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    } finally {
      busy = false;
    }
  }

  async function report(kind) {
    if (!current || busy) return;
    busy = true;
    try {
      const { status, body } = await api(`/api/v1/assignments/${current.assignment}/report/`, {
        method: "POST", body: JSON.stringify({ kind }),
      });
      say(status === 201 ? strings.reported : (body && body.detail) || strings.error, status === 201 ? "ok" : "warn");
      await advance();
    } finally {
      busy = false;
    }
  }

  document.getElementById("replay").addEventListener("click", () => { video.currentTime = 0; video.play().catch(() => {}); });
  document.getElementById("slow").addEventListener("click", (e) => {
    const slow = e.currentTarget.getAttribute("aria-pressed") !== "true";
    e.currentTarget.setAttribute("aria-pressed", String(slow));
    video.playbackRate = slow ? 0.5 : 1;
  });
  document.getElementById("loop").addEventListener("change", (e) => { video.loop = e.currentTarget.checked; });
  document.querySelectorAll("button.report").forEach((b) => b.addEventListener("click", () => report(b.dataset.kind)));

  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    // A key held down repeats: only its first press counts, or one held "1" labels a run of clips.
    if (e.repeat) return;
    if (/^[1-9]$/.test(e.key)) {
      const button = labelsBox.querySelectorAll("button.label")[Number(e.key) - 1];
      if (button) { e.preventDefault(); button.click(); }
    } else if (e.key === "r" || e.key === "R") {
      document.getElementById("replay").click();
    } else if (e.key === "s" || e.key === "S") {
      document.getElementById("slow").click();
    }
  });

  advance().catch((e) => say(e.message, "warn"));
})();
