"""Reading an uploaded CSV or XLSX file into a header and rows of text cells, refusing anything that could lose
or shift data.

``read_table(data, filename=..., max_bytes=...)`` returns a :class:`Table` or raises :class:`ImportFileError` with a
message an admin can act on. Every cell is text exactly as written: no type inference, so ``0612345678`` keeps its
leading zero and ``NA``, ``None`` or ``null`` stay words. Typing a value is the job of ``prospecting.validation``.

Rules, and why:

- The content decides the format, not the name. A ZIP that holds a workbook is read as XLSX even when named
  ``.csv`` (a table note says so): Excel users rename files, and the workbook is unambiguous. A file named
  ``.xlsx`` that is not a ZIP is refused rather than read as text, since it is often a web page or an old ``.xls``.
- Encoding: a BOM decides (UTF-8, UTF-16, UTF-32); otherwise UTF-16 without BOM is recognised by its NUL bytes,
  then strict UTF-8, then Windows-1252 (a superset of Latin-1 for printable characters). A file mixing UTF-8
  lines and Windows-1252 lines is refused: decoding it either way would garble part of it.
- Delimiter: ``csv.Sniffer`` on the first lines, kept only if the header line really contains it; otherwise the
  candidate (``,`` ``;`` tab ``|``) found most often in the header line outside quotes.
- Line numbers are the line where a record starts, header = line 1 (or the line of the first non-empty row), so
  they match a text editor; a record whose quoted cell spans lines is numbered by its first line. For a workbook
  it is the sheet's row number.
- A row with more or fewer fields than the header, a quote that is never closed, or a control character in a
  cell refuses the whole file, listing up to ``MAX_LISTED_PROBLEMS`` lines: importing the rest would put values
  in the wrong column or store damaged text. Completely empty rows are skipped wherever they are.
- Column names are trimmed; two names equal once trimmed and case-folded are refused. A column without a name is
  dropped when it holds no data and refused when it does.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
from django.utils.translation import gettext, ngettext
from openpyxl.utils import get_column_letter

MAX_LISTED_PROBLEMS = 20
DELIMITERS = ",;\t|"
SNIFF_SAMPLE_LINES = 30
SNIFF_SAMPLE_CHARS = 32_768
BINARY_SAMPLE_BYTES = 8_192
# A workbook is compressed XML that legitimately unpacks to 10 to 20 times its size; a ZIP "bomb" unpacks to
# thousands of times its size. Capping the unpacked size at this multiple of the upload limit, before openpyxl
# reads anything, stops the second without ever refusing the first.
MAX_UNPACK_RATIO = 40

# C0 and C1 control characters other than tab, line feed and carriage return.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_BYTES = frozenset([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_WORKBOOK_EXTENSIONS = (".xlsx", ".xlsm", ".xls")
_BOMS = (
    # UTF-32 LE starts with the UTF-16 LE BOM, so it is tested first.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_FORMAT_LITERALS = re.compile(r'\\|"')
_DIGIT_PATTERN = re.compile(r"[0#][0# \-./()]*")


class ImportFileError(Exception):
    """A file that cannot be imported as a whole; ``message`` says why, ``details`` lists the lines at fault."""

    def __init__(self, message: str, line: int | None = None, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.details = list(details)

    def __str__(self) -> str:
        return "\n".join([self.message, *self.details])


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """The header and data rows of a file; every row has exactly one cell per column."""

    header: list[str]
    rows: list[Row]
    file_format: str  # "csv" or "xlsx"
    encoding: str = ""
    delimiter: str = ""
    notes: list[str] = field(default_factory=list)

    def records(self, header: Sequence[str] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
        """``(line, {column: cell})`` for each row, under ``header`` when given (e.g. canonical column names)."""
        names = list(self.header if header is None else header)
        for row in self.rows:
            yield row.line, dict(zip(names, row.cells, strict=True))


def read_table(data: bytes, *, filename: str, max_bytes: int) -> Table:
    """Read a CSV or XLSX upload into a :class:`Table`; raise :class:`ImportFileError` when it cannot be trusted."""
    if len(data) > max_bytes:
        raise ImportFileError(
            gettext("The file is %(size)s, more than the %(limit)s allowed. Split it into smaller files.")
            % {"size": _megabytes(len(data)), "limit": _megabytes(max_bytes)}
        )
    if not data or data.isspace():
        raise ImportFileError(gettext("The file is empty."))
    if data.startswith(_ZIP_MAGIC):
        return _read_xlsx(data, filename=filename, max_bytes=max_bytes)
    _refuse_known_binary(data, filename)
    text, codec = _decode(data)
    if not text or text.isspace():
        raise ImportFileError(gettext("The file is empty."))
    delimiter = _detect_delimiter(text)
    # Scanning the whole text once is much cheaper than checking 3 million cells when, as usual, it is clean.
    may_have_controls = _CONTROL_CHARS.search(text) is not None
    # The rows are decoded again while parsing, so this full copy of the text is freed before they pile up.
    del text
    lines = io.TextIOWrapper(io.BytesIO(data), encoding=codec, newline="")
    return _read_csv(lines, encoding=codec.removesuffix("-sig"), delimiter=delimiter, check_controls=may_have_controls)


def _megabytes(size: int) -> str:
    return gettext("%(size).1f MB") % {"size": size / 1_000_000}


# Detecting what the bytes are


def _refuse_known_binary(data: bytes, filename: str) -> None:
    """Refuse content that is certainly not a CSV, naming what it is when we can tell."""
    if data.startswith(_OLE2_MAGIC):
        raise ImportFileError(
            gettext(
                "This file is an old-format Excel workbook (.xls) or a password-protected workbook. Open it in "
                "Excel, remove any password and save it as .xlsx or as CSV UTF-8."
            )
        )
    kind = _binary_kind(data)
    if kind:
        raise ImportFileError(gettext("This file is %(kind)s, not a CSV or Excel file.") % {"kind": kind})
    if filename.lower().endswith(_WORKBOOK_EXTENSIONS):
        raise ImportFileError(
            gettext(
                "“%(name)s” is not a valid Excel workbook. If it is a CSV file, rename it to .csv; otherwise open "
                "it in Excel and save it as .xlsx."
            )
            % {"name": filename}
        )
    if _bom_encoding(data) is None and _utf16_without_bom(data) is None and _looks_binary(data):
        raise ImportFileError(gettext("This file is not a text (CSV) file or an Excel workbook."))


def _binary_kind(data: bytes) -> str:
    signatures = (
        (b"\x89PNG\r\n\x1a\n", gettext("a PNG image")),
        (b"\xff\xd8\xff", gettext("a JPEG image")),
        (b"GIF8", gettext("a GIF image")),
        (b"%PDF-", gettext("a PDF document")),
        (b"\x1f\x8b", gettext("a compressed (gzip) archive")),
        (b"Rar!\x1a\x07", gettext("a RAR archive")),
        (b"7z\xbc\xaf\x27\x1c", gettext("a 7-Zip archive")),
        (b"SQLite format 3\x00", gettext("a SQLite database")),
    )
    for magic, kind in signatures:
        if data.startswith(magic):
            return kind
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<table", b"<?xml")):
        return gettext("a web page or XML document")
    return ""


def _looks_binary(data: bytes) -> bool:
    """More than 1 % control bytes (NUL included) in the first 8 KB: no spreadsheet export looks like that.

    A few stray control characters in a text file are reported later, with their line numbers.
    """
    sample = data[:BINARY_SAMPLE_BYTES]
    controls = sum(1 for byte in sample if byte in _CONTROL_BYTES)
    return controls >= 4 and controls * 100 > len(sample)


def _bom_encoding(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 without BOM: in Latin text every other byte is NUL, on the odd side for LE and the even side for BE."""
    sample = data[:1024]
    half = len(sample) // 2
    if half < 2:
        return None
    even_nuls = sample[0::2].count(0) / half
    odd_nuls = sample[1::2].count(0) / half
    if odd_nuls > 0.4 and even_nuls < 0.05:
        return "utf-16-le"
    if even_nuls > 0.4 and odd_nuls < 0.05:
        return "utf-16-be"
    return None


