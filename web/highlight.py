"""Model outputs as HTML: the prose escaped, the diff highlighted by Pygments on the server."""

from __future__ import annotations

import difflib
import re

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer

_FENCED_DIFF = re.compile(r"```(?:diff|patch)[^\n]*\n.*?```", re.DOTALL)
_FORMATTER = HtmlFormatter(cssclass="hl", wrapcode=True)


def diff_html(diff: str) -> SafeString:
    """A unified diff, highlighted (Pygments escapes the text itself)."""
    return mark_safe(highlight(diff, DiffLexer(), _FORMATTER))  # noqa: S308


def prose_of(output: str, diff: str) -> str:
    """The answer without its diff blocks, which are shown highlighted instead."""
    if not diff:
        return output
    without = _FENCED_DIFF.sub("", output)
    if without == output:  # an unfenced diff: everything from its first header
        start = output.find(diff[:200])
        without = output[:start] if start >= 0 else output
    return without.strip()


def guidance_diff(before: str, after: str, *, name: str) -> SafeString:
    """The change of one text (a criterion's guidance) as a highlighted unified diff."""
    lines = difflib.unified_diff(
        _wrap(before), _wrap(after), fromfile=f"{name} (now)", tofile=f"{name} (revised)", n=2
    )
    text = "\n".join(line.rstrip("\n") for line in lines)
    if not text:
        return format_html("<p>{}: unchanged.</p>", name)
    return diff_html(text + "\n")


def _wrap(text: str) -> list[str]:
    # Guidance is a paragraph: one sentence per line makes a readable diff.
    return [s for s in re.split(r"(?<=[.;:?!])\s+", text.strip()) if s]


def stylesheet() -> str:
    return _FORMATTER.get_style_defs(".hl")
