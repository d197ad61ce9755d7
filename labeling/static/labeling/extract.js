// The extractor page: play a movie, mark in and out points with keys (frame steps too),
// keep an editable list of segments with an optional suspected emotion, send them to
// POST /api/v1/movies/<id>/clips/, and follow the clips' extraction without reloading.
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
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;

  let movie = null;     // the movie on screen (API object)
  let marks = { in: null, out: null };
  let segments = [];    // [{start_s, end_s, suspected_label}]
  let poll = null;

  const campaign = () => campaigns.find((c) => String(c.id) === campaignSelect.value);
  // The exact rate ("30000/1001"): frame k starts at k / rate seconds, as on the server.
  const fps = () => {
    const [num, den] = ((movie && movie.frame_rate) || "25").split("/").map(Number);
    return num / (den || 1);
  };
  const fmt = (s) => (s === null ? "–" : s.toFixed(3));
  const ms = (t) => Math.round(t * 1000) / 1000;  // the server snaps ms-rounded frame times
  const frameAt = (t) => Math.floor(t * fps() + 1e-4);

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
    notice.textContent = text;
    notice.className = "notice " + kind;
  }

  function fillLabels() {
    const select = $("suspected");
    select.replaceChildren(new Option("–", ""));
    for (const label of campaign().labels) select.add(new Option(`${label.code} ${label.display_name}`, label.name));
    const c = campaign();
    $("limits").textContent = strings.limits
      .replace("%(min)s", c.clip_min_seconds).replace("%(max)s", c.clip_max_seconds)
      .replace("%(per_movie)s", c.clips_per_movie);
  }

  async function loadMovies(selectId) {
    const { status, body } = await api(`/api/v1/campaigns/${campaignSelect.value}/movies/`);
    movieSelect.replaceChildren();
    if (status !== 200) return say(body ? body.detail : strings.error, "error");
    for (const m of body) movieSelect.add(new Option(`${m.title} (${m.status})`, m.id));
    if (selectId) movieSelect.value = String(selectId);
    await loadMovie();
  }

  async function loadMovie() {
    clearTimeout(poll);
    if (!movieSelect.value) { movie = null; video.removeAttribute("src"); render(); return; }
    const { status, body } = await api(`/api/v1/movies/${movieSelect.value}/`);
    if (status !== 200) return say(body ? body.detail : strings.error, "error");
    const changed = !movie || movie.id !== body.id;
    movie = body;
    if (changed) {
      segments = [];
      marks = { in: null, out: null };
      if (movie.video_url) video.src = movie.video_url;
    }
    render();
    const busy = movie.status === "pending" || movie.progress.pending + movie.progress.extracting > 0;
    if (busy) poll = setTimeout(loadMovie, 2000);
  }

  function render() {
    $("movie-state").textContent = movie
      ? `${movie.status}${movie.error ? ": " + movie.error : ""}` +
        (movie.duration_s ? ` · ${movie.duration_s.toFixed(2)} s · ${movie.fps} fps · ${movie.width}×${movie.height}` : "")
      : "";
    $("mark-in").textContent = fmt(marks.in);
    $("mark-out").textContent = fmt(marks.out);
    renderSegments();
    const clipsBody = $("clips");
    clipsBody.replaceChildren();
    if (!movie) return;
    const p = movie.progress;
    $("progress").textContent = strings.progress
      .replace("%(pending)s", p.pending).replace("%(extracting)s", p.extracting)
      .replace("%(ready)s", p.ready).replace("%(failed)s", p.failed);
    for (const clip of movie.clips) {
      const row = clipsBody.insertRow();
      row.insertCell().textContent = String(clip.number).padStart(5, "0");
      row.insertCell().textContent = `${clip.start_s.toFixed(3)}–${clip.end_s.toFixed(3)}`;
      row.insertCell().textContent = clip.media_status + (clip.error ? ": " + clip.error.slice(-200) : "");
      row.insertCell().textContent = clip.face_ratio === null ? "–" : `${Math.round(clip.face_ratio * 100)} %${clip.few_faces ? " ⚠" : ""}`;
      row.insertCell().textContent = clip.status;
    }
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
        input.addEventListener("change", () => { seg[key] = Number(input.value); renderSegments(); });
        row.insertCell().append(input);
      }
      const length = seg.end_s - seg.start_s;
      const c = campaign();
      const bad = !(length >= c.clip_min_seconds && length <= c.clip_max_seconds);
      row.insertCell().textContent = `${length.toFixed(2)} s${bad ? " ⚠ " + strings.length : ""}${overlaps(i) ? " ⚠ " + strings.overlap : ""}`;
      const select = $("suspected").cloneNode(true);
      select.removeAttribute("id");
      select.value = seg.suspected_label;
      select.addEventListener("change", () => { seg.suspected_label = select.value; });
      row.insertCell().append(select);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "✕";
      remove.addEventListener("click", () => { segments.splice(i, 1); renderSegments(); });
      row.insertCell().append(remove);
    });
    const room = campaign().clips_per_movie - (movie ? movie.clips.filter((c) => c.media_status !== "failed").length : 0);
    $("send").disabled = !movie || movie.status !== "ready" || segments.length === 0 || segments.length > room;
  }

  function addSegment() {
    if (marks.in === null || marks.out === null || marks.out <= marks.in) return say(strings.mark_first, "error");
    segments.push({ start_s: marks.in, end_s: marks.out, suspected_label: $("suspected").value });
    segments.sort((a, b) => a.start_s - b.start_s);
    marks = { in: null, out: null };
    $("suspected").value = "";
    render();
  }

  async function send() {
    $("send").disabled = true;
    const { status, body } = await api(`/api/v1/movies/${movie.id}/clips/`, {
      method: "POST",
      body: JSON.stringify({ segments }),
    });
    if (status === 201) {
      segments = [];
      say(strings.sent.replace("%(n)s", body.clips.length) + (body.warnings.length ? " " + body.warnings.join(" ") : ""), body.warnings.length ? "warning" : "ok");
      await loadMovie();
    } else {
      say(body ? body.detail : strings.error, "error");
      renderSegments();
    }
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

  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    // In: the frame on screen is the clip's first; out: the frame on screen is its last.
    if (key === "i") marks.in = ms(frameAt(video.currentTime) / fps());
    else if (key === "o") marks.out = ms((frameAt(video.currentTime) + 1) / fps());
    else if (key === "arrowleft") step(event.shiftKey ? -1 : -1 / fps());
    else if (key === "arrowright") step(event.shiftKey ? 1 : 1 / fps());
    else if (key === " ") { if (video.paused) video.play(); else video.pause(); }
    else if (key === "enter") addSegment();
    else if (/^[1-9]$/.test(key)) {
      const label = campaign().labels.find((l) => String(l.code) === key);
      if (label) $("suspected").value = label.name;
    } else return;
    event.preventDefault();
    render();
  });
  video.addEventListener("timeupdate", () => { $("now").textContent = video.currentTime.toFixed(3); });
  video.addEventListener("seeked", () => { $("now").textContent = video.currentTime.toFixed(3); });
  campaignSelect.addEventListener("change", () => { fillLabels(); loadMovies(); });
  movieSelect.addEventListener("change", loadMovie);
  $("add").addEventListener("click", addSegment);
  $("send").addEventListener("click", send);
  $("upload").addEventListener("submit", upload);

  if (campaigns.length) { fillLabels(); loadMovies(); }
})();
