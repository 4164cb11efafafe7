"""Secrets left out of the config text the admin page shows.

The page shows each resource as written, never a resolved value: a reference to the environment
(`${env:NAME}`) stays a reference. But params may also hold a secret as written (redisquota's
`redisServerUrl: redis://:PASSWORD@redis:6379`, `sentinelPassword`, an otlp `authorization` header), so
two things are shown as `***` wherever they appear in YAML text or an error message:

- the password of a URL (`scheme://user:PASSWORD@host`);
- the value of a key whose name says secret (password, secret, token, authorization, api key,
  credential, cookie): in block style (to the end of the line, or a block scalar's every line) and in
  flow style (`{apiKey: x, ...}`).
"""

from __future__ import annotations

import re

MASK = "***"

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?=@)")
_NAME = r"[\w.-]*(?:password|passwd|secret|token|authorization|api[-_]?key|credential|cookie)[\w.-]*"
_KEY = rf"""(?:"{_NAME}"|'{_NAME}'|{_NAME})\s*:"""
_REFERENCE = r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}"
#: `key: value` alone on a line (after indentation and list dashes): the value runs to a comment.
_BLOCK = re.compile(
    rf"^(?P<head>[ \t]*(?:-[ \t]+)*{_KEY}[ \t]+)(?P<value>[^{{\[\s].*?)(?P<tail>[ \t]+#.*)?$", re.IGNORECASE
)
_QUOTED = r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'"""
#: `key: value` inside a flow collection: the value ends at `,`, `}` or `]` unless quoted.
_FLOW = re.compile(
    rf"(?P<head>{_KEY}[ \t]*)(?P<value>{_REFERENCE}|{_QUOTED}|[^\s,}}\]#][^,}}\]#\n]*)", re.IGNORECASE
)
_KEEP = re.compile(rf"""\s*(?:["']?{_REFERENCE}["']?|[|>][-+]?|{re.escape(MASK)})\s*""")


def redact(text: str) -> str:
    """`text` (YAML, or a message quoting it) with secrets shown as `***` (see the module docstring)."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    out: list[str] = []
    block_indent: int | None = None  # inside a secret block scalar: lines indented deeper than this
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body) :]
        indent = len(body) - len(body.lstrip(" "))
        if block_indent is not None:
            if not body.strip() or indent > block_indent:
                out.append(" " * indent + MASK + end if body.strip() else line)
                continue
            block_indent = None
        block = _BLOCK.match(body)
        if block is not None:
            value = block["value"]
            if value.strip() in ("|", ">", "|-", ">-", "|+", ">+"):
                block_indent = indent
            elif not _KEEP.fullmatch(value):
                body = block["head"] + MASK + (block["tail"] or "")
        else:
            body = _FLOW.sub(_mask_flow, body)
        out.append(body + end)
    return "".join(out)


def _mask_flow(match: re.Match[str]) -> str:
    value = match["value"]
    if _KEEP.fullmatch(value):
        return match[0]
    return match["head"] + MASK + value[len(value.rstrip()) :]


_SECRET_NAME = re.compile(_NAME, re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a key, header or attribute named `name` holds a secret by the rule above (its value is
    shown as `***`: the explain view masks attribute values and headers with it)."""
    return _SECRET_NAME.fullmatch(name) is not None
