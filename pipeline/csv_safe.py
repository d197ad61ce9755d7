"""CSV cells a spreadsheet will not run: the one rule every CSV the app writes follows.

A spreadsheet (Excel, LibreOffice, Google Sheets) reads a cell that starts with ``=``, ``+``,
``-`` or ``@`` as a formula, and one that starts with a tab or a carriage return after skipping
it; a movie title ``=HYPERLINK(…)`` or a username ``-2+3`` would then run in whoever opens the
export. Following OWASP's advice on CSV injection, such a *text* cell is written with a leading
single quote (``'=HYPERLINK(…)``), which spreadsheets show as text and do not evaluate. Numbers
the app writes as numbers (``int``, ``float``, ``Decimal``), negative ones included, are left
alone; so is ``None`` (an empty cell). The rule is idempotent: a cell that already starts with
the quote is left as it is.

The characters are listed once, in :data:`DANGEROUS`, and used by

- :func:`neutralise`, for one cell in Python;
- :func:`writer` and :class:`DictWriter`, ``csv`` writers that neutralise every text cell (and
  quote any cell holding a carriage return or line feed, as PostgreSQL's ``COPY … CSV`` does,
  whatever the line terminator: a bare CR would otherwise start a new row in some readers);
- :func:`sql_neutralise`, the same rule as a SQL expression, for a database that writes the
  CSV itself (PostgreSQL's ``COPY … TO STDOUT WITH CSV``).

Pure Python, no imports of the project: ``labeling`` and ``ml`` both use it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

# The leading characters that make a spreadsheet evaluate a cell.
DANGEROUS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def neutralise(value: Any) -> Any:
    """``value`` as a CSV cell a spreadsheet will not run: a ``str`` starting with one of
    :data:`DANGEROUS` gets a leading ``'``; anything else (numbers, None, safe text) is returned
    unchanged."""
    if isinstance(value, str) and value[:1] in DANGEROUS:
        return QUOTE + value
    return value


def neutralise_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of ``row`` through :func:`neutralise`."""
    return [neutralise(value) for value in row]


class _Writer:
    """A ``csv.writer`` that neutralises text cells and quotes every cell holding CR or LF.

    ``csv`` quotes a cell holding a character of the line terminator, so a row with CR or LF in
    a text cell goes through a second writer whose terminator is ``\r\n``, and that row's
    ``\r\n`` is replaced by the terminator asked for. Same interface as ``csv.writer``'s
    objects: ``writerow``, ``writerows``, ``dialect``.
    """

    def __init__(self, f, dialect="excel", **fmtparams):
        self._f = f
        self._plain = csv.writer(f, dialect, **fmtparams)
        self.lineterminator = self._plain.dialect.lineterminator
        # The characters ``csv`` would leave unquoted with this terminator.
        self._breaks = [c for c in "\r\n" if c not in self.lineterminator]
        self._buffer = io.StringIO()
        self._quoting = csv.writer(self._buffer, dialect, **{**fmtparams, "lineterminator": "\r\n"})

    @property
    def dialect(self):
        return self._plain.dialect

    def writerow(self, row: Iterable[Any]) -> Any:
        cells = [neutralise(value) for value in row]
        if not any(
            isinstance(value, str) and char in value for value in cells for char in self._breaks
        ):
            return self._plain.writerow(cells)
        self._quoting.writerow(cells)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return self._f.write(text[:-2] + self.lineterminator)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(f, dialect="excel", **fmtparams) -> _Writer:
    """Like ``csv.writer(f, dialect, **fmtparams)``, but every text cell goes through
    :func:`neutralise` and every cell holding CR or LF is quoted."""
    return _Writer(f, dialect, **fmtparams)


class DictWriter(csv.DictWriter):
    """Like ``csv.DictWriter``, but written through :func:`writer` (the header too)."""

    def __init__(self, f, fieldnames, restval="", extrasaction="raise", dialect="excel", **kw):
        super().__init__(f, fieldnames, restval, extrasaction, dialect, **kw)
        self.writer = writer(f, dialect, **kw)

    def writerow(self, rowdict: Mapping[str, Any]):
        return self.writer.writerow(self._dict_to_list(rowdict))

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]):
        return self.writer.writerows(map(self._dict_to_list, rowdicts))


def _sql_char(char: str) -> str:
    if char.isprintable():
        return "'" + char.replace("'", "''") + "'"
    return f"chr({ord(char)})"  # a tab or CR, whatever the string-literal settings


def sql_neutralise(expression: str) -> str:
    """:func:`neutralise` as SQL: a text ``expression`` (SQL text the caller writes, e.g.
    ``"m.title"``, never user input) wrapped so that a value starting with one of
    :data:`DANGEROUS` gets a leading ``'``; NULL stays NULL. Standard SQL plus ``chr`` (as in
    PostgreSQL)."""
    chars = ", ".join(_sql_char(char) for char in DANGEROUS)
    return (
        f"CASE WHEN substr({expression}, 1, 1) IN ({chars}) "
        f"THEN {_sql_char(QUOTE)} || {expression} ELSE {expression} END"
    )
