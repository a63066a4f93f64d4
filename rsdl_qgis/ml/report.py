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
