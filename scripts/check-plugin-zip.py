"""The checks the QGIS plugin repository (plugins.qgis.org) makes of an uploaded ZIP, made
here before anyone uploads it; exit 1 with one line per problem.

    python3 scripts/check-plugin-zip.py dist/rsdl_qgis-<version>.zip

What the repository's validator refuses: a ZIP over 25 MB, entries with '..' or an absolute
path, compiled Python (.pyc) or __pycache__, __MACOSX or .git folders, a damaged archive,
more than one top-level folder or one whose name is not [A-Za-z][A-Za-z0-9-_]+, no
__init__.py or metadata.txt in it, metadata without a [general] section or one of its
required fields, an author with a slash, tracker/repository/homepage that are not URLs,
no LICENSE. Beyond it, for a plugin that installs everywhere: no native binaries (.so, .pyd,
.dll, .dylib, .exe), the icon the metadata names is in the ZIP, and QGIS 4 (Qt 6) is
declared (supportsQt6, qgisMaximumVersion 4.x).
"""
import configparser
import re
import sys
import zipfile
from urllib.parse import urlparse

MAX_BYTES = 25_000_000
REQUIRED = ("name", "description", "version", "qgisMinimumVersion", "author", "email",
            "about", "tracker", "repository")
NATIVE = (".so", ".pyd", ".dll", ".dylib", ".exe", ".pyc", ".pyo")
FORBIDDEN_DIRS = ("__MACOSX", ".git", "__pycache__")


def problems(path):
    out = []
    import os
    if os.path.getsize(path) > MAX_BYTES:
        out.append(f"{os.path.getsize(path)} bytes: the repository takes at most {MAX_BYTES}")
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        return out + [f"not a ZIP: {exc}"]
    names = z.namelist()
    for n in names:
        if ".." in n or n.startswith(("/", "\\")):
            out.append(f"{n}: a path outside the plugin folder")
        if n.lower().endswith(NATIVE):
            out.append(f"{n}: compiled or native code")
        parts = n.split("/")
        for d in FORBIDDEN_DIRS:
            if d in parts[:-1] or (d in parts and n.endswith("/")):
                out.append(f"{n}: a {d} folder")
    bad = z.testzip()
    if bad:
        out.append(f"{bad}: damaged (CRC)")
    tops = sorted({n.split("/")[0] for n in names})
    if len(tops) != 1:
        return out + [f"top-level entries {tops}: the ZIP must hold one plugin folder"]
    top = tops[0]
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]+", top):
        out.append(f"folder '{top}': must start with a letter, then letters, digits, - or _")
    for need in ("__init__.py", "metadata.txt", "LICENSE"):
        if f"{top}/{need}" not in names:
            out.append(f"{top}/{need} is missing")
    if f"{top}/metadata.txt" not in names:
        return out
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    try:
        cp.read_string(z.read(f"{top}/metadata.txt").decode("utf-8"))
    except (configparser.Error, UnicodeDecodeError) as exc:
        return out + [f"metadata.txt does not parse: {exc}"]
    if not cp.has_section("general"):
        return out + ["metadata.txt has no [general] section"]
    meta = dict(cp.items("general"))
    out += [f"metadata.txt: '{k}' is missing or empty" for k in REQUIRED if not meta.get(k, "").strip()]
    if "/" in meta.get("author", ""):
        out.append("metadata.txt: the author may not contain a slash")
    for k in ("tracker", "repository", "homepage"):
        if k in meta:
            u = urlparse(meta[k])
            if not (u.scheme in ("http", "https") and u.netloc) or meta[k] in (
                    "http://bugs", "http://repo", "http://homepage"):
                out.append(f"metadata.txt: {k}={meta[k]!r} is not a URL")
    icon = meta.get("icon", "")
    if icon and f"{top}/{icon.removeprefix('./')}" not in names:
        out.append(f"metadata.txt: icon {icon} is not in the ZIP")
    if meta.get("supportsQt6", "").lower() not in ("true", "yes", "1"):
        out.append("metadata.txt: supportsQt6=True is missing (QGIS 4 hides the plugin)")
    if not meta.get("qgisMaximumVersion", "").startswith("4."):
        out.append("metadata.txt: qgisMaximumVersion=4.99 is missing (QGIS 4 refuses it)")
    return out


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    found = problems(argv[0])
    for p in found:
        print(f"check-plugin-zip: {argv[0]}: {p}", file=sys.stderr)
    if not found:
        print(f"check-plugin-zip: {argv[0]}: passes the plugin repository's checks")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
