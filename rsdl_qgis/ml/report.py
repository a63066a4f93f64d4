"""HTML reports and CSV matrices of accuracy assessments."""
import csv
import html
import io

from ..engine.output import write_text


def write_matrix_csv(path, matrix, names):
    """Rows = reference, columns = predicted, both labelled."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["reference \\ predicted"] + list(names))
    for name, row in zip(names, matrix):
        w.writerow([name] + [int(v) for v in row])
    write_text(path, buf.getvalue(), "OUTPUT_MATRIX")


def html_report(path, title, matrix, names, sc, notes=(), param="OUTPUT_REPORT", extra_html=""):
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
.big{{font-size:1.4em}}</style></head><body>
<h1>{e(title)}</h1>
<p class="big">Overall accuracy <b>{100 * sc['OA']:.2f} %</b> &middot; kappa <b>{sc['KAPPA']:.4f}</b>
&middot; mean F1 <b>{sc['F1_MEAN']:.4f}</b> &middot; {sc['SAMPLES']} samples</p>
{extra_html}
<h2>Per class</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>reference samples</th></tr>
{''.join(rows)}</table>
<h2>Confusion matrix</h2><p>Rows: reference; columns: predicted.</p>
<table><tr><th></th>{head}</tr>{''.join(mrows)}</table>
{f'<h2>Notes</h2><ul>{note}</ul>' if note else ''}
</body></html>
"""
    write_text(path, page, param)


def svg_curves(history, keys, title):
    """A small inline SVG line chart of history[key] per epoch."""
    series = [(k, [h.get(k) for h in history]) for k in keys if any(h.get(k) is not None for h in history)]
    if not series:
        return ""
    vals = [v for _, s in series for v in s if v is not None]
    lo, hi = min(vals), max(vals)
    hi = hi if hi > lo else lo + 1
    w, h, pad = 480, 220, 36
    n = max(2, len(history))
    colours = ["#1f78b4", "#e31a1c", "#33a02c", "#ff7f00"]
    lines = []
    for (_, s), col in zip(series, colours):
        pts = " ".join(f"{pad + (w - 2 * pad) * i / (n - 1):.1f},"
                       f"{h - pad - (h - 2 * pad) * (v - lo) / (hi - lo):.1f}"
                       for i, v in enumerate(s) if v is not None)
        lines.append(f'<polyline fill="none" stroke="{col}" stroke-width="2" points="{pts}"/>')
    legend = "".join(f'<text x="{pad + 110 * j}" y="16" fill="{c}" font-size="12">{k}</text>'
                     for j, ((k, _), c) in enumerate(zip(series, colours)))
    axes = (f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#888"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#888"/>'
            f'<text x="{pad}" y="{h - 10}" font-size="11">epoch 0</text>'
            f'<text x="{w - pad - 40}" y="{h - 10}" font-size="11">epoch {len(history) - 1}</text>'
            f'<text x="2" y="{pad + 4}" font-size="11">{hi:.3g}</text>'
            f'<text x="2" y="{h - pad}" font-size="11">{lo:.3g}</text>')
    return (f'<h3>{title}</h3><svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'
            f'{axes}{legend}{"".join(lines)}</svg>')
