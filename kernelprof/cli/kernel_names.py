"""GPU kernel names cut down for tables (C++ templates make them 1000+ characters), escaped for rich;
the full names stay in the run file and the trace."""
from __future__ import annotations


def short_kernel_name(name: str, chars: int = 160) -> str:
    """The head of a C++ kernel name without the return type (templates make them 1000+ characters),
    escaped: brackets in C++ names would read as rich markup."""
    from rich.markup import escape

    name = name[5:] if name.startswith("void ") else name
    return escape(name if len(name) <= chars else f"{name[:chars]} (+{len(name) - chars} chars)")


def core_kernel_name(name: str) -> str:
    """The function's own name, without return type, namespaces, template and call arguments:
    'void at::native::(anonymous namespace)::cunn_SoftMaxForward<8, float>(...)' ->
    'cunn_SoftMaxForward'. For narrow tables; the full name stays in the run file and the trace."""
    from rich.markup import escape

    head, depth = [], 0
    text = name[5:] if name.startswith("void ") else name
    for ch in text:
        if ch in "<(" and depth == 0 and head and not "".join(head).endswith("(anonymous namespace"):
            if ch == "(" and "".join(head).endswith("::"):
                head.append(ch)  # '(anonymous namespace)' is part of the path, not the call
                depth += 1
                continue
            break
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        head.append(ch)
    core = "".join(head).rsplit("::", 1)[-1].strip()
    return escape(core or text[:40])
