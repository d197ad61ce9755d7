"""The agreement report's plots as self-contained SVG text (rendered on the server, no CDN).

Takes the report dictionary of ``pipeline.report.agreement_report`` and nothing else.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on servers and workers

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

_STYLE = {
    "font.size": 9,
    "svg.fonttype": "none",
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    # Inline in a page: drop the XML prolog and DOCTYPE, keep the <svg> element.
    return text[text.index("<svg") :]


def kappa_per_label_svg(report: dict) -> str:
    """Bars of kappa per label, with the overall kappa and its bootstrap interval as a band."""
    names = [name for name, value in report["kappa_per_label"].items() if value is not None]
    values = [report["kappa_per_label"][name] for name in names]
    with plt.rc_context(_STYLE):
        figure, axes = plt.subplots(figsize=(5.5, 2.8))
        axes.bar(names, values, color="#4c72b0")
        if report["fleiss_kappa"] is not None:
            axes.axhline(report["fleiss_kappa"], color="#c44e52", lw=1, label="overall κ")
            if report["fleiss_kappa_ci"]:
                low, high = report["fleiss_kappa_ci"]
                axes.axhspan(low, high, color="#c44e52", alpha=0.15, label="95% CI")
            axes.legend(frameon=False, loc="upper right", ncols=2)
        axes.set_ylabel("Fleiss' κ")
        axes.set_ylim(min([0.0, *values]), 1.1)
        axes.set_title("Agreement per label")
        return _svg(figure)


def share_histogram_svg(report: dict) -> str:
    """Histogram of the winning label's share of each clip's votes, with the single-label line."""
    hist = report["winning_share_histogram"]
    with plt.rc_context(_STYLE):
        figure, axes = plt.subplots(figsize=(5.5, 2.8))
        if hist["counts"]:
            edges = hist["edges"]
            widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
            axes.bar(
                edges[:-1],
                hist["counts"],
                width=widths,
                align="edge",
                color="#55a868",
                edgecolor="white",
            )
        per_clip = report.get("annotations_per_clip")
        if per_clip:
            threshold = report["single_label_min_votes"] / per_clip
            axes.axvline(threshold, color="#c44e52", lw=1, ls="--", label="single-label rule")
            axes.legend(frameon=False, loc="upper left")
        axes.set_xlim(0, 1)
        axes.set_xlabel("winning share of the votes")
        axes.set_ylabel("clips")
        axes.set_title("How strongly clips agree")
        return _svg(figure)


def annotator_scatter_svg(report: dict) -> str:
    """Each annotator's agreement with the others' majority against labels given; flagged red."""
    rows = [r for r in report["annotators"] if r["agreement_with_others_majority"] is not None]
    with plt.rc_context(_STYLE):
        figure, axes = plt.subplots(figsize=(5.5, 2.8))
        for flagged, color, text in ((False, "#4c72b0", "annotator"), (True, "#c44e52", "flagged")):
            chosen = [r for r in rows if r["flagged"] is flagged]
            if chosen:
                axes.scatter(
                    [r["n_labels"] for r in chosen],
                    [r["agreement_with_others_majority"] for r in chosen],
                    s=14,
                    color=color,
                    label=text,
                )
        if rows:
            axes.legend(frameon=False, loc="lower right")
        axes.set_ylim(0, 1)
        axes.set_xlabel("labels given")
        axes.set_ylabel("agreement with others' majority")
        axes.set_title("Annotators")
        return _svg(figure)


def report_plots(report: dict) -> dict[str, str]:
    return {
        "kappa_per_label": kappa_per_label_svg(report),
        "share_histogram": share_histogram_svg(report),
        "annotators": annotator_scatter_svg(report),
    }
