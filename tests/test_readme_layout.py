"""The README's layout section names every module of kernelprof/ (issue 13: the docs match the tree)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_layout_section_names_every_module():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", block))
    modules = [p for p in (ROOT / "kernelprof").rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py") and "__pycache__" not in p.parts]
    cli_views = {p.stem for p in modules if p.parent.name == "cli"}  # named as a group: "one module per subcommand"
    missing = sorted(str(p.relative_to(ROOT)) for p in modules
                     if p.stem not in words and p.stem not in cli_views)
    assert not missing, f"README layout section does not name: {missing}"


def test_each_package_docstring_names_its_modules():
    """DESIGN-level docstrings: each package's __init__ says which module does what (cli/ excepted:
    one module per subcommand, listed by `kernelprof --help`)."""
    import ast

    missing = []
    for init in sorted((ROOT / "kernelprof").rglob("__init__.py")):
        if "__pycache__" in init.parts or init.parent.name == "cli":
            continue
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", ast.get_docstring(ast.parse(init.read_text())) or ""))
        for p in init.parent.iterdir():
            name = p.stem if p.suffix == ".py" else p.name
            if p.name in ("__init__.py", "__main__.py") or not (p.suffix == ".py" or (p / "__init__.py").exists()):
                continue
            if name not in words:
                missing.append(f"{init.parent.relative_to(ROOT)}: {name}")
    assert not missing, f"package docstrings do not name: {missing}"
