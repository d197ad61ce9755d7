// The extractor page: play a movie, mark in and out points with keys or buttons (frame steps
// too), click the face to mark it, see the marked ranges and the sent clips on a timeline,
// preview a segment, keep an editable list of segments with an optional suspected emotion,
// send them to POST /api/v1/movies/<id>/clips/, follow the clips' extraction without
// reloading, and withdraw a sent clip until its extraction starts. A trained model's
// suggestions of rare-emotion segments (manage.py suggest_segments) are marks on the timeline,
// ranked by their rare-class score: N jumps to the next, A accepts it (it becomes a proposed
// segment with the model's emotion as the suspected label), D dismisses it.
// No inline script or handler: everything is wired here (the app's CSP forbids inline code).
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const campaigns = JSON.parse($("campaigns-data").textContent);
  const strings = JSON.parse($("i18n-strings").textContent);
  const video = $("movie-video");
  const campaignSelect = $("campaign");
  const movieSelect = $("movie");
  const segmentsBody = $("segments");
  const notice = $("notice");
  const timeline = $("timeline");
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;

  let movie = null;     // the movie on screen (API object)
  let marks = { in: null, out: null, face: null };
  let segments = [];    // [{start_s, end_s, suspected_label, face_point?}]
  let poll = null;
  let listPoll = null;
  let previewEnd = null; // while a preview plays: where it stops
  let suggestions = [];  // the movie's open suggestions, highest rare-class score first
  let current = null;    // the suggestion N last jumped to (its id)

  const campaign = () => campaigns.find((c) => String(c.id) === campaignSelect.value);
  // The exact rate ("30000/1001"): frame k starts at k / rate seconds, as on the server.
  const fps = () => {
    const [num, den] = ((movie && movie.frame_rate) || "25").split("/").map(Number);
    return num / (den || 1);
  };
  const fmt = (s) => (s === null ? "–" : s.toFixed(3));
  const ms = (t) => Math.round(t * 1000) / 1000;  // the server snaps ms-rounded frame times
  const frameAt = (t) => Math.floor(t * fps() + 1e-4);
  const format = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
  const pad = (n) => String(n).padStart(5, "0");

  async function api(path, options = {}) {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, ...(options.body instanceof FormData ? {} : { "Content-Type": "application/json" }) },
      ...options,
    });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    return { status: response.status, body };
  }

  function say(text, kind = "") {
    // The notice sticks to the top of the window, so it is read wherever the page is scrolled.
    notice.textContent = text;
    notice.className = "notice marking-notice " + kind;
    if (text) notice.scrollIntoView({ block: "nearest" });
  }

  function fillLabels() {
    const select = $("suspected");
    select.replaceChildren(new Option("–", ""));
    for (const label of campaign().labels) select.add(new Option(`${label.code} ${label.display_name}`, label.name));
    const c = campaign();
    $("limits").textContent = format(strings.limits, { min: c.clip_min_seconds, max: c.clip_max_seconds, per_movie: c.clips_per_movie });
  }

  // --- the movie list and the movie on screen -------------------------------------------

  const movieLabel = (m) => `${m.title} (${m.status})`;

  function markOption(m) {
    // The list says what the movie is now, not what it was when the list was loaded.
    const option = Array.from(movieSelect.options).find((o) => o.value === String(m.id));
    if (option) option.textContent = movieLabel(m);
  }

  async function loadMovies(selectId) {
    clearTimeout(listPoll);
    const { status, body } = await api(`/api/v1/campaigns/${campaignSelect.value}/movies/`);
    if (status !== 200) return say(body ? body.detail : strings.error, "error");
    const keep = selectId || movieSelect.value;
    movieSelect.replaceChildren();
    for (const m of body) movieSelect.add(new Option(movieLabel(m), m.id));
    if (keep && body.some((m) => String(m.id) === String(keep))) movieSelect.value = String(keep);
    // A movie still being probed: look at the list again until none is.
    if (body.some((m) => m.status === "pending")) listPoll = setTimeout(() => loadMovies(), 2000);
    await loadMovie();
  }

  async function loadMovie() {
    clearTimeout(poll);
    if (!movieSelect.value) { movie = null; video.removeAttribute("src"); render(); return; }
    const { status, body } = await api(`/api/v1/movies/${movieSelect.value}/`);
    if (status !== 200) return say(body ? body.detail : strings.error, "error");
    const changed = !movie || movie.id !== body.id;
    movie = body;
    markOption(movie);
    if (changed) {
      segments = [];
      marks = { in: null, out: null, face: null };
      if (movie.video_url) video.src = movie.video_url;
      await loadSuggestions();
    }
    render();
    const busy = movie.status === "pending" || movie.progress.pending + movie.progress.extracting > 0;
    if (busy) poll = setTimeout(loadMovie, 2000);
  }

  // --- drawing ----------------------------------------------------------------------------

  function render() {
    $("movie-state").textContent = movie
      ? `${movie.status}${movie.error ? ": " + movie.error : ""}` +
        (movie.status === "ready" && movie.duration_s ? ` · ${movie.duration_s.toFixed(2)} s · ${movie.fps} fps · ${movie.width}×${movie.height}` : "")
      : "";
    $("mark-in").textContent = fmt(marks.in);
    $("mark-out").textContent = fmt(marks.out);
    $("face-point").textContent = marks.face ? marks.face.map((v) => v.toFixed(2)).join(", ") : "–";
    renderSegments();
    renderClips();
    renderTimeline();
    renderFace();
    renderSuggestions();
  }

  function renderClips() {
    const clipsBody = $("clips");
    clipsBody.replaceChildren();
    if (!movie) return;
    const p = movie.progress;
    $("progress").textContent = format(strings.progress, p);
    for (const clip of movie.clips) {
      const row = clipsBody.insertRow();
      row.dataset.clip = clip.id;
      row.insertCell().textContent = pad(clip.number);
      row.insertCell().textContent = `${clip.start_s.toFixed(3)}–${clip.end_s.toFixed(3)}`;
      // An extraction's own error is for staff (it quotes ffmpeg); the page says it failed.
      row.insertCell().textContent = clip.media_status === "failed" ? `${clip.media_status}: ${strings.extraction_failed}` : clip.media_status;
      row.insertCell().textContent = clip.face_ratio === null ? "–" : `${Math.round(clip.face_ratio * 100)} %${clip.few_faces ? " ⚠" : ""}`;
      row.insertCell().textContent = clip.status;
      const actions = row.insertCell();
      const play = document.createElement("button");
      Object.assign(play, { type: "button", textContent: "▶", title: strings.preview, className: "preview" });
      play.addEventListener("click", () => preview(clip.start_s, clip.end_s));
      actions.append(play);
      if (clip.media_status === "pending") {
        const withdraw = document.createElement("button");
        Object.assign(withdraw, { type: "button", textContent: strings.withdraw, className: "withdraw" });
        withdraw.addEventListener("click", () => withdrawClip(clip, withdraw));
        actions.append(" ", withdraw);
      }
    }
  }

  function bar(start, end, kind, title) {
    const duration = (movie && movie.duration_s) || video.duration || 0;
    if (!duration || end === null || start === null) return null;
    const span = document.createElement("span");
    span.className = `range ${kind}`;
    span.style.left = `${(100 * Math.max(0, start)) / duration}%`;
    span.style.width = `${Math.max(0.3, (100 * (end - start)) / duration)}%`;
    span.title = `${start.toFixed(3)}–${end.toFixed(3)} s${title ? " · " + title : ""}`;
    return span;
  }

  function renderTimeline() {
    const playhead = $("playhead");
    const spans = [];
    if (movie) {
      for (const clip of movie.clips) spans.push(bar(clip.start_s, clip.end_s, `sent ${clip.media_status}`, pad(clip.number)));
      segments.forEach((seg, i) => spans.push(bar(seg.start_s, seg.end_s, "marked", `#${i + 1}`)));
      suggestions.forEach((s, i) => {
        const span = bar(s.start_s, s.end_s, `suggested${s.id === current ? " now" : ""}`, suggestionTitle(s, i));
        if (span) span.dataset.suggestion = s.id;
        spans.push(span);
      });
      if (marks.in !== null) {
        const end = marks.out !== null && marks.out > marks.in ? marks.out : marks.in + 1 / fps();
        spans.push(bar(marks.in, end, "current", ""));
      }
    }
    timeline.replaceChildren(...spans.filter(Boolean), playhead);
    movePlayhead();
  }

  function movePlayhead() {
    const duration = (movie && movie.duration_s) || video.duration || 0;
    $("playhead").style.left = duration ? `${(100 * video.currentTime) / duration}%` : "0";
    timeline.setAttribute("aria-valuenow", video.currentTime.toFixed(3));
    if (duration) timeline.setAttribute("aria-valuemax", duration.toFixed(3));
  }

  function frameBox() {
    // Where the picture is inside the video element (the element letterboxes it).
    const r = video.getBoundingClientRect();
    const vw = video.videoWidth || (movie && movie.width) || r.width;
    const vh = video.videoHeight || (movie && movie.height) || r.height;
    const scale = Math.min(r.width / vw, r.height / vh);
    const w = vw * scale;
    const h = vh * scale;
    return { left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2, width: w, height: h };
  }

  function renderFace() {
    const marker = $("face-marker");
    if (!marks.face) { marker.hidden = true; return; }
    const box = frameBox();
    const stage = $("stage").getBoundingClientRect();
    marker.hidden = false;
    marker.style.left = `${box.left - stage.left + marks.face[0] * box.width}px`;
    marker.style.top = `${box.top - stage.top + marks.face[1] * box.height}px`;
  }

  function overlaps(i) {
    const a = segments[i];
    const others = segments.filter((_, j) => j !== i).concat(movie ? movie.clips.filter((c) => c.media_status !== "failed") : []);
    return others.some((b) => b.start_s < a.end_s && a.start_s < b.end_s);
  }

  function renderSegments() {
    segmentsBody.replaceChildren();
    segments.forEach((seg, i) => {
      const row = segmentsBody.insertRow();
      row.insertCell().textContent = i + 1;
      for (const key of ["start_s", "end_s"]) {
        const input = document.createElement("input");
        Object.assign(input, { type: "number", step: "0.001", min: "0", value: seg[key].toFixed(3) });
        input.addEventListener("change", () => { seg[key] = Number(input.value); input.blur(); render(); });
        row.insertCell().append(input);
      }
      const length = seg.end_s - seg.start_s;
      const c = campaign();
      const bad = !(length >= c.clip_min_seconds && length <= c.clip_max_seconds);
      row.insertCell().textContent = `${length.toFixed(2)} s${bad ? " ⚠ " + strings.length : ""}${overlaps(i) ? " ⚠ " + strings.overlap : ""}${seg.face_point ? " · " + strings.face_set : ""}`;
      const select = $("suspected").cloneNode(true);
      select.removeAttribute("id");
      select.value = seg.suspected_label;
      select.addEventListener("change", () => { seg.suspected_label = select.value; select.blur(); });
      row.insertCell().append(select);
      const actions = row.insertCell();
      const play = document.createElement("button");
      Object.assign(play, { type: "button", textContent: "▶", title: strings.preview, className: "preview" });
      play.addEventListener("click", () => preview(seg.start_s, seg.end_s));
      const remove = document.createElement("button");
      Object.assign(remove, { type: "button", textContent: "✕", title: strings.remove });
      remove.addEventListener("click", () => { segments.splice(i, 1); render(); });
      actions.append(play, " ", remove);
    });
    const room = campaign().clips_per_movie - (movie ? movie.clips.filter((c) => c.media_status !== "failed").length : 0);
    $("send").disabled = !movie || movie.status !== "ready" || segments.length === 0 || segments.length > room;
  }

  // --- marking ----------------------------------------------------------------------------

  // In: the frame on screen is the clip's first; out: the frame on screen is its last.
  function markIn() { marks.in = ms(frameAt(video.currentTime) / fps()); render(); }
  function markOut() { marks.out = ms((frameAt(video.currentTime) + 1) / fps()); render(); }

  function addSegment() {
    if (marks.in === null || marks.out === null || marks.out <= marks.in) return say(strings.mark_first, "error");
    const seg = { start_s: marks.in, end_s: marks.out, suspected_label: $("suspected").value };
    if (marks.face) seg.face_point = marks.face;
    segments.push(seg);
    segments.sort((a, b) => a.start_s - b.start_s);
    marks = { in: null, out: null, face: null };
    $("suspected").value = "";
    render();
  }

  function preview(start, end) {
    // Plays [start, end) once, then stops on the last frame of the span.
    if (start === null || end === null || !(end > start)) return say(strings.mark_first, "error");
    previewEnd = end;
    video.currentTime = start;
    video.play().catch(() => {});
  }

  function facePoint(event) {
    const box = frameBox();
    const x = (event.clientX - box.left) / box.width;
    const y = (event.clientY - box.top) / box.height;
    if (x < 0 || x > 1 || y < 0 || y > 1) return;  // on the letterbox, not the picture
    marks.face = [Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000];
    render();
  }

  // --- a model's suggestions ---------------------------------------------------------------

  const labelName = (name) => {
    const label = campaign().labels.find((l) => l.name === name);
    return label ? label.display_name : name;
  };
  const suggestionTitle = (s, i) =>
    format(strings.suggestion, { rank: i + 1, emotion: labelName(s.emotion), score: `${Math.round(s.rare_score * 100)} %` });

  async function loadSuggestions() {
    suggestions = [];
    current = null;
    if (!movie) return;
    const { status, body } = await api(`/api/v1/movies/${movie.id}/suggestions/?status=open`);
    if (status === 200) suggestions = body;  // ranked by the server: highest rare-class score first
  }

  function renderSuggestions() {
    const list = $("suggestions");
    list.replaceChildren();
    $("suggestions-box").hidden = suggestions.length === 0;
    suggestions.forEach((s, i) => {
      const row = list.insertRow();
      row.dataset.suggestion = s.id;
      if (s.id === current) row.className = "now";
      row.insertCell().textContent = i + 1;
      row.insertCell().textContent = `${s.start_s.toFixed(3)}–${s.end_s.toFixed(3)}`;
      row.insertCell().textContent = labelName(s.emotion);
      row.insertCell().textContent = `${Math.round(s.rare_score * 100)} %`;
      const actions = row.insertCell();
      for (const [text, kind, act] of [["▶", "go", () => jumpTo(s)], [strings.accept, "accept", () => decide(s, "accept")], [strings.dismiss, "dismiss", () => decide(s, "dismiss")]]) {
        const button = document.createElement("button");
        Object.assign(button, { type: "button", textContent: text, className: kind });
        button.addEventListener("click", act);
        actions.append(button, " ");
      }
    });
  }

  function jumpTo(s) {
    // The suggestion's span becomes the in and out marks, and plays once.
    current = s.id;
    marks = { in: s.start_s, out: s.end_s, face: marks.face };
    preview(s.start_s, s.end_s);
    say(suggestionTitle(s, suggestions.indexOf(s)));
  }

  function nextSuggestion() {
    if (!suggestions.length) return say(strings.no_suggestion, "warn");
    const at = suggestions.findIndex((s) => s.id === current);
    jumpTo(suggestions[(at + 1) % suggestions.length]);
  }

  async function decide(s, action) {
    if (!s) return say(strings.no_suggestion, "warn");
    const { status, body } = await api(`/api/v1/suggestions/${s.id}/${action}/`, { method: "POST" });
    if (status === 201) say(format(strings.accepted, { number: pad(body.clip.number), emotion: labelName(s.emotion) }), "ok");
    else if (status === 200) say(strings.dismissed, "ok");
    else say(body ? body.detail : strings.error, "error");
    if (s.id === current) { current = null; marks = { in: null, out: null, face: null }; }
    await loadSuggestions();
    await loadMovie();
  }

  // --- sending, withdrawing, uploading -----------------------------------------------------

  async function send() {
    $("send").disabled = true;
    const { status, body } = await api(`/api/v1/movies/${movie.id}/clips/`, {
      method: "POST",
      body: JSON.stringify({ segments }),
    });
    if (status === 201) {
      segments = [];
      say(format(strings.sent, { n: body.clips.length }) + (body.warnings.length ? " " + body.warnings.join(" ") : ""), body.warnings.length ? "warn" : "ok");
      await loadMovie();
    } else {
      say(body ? body.detail : strings.error, "error");
      renderSegments();
    }
  }

  async function withdrawClip(clip, button) {
    button.disabled = true;
    const { status, body } = await api(`/api/v1/clips/${clip.id}/withdraw/`, { method: "POST" });
    if (status === 200) say(format(strings.withdrawn, { number: pad(clip.number) }), "ok");
    else say(body ? body.detail : strings.error, "error");
    await loadMovie();
  }

  function upload(event) {
    event.preventDefault();
    const file = $("upload-file").files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file);
    form.append("title", $("upload-title").value);
    const bar = $("upload-progress");
    bar.hidden = false;
    // XMLHttpRequest reports upload progress; the server streams the body to disk.
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/campaigns/${campaignSelect.value}/movies/`);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; });
    xhr.addEventListener("load", () => {
      bar.hidden = true;
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status === 201) { say(strings.uploaded, "ok"); loadMovies(body.id); }
      else say(body ? body.detail : strings.error, "error");
    });
    xhr.addEventListener("error", () => { bar.hidden = true; say(strings.error, "error"); });
    xhr.send(form);
  }

  function step(seconds) {
    video.pause();
    // Mid-frame, so every browser shows that frame.
    const target = frameAt(video.currentTime) + Math.round(seconds * fps());
    video.currentTime = Math.max(0, Math.min(video.duration || Infinity, (target + 0.5) / fps()));
  }

  // --- wiring -------------------------------------------------------------------------------

  document.addEventListener("keydown", (event) => {
    // Keys mark unless the focus is where text is typed. A drop-down gives the focus back
    // once chosen (below), so I and O work again after any control.
    if (event.target.closest("input:not([type=checkbox]):not([type=file]), textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("select") && !/^(i|o|p)$/i.test(event.key)) return;
    const key = event.key.toLowerCase();
    if (key === "i") markIn();
    else if (key === "o") markOut();
    else if (key === "p") preview(marks.in, marks.out);
    else if (key === "n") nextSuggestion();
    else if (key === "a") decide(suggestions.find((s) => s.id === current), "accept");
    else if (key === "d") decide(suggestions.find((s) => s.id === current), "dismiss");
    else if (key === "arrowleft") step(event.shiftKey ? -1 : -1 / fps());
    else if (key === "arrowright") step(event.shiftKey ? 1 : 1 / fps());
    // Space on a focused button presses it, on the focused player the player toggles itself.
    else if (key === " ") { if (event.target.closest("button, video")) return; if (video.paused) video.play(); else video.pause(); }
    else if (key === "enter") { if (event.target.closest("button")) return; addSegment(); }
    else if (/^[1-9]$/.test(key)) {
      const label = campaign().labels.find((l) => String(l.code) === key);
      if (label) $("suspected").value = label.name;
    } else return;
    event.preventDefault();
    render();
  });
  // A button clicked with the mouse hands the keys back to the page, so Enter adds the
  // segment rather than pressing that button again (a keyboard user's focus stays put).
  $("extractor").addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button && event.detail > 0) button.blur();
  });
  // A chosen option hands the keys back to the page (a focused drop-down eats letters).
  for (const select of [campaignSelect, movieSelect, $("suspected")]) {
    select.addEventListener("change", () => select.blur());
  }
  video.addEventListener("timeupdate", () => {
    $("now").textContent = video.currentTime.toFixed(3);
    if (previewEnd !== null && video.currentTime >= previewEnd - 0.5 / fps()) {
      video.pause();
      previewEnd = null;
    }
    movePlayhead();
  });
  video.addEventListener("seeked", () => { $("now").textContent = video.currentTime.toFixed(3); movePlayhead(); });
  video.addEventListener("loadedmetadata", () => render());
  video.addEventListener("pause", () => { previewEnd = null; });
  window.addEventListener("resize", renderFace);
  $("face-layer").addEventListener("click", facePoint);
  timeline.addEventListener("click", (event) => {
    const r = timeline.getBoundingClientRect();
    const duration = (movie && movie.duration_s) || video.duration;
    if (duration) video.currentTime = Math.max(0, Math.min(duration, ((event.clientX - r.left) / r.width) * duration));
  });
  campaignSelect.addEventListener("change", () => { fillLabels(); loadMovies(); });
  movieSelect.addEventListener("change", loadMovie);
  $("in-button").addEventListener("click", markIn);
  $("out-button").addEventListener("click", markOut);
  $("preview").addEventListener("click", () => preview(marks.in, marks.out));
  $("add").addEventListener("click", addSegment);
  $("send").addEventListener("click", send);
  $("upload").addEventListener("submit", upload);

  if (campaigns.length) { fillLabels(); loadMovies(); }
})();
