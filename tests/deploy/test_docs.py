"""The docs cannot drift from the code: what they show is generated or replayed, and every link lands.

- a figure a program measures is included from the file it writes (`tools/docs.py`), never pasted;
- a console block that shows output is included from the file its run wrote, or names the test that
  replays it (`<!-- replayed by ... -->`), and that test reads it through `tests.docs`; blocks of
  commands alone are instructions: their `make` targets must exist;
- every relative link and `#anchor` resolves; the README stays a front page.
"""

import re
import subprocess
import sys

import pytest

from tests.docs import PAGES, ROOT, console_blocks

LINK = re.compile(r"\]\((?!https?://|mailto:)(?P<target>[^)\s]+)\)")
BLOCKS = [block for page in PAGES for block in console_blocks(page)]

pytestmark = pytest.mark.unit


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#+ ", line)}


def test_generated_parts_are_up_to_date():
    checked = subprocess.run(
        [sys.executable, "tools/docs.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )

    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_lands(page):
    for match in LINK.finditer(page.read_text()):
        path, _, anchor = match["target"].partition("#")
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{match['target']} in {page.name}"
        if anchor:
            assert anchor in anchors(target), f"#{anchor} in {target.name} (from {page.name})"


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: f"{block.page.relative_to(ROOT)}:{block.line}")
def test_a_console_block_is_replayed_or_only_commands(block):
    if block.generated:
        return  # written by the run it shows (tools/docs.py includes the file that run wrote)
    if block.replayed_by:
        replay = (ROOT / block.replayed_by).read_text()
        assert "replayed_blocks(" in replay and block.replayed_by in replay, block.replayed_by
    else:
        assert block.output == [], "shows output that no test replays: replay it, or generate it"
    for command in block.commands:
        for target in re.findall(r"(?:^|&& )make ([\w-]+)", command):
            assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), re.M), command
