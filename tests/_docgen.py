"""Documents generated for the tests: PDF, DOCX, XLSX and PPTX with known text and a known
table, and hostile ones (huge page counts, zip bombs, a million empty rows, deep nesting,
encryption, scans, damage). Nothing here is a binary blob from elsewhere.

PDFs are written by hand (a few objects and an exact xref table), so a 50,000-page file
costs a few megabytes and no library; reportlab is used only to encrypt one.
"""

from __future__ import annotations

import io
import re
import zipfile

TABLE = [["Name", "Qty", "Price"], ["apple", "3", "1.20"], ["pear", "5", "0.80"]]
TABLE_MD = ("| Name | Qty | Price |\n| --- | --- | --- |\n| apple | 3 | 1.20 |\n"
            "| pear | 5 | 0.80 |")
INTRO = "The quarterly report opens here."
OUTRO = "The report closes with this line."


# ------------------------------------------------------------------------------ PDF


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _text_ops(lines: list[tuple[float, float, float, str]]) -> bytes:
    """One BT/ET block per run: (x, y, font size, text)."""
    ops = [f"BT /F1 {size} Tf {x} {y} Td ({_pdf_escape(text)}) Tj ET"
           for x, y, size, text in lines]
    return "\n".join(ops).encode("latin-1")


