"""Rewrite old kernelprof module paths to new ones per LAYOUT_MOVES.txt (issue 13), one pass per file.

    python LAYOUT_MOVES.py LAYOUT_MOVES.txt FILE...

Handles dotted paths (`kernelprof.measure` -> `kernelprof.methods.steady_state`, in imports, strings and
docstrings), slashed paths (`kernelprof/phase_fit.py`) and `from kernelprof import X` for a moved X. Lines
`old:symbols new` (split modules) redistribute the names of a one-line `from old import a, b` among the
new modules; a module-object use (`import kernelprof.counters as c; c.x`) needs fixing by hand. Run it once per file: a second
run would nest paths that start with an old one (kernelprof.attribution -> kernelprof.attribution.intervals).
"""
import re, sys
from pathlib import Path

import fnmatch

moves = {}
split = {}  # old module -> [(symbol pattern, new module)]
for line in Path(sys.argv[1]).read_text().splitlines():
    if not line.strip() or line.startswith("#"):
        continue
    old, new = line.split()
    if ":" in old:
        mod, symbols = old.split(":")
        split.setdefault(mod, []).extend((pat, new) for pat in symbols.split(","))
    else:
        moves[old] = new
olds = sorted(moves, key=len, reverse=True)
dotted = re.compile(r"(?<![\w.])(" + "|".join(re.escape(o) for o in olds) + r")(?![\w])")
slashed = {o.replace(".", "/"): n.replace(".", "/") for o, n in moves.items()}
slash_re = re.compile(r"(?<![\w/])(" + "|".join(re.escape(o) for o in sorted(slashed, key=len, reverse=True)) + r")(?=\.py|/)")
from_re = re.compile(r"^([ \t]*)from kernelprof import ([\w, ]+?)([ \t]*(#.*)?)$", re.M)

def fix_from(m):
    indent, names, tail = m.group(1), m.group(2), m.group(3)
    out, keep = [], []
    for part in [p.strip() for p in names.split(",")]:
        name, _, alias = part.partition(" as ")
        name, alias = name.strip(), alias.strip()
        full = "kernelprof." + name
        if full in moves:
            parent, leaf = moves[full].rsplit(".", 1)
            local = alias or name
            out.append(f"{indent}from {parent} import {leaf}" + (f" as {local}" if local != leaf else ""))
        else:
            keep.append(part)
    if not out:
        return m.group(0)
    if keep:
        out.insert(0, f"{indent}from kernelprof import {', '.join(keep)}")
    return "\n".join(out) + tail

split_re = re.compile(r"^([ \t]*)from (kernelprof[\w.]*) import ([\w, ]+?)([ \t]*(#.*)?)$", re.M)
split_new = {dotted.sub(lambda m: moves[m.group(1)], old): pats for old, pats in split.items()}


def fix_split(m):
    indent, module, names, tail = m.group(1), m.group(2), m.group(3), m.group(4)
    if module not in split_new:
        return m.group(0)
    by_module = {}
    for part in [p.strip() for p in names.split(",")]:
        name = part.partition(" as ")[0].strip()
        target = next((new for pat, new in split_new[module] if fnmatch.fnmatchcase(name, pat)), module)
        by_module.setdefault(target, []).append(part)
    return "\n".join(f"{indent}from {mod} import {', '.join(parts)}" for mod, parts in sorted(by_module.items())) + tail


def rewrite(text):
    # dotted paths first: the `from kernelprof import X` rewrite then writes new paths that must not be rescanned
    text = dotted.sub(lambda m: moves[m.group(1)], text)
    text = from_re.sub(fix_from, text)
    text = split_re.sub(fix_split, text)
    text = slash_re.sub(lambda m: slashed[m.group(1)], text)
    return text

for p in sys.argv[2:]:
    path = Path(p)
    t = path.read_text()
    n = rewrite(t)
    if n != t:
        path.write_text(n)
        print("rewrote", p)
