"""Generated blocks in the docs: a script's output between two marker lines, replaced on each run."""

from pathlib import Path


def replace_block(path: Path, begin: str, end: str, block: str) -> bool:
    """Put `block` (which starts with `begin` and ends with `end`) in place of the text between the
    markers in `path`; False, and the file untouched, where the markers are missing."""
    text = path.read_text()
    if begin not in text or end not in text:
        return False
    path.write_text(text[: text.index(begin)] + block + text[text.index(end) + len(end) :])
    return True