def pdf_bytes(pages: list[bytes], *, image: bool = False, shared: bool = False) -> bytes:
    """A PDF whose pages draw the given content streams. ``shared``: every page draws the
    first stream (a cheap 50,000-page file); ``image``: pages may draw /Im1, an 8x8 grey
    image, as a scanner would."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    resources = f"/Font << /F1 {font} 0 R >>"
    if image:
        pixels = bytes(range(64))
        im = add(b"<< /Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace "
                 b"/DeviceGray /BitsPerComponent 8 /Length 64 >>\nstream\n" + pixels
                 + b"\nendstream")
        resources += f" /XObject << /Im1 {im} 0 R >>"
    streams = pages[:1] if shared else pages
    contents = [add(b"<< /Length %d >>\nstream\n" % len(s) + s + b"\nendstream")
                for s in streams]
    kids = []
    for i in range(len(pages)):
        content = contents[0] if shared else contents[i]
        kids.append(add(f"<< /Type /Page /Parent {tree} 0 R /MediaBox [0 0 612 792] "
                        f"/Resources << {resources} >> /Contents {content} 0 R >>".encode()))
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {tree} 0 R >>".encode()
    objects[tree - 1] = (f"<< /Type /Pages /Count {len(kids)} /Kids ["
                         + " ".join(f"{k} 0 R" for k in kids) + "] >>").encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, catalog, xref)
    return bytes(out)


def report_pdf() -> bytes:
    """Two pages: a title, a paragraph and the table on page 1; more text on page 2."""
    runs = [(72, 720, 24, "Quarterly Report"), (72, 680, 11, INTRO),
            (72, 664, 11, "It continues on a second line of the same paragraph.")]
    for row, cells in enumerate(TABLE):
        y = 620 - 20 * row
        runs += [(72 + 120 * col, y, 11, text) for col, text in enumerate(cells)]
    first = _text_ops(runs)
    second = _text_ops([(72, 720, 11, OUTRO)])
    return pdf_bytes([first, second])


def titled_pdf(title: str, text: str) -> bytes:
    """One page: ``title`` in large type, then ``text`` (Latin-1 text only)."""
    return pdf_bytes([_text_ops([(72, 720, 24, title), (72, 680, 11, text)])])


def titled_docx(title: str, text: str) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading(title, 1)
    d.add_paragraph(text)
    return _saved(d)


def many_pages_pdf(count: int) -> bytes:
    return pdf_bytes([_text_ops([(72, 720, 11, "Same page again.")])] * count, shared=True)


def scanned_pdf(pages: int = 2) -> bytes:
    draw = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    return pdf_bytes([draw] * pages, image=True)


def encrypted_pdf() -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, encrypt="secret-password")
    c.drawString(72, 720, "TOP SECRET TEXT")
    c.save()
    return buf.getvalue()


# ------------------------------------------------------------------------------ Office


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
# python-docx's template carries 350 KB of styles, which mammoth takes a second to parse;
# the few styles the tests use keep them fast (headings are found by these names).
_STYLES = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:styles xmlns:w="{_W}">'
           + "".join(f'<w:style w:type="paragraph" w:styleId="{sid}"><w:name w:val="{name}"/>'
                     f'</w:style>' for sid, name in [("Normal", "Normal"), ("Title", "Title"),
                                                     ("Heading1", "heading 1"),
                                                     ("Heading2", "heading 2")])
           + '<w:style w:type="table" w:styleId="TableNormal"><w:name w:val="Normal Table"/>'
           + "</w:style></w:styles>")


def _saved(document: object) -> bytes:
    buf = io.BytesIO()
    document.save(buf)  # type: ignore[attr-defined]
    return rewrite_zip(buf.getvalue(), {"word/styles.xml": _STYLES.encode()})


def report_docx() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("Quarterly Report", 1)
    d.add_paragraph(INTRO)
    d.add_heading("Figures", 2)
    table = d.add_table(rows=len(TABLE), cols=len(TABLE[0]))
    for r, row in enumerate(TABLE):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    d.add_paragraph(OUTRO)
    return _saved(d)


def report_xlsx() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Fruit"
    for row in TABLE:
        ws.append([row[0], int(row[1]) if row[1].isdigit() else row[1],
                   float(row[2]) if row[2][0].isdigit() else row[2]])
    wb.create_sheet("Notes").append([INTRO])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def report_pptx(slides: int = 2) -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[5])
    first.shapes.title.text = "Quarterly Report"
    first.shapes.add_textbox(Inches(1), Inches(1.5), Inches(8), Inches(1)).text_frame.text = INTRO
    table = first.shapes.add_table(3, 3, Inches(1), Inches(3), Inches(6), Inches(1.5)).table
    for r, row in enumerate(TABLE):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    for n in range(2, slides + 1):
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = f"Slide number {n}"
        box = slide.shapes.add_textbox(Inches(1), Inches(1.5), Inches(8), Inches(1))
        box.text_frame.text = OUTRO
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


def rewrite_zip(data: bytes, replace: dict[str, bytes], add: dict[str, bytes] | None = None,
                *, stream: dict[str, tuple[bytes, int]] | None = None) -> bytes:
    """A copy of a zip package with parts replaced or added; ``stream`` adds a part made
    of ``chunk`` repeated ``n`` times, written without holding it in memory (a bomb)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename, src.read(info.filename)))
        for name, body in (add or {}).items():
            dst.writestr(name, body)
        for name, (chunk, n) in (stream or {}).items():
            with dst.open(name, "w", force_zip64=True) as fh:
                for _ in range(n):
                    fh.write(chunk)
    return out.getvalue()


