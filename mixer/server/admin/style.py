"""The page's own CSS and its one script, inline (no external asset, no build step).

The script only adds: a filter box above long tables, and keyboard shortcuts 1-9 for the nav. Without
JavaScript the page reads the same. Both are allowed by the Content-Security-Policy through their
hashes (`csp()`), so nothing else inline can run, whatever a rule name holds.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root { --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --dim: #6b7385; --line: #dde1e8; --accent: #2f5fd0;
  --ok: #1a7f37; --ok-bg: #e6f4ea; --bad: #b42318; --bad-bg: #fdecea; --warn: #9a6700; --warn-bg: #fff4d6;
  --code: #f0f2f6; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #18202f; color: #e8ecf3; padding: 10px 20px; display: flex; gap: 18px;
  align-items: baseline; flex-wrap: wrap; }
header .brand { font-weight: 700; font-size: 16px; letter-spacing: .2px; }
header .brand span { color: #8fb0ff; }
header .meta { color: #aab3c5; font-size: 12.5px; }
header .meta b { color: #e8ecf3; font-weight: 600; }
nav { background: #fff; border-bottom: 1px solid var(--line); padding: 0 12px; display: flex;
  flex-wrap: wrap; }
nav a { color: var(--ink); text-decoration: none; padding: 9px 12px 7px; border-bottom: 3px solid transparent;
  font-weight: 500; }
nav a:hover { background: var(--bg); }
nav a.here { border-bottom-color: var(--accent); color: var(--accent); }
nav a .key { color: var(--dim); font-size: 11px; margin-left: 4px; }
main { padding: 14px 20px 40px; max-width: 1500px; }
h1 { font-size: 20px; margin: 4px 0 2px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
p { margin: 6px 0; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 12.5px; }
code { background: var(--code); padding: 1px 4px; border-radius: 3px; overflow-wrap: break-word; }
code.strong { font-weight: 600; }
code.expr { color: #5a3e9b; }
pre { background: #0f1522; color: #dfe6f3; padding: 10px 12px; border-radius: 6px; overflow: auto;
  max-height: 420px; margin: 6px 0 2px; white-space: pre; }
.twin { float: right; font-size: 12.5px; color: var(--dim); margin-top: 8px; }
.dim { color: var(--dim); }
.big { font-size: 20px; font-weight: 700; }
.empty { color: var(--dim); font-style: italic; }
.why { color: var(--bad); font-size: 12.5px; }
b.bad, .bad { color: var(--bad); }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 11.5px; font-weight: 600;
  line-height: 18px; white-space: nowrap; vertical-align: 1px; }
.badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.dim { background: var(--code); color: var(--dim); }
table.grid { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line);
  border-radius: 6px; margin: 4px 0 12px; }
table.grid th { text-align: left; font-size: 12px; text-transform: uppercase; letter-spacing: .4px;
  color: var(--dim); background: #fafbfc; border-bottom: 1px solid var(--line); padding: 6px 10px; }
table.grid td { border-top: 1px solid var(--line); padding: 6px 10px; vertical-align: top; }
table.grid tr:hover td { background: #fafcff; }
ul { margin: 0; padding-left: 18px; }
ul.plain { list-style: none; padding: 0; }
ul.inline { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px; }
.count { margin-right: 10px; white-space: nowrap; }
.count.ok b { color: var(--ok); }
.count.bad b { color: var(--bad); }
dl.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; background: var(--card);
  border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; margin: 8px 0; }
dl.facts > div { display: flex; flex-direction: column; gap: 2px; }
dl.facts dt { font-size: 11.5px; text-transform: uppercase; letter-spacing: .4px; color: var(--dim); }
dl.facts dd { margin: 0; }
section.rejection { background: var(--bad-bg); border: 1px solid #f3b8b2; border-radius: 6px;
  padding: 4px 14px 8px; margin: 12px 0; }
section.rejection h2 { margin-top: 8px; }
section.namespace, section.domain { background: var(--card); border: 1px solid var(--line);
  border-radius: 6px; padding: 2px 14px 6px; margin: 12px 0; }
section.namespace table.grid, section.domain table.grid { border-radius: 4px; }
details summary { cursor: pointer; color: var(--accent); font-size: 12.5px; }
ul.tree, ul.tree ul { list-style: none; padding-left: 18px; border-left: 1px dashed var(--line); }
ul.tree { border: 0; padding-left: 0; }
ul.tree li { margin: 4px 0; }
.limit { margin-left: 10px; }
b.limit-rate { color: var(--accent); }
meter { width: 80px; height: 10px; vertical-align: -1px; }
input.filter { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 4px;
  width: 260px; margin: 2px 0 4px; }
form.explain { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 14px 10px; margin: 8px 0 14px; }
form.explain label { display: inline-block; margin: 6px 16px 4px 0; font-weight: 500; }
form.explain label.block { display: block; }
form.explain textarea { display: block; width: 100%; padding: 6px 8px; border: 1px solid var(--line);
  border-radius: 4px; font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
form.explain select, form.explain input { font: inherit; padding: 3px 6px; border: 1px solid var(--line);
  border-radius: 4px; }
form.explain input { width: 260px; }
form.explain button { display: block; font: inherit; font-weight: 600; background: var(--accent); color: #fff;
  border: 0; border-radius: 4px; padding: 5px 18px; margin: 8px 0 6px; cursor: pointer; }
footer { color: var(--dim); font-size: 12px; padding: 0 20px 20px; }
"""

SCRIPT = """
(function () {
  document.querySelectorAll("table.filterable").forEach(function (table) {
    var rows = table.tBodies[0].rows;
    if (rows.length < 8) return;
    var box = document.createElement("input");
    box.type = "search"; box.className = "filter"; box.placeholder = "filter " + rows.length + " rows";
    box.addEventListener("input", function () {
      var text = box.value.toLowerCase();
      for (var i = 0; i < rows.length; i++)
        rows[i].hidden = text !== "" && rows[i].textContent.toLowerCase().indexOf(text) < 0;
    });
    table.parentNode.insertBefore(box, table);
  });
  var links = document.querySelectorAll("nav a[data-key]");
  document.addEventListener("keydown", function (event) {
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);  // the explain form's fields
    if (typing || event.metaKey || event.ctrlKey || event.altKey) return;
    for (var i = 0; i < links.length; i++)
      if (links[i].dataset.key === event.key) { window.location = links[i].href; return; }
  });
})();
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp() -> str:
    """The page's Content-Security-Policy: only its own inline style and script, nothing fetched."""
    return (
        f"default-src 'none'; style-src {_hash(CSS)}; script-src {_hash(SCRIPT)}; img-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
