"""Reading uploaded CSV and XLSX files: encodings, delimiters, line numbers, and every file that must be refused."""

import io
import zipfile
from datetime import date, datetime

import openpyxl
import pytest

from prospecting.readers import MAX_LISTED_PROBLEMS, ImportFileError, Row, read_table

HEADER = "nom;prénom;téléphone;ville\n"


def read(data: bytes, filename: str = "import.csv", max_bytes: int = 1_000_000):
    return read_table(data, filename=filename, max_bytes=max_bytes)


def refused(data: bytes, filename: str = "import.csv", max_bytes: int = 1_000_000) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        read(data, filename, max_bytes)
    return caught.value


def workbook_bytes(rows, *, formats=None, sheets=("Prospects",)) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = sheets[0]
    for row in rows:
        sheet.append(row)
    for coordinate, number_format in (formats or {}).items():
        sheet[coordinate].number_format = number_format
    for title in sheets[1:]:
        workbook.create_sheet(title)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# Encodings


def test_utf8_with_bom_does_not_leak_into_the_first_column_name():
    table = read("prénom,nom\nÉlodie,Lefèvre\n".encode("utf-8-sig"))
    assert table.header == ["prénom", "nom"]
    assert table.rows == [Row(2, ("Élodie", "Lefèvre"))]
    assert table.encoding == "utf-8"


def test_utf8_without_bom():
    table = read("prénom,nom\nZoë,N’Diaye 🚀\n".encode())
    assert table.rows[0].cells == ("Zoë", "N’Diaye 🚀")


def test_windows_1252_with_semicolons_keeps_accents_euro_and_curly_quotes():
    table = read((HEADER + "Lefèvre;Œdipe;06 12 34 56 78;Saint-Étienne\nL’Hôte;Zoé;;Besançon 12 €\n").encode("cp1252"))
    assert table.encoding == "cp1252"
    assert table.delimiter == ";"
    assert table.header == ["nom", "prénom", "téléphone", "ville"]
    assert table.rows[0].cells == ("Lefèvre", "Œdipe", "06 12 34 56 78", "Saint-Étienne")
    assert table.rows[1].cells == ("L’Hôte", "Zoé", "", "Besançon 12 €")


def test_latin1_is_read():
    table = read("nom;ville\nGaël;Orléans\n".encode("latin-1"))
    assert table.rows[0].cells == ("Gaël", "Orléans")


def test_utf16_with_bom_and_tabs():
    table = read("prénom\tnom\nJosé\tGarcía\n".encode("utf-16"))
    assert table.encoding == "utf-16"
    assert table.delimiter == "\t"
    assert table.rows == [Row(2, ("José", "García"))]


def test_utf16_without_bom_is_recognised():
    table = read("prénom;nom\nJosé;García\n".encode("utf-16-le"))
    assert table.encoding == "utf-16-le"
    assert table.rows[0].cells == ("José", "García")


def test_undecodable_bytes_are_refused_with_their_line():
    error = refused(b"nom;ville\nDupont;Paris\nDurand;\x81\x8d\n")
    assert "encoding is not recognised" in error.message
    assert "line 3" in error.message
    assert error.line == 3


def test_a_file_mixing_utf8_and_windows_1252_is_refused():
    data = "nom;ville\nLefèvre;Paris\n".encode() + "Gaël;Orléans\n".encode("cp1252")
    error = refused(data)
    assert "mixes two character encodings" in error.message
    assert "UTF-8 on line 2, Windows-1252 on line 3" in error.message
    assert error.line == 3


def test_a_damaged_utf16_file_is_refused():
    error = refused("nom;ville\nA;B\n".encode("utf-16") + b"\x00\xd8")
    assert "UTF-16 but is damaged" in error.message


# Delimiters and quoting


def test_comma_separated():
    table = read(b"first name,last name,email\nJean,Dupont,jean@example.com\n")
    assert table.delimiter == ","
    assert table.rows[0].cells == ("Jean", "Dupont", "jean@example.com")


def test_semicolon_file_with_decimal_commas_in_the_data():
    table = read(b"produit;montant;quantite\nStylo;12,50;3\nCahier;1 234,56;10\n")
    assert table.delimiter == ";"
    assert table.rows[1].cells == ("Cahier", "1 234,56", "10")


