"""The demo page of `koner serve` (GET /): a text box, options, the highlighted result and its JSON.

Three self-contained files served by the server itself (no CDN): the page, its script and its stylesheet,
with a Content-Security-Policy that allows only the server's own script, style and API. The script writes
results with DOM text nodes only, never as HTML, so an input holding markup is shown, never run.
"""
from __future__ import annotations

from typing import Sequence

from ..aggregate import STRATEGIES
from ..decode import DECODES
from ..render import TAG_NAMES, Palette

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


def page(types: Sequence[str], key_required: bool, aggregation: str, decode: str) -> str:
    """The demo page for a model with these entity types."""
    options = "".join(f'<option value="{s}"{" selected" if s == aggregation else ""}>{s}</option>' for s in STRATEGIES)
    decodes = "".join(f'<option value="{d}"{" selected" if d == decode else ""}>{d}</option>' for d in DECODES)
    legend = Palette(types).legend()
    return f"""<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>koner — Korean NER</title>
<link rel="stylesheet" href="/ui.css">
<script src="/ui.js" defer></script>
</head>
<body data-key="{'required' if key_required else 'none'}">
<main class="koner-view">
<h1>koner <small>Korean named-entity recognition</small></h1>
<form id="form">
<textarea id="text" rows="5" placeholder="어제 아이유가 서울역에서 김민수 씨를 만났다." required></textarea>
<div class="row">
<label>aggregation <select id="aggregation">{options}</select></label>
<label>decoding <select id="decode">{decodes}</select></label>
<label id="key-row" hidden>API key <input id="key" type="password" autocomplete="off"></label>
<button id="run" type="submit">Find entities</button>
</div>
</form>
<p id="status" role="status"></p>
<div id="result" class="koner-text" aria-live="polite"></div>
{legend}
<details><summary>JSON</summary><pre id="json"></pre></details>
<p class="foot">POST /v1/ner · <a href="/openapi.json">OpenAPI</a></p>
</main>
</body>
</html>
"""


def stylesheet(types: Sequence[str]) -> str:
    """The page's CSS: the highlighting of `koner.render`, and the form."""
    return Palette(types).css() + """
body{margin:2rem}
h1{font-size:1.4rem}h1 small{font-weight:400;color:#6e7781;font-size:.9rem}
textarea{width:100%;box-sizing:border-box;font:inherit;padding:.5rem}
.row{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;margin:.5rem 0}
button{font:inherit;padding:.3rem .9rem}
#status{min-height:1.5em;color:#6e7781}#status[data-status]:not([data-status="200"]){color:#b42318}
pre{background:#f6f8fa;padding:.75rem;overflow:auto;font-size:12px}
.foot{font-size:12px;color:#6e7781}
"""


SCRIPT = r"""'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  // the class of an entity type: koner-t- and the hex of its UTF-8 bytes, as koner.render.type_class makes it
  const typeClass = (label) => {
    const kind = /^[BI]-/.test(label) ? label.slice(2) : label;
    return 'koner-t-' + Array.from(new TextEncoder().encode(kind), (b) => b.toString(16).padStart(2, '0')).join('');
  };
  if (document.body.dataset.key === 'required') { $('key-row').hidden = false; }
  const status = (code, message) => {
    $('status').dataset.status = String(code);
    $('status').textContent = message;
  };
  const show = (text, entities) => {
    const out = $('result');
    out.replaceChildren();
    const chars = Array.from(text);  // koner's offsets count code points, as Python does
    let at = 0;
    for (const e of entities) {
      const label = e.entity_group || e.entity;
      out.append(document.createTextNode(chars.slice(at, e.start).join('')));
      const mark = document.createElement('mark');
      mark.className = typeClass(label);
      mark.dataset.label = label;
      mark.title = label + ' ' + e.score.toFixed(3);
      mark.append(document.createTextNode(chars.slice(e.start, e.end).join('')));
      const tag = document.createElement('span');
      tag.className = 'koner-label';
      tag.textContent = label;
      mark.append(tag);
      out.append(mark);
      at = e.end;
    }
    out.append(document.createTextNode(chars.slice(at).join('')));
  };
  $('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = $('text').value;
    const body = {text: text, aggregation: $('aggregation').value, decode: $('decode').value};
    const headers = {'Content-Type': 'application/json'};
    const key = $('key').value.trim();
    if (key) { headers.Authorization = 'Bearer ' + key; }
    $('run').disabled = true;
    status('', 'working…');
    try {
      const r = await fetch('/v1/ner', {method: 'POST', headers: headers, body: JSON.stringify(body)});
      const data = await r.json().catch(() => null);
      $('json').textContent = data === null ? '' : JSON.stringify(data, null, 2);
      if (!r.ok) {
        $('result').replaceChildren();
        const err = data && data.error ? data.error.code + ': ' + data.error.message : r.statusText;
        status(r.status, r.status + ' ' + err);
        return;
      }
      show(text, data.entities);
      status(200, data.entities.length + ' entities');
    } catch (e) {
      status('error', 'the server could not be reached: ' + e);
    } finally {
      $('run').disabled = false;
    }
  });
})();
"""


def default_types() -> tuple[str, ...]:
    """The entity types shown before a model has loaded: the 15 TTA tags."""
    return tuple(TAG_NAMES)
