"""Write docs/algorithms.md from the algorithms' own help and parameter definitions.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=build/deps:. /usr/bin/python3 scripts/algorithm-reference.py [OUT]

tests/qgis/test_reference.py checks that the committed file is up to date.
"""
import html
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def html_to_markdown(text):
    text = re.sub(r"<h3>(.*?)</h3>", r"\n#### \1\n", text)
    text = re.sub(r"<pre>(.*?)</pre>", lambda m: "\n```sh\n" + m.group(1).strip() + "\n```\n",
                  text, flags=re.S)
    text = re.sub(r"<li>", "- ", text)
    text = re.sub(r"</li>|</?ul>|</?p>", "\n", text)
    text = re.sub(r"<b>(.*?)</b>", r"**\1**", text, flags=re.S)
    text = re.sub(r"<i>(.*?)</i>", r"*\1*", text, flags=re.S)
    text = re.sub(r"<code>(.*?)</code>", r"`\1`", text, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    parts = re.split(r"(```sh\n.*?```)", text, flags=re.S)      # code keeps its indentation
    text = "".join(p if p.startswith("```") else
                   "\n".join(line.strip() for line in p.split("\n")) for p in parts)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def number_range(d):
    """"1 to 5000" for a number parameter, the names a choice takes ("`rf`, `svm`..."); ""
    for others and unbounded numbers."""
    if hasattr(d, "choices"):                 # a Choice: stored by name (algorithms/parameters.py)
        return ", ".join(f"`{k}`" for k in d.choices)
    if d.type() != "number":
        return ""
    def fmt(v):
        return f"{int(v):,}".replace(",", " ") if v == int(v) and abs(v) < 1e15 else f"{v:g}"
    lo, hi = d.minimum(), d.maximum()
    if hi > 1e300:
        return "" if lo < -1e300 else f"from {fmt(lo)}"
    return f"{fmt(lo)} to {fmt(hi)}"


def reference():
    from rsdl_qgis.algorithms import ALGORITHMS
    from rsdl_qgis.algorithms.base import flowing_html
    parts = ["# Algorithm reference", "",
             "Generated from the algorithms' own help by `scripts/algorithm-reference.py`; "
             "the same text is in each dialog's help panel (in the dialog's labels) and in "
             "`qgis_process.bin help rsdl:<name>` (in parameter ids).", ""]
    for cls in ALGORITHMS:
        alg = cls()
        alg.initAlgorithm()
        help_md = html_to_markdown(flowing_html(alg.labelled(alg.help_text(), ids=True)))
        parts += [f"## rsdl:{alg.name()}: {alg.displayName()}", "",
                  f"Group: {alg.group()}", "", help_md, "",
                  "| parameter | description | type | optional | range or choices |",
                  "|---|---|---|---|---|"]
        for d in alg.parameterDefinitions():
            optional = "yes" if d.flags() & d.FlagOptional else ""
            parts.append(f"| `{d.name()}` | {d.description()} | {d.type()} | {optional} | "
                         f"{number_range(d)} |")
        parts.append("")
    return "\n".join(parts)


def main():
    from qgis.core import QgsApplication
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, ROOT)
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "algorithms.md")
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(reference())
    print("written", out)
    os._exit(0)


if __name__ == "__main__":
    main()
