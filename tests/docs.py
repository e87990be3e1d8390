"""The docs' console blocks, read the way the tests that replay them need.

A page marks a block a test replays with `<!-- replayed by tests/<file>.py -->` on the line before
it; tests/deploy/test_docs.py checks that every block showing output is replayed or generated.
"""

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
REPLAYED = re.compile(r"<!-- replayed by (?P<test>\S+) -->")


@dataclass
class ConsoleBlock:
    page: Path
    line: int  # of the opening fence, 1-based
    text: str  # between the fences
    marker: str  # the line before the fence

    @property
    def commands(self) -> list[str]:
        """Each `$ ` command, continuation lines joined."""
        commands, joined = [], ""
        for line in self.text.splitlines():
            if joined or line.startswith("$ "):
                joined += line.removeprefix("$ ").rstrip("\\").strip() + " "
                if not line.rstrip().endswith("\\"):
                    commands.append(joined.strip())
                    joined = ""
        return commands

    @property
    def output(self) -> list[str]:
        """The lines that are not commands: what the block claims a command prints."""
        lines, continued = [], False
        for line in self.text.splitlines():
            if line.startswith("$ ") or continued:
                continued = line.rstrip().endswith("\\")
                continue
            lines.append(line)
        return lines

    @property
    def replayed_by(self) -> str | None:
        match = REPLAYED.search(self.marker)
        return match and match["test"]


def console_blocks(page: Path) -> list[ConsoleBlock]:
    lines = page.read_text().splitlines()
    blocks, number = [], 0
    while number < len(lines):
        if lines[number] == "```console":
            end = lines.index("```", number + 1)
            marker = lines[number - 1] if number else ""
            blocks.append(ConsoleBlock(page, number + 1, "\n".join(lines[number + 1 : end]), marker))
            number = end
        number += 1
    return blocks


def replayed_blocks(test_file: str) -> list[ConsoleBlock]:
    """The blocks of every page that name this test file as their replay."""
    return [block for page in PAGES for block in console_blocks(page) if block.replayed_by == test_file]
