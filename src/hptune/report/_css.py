"""The report's stylesheet, inlined into every report (no external font or file)."""

from __future__ import annotations

CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --bg: #f5f7fa; --accent: #3b6ea8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, "Segoe UI", "Helvetica Neue", Arial, sans-serif; }
header { background: #1f2d3d; color: #fff; padding: 24px 32px 14px; }
header h1 { margin: 0 0 10px; font-size: 26px; font-weight: 600; word-break: break-all; }
.kicker { margin: 0; color: #9fb3c8; font-size: 12px; letter-spacing: .08em; text-transform: uppercase; }
nav { display: flex; flex-wrap: wrap; row-gap: 6px; }
nav a { color: #d9e2ec; text-decoration: none; font-size: 13px; margin-right: 16px; white-space: nowrap; }
nav a:hover { color: #fff; text-decoration: underline; }
main { max-width: 1120px; margin: 0 auto; padding: 8px 24px 48px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 4px 24px 18px; margin: 18px 0; }
h2 { font-size: 18px; font-weight: 600; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
h3 { margin: 0 0 4px; font-size: 12px; font-weight: 600; color: var(--muted);
  text-transform: uppercase; letter-spacing: .05em; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; background: #fbfcfd; }
.card p { margin: 0; font-size: 17px; }
small { color: var(--muted); font-size: 12px; }
.note { color: var(--muted); font-size: 13px; }
.stop { margin: 12px 0 4px; font-weight: 600; }
code, pre { font-family: "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 13px; }
p code, td code { background: #f0f4f8; border-radius: 4px; padding: 1px 5px; overflow-wrap: anywhere; }
code.param { display: inline-block; white-space: nowrap; margin: 1px 0; }
pre { background: #1f2d3d; color: #e4e7eb; padding: 14px 18px; border-radius: 6px; overflow-x: auto; }
img { max-width: 100%; height: auto; display: block; margin: 8px auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
.board tbody tr:nth-child(odd) { background: #fafbfc; }
.chip { display: inline-block; border-radius: 10px; padding: 0 8px; margin: 2px 2px 0 0;
  font-size: 12px; background: #e4e7eb; color: var(--ink); }
.chip.complete { background: #dbe8f6; color: #24466e; }
.chip.pruned { background: #fbe7d0; color: #8a4b0f; }
.chip.failed { background: #f8d7d3; color: #8e2418; }
.advice-list { list-style: none; padding: 0; }
.advice { border-left: 4px solid var(--accent); background: #f7f9fc; padding: 10px 14px; margin: 10px 0;
  border-radius: 0 6px 6px 0; }
.advice.failures, .advice.diverged_region { border-left-color: #c0392b; }
.advice.noise { border-left-color: #8e7cc3; }
.badge { font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); margin-right: 6px; }
details summary { cursor: pointer; color: var(--muted); font-size: 12px; margin-top: 4px; }
.evidence th { width: 120px; }
.caution { border-left: 4px solid #e08a2c; background: #fdf6ee; padding: 8px 14px 8px 30px;
  border-radius: 0 6px 6px 0; font-size: 13px; }
"""
