"""Benchmark convertToMD on generated pages served from a loopback server.

    python benchmarks/bench_convert.py [--pages 200] [--flows 20] [--seed 7]

The server runs in a child process so that the CPU time measured here (process time of
this process) is the client's: fetching, cleaning and converting. Three runs:

- convert only: the same pages as in-memory HTML strings, one thread (no network);
- sequential: fetch + convert over HTTP, one thread;
- threaded: fetch + convert over HTTP with a ThreadPoolExecutor of ``--flows`` workers
  sharing one convertToMD (as a Pool would).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

try:
    from yait_aichain.tools import convertToMD
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from yait_aichain.tools import convertToMD

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests._pageserver import PageServer  # noqa: E402  (a test fixture, not package code)

WORDS = (
    "data", "model", "token", "batch", "pipeline", "parser", "table", "markdown", "stream",
    "worker", "thread", "request", "cache", "budget", "retry", "latency", "server", "client",
    "header", "content", "article", "section", "result", "answer", "prompt", "vector", "index",
    "ranking", "summary",
)


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 22))]
    if rng.random() < 0.3:
        i = rng.randrange(len(words))
        words[i] = f'<a href="/doc/{rng.randint(1, 999)}.html">{words[i]}</a>'
    if rng.random() < 0.2:
        i = rng.randrange(len(words))
        words[i] = f"<strong>{words[i]}</strong>"
    return " ".join(words).capitalize() + "."


def make_page(i: int, rng: random.Random) -> str:
    """One realistic page: chrome, scripts and an article of 30-80 KB in total."""
    target = rng.randint(30_000, 80_000)
    nav = "".join(f'<li><a href="/s/{k}">Section {k}</a></li>' for k in range(25))
    head = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Report {i}</title>"
            "<style>" + "body{margin:0} .c{color:#333} " * 40 + "</style>"
            "<script>" + "var t=1;function f(a){return a*2};" * 60 + "</script></head><body>"
            f"<header><a href='/'>Home</a><nav><ul>{nav}</ul></nav></header>"
            "<div class='layout'><aside><h3>Related</h3><ul>"
            + "".join(f"<li><a href='/r/{k}'>Related {k}</a></li>" for k in range(15))
            + "</ul></aside><main><article>")
    parts = [head, f"<h1>Report {i}</h1>"]
    size = len(head)
    section = 0
    while size < target - 2_000:
        section += 1
        block = [f"<h2>Section {section}</h2>"]
        for _ in range(rng.randint(2, 5)):
            text = " ".join(_sentence(rng) for _ in range(rng.randint(3, 7)))
            block.append(f"<div class='para'><p>{text}</p></div>")
        kind = rng.random()
        if kind < 0.3:
            rows = "".join(f"<tr><td>{rng.choice(WORDS)}</td><td>{rng.randint(1, 9999)}</td>"
                           f"<td>{rng.random():.3f}</td></tr>" for _ in range(rng.randint(5, 15)))
            block.append(f"<table><thead><tr><th>Name</th><th>Count</th><th>Score</th></tr></thead>"
                         f"<tbody>{rows}</tbody></table>")
        elif kind < 0.55:
            items = "".join(f"<li>{_sentence(rng)}</li>" for _ in range(rng.randint(3, 8)))
            block.append(f"<ul>{items}</ul>")
        elif kind < 0.7:
            code = "\n".join(f"    x{n} = compute({n}, '{rng.choice(WORDS)}')"
                             for n in range(rng.randint(4, 12)))
            block.append(f'<pre><code class="language-python">def step():\n{code}\n</code></pre>')
        html = "".join(block)
        parts.append(html)
        size += len(html)
    parts.append("</article></main></div><footer><p>Copyright</p><ul>"
                 + "".join(f"<li><a href='/f/{k}'>Footer {k}</a></li>" for k in range(20))
                 + "</ul></footer><script>track();</script></body></html>")
    return "".join(parts)


def make_pages(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [make_page(i, rng) for i in range(n)]


def _serve(pages: list[str], port_out, stop) -> None:
    with PageServer() as server:
        for i, page in enumerate(pages):
            server.add_page(f"/page/{i}", page)
        port_out.send(server.port)
        stop.wait()


def _measure(label: str, fn, items: list, flows: int) -> tuple:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if flows <= 1:
        out = [fn(x) for x in items]
    else:
        with ThreadPoolExecutor(max_workers=flows) as pool:
            out = list(pool.map(fn, items))
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    assert all(md.startswith("# Report") for md in out), "a page did not convert"
    return (label, flows, len(items), len(items) / wall, 1000 * cpu / len(items), wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=200, help="pages to convert (default 200)")
    parser.add_argument("--flows", type=int, default=20,
                        help="threads for the threaded run (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="page generator seed")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.flows < 1:
        parser.error("--pages and --flows must be >= 1")

    pages = make_pages(args.pages, args.seed)
    sizes = sorted(len(p.encode()) for p in pages)
    ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    port_in, port_out = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    child = ctx.Process(target=_serve, args=(pages, port_out, stop), daemon=True)
    child.start()
    try:
        port = port_in.recv()
        urls = [f"http://127.0.0.1:{port}/page/{i}" for i in range(args.pages)]
        tool = convertToMD(allow_private=True)  # loopback server: trusted on purpose
        tool.run(urls[0])  # warm-up: imports, first connection
        rows = [
            _measure("convert only (in memory)", tool.run, pages, 1),
            _measure("fetch + convert, sequential", tool.run, urls, 1),
            _measure("fetch + convert, threaded", tool.run, urls, args.flows),
        ]
        tool.close()
    finally:
        stop.set()
        child.join(5)

    print(f"pages: {args.pages}, HTML size {sizes[0] // 1024}-{sizes[-1] // 1024} KB "
          f"(median {sizes[len(sizes) // 2] // 1024} KB), Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    header = (f"{'mode':<30} {'flows':>5} {'pages':>6} {'pages/s':>9} {'CPU ms/page':>12} "
              f"{'wall s':>8}")
    print(header)
    print("-" * len(header))
    for label, flows, n, rate, cpu_ms, wall in rows:
        print(f"{label:<30} {flows:>5} {n:>6} {rate:>9.1f} {cpu_ms:>12.1f} {wall:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
