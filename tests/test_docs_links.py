"""No committed Markdown file links a file that is not committed (relative links and images)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: ``[text](target)`` and ``![alt](target "title")``; the target is group 1.
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)[^`].*?\1", re.S)


def committed_files():
    """Every file git tracks, as paths relative to the repository root."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the committed files are unknown")
    return {p for p in out.split("\0") if p}


def local_targets(text: str):
    """Link targets outside code, without URLs, mail links or pure in-page anchors."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    for m in _LINK.finditer(text):
        target = m.group(1).split("#", 1)[0]
        if target and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
            yield target


def broken_links(md: str, tracked: set):
    """Targets of ``md`` that are neither a tracked file nor a folder holding one."""
    folders = {str(Path(p).parent) for p in tracked}
    out = []
    for t in local_targets((ROOT / md).read_text(encoding="utf-8")):
        path = Path(t[1:]) if t.startswith("/") else Path(md).parent / t
        rel = os.path.normpath(path)
        if rel not in tracked and not any(f == rel or f.startswith(rel + os.sep) for f in folders):
            out.append(t)
    return out


def test_link_parser_sees_links_and_images_but_not_code():
    text = ("see [a](docs/a.md#s), ![plot](p.png \"t\"), [web](https://x.org/y), [top](#top)\n"
            "`[not](inline.md)` and\n```\nE[cost](p)\n```\n")
    assert list(local_targets(text)) == ["docs/a.md", "p.png"]


def test_no_committed_markdown_links_a_missing_file():
    tracked = committed_files()
    markdown = sorted(p for p in tracked if p.endswith(".md"))
    assert "README.md" in markdown
    missing = {md: broken_links(md, tracked) for md in markdown}
    missing = {k: v for k, v in missing.items() if v}
    assert not missing, f"Markdown links to files that are not in the repository: {missing}"
