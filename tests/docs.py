"""The docs' console blocks, read the way the tests that replay them need.

A page marks a block a test replays with `<!-- replayed by tests/<file>.py -->` on the line before
it; tests/deploy/test_docs.py checks that every block showing output is replayed or generated.
"""

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL_MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# A file another page includes (a run's recorded output) is part of that page, not a page of its own.
FRAGMENTS = {
    ROOT / match
    for page in ALL_MARKDOWN
    for match in re.findall(r"<!-- include: (\S+) -->", page.read_text())
}
PAGES = [page for page in ALL_MARKDOWN if page not in FRAGMENTS]
REPLAYED = re.compile(r"<!-- replayed by (?P<test>\S+) -->")


@dataclass
class ConsoleBlock:
    page: Path
    line: int  # of the opening fence, 1-based
    text: str  # between the fences
    marker: str  # the line before the fence
    generated: bool  # inside an `<!-- include: ... -->` block: written by the program that ran it

    @property
    def commands(self) -> list[str]:
        """Each `$ ` command, continuation lines joined."""
        return [command for command, _ in self.steps]

    @property
    def output(self) -> list[str]:
        """The lines that are not commands: what the block claims its commands print."""
        return [line for _, printed in self.steps for line in printed]

    @property
    def steps(self) -> list[tuple[str, list[str]]]:
        """[(command, the lines it prints)], in the block's order."""
        steps, continued = [], False
        for line in self.text.splitlines():
            if continued:
                steps[-1] = (steps[-1][0] + " " + line.rstrip("\\").strip(), [])
            elif line.startswith("$ "):
                steps.append((line[2:].rstrip("\\").strip(), []))
            else:
                steps[-1][1].append(line)
            continued = line.rstrip().endswith("\\")
        return steps

    @property
    def replayed_by(self) -> str | None:
        match = REPLAYED.search(self.marker)
        return match and match["test"]


def console_blocks(page: Path) -> list[ConsoleBlock]:
    lines = page.read_text().splitlines()
    blocks, number, included = [], 0, False
    while number < len(lines):
        if lines[number].startswith("<!-- include: "):
            included = True
        elif lines[number] == "<!-- end include -->":
            included = False
        elif lines[number] == "```console":
            end = lines.index("```", number + 1)
            marker = lines[number - 1] if number else ""
            text = "\n".join(lines[number + 1 : end])
            blocks.append(ConsoleBlock(page, number + 1, text, marker, included))
            number = end
        number += 1
    return blocks


def replayed_blocks(test_file: str) -> list[ConsoleBlock]:
    """The blocks of every page that name this test file as their replay."""
    return [block for page in PAGES for block in console_blocks(page) if block.replayed_by == test_file]
