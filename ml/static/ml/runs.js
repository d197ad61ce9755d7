// The runs page: each run's suggestions of rare-emotion segments (manage.py suggest_segments),
// read from the labeling side's REST API (GET /api/v1/suggestions/stats/), as any other client
// of it would: the ml app never reads the labeling app's tables.
(() => {
  "use strict";
  const cells = document.querySelectorAll("td.run-suggestions[data-run]");
  if (!cells.length) return;
  const strings = JSON.parse(document.getElementById("runs-strings").textContent);
  const format = (template, values) => template.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
  fetch("/api/v1/suggestions/stats/", { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((response) => (response.ok ? response.json() : []))
    .then((rows) => {
      const byRun = new Map(rows.map((row) => [String(row.run), row]));
      for (const cell of cells) {
        const row = byRun.get(cell.dataset.run);
        if (!row) { cell.textContent = strings.none; continue; }
        const precision = row.precision === null ? strings.not_yet : `${(100 * row.precision).toFixed(1)} %`;
        cell.textContent = format(strings.counts, { ...row, precision });
      }
    })
    .catch(() => { for (const cell of cells) cell.textContent = strings.none; });
})();
