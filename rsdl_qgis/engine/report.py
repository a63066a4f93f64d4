"""HTML reports and CSV matrices of accuracy assessments."""
import csv
import html
import io
import math
import os
import time
from typing import Any, Dict, Optional, Sequence, Tuple

from .jobs import OUTPUT
from .output import write_text


def write_matrix_csv(path: str, matrix: Any, names: Sequence[str], param: str = OUTPUT) -> None:
    """Rows = reference, columns = predicted, both labelled."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["reference \\ predicted"] + list(names))
    for name, row in zip(names, matrix):
        w.writerow([name] + [int(v) for v in row])
    write_text(path, buf.getvalue(), param)


def _when(path):
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path)))
    except OSError:
        return "unknown"


def assessed_html(image: str, reference: str, field: Optional[str] = None) -> str:
    """What a report assessed and when: the map, the reference, their dates, now."""
    e = html.escape
    ref = str(reference).split("|")[0]
    rows = [("Map", f"{e(os.path.abspath(str(image)))} (written {_when(image)})"),
            ("Reference", f"{e(os.path.abspath(ref))}"
             + (f", field <code>{e(field)}</code>" if field else "")
             + f" (modified {_when(ref)})"),
            ("Assessed", time.strftime("%Y-%m-%d %H:%M %Z"))]
    return ("<table class='meta'>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
            + "</table>")


def _pm(value, ci, scale=100.0, digits=1):
    if value is None or not math.isfinite(value):
        return "n/a"
    half = f" &plusmn; {scale * ci:,.{digits}f}" if ci is not None and math.isfinite(ci) else ""
    return f"{scale * value:,.{digits}f}{half}"


def area_html(adj: Dict[str, Any], names: Sequence[str], total: float, unit: str,
              probability: bool = False) -> str:
    """The area-adjusted table (Olofsson et al. 2014): map area, estimated area, user's
    and producer's accuracy; with their 95 % confidence intervals when the reference is a
    probability sample (`probability`), without when it is not (no honest interval)."""
    e = html.escape
    digits = 0 if unit == "pixels" or total > 1000 else 1

    def cell(value, ci, scale=None, d=1):
        if probability:
            return _pm(value, ci, scale, d) if scale is not None else _pm(value, ci)
        if value != value:
            return "n/a"
        return f"{value * scale:,.{d}f}" if scale is not None else f"{100 * value:.1f}"

    rows = []
    for i, n in enumerate(names):
        rows.append(
            f"<tr><th>{e(str(n))}</th><td>{adj['map_share'][i] * total:,.{digits}f}</td>"
            f"<td>{cell(adj['area'][i], adj['area_ci'][i], total, digits)}</td>"
            f"<td>{cell(adj['user'][i], adj['user_ci'][i])}</td>"
            f"<td>{cell(adj['producer'][i], adj['producer_ci'][i])}</td></tr>")
    if probability:
        intro = ("Design-based estimates from a stratified random sample (Olofsson et al. "
                 "2014, <i>Remote Sensing of Environment</i> 148: 42-57; Stehman 2014, "
                 "<i>International Journal of Remote Sensing</i> 35: 4923-4939): unbiased, "
                 "&plusmn; gives the 95 % confidence interval. Overall accuracy "
                 f"<b>{_pm(adj['oa'], adj['oa_ci'])} %</b>.")
    else:
        intro = ("The map's classes weighted by their share of the map (Olofsson et al. "
                 "2014). <b>No confidence interval</b>: the reference is not a probability "
                 "sample (see the notes), so none would be honest. Area-adjusted overall "
                 f"accuracy {100 * adj['oa']:.1f} %.")
    return f"""<h2>Area-adjusted accuracy and class areas</h2>
<p>{intro}</p>
<table><tr><th>class</th><th>map area ({unit})</th><th>estimated area ({unit})</th>
<th>user's accuracy (%)</th><th>producer's accuracy (%)</th></tr>
{''.join(rows)}</table>"""


def html_report(path: str, title: str, matrix: Any, names: Sequence[str], sc: Dict[str, Any],
                notes: Sequence[str] = (), param: str = OUTPUT, extra_html: str = "",
                head_html: str = "", columns: str = "predicted") -> None:
    """A self-contained HTML page: metrics, per-class table, confusion matrix."""
    e = html.escape
    rows = []
    for i, n in enumerate(names):
        rows.append(f"<tr><th>{e(str(n))}</th><td>{sc['PRECISION'][i]:.3f}</td>"
                    f"<td>{sc['RECALL'][i]:.3f}</td><td>{sc['F1'][i]:.3f}</td>"
                    f"<td>{int(sum(matrix[i]))}</td></tr>")
    head = "".join(f"<th>{e(str(n))}</th>" for n in names)
    mrows = []
    for i, n in enumerate(names):
        cells = "".join(
            f"<td class='{'d' if i == j else ''}'>{int(v)}</td>" for j, v in enumerate(matrix[i]))
        mrows.append(f"<tr><th>{e(str(n))}</th>{cells}</tr>")
    note = "".join(f"<li>{e(str(n))}</li>" for n in notes)
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #bbb;padding:.3em .6em;text-align:right}}td.d{{background:#d8eed8;font-weight:bold}}
.big{{font-size:1.4em}}table.meta td,table.meta th{{text-align:left}}</style></head><body>
<h1>{e(title)}</h1>
{head_html}
<p class="big">Overall accuracy <b>{100 * sc['OA']:.2f} %</b> &middot; kappa <b>{sc['KAPPA']:.4f}</b>
&middot; mean F1 <b>{sc['F1_MEAN']:.4f}</b> &middot; {sc['SAMPLES']} samples</p>
{extra_html}
<h2>Per class</h2>
<table><tr><th>class</th><th>user's accuracy (precision)</th>
<th>producer's accuracy (recall)</th><th>F1</th><th>reference samples</th></tr>
{''.join(rows)}</table>
<h2>Confusion matrix</h2><p>Rows: reference; columns: {e(columns)}.</p>
<table><tr><th></th>{head}</tr>{''.join(mrows)}</table>
{f'<h2>Notes</h2><ul>{note}</ul>' if note else ''}
</body></html>
"""
    write_text(path, page, param)