def test_comma_file_with_semicolons_inside_quoted_values():
    table = read(b'name,notes\nJean,"appel; relance; devis"\nPaul,"a, b"\n')
    assert table.delimiter == ","
    assert table.rows[0].cells == ("Jean", "appel; relance; devis")
    assert table.rows[1].cells == ("Paul", "a, b")


def test_pipe_separated():
    table = read(b"nom|ville\nDupont|Lyon\n")
    assert table.delimiter == "|"
    assert table.rows[0].cells == ("Dupont", "Lyon")


def test_single_column_file_keeps_values_with_commas_whole():
    table = read(b'email\njean@example.com\n"Dupont, Jean"\n')
    assert table.header == ["email"]
    assert [row.cells for row in table.rows] == [("jean@example.com",), ("Dupont, Jean",)]


def test_quoted_cells_with_newlines_delimiters_and_tabs_are_kept_and_numbered_by_their_first_line():
    data = b'nom;notes;ville\nDupont;"ligne 1\nligne 2; suite\n\tfin";Paris\nMartin;"dit ""bonjour""";Lyon\n'
    table = read(data)
    assert table.rows == [
        Row(2, ("Dupont", "ligne 1\nligne 2; suite\n\tfin", "Paris")),
        Row(5, ("Martin", 'dit "bonjour"', "Lyon")),
    ]


def test_windows_and_old_mac_line_endings():
    assert read(b"a;b\r\n1;2\r\n3;4\r\n").rows == [Row(2, ("1", "2")), Row(3, ("3", "4"))]
    assert read(b"a;b\r1;2\r3;4\r").rows == [Row(2, ("1", "2")), Row(3, ("3", "4"))]


# Cells are text as written


def test_cells_are_text_exactly_as_written():
    data = b"tel;code;a;b;c;d;e;f\n0612345678;007;NA;None;null;N/A;;  x  \n"
    assert read(data).rows[0].cells == ("0612345678", "007", "NA", "None", "null", "N/A", "", "  x  ")


def test_empty_rows_anywhere_are_skipped_and_line_numbers_stay_those_of_the_file():
    data = b"\n\nnom;ville\nDupont;Paris\n\n;\n ; \nMartin;Lyon\n;\n\n;\n"
    table = read(data)
    assert table.header == ["nom", "ville"]
    assert table.rows == [Row(4, ("Dupont", "Paris")), Row(8, ("Martin", "Lyon"))]


def test_column_names_are_trimmed():
    assert read(b" nom ;\tville \n1;2\n").header == ["nom", "ville"]


def test_records_pair_each_cell_with_its_column():
    table = read(b"nom;ville\nDupont;Paris\n")
    assert list(table.records()) == [(2, {"nom": "Dupont", "ville": "Paris"})]
    assert list(table.records(["last_name", "city"])) == [(2, {"last_name": "Dupont", "city": "Paris"})]


# Files refused as a whole


@pytest.mark.parametrize("data", [b"", b"   \r\n\n", "\n".encode("utf-8-sig"), b";;;\n;;\n"])
def test_an_empty_file_is_refused(data):
    assert refused(data).message == "The file is empty."


def test_a_file_with_only_a_header_is_refused():
    error = refused(b"nom;ville\n\n;\n")
    assert error.message == "The file has column names (line 1) but no data rows."


def test_a_file_over_the_size_limit_is_refused_before_anything_else():
    error = refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * 3_000_000, max_bytes=2_000_000)
    assert error.message == "The file is 3.0 MB, more than the 2.0 MB allowed. Split it into smaller files."


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", "a PDF document"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
        (b"<!DOCTYPE html><html><table><tr><td>1</td></tr></table>", "a web page or XML document"),
    ],
)
def test_a_known_binary_or_markup_file_is_refused_by_name(data, kind):
    assert refused(data).message == f"This file is {kind}, not a CSV or Excel file."


def test_unknown_binary_content_is_refused():
    data = bytes(range(256)) * 40
    assert refused(data).message == "This file is not a text (CSV) file or an Excel workbook."


def test_an_old_xls_or_password_protected_workbook_is_refused():
    error = refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, filename="clients.xls")
    assert "old-format Excel workbook (.xls)" in error.message


def test_a_csv_renamed_xlsx_is_refused_with_a_hint():
    error = refused(b"nom;ville\nDupont;Paris\n", filename="clients.xlsx")
    assert "“clients.xlsx” is not a valid Excel workbook" in error.message
    assert "rename it to .csv" in error.message