def _decode(data: bytes) -> tuple[str, str]:
    """The text and the codec it was read with."""
    declared = _bom_encoding(data) or _utf16_without_bom(data)
    if declared:
        try:
            return data.decode(declared), declared
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                gettext("The file says it is %(encoding)s but is damaged: some characters cannot be read.")
                % {"encoding": declared.removesuffix("-sig").upper()}
            ) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    mixed = _mixed_encoding_lines(data)
    if mixed:
        raise ImportFileError(
            gettext(
                "The file mixes two character encodings (UTF-8 on line %(utf8)d, Windows-1252 on line "
                "%(ansi)d), so accented letters would be garbled. Save it again as CSV UTF-8."
            )
            % {"utf8": mixed[0], "ansi": mixed[1]},
            line=mixed[1],
        )
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, utf8_error.start) + 1
        raise ImportFileError(
            gettext(
                "The file's character encoding is not recognised (line %(line)d cannot be read as UTF-8 or "
                "Windows-1252). Save it as CSV UTF-8 and try again."
            )
            % {"line": line},
            line=line,
        ) from exc


def _mixed_encoding_lines(data: bytes) -> tuple[int, int] | None:
    """The first line that is valid non-ASCII UTF-8 and the first that is not, when the file has both."""
    first_utf8 = first_other = 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            first_other = first_other or number
        else:
            first_utf8 = first_utf8 or number
        if first_utf8 and first_other:
            return first_utf8, first_other
    return None


