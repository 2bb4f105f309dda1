"""Benchmark convertToMD on generated PDF, DOCX, XLSX and PPTX documents.

    python benchmarks/bench_documents.py [--docs 8] [--pages 20] [--rounds 3] [--compare]

Each format gets ``--docs`` documents of ``--pages`` pages, written the way the tests
write them (tests/_docgen.py): a PDF page, a DOCX page (ended by a page break) and a PPTX
slide each hold a heading, prose and a 3x4 table; an XLSX "page" is 50 rows of a sheet.
The documents are converted from local files (no network), once one after the other and
once by 8 threads sharing one convertToMD (as a Pool would). Every cell is the median of
``--rounds`` rounds, the two modes alternating within a round; CPU is the process time of
this process (all threads).

``--compare`` adds the candidate libraries side by side on the same files, reading only
(no layout, no Markdown): for PDF pypdfium2 (used), pypdf and pdfminer.six; for DOCX
mammoth (used) and python-docx; whichever are installed.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import _docgen as gen  # noqa: E402
from yait_aichain.tools import convertToMD  # noqa: E402

PROSE = ("Revenue grew in every region this quarter while costs stayed flat, and the "
         "board asked for a closer look at the pipeline for the next two quarters.")
ROW = ["North", "120", "95", "1.26"]


def pdf(pages: int) -> bytes:
    streams = []
    for p in range(pages):
        runs = [(72, 720, 20, f"Section {p + 1}")]
        runs += [(72, 690 - 14 * k, 10, PROSE[:90]) for k in range(12)]
        for r in range(4):
            runs += [(72 + 110 * c, 480 - 18 * r, 10, text) for c, text in enumerate(ROW)]
        streams.append(gen._text_ops(runs))
    return gen.pdf_bytes(streams)


def docx(pages: int) -> bytes:
    import docx as python_docx

    d = python_docx.Document()
    for p in range(pages):
        d.add_heading(f"Section {p + 1}", 1)
        for _ in range(4):
            d.add_paragraph(PROSE * 2)
        table = d.add_table(rows=4, cols=4)
        for r in range(4):
            for c in range(4):
                table.cell(r, c).text = ROW[c]
        d.add_page_break()
    return gen._saved(d)


def xlsx(pages: int) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Region", "Units", "Returns", "Ratio", "Note"])
    for i in range(50 * pages):
        ws.append([f"Region {i}", i, i % 17, i / 7, "ok"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def pptx(pages: int) -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for p in range(pages):
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = f"Section {p + 1}"
        box = slide.shapes.add_textbox(Inches(1), Inches(1.5), Inches(8), Inches(1))
        box.text_frame.text = PROSE
        table = slide.shapes.add_table(4, 4, Inches(1), Inches(3), Inches(6), Inches(1.5)).table
        for r in range(4):
            for c in range(4):
                table.cell(r, c).text = ROW[c]
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


MAKERS: dict[str, Callable[[int], bytes]] = {"pdf": pdf, "docx": docx, "xlsx": xlsx,
                                             "pptx": pptx}


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _sequential(tool: convertToMD, names: list[str]) -> None:
    for name in names:
        tool.run(name)


def _threaded(tool: convertToMD, names: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(tool.run, names))


def bench_formats(args: argparse.Namespace, root: str) -> None:
    tool = convertToMD(root=root, max_rows=1_000_000, timeout=600)
    print(f"\n### convertToMD, {args.docs} documents x {args.pages} pages per format, "
          f"median of {args.rounds} rounds\n")
    print("| format | KB/doc | mode | pages/s | CPU ms/page | wall s |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for kind, make in MAKERS.items():
        data = make(args.pages)
        names = []
        for i in range(args.docs):
            names.append(f"{kind}-{i}.{kind}")
            with open(os.path.join(root, names[-1]), "wb") as fh:
                fh.write(data)
        tool.run(names[0])  # imports and warm-up outside the timings
        results: dict[str, list[tuple[float, float]]] = {"sequential": [], "8 threads": []}
        for r in range(args.rounds):
            order = [("sequential", _sequential), ("8 threads", _threaded)]
            for mode, run in order if r % 2 == 0 else order[::-1]:
                results[mode].append(_timed(lambda run=run, names=names: run(tool, names)))
        pages = args.docs * args.pages
        for mode, samples in results.items():
            wall = statistics.median(w for w, _ in samples)
            cpu = statistics.median(c for _, c in samples)
            print(f"| {kind} | {len(data) // 1024} | {mode} | {pages / wall:.0f} | "
                  f"{1000 * cpu / pages:.2f} | {wall:.2f} |")


def _pdfium(data: bytes) -> int:
    import pypdfium2

    doc = pypdfium2.PdfDocument(data)
    n = sum(len(doc[i].get_textpage().get_text_range()) for i in range(len(doc)))
    doc.close()
    return n


def _pypdf(data: bytes) -> int:
    import pypdf

    return sum(len(p.extract_text()) for p in pypdf.PdfReader(io.BytesIO(data)).pages)


def _pdfminer(data: bytes) -> int:
    from pdfminer.high_level import extract_text

    return len(extract_text(io.BytesIO(data)))


def bench_libraries(args: argparse.Namespace) -> None:
    _side_by_side("PDF text extraction alone (no layout, no Markdown)", "pages",
                  pdf(args.pages), args.pages, args.rounds,
                  [("pypdfium2", "pypdfium2", _pdfium), ("pypdf", "pypdf", _pypdf),
                   ("pdfminer.six", "pdfminer", _pdfminer)])
    _side_by_side("DOCX reading alone (mammoth's HTML, python-docx's paragraphs and tables)",
                  "pages", docx(args.pages), args.pages, args.rounds,
                  [("mammoth", "mammoth", _mammoth), ("python-docx", "docx", _python_docx)])


def _mammoth(data: bytes) -> int:
    import mammoth

    return len(mammoth.convert_to_html(io.BytesIO(data), convert_image=lambda image: []).value)


def _python_docx(data: bytes) -> int:
    import docx as python_docx

    doc, n = python_docx.Document(io.BytesIO(data)), 0
    for block in doc.iter_inner_content():
        if isinstance(block, python_docx.table.Table):
            n += sum(len(cell.text) for row in block.rows for cell in row.cells)
        else:
            n += len(block.text) + len(block.style.name if block.style is not None else "")
    return n


def _side_by_side(title: str, unit: str, data: bytes, pages: int, rounds: int,
                  contenders: list[tuple[str, str, Callable[[bytes], int]]]) -> None:
    present = []
    for name, module, fn in contenders:
        try:
            __import__(module)
        except ImportError:
            continue
        fn(data)
        present.append((name, fn))
    samples: dict[str, list[float]] = {name: [] for name, _ in present}
    for r in range(rounds):
        for name, fn in present[r % len(present):] + present[:r % len(present)]:
            samples[name].append(_timed(lambda fn=fn: fn(data))[1])
    print(f"\n### {title}, {pages} {unit}, CPU median of {rounds} rounds\n")
    print(f"| library | CPU ms per {unit[:-1]} | vs {present[0][0]} |")
    print("| --- | ---: | ---: |")
    base = statistics.median(samples[present[0][0]])
    for name, cpu in samples.items():
        m = statistics.median(cpu)
        print(f"| {name} | {1000 * m / pages:.2f} | {m / base:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        bench_formats(args, root)
    if args.compare:
        bench_libraries(args)


if __name__ == "__main__":
    main()