def xlsx_with_empty_rows(rows: int, *, explicit: bool = True) -> bytes:
    """The report's sheet declared ``rows`` rows larger: explicit empty (formatted) row
    elements, or (``explicit=False``) only the declared dimension, which openpyxl pads
    with empty rows."""
    base = report_xlsx()
    last = rows + 3
    with zipfile.ZipFile(io.BytesIO(base)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    sheet = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:XFD{last}"/>', sheet)
    if explicit:
        body = "".join(f'<row r="{i}" customFormat="1" s="0"/>' for i in range(4, last + 1))
        sheet = sheet.replace("</sheetData>", body + "</sheetData>")
    return rewrite_zip(base, {"xl/worksheets/sheet1.xml": sheet.encode()})


def nested_tables_docx(depth: int) -> bytes:
    base = report_docx()
    cell_open = "<w:tbl><w:tr><w:tc>"
    cell_close = "<w:p/></w:tc></w:tr></w:tbl>"
    deep = (cell_open * depth + "<w:p><w:r><w:t>DEEP-TEXT</w:t></w:r></w:p>"
            + cell_close * depth)
    with zipfile.ZipFile(io.BytesIO(base)) as z:
        doc = z.read("word/document.xml").decode()
    head, tail = doc.split("<w:body>", 1)
    doc = f"{head}<w:body>{deep}<w:p><w:r><w:t>after the pile</w:t></w:r></w:p>{tail}"
    return rewrite_zip(base, {"word/document.xml": doc.encode()})


# A compound-file header: what legacy .doc/.xls/.ppt files and encrypted OOXML start with.
_OLE_HEADER = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
OLE_LEGACY = _OLE_HEADER + "WordDocument".encode("utf-16-le") + bytes(512)
OLE_ENCRYPTED = (_OLE_HEADER + "EncryptionInfo".encode("utf-16-le") + bytes(64)
                 + "EncryptedPackage".encode("utf-16-le") + bytes(512))

_EXTERNAL_IMAGE = (
    '<w:p><w:r><w:drawing><wp:inline><wp:extent cx="9525" cy="9525"/>'
    '<wp:docPr id="7" name="Linked" descr="a linked picture"/><a:graphic xmlns:a='
    '"http://schemas.openxmlformats.org/drawingml/2006/main"><a:graphicData '
    'uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic xmlns:pic='
    '"http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:nvPicPr>'
    '<pic:cNvPr id="7" name="Linked"/><pic:cNvPicPr/></pic:nvPicPr><pic:blipFill>'
    '<a:blip r:link="{rid}"/></pic:blipFill><pic:spPr/></pic:pic></a:graphicData>'
    '</a:graphic></wp:inline></w:drawing></w:r></w:p>')


def docx_with_external_image(url: str, local: str = "/etc/hostname") -> bytes:
    """The report with two linked (not embedded) pictures: one on a URL, one a local file."""
    base = report_docx()
    with zipfile.ZipFile(io.BytesIO(base)) as z:
        doc = z.read("word/document.xml").decode()
        rels = z.read("word/_rels/document.xml.rels").decode()
    pictures = _EXTERNAL_IMAGE.format(rid="rIdExt1") + _EXTERNAL_IMAGE.format(rid="rIdExt2")
    doc = doc.replace("<w:body>", "<w:body>" + pictures, 1)
    image = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"
    rels = rels.replace("</Relationships>", (
        f'<Relationship Id="rIdExt1" Type="{image}" Target="{url}" TargetMode="External"/>'
        f'<Relationship Id="rIdExt2" Type="{image}" Target="file://{local}" '
        f'TargetMode="External"/></Relationships>'))
    return rewrite_zip(base, {"word/document.xml": doc.encode(),
                              "word/_rels/document.xml.rels": rels.encode()})


def xlsx_with_external_link(url: str) -> bytes:
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(report_xlsx()))
    ws = wb["Fruit"]
    ws["E1"] = "=SUM(B2:B3)"  # no cached value: never evaluated, so nothing shown
    ws["E2"] = f'=WEBSERVICE("{url}")'
    ws["E3"] = "Quarterly figures"
    ws["E3"].hyperlink = url
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def pptx_with_external_picture(url: str) -> bytes:
    from pptx import Presentation
    from pptx.enum.shapes import PROG_ID
    from pptx.util import Inches

    deck = Presentation(io.BytesIO(report_pptx()))
    slide = deck.slides[0]
    slide.shapes.add_ole_object(io.BytesIO(report_xlsx()), PROG_ID.XLSX, Inches(7), Inches(5))
    run = slide.shapes.add_textbox(Inches(1), Inches(6), Inches(4), Inches(1)) \
        .text_frame.paragraphs[0].add_run()
    run.text = "see the figures"
    run.hyperlink.address = url
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()
