"""convertToMD on PDF, DOCX, XLSX and PPTX: generated documents with known text and a known
table, from a local path and from a loopback URL, and hostile documents that must end
within the caps (each test here fails if its cap is removed)."""

from __future__ import annotations

import io
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from yait_aichain.errors import (
    CancelledError,
    DocumentError,
    DocumentTimeoutError,
    DocumentTooLargeError,
    EncryptedDocumentError,
    MissingDependencyError,
    NoTextLayerError,
    UnsupportedContentTypeError,
)
from yait_aichain.tools import convertToMD
from ._pageserver import PageServer

from . import _docgen as gen

pytest.importorskip("pypdfium2", reason="the [documents] extra is part of the test extra")

TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
REPORTS = {"pdf": gen.report_pdf, "docx": gen.report_docx, "xlsx": gen.report_xlsx,
           "pptx": gen.report_pptx}
XLSX_TABLE = gen.TABLE_MD.replace("1.20", "1.2").replace("0.80", "0.8")  # numbers, as typed


@pytest.fixture(scope="module")
def reports():
    return {kind: make() for kind, make in REPORTS.items()}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("AICHAIN_ALLOW_PRIVATE_URLS", "1")  # the tests' loopback opt-in
    with PageServer() as srv:
        yield srv


def _write(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    return name


def _check_report(kind, md):
    """The text in reading order and the table as a Markdown table."""
    table = XLSX_TABLE if kind == "xlsx" else gen.TABLE_MD
    assert table in md, md
    title = {"pdf": "# Quarterly Report", "docx": "# Quarterly Report",
             "pptx": "## Slide 1: Quarterly Report", "xlsx": "## Fruit"}[kind]
    assert md.startswith(title) or md.startswith("<!-- page 1 -->\n\n" + title), md
    if kind == "xlsx":
        assert md.index("## Fruit") < md.index(table) < md.index("## Notes") < md.index(gen.INTRO)
        return
    assert md.index(title) < md.index(gen.INTRO) < md.index(table) < md.index(gen.OUTRO)


@pytest.mark.parametrize("kind", list(REPORTS))
def test_report_from_a_local_file(kind, reports, tmp_path):
    name = _write(tmp_path, f"report.{kind}", reports[kind])
    _check_report(kind, convertToMD(root=tmp_path).run(name))


@pytest.mark.parametrize("kind", list(REPORTS))
def test_report_from_a_loopback_url(kind, reports, server):
    server.add_page(f"/report.{kind}", reports[kind], content_type=TYPES[kind])
    server.add_page(f"/download/{kind}", reports[kind], content_type="application/octet-stream")
    server.add_page(f"/untyped/{kind}", reports[kind], content_type=None)
    tool = convertToMD()
    for path in (f"/report.{kind}", f"/download/{kind}", f"/untyped/{kind}"):
        _check_report(kind, tool.run(server.url(path)))


def test_pdf_page_markers_heading_and_paragraph(reports, tmp_path):
    md = convertToMD(root=tmp_path).run(_write(tmp_path, "r.pdf", reports["pdf"]))
    assert md.count("<!-- page ") == 2 and md.index("<!-- page 2 -->") < md.index(gen.OUTRO)
    # two lines of one paragraph are joined; the larger line is a heading
    assert f"{gen.INTRO} It continues on a second line of the same paragraph." in md


def test_pptx_slides_are_headings_in_order(tmp_path):
    md = convertToMD(root=tmp_path).run(_write(tmp_path, "d.pptx", gen.report_pptx(4)))
    positions = [md.index(f"## Slide {n}") for n in range(1, 5)]
    assert positions == sorted(positions) and "## Slide 3: Slide number 3" in md


# --------------------------------------------------- by the bytes, never by the name


def test_the_extension_alone_decides_nothing(reports, tmp_path):
    tool = convertToMD(root=tmp_path)
    with pytest.raises(UnsupportedContentTypeError, match="declared a PDF document but"):
        tool.run(_write(tmp_path, "fake.pdf", b"<html><p>not a pdf</p></html>"))
    with pytest.raises(DocumentError, match="bytes are a Word"):
        tool.run(_write(tmp_path, "wrong.xlsx", reports["docx"]))
    # a PDF under a neutral name is still a PDF
    _check_report("pdf", tool.run(_write(tmp_path, "download.bin", reports["pdf"])))


def test_a_content_type_the_bytes_contradict_is_refused(reports, server):
    server.add_page("/lie", b"<html><body>hi</body></html>", content_type="application/pdf")
    server.add_page("/blob", b"\x00\x01 binary junk", content_type="application/octet-stream")
    server.add_page("/zip", _zip({"a.txt": b"x"}), content_type="application/zip")
    server.add_page("/doc", gen.OLE_LEGACY, content_type="application/msword")
    tool = convertToMD()
    with pytest.raises(UnsupportedContentTypeError, match="declared a PDF document but"):
        tool.run(server.url("/lie"))
    server.add_page("/word-as-pdf", gen.report_docx(), content_type="application/pdf")
    with pytest.raises(DocumentError, match="declared a PDF document, but its bytes are a Word"):
        tool.run(server.url("/word-as-pdf"))
    with pytest.raises(UnsupportedContentTypeError, match="not a PDF, DOCX, XLSX or PPTX"):
        tool.run(server.url("/blob"))
    with pytest.raises(UnsupportedContentTypeError, match="zip archive but not"):
        tool.run(server.url("/zip"))
    with pytest.raises(UnsupportedContentTypeError, match="legacy binary Office"):
        tool.run(server.url("/doc"))


def _zip(parts):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(name, body)
    return buf.getvalue()


# -------------------------------------------------------------------- hostile files


def test_fifty_thousand_pages_are_cut_at_max_pages_and_marked(tmp_path):
    name = _write(tmp_path, "huge.pdf", gen.many_pages_pdf(50_000))
    started = time.monotonic()
    md = convertToMD(root=tmp_path, max_pages=200).run(name)
    assert time.monotonic() - started < 15
    assert md.count("Same page again.") == 200
    assert md.endswith("> **Truncated:** converted the first 200 of 50000 pages "
                       "(convertToMD(max_pages=...) raises the cap).")


def test_the_clock_is_checked_between_pages(tmp_path):
    name = _write(tmp_path, "huge.pdf", gen.many_pages_pdf(50_000))
    started = time.monotonic()
    with pytest.raises(DocumentTimeoutError, match=r"ran out of time \(page \d+ of 50000\)"):
        convertToMD(root=tmp_path, max_pages=50_000, timeout=1).run(name)
    assert time.monotonic() - started < 5


def test_a_million_empty_rows_end_within_the_caps(tmp_path):
    name = _write(tmp_path, "rows.xlsx", gen.xlsx_with_empty_rows(1_000_000))
    started = time.monotonic()
    md = convertToMD(root=tmp_path, max_rows=1000).run(name)
    assert time.monotonic() - started < 15
    assert XLSX_TABLE in md
    assert ("> **Truncated:** converted the first 20000 rows of sheet 'Fruit' "
            "(most of them empty)") in md
    with pytest.raises(DocumentTimeoutError, match="sheet 'Fruit'"):
        convertToMD(root=tmp_path, max_rows=1_000_000, timeout=1).run(name)


def test_rows_and_columns_past_the_caps_are_cut_and_marked(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    for r in range(1, 31):
        wb.active.append([f"r{r}c{c}" for c in range(1, 13)])
    buf = io.BytesIO()
    wb.save(buf)
    md = convertToMD(root=tmp_path, max_rows=10, max_columns=5).run(
        _write(tmp_path, "wide.xlsx", buf.getvalue()))
    assert "r10c5" in md and "r11c1" not in md and "r1c6" not in md
    assert "more than 5 columns" in md and "the first 10 non-empty rows" in md


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
def test_a_zip_bomb_is_refused_before_unpacking(kind, reports, tmp_path):
    bomb = gen.rewrite_zip(reports[kind], {}, stream={"media/zeros.bin": (bytes(1 << 20), 110)})
    assert len(bomb) < 1_000_000  # 110 MiB of zeros packed small
    started = time.monotonic()
    with pytest.raises(DocumentTooLargeError, match="over the cap") as info:
        convertToMD(root=tmp_path).run(_write(tmp_path, f"bomb.{kind}", bomb))
    assert info.value.limit == "max_unpacked" and time.monotonic() - started < 5


@pytest.mark.parametrize(("kind", "part"), [("docx", "word/document.xml"),
                                            ("xlsx", "xl/styles.xml")])
def test_xml_parsed_in_one_call_is_capped(kind, part, reports, tmp_path):
    # One library call parses this part with no clock: its size is what bounds the time.
    with zipfile.ZipFile(io.BytesIO(reports[kind])) as z:
        body = z.read(part).decode()
    padded = body.replace("><", ">" + " " * (40 << 20) + "<", 1).encode()
    data = gen.rewrite_zip(reports[kind], {part: padded})
    with pytest.raises(DocumentTooLargeError, match="parsed in one go") as info:
        convertToMD(root=tmp_path).run(_write(tmp_path, f"big.{kind}", data))
    assert info.value.limit == "parsed_xml"


def test_too_many_parts_are_refused(reports, tmp_path):
    data = gen.rewrite_zip(reports["pptx"], {}, {f"junk/{i}.xml": b"<a/>" for i in range(6000)})
    with pytest.raises(DocumentTooLargeError, match="6.* parts") as info:
        convertToMD(root=tmp_path).run(_write(tmp_path, "parts.pptx", data))
    assert info.value.limit == "max_parts"


@pytest.mark.parametrize("depth", [3, 2000])
def test_deeply_nested_tables_end_with_text_or_a_typed_error(depth, tmp_path):
    name = _write(tmp_path, "nested.docx", gen.nested_tables_docx(depth))
    outcome: list[object] = []

    def convert():
        try:
            outcome.append(convertToMD(root=tmp_path).run(name))
        except DocumentError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=convert)
    worker.start()
    worker.join(30)
    assert outcome, "the conversion hung or died"
    if depth == 3:
        assert isinstance(outcome[0], str) and "DEEP-TEXT" in outcome[0]
        assert outcome[0].index("DEEP-TEXT") < outcome[0].index("after the pile")
    else:
        assert isinstance(outcome[0], DocumentError) and "too deeply" in str(outcome[0])


def test_scanned_pdf_says_it_has_no_text_layer(tmp_path):
    with pytest.raises(NoTextLayerError, match="no text layer.*OCR") as info:
        convertToMD(root=tmp_path).run(_write(tmp_path, "scan.pdf", gen.scanned_pdf()))
    assert info.value.format == "pdf" and info.value.source == "scan.pdf"


def test_a_partly_scanned_pdf_keeps_its_text_and_marks_the_image_pages(tmp_path):
    text = gen._text_ops([(72, 720, 11, "Typed cover letter.")])
    scan = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    md = convertToMD(root=tmp_path).run(
        _write(tmp_path, "mixed.pdf", gen.pdf_bytes([text, scan], image=True)))
    assert md == ("<!-- page 1 -->\n\nTyped cover letter.\n\n"
                  "<!-- page 2 (no text layer: an image or a blank page) -->")


def test_encrypted_documents_are_a_typed_error(tmp_path, reports):
    tool = convertToMD(root=tmp_path)
    with pytest.raises(EncryptedDocumentError, match="password-protected PDF"):
        tool.run(_write(tmp_path, "locked.pdf", gen.encrypted_pdf()))
    with pytest.raises(EncryptedDocumentError, match="password-protected Office"):
        tool.run(_write(tmp_path, "locked.docx", gen.OLE_ENCRYPTED))
    flagged = bytearray(reports["xlsx"])
    flagged[6] |= 1  # the first local header's "encrypted" flag ...
    at = flagged.find(b"PK\x01\x02")
    flagged[at + 8] |= 1  # ... and its central directory entry
    with pytest.raises(EncryptedDocumentError, match="encrypted parts"):
        tool.run(_write(tmp_path, "flagged.xlsx", bytes(flagged)))


@pytest.mark.parametrize("kind", list(REPORTS))
def test_damaged_documents_are_a_typed_error(kind, reports, tmp_path):
    data = reports[kind]
    damaged = {
        "pdf": lambda: b"%PDF-1.7\n" + bytes(range(256)) * 4,
        "docx": lambda: data[: len(data) // 2],
        "xlsx": lambda: gen.rewrite_zip(data, {"xl/workbook.xml": b"<workbook><sheets"}),
        "pptx": lambda: gen.rewrite_zip(data, {"ppt/presentation.xml": b"<p:presentation"}),
    }[kind]()
    with pytest.raises(DocumentError) as info:
        convertToMD(root=tmp_path).run(_write(tmp_path, f"bad.{kind}", damaged))
    assert info.value.source == f"bad.{kind}"


# ------------------------------------------------------------- nothing is executed


def test_external_links_and_embedded_objects_are_never_fetched(reports, server, tmp_path):
    server.add_page("/pixel.png", b"\x89PNG", content_type="image/png")
    url = server.url("/pixel.png")
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-FILE")
    tool = convertToMD(root=tmp_path)
    docx_md = tool.run(_write(tmp_path, "links.docx", gen.docx_with_external_image(url)))
    xlsx_md = tool.run(_write(tmp_path, "links.xlsx", gen.xlsx_with_external_link(url)))
    pptx_md = tool.run(_write(tmp_path, "links.pptx", gen.pptx_with_external_picture(url)))
    assert server.hits["/pixel.png"] == 0  # nothing was fetched
    for md in (docx_md, xlsx_md, pptx_md):
        assert "SECRET-FILE" not in md and "data:" not in md and "Quarterly" in md
    assert "=SUM(" not in xlsx_md  # formulas are not evaluated: cached values only


# ------------------------------------------------------------- threads, extra, Pool


def test_many_threads_convert_documents_at_once(reports, tmp_path):
    for kind, data in reports.items():
        _write(tmp_path, f"r.{kind}", data)
    tool = convertToMD(root=tmp_path)
    names = [f"r.{kind}" for kind in REPORTS] * 6
    expected = {name: tool.run(name) for name in set(names)}
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(tool.run, names))
    assert results == [expected[n] for n in names]


def test_a_missing_extra_is_named(reports, tmp_path, monkeypatch):
    for module in ("pypdfium2", "mammoth", "openpyxl", "pptx"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    tool = convertToMD(root=tmp_path)
    for kind, package in [("pdf", "pypdfium2"), ("docx", "mammoth"), ("xlsx", "openpyxl"),
                          ("pptx", "python-pptx")]:
        with pytest.raises(MissingDependencyError,
                           match=r'pip install "yait-aichain\[documents\]"') as info:
            tool.run(_write(tmp_path, f"r.{kind}", reports[kind]))
        assert info.value.extra == "documents" and info.value.package == package
        assert isinstance(info.value, ImportError)
    assert tool.run("<p>pages still work</p>") == "pages still work"


def test_a_pool_converts_a_mix_and_keeps_every_item(reports, tmp_path):
    from yait_aichain.pool import DONE, FAILED, Pool

    names = [_write(tmp_path, f"r.{kind}", data) for kind, data in reports.items()]
    names.append(_write(tmp_path, "scan.pdf", gen.scanned_pdf()))
    pool = Pool(convertToMD(root=tmp_path), [{"input": n} for n in names], max_flows=5)
    out = pool.run()
    for kind, md in zip(REPORTS, out[:4], strict=True):
        _check_report(kind, md)
    assert pool.status[DONE] == 4 and pool.status[FAILED] == 1
    assert isinstance(pool.records[4].error, NoTextLayerError)


def test_a_cancelled_run_stops_between_pages(tmp_path, monkeypatch):
    from yait_aichain.tools._documents import _limits

    name = _write(tmp_path, "huge.pdf", gen.many_pages_pdf(2000))
    calls = {"n": 0}

    class Scope:
        def check(self):
            calls["n"] += 1
            if calls["n"] > 5:
                raise CancelledError("stopped")

        def remaining(self):
            return None

    monkeypatch.setattr(_limits, "current", lambda: Scope())
    with pytest.raises(CancelledError):
        convertToMD(root=tmp_path, max_pages=2000).run(name)
    assert calls["n"] == 6


@pytest.mark.parametrize("kwargs", [{"max_pages": 0}, {"max_rows": -1}, {"max_columns": 1.5},
                                    {"max_pages": True}])
def test_bad_document_caps_fail_at_construction(kwargs):
    from yait_aichain.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=next(iter(kwargs))):
        convertToMD(**kwargs)


def test_cell_text_cannot_inject_markup_or_break_the_table(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.append(["a | b", "<script>alert(1)</script>", "[x](javascript:alert(1))"])
    wb.active.append(["line one\nline two", "&amp;", "ok"])
    buf = io.BytesIO()
    wb.save(buf)
    md = convertToMD(root=tmp_path).run(_write(tmp_path, "inject.xlsx", buf.getvalue()))
    table = md.split("\n\n", 1)[1]
    assert table == ("| a \\| b | \\<script>alert(1)\\</script> | \\[x](javascript:alert(1)) |\n"
                     "| --- | --- | --- |\n"
                     "| line one line two | \\&amp; | ok |")