def settings_html(rows: Sequence[Tuple[str, Any]]) -> str:
    """A two-column table of (label, value) rows."""
    e = html.escape
    return ("<h2>Inputs and settings</h2><table class='meta'>"
            + "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
            + "</table>")


def _ticks(lo, hi, log):
    """Tick values for an axis from lo to hi: decades (and 2, 5 between them when the
    range is short) on a log axis, 1-2-5 steps on a linear one."""
    if log:
        first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        steps = (1, 2, 5) if last - first <= 2 else (1,)
        ticks = [m * 10 ** d for d in range(first, last + 1) for m in steps]
        return [t for t in ticks if lo <= t <= hi] or [lo, hi]
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def svg_curves(history: Sequence[Dict[str, Any]], keys: Sequence[str], title: str,
               log: bool = False) -> str:
    """An inline SVG line chart of history[key] per epoch, with labelled axes and ticks;
    `log`: a logarithmic value axis (losses span decades)."""
    series = [(k, [h.get(k) for h in history]) for k in keys
              if any(h.get(k) is not None for h in history)]
    vals = [v for _, s in series for v in s if v is not None and (v > 0 or not log)]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if log:
        lo, hi = lo / 1.15, hi * 1.15
    else:
        pad_v = (hi - lo) * 0.05 or 0.05
        lo, hi = lo - pad_v, hi + pad_v
    f = math.log10 if log else (lambda v: v)
    w, h, left, right, top, bottom = 600, 300, 64, 130, 20, 44
    n = max(2, len(history))

    def x(i):
        return left + (w - left - right) * i / (n - 1)

    def y(v):
        return top + (h - top - bottom) * (f(hi) - f(v)) / (f(hi) - f(lo))

    colours = ["#1f78b4", "#e31a1c", "#33a02c", "#ff7f00"]
    out = [f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" '
           'fill="none" stroke="#888"/>']
    for t in _ticks(lo, hi, log):
        out.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{w - right}" y2="{y(t):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" font-size="12" '
                   f'text-anchor="end">{t:.3g}</text>')
    every = max(1, math.ceil((n - 1) / 10))
    for i in range(0, n, every):
        out.append(f'<line x1="{x(i):.1f}" y1="{h - bottom}" x2="{x(i):.1f}" '
                   f'y2="{h - bottom + 5}" stroke="#888"/>')
        out.append(f'<text x="{x(i):.1f}" y="{h - bottom + 18}" font-size="12" '
                   f'text-anchor="middle">{i}</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 6}" font-size="13" '
               'text-anchor="middle">epoch</text>')
    out.append(f'<text x="14" y="{(top + h - bottom) / 2}" font-size="13" text-anchor="middle" '
               f'transform="rotate(-90 14 {(top + h - bottom) / 2})">'
               f'{html.escape(title.lower())}{" (log scale)" if log else ""}</text>')
    for j, ((k, vs), col) in enumerate(zip(series, colours)):
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs)
                       if v is not None and (v > 0 or not log))
        out.append(f'<polyline fill="none" stroke="{col}" stroke-width="2" points="{pts}"/>')
        out.append(f'<line x1="{w - right + 12}" y1="{top + 12 + 20 * j}" x2="{w - right + 32}" '
                   f'y2="{top + 12 + 20 * j}" stroke="{col}" stroke-width="2"/>')
        label = {"loss": "training", "val_loss": "validation", "accuracy": "training",
                 "val_accuracy": "validation"}.get(k, k)
        out.append(f'<text x="{w - right + 38}" y="{top + 16 + 20 * j}" font-size="12">'
                   f'{label}</text>')
    return (f'<h3>{html.escape(title)}</h3><svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{w}" height="{h}">{"".join(out)}</svg>')
