/** The overview page's stylesheet: a constant, inlined (the page loads nothing else). */
export const STYLESHEET = `
:root { color-scheme: light; --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa;
  --archived: #1a7f37; --failed: #cf222e; --cancelled: #8c959f; --archiving: #8250df;
  --generating: #0969da; --submitted: #54aeff; --queued: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: baseline; padding: 12px 24px; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 20px; margin: 0; }
header .updated { margin-left: auto; }
main { max-width: 1100px; margin: 0 auto; padding: 8px 24px 40px; }
h2 { font-size: 16px; margin: 20px 0 8px; }
h3 { font-size: 16px; margin: 0 0 4px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: #eff1f3; padding: 1px 4px; border-radius: 4px; word-break: break-all; }
.muted { color: var(--muted); }
section > ul { margin: 0; padding-left: 20px; }
.paused-fleet ul li.paused, p.paused { color: #9a6700; }
p.paused { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 6px 10px; }
.badge { display: inline-block; font-size: 12px; font-weight: 600; padding: 1px 8px; border-radius: 10px; vertical-align: middle; }
.badge.finished { background: #dafbe1; color: var(--archived); }
.badge.running { background: #ddf4ff; color: var(--generating); }
.badge.paused { background: #fff8c5; color: #9a6700; }
.banner.archive-paused { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 6px 12px; color: #6f4b00; }
table.queues { border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
table.queues th, table.queues td { padding: 4px 14px; border-bottom: 1px solid var(--line); text-align: right; }
table.queues th[scope=row], table.queues thead th:first-child { text-align: left; }
article.batch { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 0 0 14px; }
article.batch > p { margin: 4px 0; }
.bar { display: flex; height: 14px; border-radius: 7px; overflow: hidden; background: var(--queued); margin: 8px 0 4px; }
.seg { display: block; height: 100%; }
.archived { background: var(--archived); } .failed { background: var(--failed); } .cancelled { background: var(--cancelled); }
.archiving { background: var(--archiving); } .generating { background: var(--generating); }
.submitted { background: var(--submitted); } .queued { background: var(--queued); }
ul.states { display: flex; flex-wrap: wrap; gap: 2px 16px; list-style: none; padding: 0; margin: 4px 0 8px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
dl.credits { display: flex; flex-wrap: wrap; gap: 4px 24px; margin: 6px 0; }
dl.credits div { display: flex; gap: 6px; } dl.credits dt { color: var(--muted); } dl.credits dd { margin: 0; font-weight: 600; }
dl.credits .over dd { color: var(--failed); }
.warning { background: #ffebe9; border: 1px solid #ff8182; border-radius: 6px; padding: 8px 10px; margin: 8px 0; }
.warning p { margin: 4px 0 0; }
details.failures { margin-top: 8px; } details.failures summary { font-weight: 600; color: var(--failed); cursor: pointer; }
details.failures ol { margin: 4px 0; padding-left: 24px; }
.error { white-space: pre-wrap; overflow-wrap: anywhere; }
.empty { background: #fff; border: 1px dashed var(--line); border-radius: 8px; padding: 16px; }
main.wide { max-width: 1400px; }
header h1 a { color: inherit; text-decoration: none; }
.notice { background: #dafbe1; border: 1px solid #4ac26b; border-radius: 6px; padding: 6px 10px; }
.banner-paused { font-weight: 600; }
section.progress svg { display: block; max-width: 100%; height: auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; }
.bar-archived { fill: var(--archived); } .line-credits { fill: none; stroke: #bf8700; stroke-width: 2; }
.swatch.credits { background: #bf8700; }
form.controls { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; margin: 4px 0 10px; }
nav.filters { display: flex; gap: 4px; }
.filter { padding: 2px 10px; border-radius: 12px; border: 1px solid var(--line); background: #fff; text-decoration: none; color: var(--fg); }
.filter.current { background: var(--fg); color: #fff; border-color: var(--fg); }
input[type=search] { min-width: 260px; padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px; }
button { padding: 4px 12px; border-radius: 6px; border: 1px solid var(--line); background: #f6f8fa; cursor: pointer; font: inherit; }
form.retry { display: inline; } form.retry button { border-color: #d4a72c; background: #fff8c5; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.tile { display: block; aspect-ratio: 1; border-radius: 8px; overflow: hidden; background: #fff; border: 1px solid var(--line); text-decoration: none; color: var(--fg); }
.tile img { width: 100%; height: 100%; object-fit: cover; display: block; }
.tile:hover { outline: 2px solid var(--generating); }
.tile.no-image { padding: 10px; display: flex; flex-direction: column; gap: 6px; font-size: 12px; }
.tile .state { font-weight: 600; text-transform: uppercase; font-size: 11px; }
.tile.state-failed { border-color: #ff8182; background: #fff5f5; } .tile.state-failed .state { color: var(--failed); }
.tile .error { color: var(--failed); overflow-wrap: anywhere; }
table.groups, table.record { border-collapse: collapse; background: #fff; border: 1px solid var(--line); width: 100%; }
table.groups td, table.groups th, table.record td, table.record th { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.groups td.count { font-weight: 600; text-align: right; width: 4em; }
main.row-detail { max-width: 1400px; display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 20px; padding-top: 16px; }
.full-image { width: 100%; height: auto; image-rendering: auto; border-radius: 8px; border: 1px solid var(--line); background: #fff; }
table.record th { color: var(--muted); font-weight: 500; width: 9em; }
nav.neighbours a { font-weight: 600; }
`;