# CSV


def _read_csv(lines: Iterable[str], *, encoding: str, delimiter: str, check_controls: bool) -> Table:
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[Row] = []
    problems: list[tuple[int, str]] = []
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "field larger" in str(exc) or "end of data" in str(exc):
                problems.append((start, _unclosed_quote_problem(start)))
                break  # everything after an unclosed quote is part of one cell: nothing more to check
            problems.append((start, gettext('line %(line)d: a quote (") is misplaced inside a cell') % {"line": start}))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header, header_line = cells, start
            if check_controls:
                problems.extend(_control_problems(start, cells, cells))
            continue
        if len(cells) != len(header):
            problems.append((start, _ragged_problem(start, len(header), len(cells))))
            continue
        if check_controls:
            problems.extend(_control_problems(start, cells, header))
        rows.append(Row(start, tuple(cells)))
    if header is None:
        raise ImportFileError(gettext("The file is empty."))
    return _finish_table(
        header,
        header_line,
        rows,
        problems,
        file_format="csv",
        encoding=encoding,
        delimiter=delimiter,
    )


def _unclosed_quote_problem(line: int) -> str:
    return gettext(
        'line %(line)d: a quoted cell starts here and its closing quote (") is missing, or a cell is longer '
        "than %(limit)s characters"
    ) % {"line": line, "limit": f"{csv.field_size_limit():,}"}


def _ragged_problem(line: int, expected: int, got: int) -> str:
    return gettext("line %(line)d: expected %(expected)d fields, got %(got)d") % {
        "line": line,
        "expected": expected,
        "got": got,
    }


def _detect_delimiter(text: str) -> str:
    sample = _sample(text)
    header_line = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {delimiter: _count_outside_quotes(header_line, delimiter) for delimiter in DELIMITERS}
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    if counts.get(sniffed):
        return sniffed
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    if counts[best]:
        return best
    # One column: choose a delimiter that never occurs, so that no value gets split.
    return next((delimiter for delimiter in DELIMITERS if delimiter not in sample), ",")


def _sample(text: str) -> str:
    end = 0
    for _ in range(SNIFF_SAMPLE_LINES):
        newline = text.find("\n", end, SNIFF_SAMPLE_CHARS)
        if newline < 0:
            break
        end = newline + 1
    return text[: end or SNIFF_SAMPLE_CHARS]


def _count_outside_quotes(line: str, delimiter: str) -> int:
    count, quoted = 0, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count


# XLSX


def _read_xlsx(data: bytes, *, filename: str, max_bytes: int) -> Table:
    notes: list[str] = []
    _check_workbook_archive(data, max_bytes=max_bytes)
    if not filename.lower().endswith((".xlsx", ".xlsm")):
        notes.append(
            gettext("“%(name)s” is an Excel workbook despite its name; it was read as a workbook.") % {"name": filename}
        )
    damaged = gettext("The workbook cannot be opened: it is damaged or not an Excel .xlsx file.")
    with warnings.catch_warnings():
        # openpyxl warns about styles and extensions it ignores; they do not change cell values.
        warnings.simplefilter("ignore")
        try:
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:
            raise ImportFileError(damaged) from exc
        try:
            return _read_first_sheet(workbook, notes)
        except ImportFileError:
            raise
        except Exception as exc:
            raise ImportFileError(damaged) from exc
        finally:
            workbook.close()


