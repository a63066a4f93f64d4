"""Print the demo's accuracies and write demo-output/summary.html, from the run's JSON."""
import html
import json
import os
import sys

out = sys.argv[1]
steps = [line.split("\t") for line in open(os.path.join(out, "steps.tsv")) if line.strip()]


def results(name):
    with open(os.path.join(out, f"{name}.json")) as fh:
        return json.load(fh)["results"]


sel = results("2-sample-selection")
train = results("4-train-network")
rows = []
for key, label in (("network", "FCN network alone (rsdl:trainmodel + rsdl:modelserve)"),
                   ("deep_rf", "Random forest on the network's outputs (deep features)"),
                   ("pixel_rf", "Random forest on raw pixels")):
    r = results(f"10-accuracy-{key}")
    rows.append((label, r["OA"], r["KAPPA"], r["F1_MEAN"], r["SAMPLES"], f"{key}_accuracy.html"))
total = sum(int(ms) for _, ms in steps) / 1000
print(f"samples: {sel['TRAIN']} training, {sel['VALID']} validation (split by polygon)")
print(f"network: best epoch {train['BEST_EPOCH']}, validation OA {100 * train['OA']:.1f} %")
print("accuracy on the validation polygons:")
for label, oa, kappa, f1, n, _ in rows:
    print(f"  {label:58s} OA {100 * oa:5.1f} %  kappa {kappa:.3f}  F1 {f1:.3f}  ({n} px)")
print(f"total {total:.1f} s; outputs and summary.html in {out}/")
e = html.escape
page = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>rsdl_qgis demo</title>",
        "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #bbb;"
        "padding:.3em .6em}table{border-collapse:collapse}</style></head><body>",
        "<h1>rsdl_qgis demo: Landsat 8, four land-cover classes</h1>",
        f"<p>{sel['TRAIN']} training and {sel['VALID']} validation samples, split by polygon. "
        f"Total {total:.1f} s.</p><h2>Steps</h2><table><tr><th>step</th><th>seconds</th></tr>"]
page += [f"<tr><td>{e(n)}</td><td>{int(ms) / 1000:.1f}</td></tr>" for n, ms in steps]
page += ["</table><h2>Accuracy on the validation polygons</h2><table><tr><th>map</th>"
         "<th>OA</th><th>kappa</th><th>mean F1</th><th>pixels</th><th>report</th></tr>"]
page += [f"<tr><td>{e(label)}</td><td>{100 * oa:.1f} %</td><td>{kappa:.3f}</td><td>{f1:.3f}</td>"
         f"<td>{n}</td><td><a href='{link}'>{link}</a></td></tr>" for label, oa, kappa, f1, n, link in rows]
page += ["</table><p>Training curves: <a href='training_report.html'>training_report.html</a>."
         " Maps: network_classes.tif, deep_rf_classes.tif, pixel_rf_classes.tif (open them in "
         "QGIS: their styles load with them).</p></body></html>"]
with open(os.path.join(out, "summary.html"), "w", encoding="utf-8") as fh:
    fh.write("\n".join(page))