def test_a_damaged_workbook_is_refused():
    data = workbook_bytes([["nom"], ["Dupont"]])
    assert (
        refused(data[:600], filename="clients.xlsx").message == "The file is a damaged ZIP archive or Excel workbook."
    )


def test_a_zip_that_holds_no_workbook_is_refused():
    data = zip_bytes({"readme.txt": b"hello"})
    assert "ZIP archive or another document, not an Excel workbook" in refused(data).message


def test_a_workbook_with_broken_content_is_refused():
    data = zip_bytes({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"not xml"})
    assert refused(data, filename="a.xlsx").message == (
        "The workbook cannot be opened: it is damaged or not an Excel .xlsx file."
    )


def test_an_opendocument_spreadsheet_is_refused():
    data = zip_bytes({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<x/>"})
    assert "OpenDocument spreadsheets (.ods) are not supported" in refused(data, filename="a.ods").message


def test_a_workbook_that_unpacks_to_far_more_than_the_upload_limit_is_refused():
    data = zip_bytes({"[Content_Types].xml": b"<Types/>", "xl/worksheets/sheet1.xml": b"\x00" * 5_000_000})
    error = refused(data, filename="bomb.xlsx", max_bytes=len(data) * 2)
    assert "expands to too much data" in error.message


def test_duplicate_column_names_ignoring_case_and_spaces_are_refused():
    error = refused(b"Email;nom;email ;Nom;ville\na;b;c;d;e\n")
    assert "2 column names are used more than once (line 1)" in error.message
    assert error.details == ["“Email” is in columns 1, 3", "“nom” is in columns 2, 4"]
    assert error.line == 1


def test_a_column_without_a_name_but_with_data_is_refused():
    error = refused(b"nom;;ville\nDupont;;Paris\nMartin;x;Lyon\n")
    assert error.message == "Column 2 has no name but holds data (first on line 3). Name it or delete it."
    assert error.line == 3


def test_an_empty_column_without_a_name_is_dropped():
    table = read(b"nom;;ville;\nDupont;;Paris;\nMartin;;Lyon;\n")
    assert table.header == ["nom", "ville"]
    assert table.rows == [Row(2, ("Dupont", "Paris")), Row(3, ("Martin", "Lyon"))]


def test_rows_with_too_many_or_too_few_fields_refuse_the_file_and_are_listed():
    data = b"nom;prenom;ville\nDupont;Jean;Paris\nMartin;Paul;Lyon;extra\nDurand;Marc\nPetit;Luc;Nice\n"
    error = refused(data)
    assert "2 lines have problems that would put values in the wrong column" in error.message
    assert error.details == ["line 3: expected 3 fields, got 4", "line 4: expected 3 fields, got 2"]
    assert error.line == 3


def test_no_more_than_twenty_problem_lines_are_listed():
    data = b"a;b\n" + b"1;2;3\n" * 25
    error = refused(data)
    assert "25 lines have problems" in error.message
    assert len(error.details) == MAX_LISTED_PROBLEMS + 1
    assert error.details[0] == "line 2: expected 2 fields, got 3"
    assert error.details[-1] == "… and 5 more problems"


def test_a_quote_that_is_never_closed_is_refused_at_the_line_it_opens():
    data = b'nom;notes\nDupont;ok\nMartin;"oubli\nDurand;x\nPetit;y\n'
    error = refused(data)
    assert error.details[0].startswith('line 3: a quoted cell starts here and its closing quote (") is missing')
    assert error.line == 3


def test_a_misplaced_quote_is_refused():
    error = refused(b'nom;taille\nDupont;"15" pouces"\nMartin;17\n')
    assert error.details == ['line 2: a quote (") is misplaced inside a cell']


def test_control_characters_in_cells_are_refused_with_line_and_column():
    data = b"nom;notes\nDupont;ok\nMartin;bip\x07\nDurand;nul\x00\n"
    error = refused(data)
    assert error.details == [
        "line 3, column “notes”: control character U+0007 is not allowed",
        "line 4, column “notes”: control character U+0000 is not allowed",
    ]


def test_a_c1_control_character_from_a_misencoded_file_is_refused():
    error = refused("nom;notes\nDupont;a\u0085b\n".encode())
    assert error.details == ["line 2, column “notes”: control character U+0085 is not allowed"]


# XLSX


def test_workbook_cells_are_read_as_the_text_a_user_sees():
    data = workbook_bytes(
        [
            ["nom", "code postal", "tel", "date", "rdv", "montant", "actif", "vide", "quantite", "petit"],
            [
                "Dupont",
                7500,
                612345678,
                datetime(2024, 3, 1),
                datetime(2024, 3, 1, 14, 30),
                12.5,
                True,
                None,
                3.0,
                1e-7,
            ],
            ["Martin", 13001, "0698765432", date(2024, 1, 2), None, 0.1 + 0.2, False, None, 42, 1234567.125],
        ],
        formats={"B2": "00000", "C2": "0# ## ## ## ##", "F2": "#,##0.00 €"},
    )
    table = read(data, filename="clients.xlsx")
    assert table.file_format == "xlsx"
    assert table.notes == []
    assert table.rows == [
        Row(
            2,
            (
                "Dupont",
                "07500",
                "06 12 34 56 78",
                "2024-03-01",
                "2024-03-01 14:30:00",
                "12.5",
                "TRUE",
                "",
                "3",
                "0.0000001",
            ),
        ),
        Row(3, ("Martin", "13001", "0698765432", "2024-01-02", "", "0.3", "FALSE", "", "42", "1234567.125")),
    ]


def test_workbook_line_numbers_are_sheet_rows_and_empty_rows_are_skipped():
    data = workbook_bytes([[], ["nom", "ville"], ["Dupont", "Paris"], [], [None, None], ["Martin", "Lyon"], []])
    table = read(data, filename="clients.xlsx")
    assert table.header == ["nom", "ville"]
    assert table.rows == [Row(3, ("Dupont", "Paris")), Row(6, ("Martin", "Lyon"))]


def test_short_workbook_rows_are_padded_with_empty_cells():
    table = read(workbook_bytes([["nom", "ville", "pays"], ["Dupont"]]), filename="clients.xlsx")
    assert table.rows == [Row(2, ("Dupont", "", ""))]


def test_a_workbook_value_outside_any_named_column_is_refused():
    error = refused(
        workbook_bytes([["nom", "ville"], ["Dupont", "Paris"], ["Martin", "Lyon", None, "orphelin"]]), "a.xlsx"
    )
    assert error.message == "Column D has no name but holds data (first on line 3). Name it or delete it."


def test_a_workbook_renamed_csv_is_read_as_a_workbook_and_says_so():
    table = read(workbook_bytes([["nom"], ["Dupont"]]), filename="export.csv")
    assert table.rows == [Row(2, ("Dupont",))]
    assert table.notes == ["“export.csv” is an Excel workbook despite its name; it was read as a workbook."]


def test_only_the_first_sheet_is_read_and_a_note_says_so():
    table = read(workbook_bytes([["nom"], ["Dupont"]], sheets=("Clients", "Archive", "Notes")), filename="a.xlsx")
    assert table.notes == ["Only the first sheet (“Clients”) was read; the workbook has 3 sheets."]


def test_an_empty_first_sheet_is_refused():
    error = refused(workbook_bytes([], sheets=("Feuil1", "Données")), filename="a.xlsx")
    assert error.message == "The first sheet (“Feuil1”) is empty."


def test_a_workbook_with_only_a_header_is_refused():
    assert "no data rows" in refused(workbook_bytes([["nom", "ville"]]), filename="a.xlsx").message


def test_duplicate_column_names_in_a_workbook_are_refused():
    error = refused(workbook_bytes([["Email", "EMAIL"], ["a", "b"]]), filename="a.xlsx")
    assert error.details == ["“Email” is in columns 1, 2"]


def test_rows_past_a_wrongly_declared_sheet_size_are_still_read():
    data = workbook_bytes([["nom"], ["Dupont"], ["Martin"], ["Durand"]])
    entries = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            entries[name] = archive.read(name)
    sheet = entries["xl/worksheets/sheet1.xml"]
    assert b'<dimension ref="A1:A4"' in sheet
    entries["xl/worksheets/sheet1.xml"] = sheet.replace(b'<dimension ref="A1:A4"', b'<dimension ref="A1:A2"')
    table = read(zip_bytes(entries), filename="a.xlsx")
    assert [row.cells for row in table.rows] == [("Dupont",), ("Martin",), ("Durand",)]
