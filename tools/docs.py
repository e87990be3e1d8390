"""Keeps the docs' generated parts in step with the files that produce them.

A page says `<!-- include: bench/results.md -->` ... `<!-- end include -->`; between the two markers
goes that file (its own `# ` title left out), so a figure is written once, by the program that
measured it. `python tools/docs.py` rewrites the blocks; `--check` only reports stale ones (a test
runs it).
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
INCLUDE = re.compile(r"(<!-- include: (?P<path>\S+) -->\n)(?P<body>.*?)(<!-- end include -->)", re.S)


def included(path: str) -> str:
    lines = (ROOT / path).read_text().splitlines(keepends=True)
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "".join(lines).strip("\n") + "\n"


def render(text: str) -> str:
    return INCLUDE.sub(lambda m: m.group(1) + "\n" + included(m.group("path")) + "\n" + m.group(4), text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a page is stale; write nothing")
    stale = []
    check = parser.parse_args().check
    for page in PAGES:
        text = page.read_text()
        fresh = render(text)
        if fresh != text:
            stale.append(page.relative_to(ROOT))
            if not check:
                page.write_text(fresh)
    for page in stale:
        print(f"docs: {page} {'is stale: run python tools/docs.py' if check else 'updated'}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
