"""The page's only stylesheet, inlined so the report is one file with no external assets."""

CSS = """
:root { --ink:#1d2330; --muted:#5b6475; --line:#dde1e8; --bg:#f4f6f9; --card:#fff;
        --ok:#1a7f4b; --ok-bg:#e3f5eb; --err:#b42318; --err-bg:#fdecea; --skip:#505a6b; --skip-bg:#eceff3;
        --accent:#3b5bdb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
       color:var(--ink); background:var(--bg); }
header.top { background:#1f2937; color:#f3f4f6; padding:20px 32px 22px; }
header.top h1 { margin:0 0 4px; font-size:22px; font-weight:650; }
header.top .where { color:#aab3c2; font-size:13px; word-break:break-all; }
main { padding:20px 32px 40px; max-width:1400px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:16px 0 8px; }
.card { background:#2b3647; border-radius:8px; padding:10px 16px; min-width:120px; }
.card b { display:block; font-size:22px; font-weight:650; color:#fff; }
.card span { font-size:12px; color:#aab3c2; text-transform:uppercase; letter-spacing:.04em; }
.card.ok b { color:#6ee7a8; } .card.error b { color:#fca5a5; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; font-size:13px; margin-top:10px; }
.facts dt { color:#aab3c2; } .facts dd { margin:0; word-break:break-all; }
header.top .facts dd { color:#e5e7eb; }
.warn { color:#fcd34d; }
h2 { font-size:17px; margin:26px 0 10px; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--muted); font-weight:600; text-transform:uppercase; letter-spacing:.03em; }
code, .key { font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace; font-size:13px; word-break:break-all; }
.errors { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:4px 12px; }
.errors td.reason { color:var(--err); }
section.input { background:var(--card); border:1px solid var(--line); border-radius:8px;
                margin:14px 0; padding:14px 16px; }
section.input.error { border-left:4px solid var(--err); }
section.input h3 { margin:0 0 10px; font-size:15px; display:flex; gap:10px; align-items:baseline; flex-wrap:wrap; }
.badge { font-size:11px; font-weight:700; text-transform:uppercase; letter-spacing:.05em;
         padding:2px 8px; border-radius:10px; }
.badge.ok { color:var(--ok); background:var(--ok-bg); } .badge.error { color:var(--err); background:var(--err-bg); }
.badge.skipped, .badge.unknown { color:var(--skip); background:var(--skip-bg); }
.meta { color:var(--muted); font-size:12px; font-weight:400; }
.body { display:grid; grid-template-columns:minmax(260px,420px) 1fr; gap:18px; }
video { width:100%; background:#000; border-radius:6px; display:block; }
.links { font-size:12px; margin-top:6px; } .links a { color:var(--accent); margin-right:12px; }
.reason { background:var(--err-bg); color:var(--err); border-radius:6px; padding:8px 12px;
          font-family:ui-monospace,"DejaVu Sans Mono",monospace; font-size:13px;
          white-space:pre-wrap; word-break:break-word; }
.problem { background:#fff7e6; color:#8a5300; border-radius:6px; padding:8px 12px; }
.windows td.when { white-space:nowrap; font-variant-numeric:tabular-nums; width:1%; }
.windows ol { margin:0; padding-left:18px; }
.windows li .score { color:var(--muted); font-variant-numeric:tabular-nums; }
.variants { display:grid; grid-template-columns:repeat(auto-fit, minmax(220px, 1fr)); gap:12px; margin-bottom:10px; }
.variant { margin:0; } .variant figcaption { font-size:12px; color:var(--muted); margin-bottom:4px; }
.beat-grid { width:100%; height:28px; display:block; margin-top:8px; background:#f4f5f7; border-radius:4px; }
.beat-grid .window { fill:#e3e7ee; } .beat-grid .beat { stroke:#4a5568; stroke-width:1.5; }
.beat-grid .cut { stroke:#d9363e; stroke-width:2; }
.speech-line { width:100%; height:10px; display:block; margin-top:6px; background:#f4f5f7; border-radius:3px; }
.speech-line .speech { fill:#0f9d8a; }
.beats, .speech-text { font-size:12px; color:var(--muted); margin:4px 0 0; }
.muted { color:var(--muted); }
.timings { margin-top:10px; font-size:12px; }
.timings .row { display:grid; grid-template-columns:64px 1fr 64px; gap:8px; align-items:center; margin:2px 0; }
.timings .bar { height:8px; background:var(--accent); border-radius:4px; min-width:2px; opacity:.75; }
.timings .secs { text-align:right; font-variant-numeric:tabular-nums; color:var(--muted); }
details { margin-top:8px; font-size:12px; } details pre { background:var(--bg); padding:8px; border-radius:6px;
          overflow:auto; max-height:320px; }
footer { color:var(--muted); font-size:12px; padding:0 32px 30px; }
@media (max-width: 800px) { .body { grid-template-columns:1fr; }
                            main, header.top { padding-left:14px; padding-right:14px; } }
"""