def _check_workbook_archive(data: bytes, *, max_bytes: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            names = {entry.filename for entry in entries}
            mimetype = archive.read("mimetype") if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ImportFileError(gettext("The file is a damaged ZIP archive or Excel workbook.")) from exc
    if b"opendocument.spreadsheet" in mimetype:
        raise ImportFileError(
            gettext("OpenDocument spreadsheets (.ods) are not supported. Save the file as .xlsx or as CSV UTF-8.")
        )
    if "[Content_Types].xml" not in names or not any(name.startswith("xl/") for name in names):
        raise ImportFileError(gettext("This file is a ZIP archive or another document, not an Excel workbook."))
    if sum(entry.file_size for entry in entries) > max_bytes * MAX_UNPACK_RATIO:
        raise ImportFileError(
            gettext("The workbook expands to too much data once unpacked. Save it as CSV UTF-8 and try again.")
        )


def _read_first_sheet(workbook: openpyxl.Workbook, notes: list[str]) -> Table:
    sheets = workbook.worksheets
    if not sheets:
        raise ImportFileError(gettext("The workbook has no sheet."))
    sheet = sheets[0]
    if len(sheets) > 1:
        notes.append(
            ngettext(
                "Only the first sheet (“%(sheet)s”) was read; the workbook has %(count)d sheet.",
                "Only the first sheet (“%(sheet)s”) was read; the workbook has %(count)d sheets.",
                len(sheets),
            )
            % {"sheet": sheet.title, "count": len(sheets)}
        )
    # The size a workbook declares can be wrong; trusting it would silently drop rows past the declared end.
    sheet.reset_dimensions()
    header: list[str] | None = None
    header_line = 0
    lines: list[tuple[int, list[str]]] = []
    for number, cells in enumerate(sheet.iter_rows(), start=1):
        texts = [_cell_text(cell) for cell in cells]
        while texts and not texts[-1]:
            texts.pop()
        if not any(text.strip() for text in texts):
            continue
        if header is None:
            header, header_line = texts, number
        else:
            lines.append((number, texts))
    if header is None:
        raise ImportFileError(gettext("The first sheet (“%(sheet)s”) is empty.") % {"sheet": sheet.title})
    # A sheet has no ragged rows: a short row has empty cells, a long one has values in an unnamed column.
    width = max([len(header), *(len(texts) for _, texts in lines)])
    header = header + [""] * (width - len(header))
    rows = [Row(number, tuple(texts + [""] * (width - len(texts)))) for number, texts in lines]
    problems = [problem for row in [Row(header_line, tuple(header)), *rows] for problem in _row_controls(row, header)]
    return _finish_table(header, header_line, rows, problems, file_format="xlsx", notes=notes)


def _row_controls(row: Row, header: Sequence[str]) -> list[tuple[int, str]]:
    if not _CONTROL_CHARS.search("\t".join(row.cells)):
        return []
    return _control_problems(row.line, row.cells, header)


def _cell_text(cell: Any) -> str:
    """A cell's value as the text a user reads in Excel, without losing digits."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return _format_digits(value, cell.number_format)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return _format_digits(int(value), cell.number_format)
        # Excel shows at most 15 significant digits; more would only show binary rounding noise.
        return format(Decimal(format(value, ".15g")), "f")
    if isinstance(value, datetime):
        if value.microsecond:
            value = (value + timedelta(microseconds=500_000)).replace(microsecond=0)
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _format_digits(number: int, number_format: str | None) -> str:
    """Apply a digits-only number format such as ``00000`` (postal codes) or ``0# ## ## ## ##`` (French phones).

    These formats only add leading zeros and separators, so the text keeps what the user sees without changing
    the number. Any other format (thousands, decimals, currency, percent) leaves the plain number.
    """
    pattern = _FORMAT_LITERALS.sub("", number_format or "")
    if number < 0 or not _DIGIT_PATTERN.fullmatch(pattern) or pattern.count(".") == 1:
        return str(number)
    slots = sum(char in "0#" for char in pattern)
    digits = str(number)
    overflow, remaining = digits[: max(len(digits) - slots, 0)], list(digits[-slots:])
    placed = []
    for char in reversed(pattern):
        if char not in "0#":
            placed.append(char)
        elif remaining:
            placed.append(remaining.pop())
        elif char == "0":
            placed.append("0")
    return (overflow + "".join(reversed(placed))).lstrip(" ")


# Checks shared by both formats


def _control_problems(line: int, cells: Sequence[str], header: Sequence[str]) -> list[tuple[int, str]]:
    problems = []
    for index, cell in enumerate(cells):
        match = _CONTROL_CHARS.search(cell)
        if match:
            name = header[index].strip() if index < len(header) else ""
            problems.append(
                (
                    line,
                    gettext("line %(line)d, column “%(column)s”: control character U+%(code)04X is not allowed")
                    % {"line": line, "column": name or index + 1, "code": ord(match.group())},
                )
            )
    return problems


def _finish_table(
    header: list[str],
    header_line: int,
    rows: list[Row],
    problems: list[tuple[int, str]],
    *,
    file_format: str,
    encoding: str = "",
    delimiter: str = "",
    notes: list[str] | None = None,
) -> Table:
    names = [name.strip() for name in header]
    _refuse_duplicate_names(names, header_line)
    _refuse_problems(problems)
    names, rows = _drop_unnamed_empty_columns(names, rows, file_format=file_format)
    if not rows:
        raise ImportFileError(
            gettext("The file has column names (line %(line)d) but no data rows.") % {"line": header_line},
            line=header_line,
        )
    return Table(names, rows, file_format, encoding=encoding, delimiter=delimiter, notes=notes or [])


def _refuse_duplicate_names(names: Sequence[str], header_line: int) -> None:
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        if name:
            positions.setdefault(name.casefold(), []).append(index)
    duplicates = [indexes for indexes in positions.values() if len(indexes) > 1]
    if not duplicates:
        return
    details = [
        gettext("“%(name)s” is in columns %(columns)s")
        % {"name": names[indexes[0]], "columns": ", ".join(str(index + 1) for index in indexes)}
        for indexes in duplicates
    ]
    raise ImportFileError(
        ngettext(
            "A column name is used twice (line %(line)d); rename or remove one of the columns so that their values "
            "are not mixed up:",
            "%(count)d column names are used more than once (line %(line)d); rename or remove the extra columns so "
            "that their values are not mixed up:",
            len(duplicates),
        )
        % {"count": len(duplicates), "line": header_line},
        line=header_line,
        details=details,
    )


def _refuse_problems(problems: list[tuple[int, str]]) -> None:
    if not problems:
        return
    lines = sorted({line for line, _ in problems})
    details = [message for _, message in sorted(problems, key=lambda problem: problem[0])[:MAX_LISTED_PROBLEMS]]
    if len(problems) > MAX_LISTED_PROBLEMS:
        hidden = len(problems) - MAX_LISTED_PROBLEMS
        details.append(
            ngettext("… and %(count)d more problem", "… and %(count)d more problems", hidden) % {"count": hidden}
        )
    raise ImportFileError(
        ngettext(
            "Nothing was imported: %(count)d line has a problem that would put values in the wrong column or "
            "store damaged text. Fix it and upload the file again.",
            "Nothing was imported: %(count)d lines have problems that would put values in the wrong column or "
            "store damaged text. Fix them and upload the file again.",
            len(lines),
        )
        % {"count": len(lines)},
        line=lines[0],
        details=details,
    )


def _drop_unnamed_empty_columns(names: list[str], rows: list[Row], *, file_format: str) -> tuple[list[str], list[Row]]:
    unnamed = [index for index, name in enumerate(names) if not name]
    if not unnamed:
        return names, rows
    for index in unnamed:
        first = next((row.line for row in rows if row.cells[index].strip()), None)
        if first is not None:
            raise ImportFileError(
                gettext("Column %(column)s has no name but holds data (first on line %(line)d). Name it or delete it.")
                % {"column": _column_label(index, file_format), "line": first},
                line=first,
            )
    keep = [index for index, name in enumerate(names) if name]
    return [names[index] for index in keep], [Row(row.line, tuple(row.cells[index] for index in keep)) for row in rows]


def _column_label(index: int, file_format: str) -> str:
    if file_format != "xlsx":
        return str(index + 1)
    return get_column_letter(index + 1)
