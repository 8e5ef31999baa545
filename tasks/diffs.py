"""Finding and checking the unified diff in a model's answer."""

import re

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

_FENCED = re.compile(r"```(?:diff|patch)[^\n]*\n(.*?)```", re.DOTALL)
_DIFF_START = re.compile(r"^(?:diff --git |--- )", re.MULTILINE)


def extract_diff(output: str) -> str:
    """The diff of an answer: its fenced diff blocks, else everything from the first diff header."""
    blocks = _FENCED.findall(output)
    if blocks:
        return "\n".join(block.rstrip("\n") + "\n" for block in blocks)
    start = _DIFF_START.search(output)
    return output[start.start() :] if start else ""


def parse_diff(diff: str) -> PatchSet:
    """Parses a unified diff; raises ValueError with the parser's reason when it is malformed."""
    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        raise ValueError(str(exc)) from exc
    if not patch:
        raise ValueError("no file changes found")
    return patch
