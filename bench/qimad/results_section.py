"""Printing tables and writing one section of bench/RESULTS.md, shared by the QIMAD benchmark
scripts."""

import pathlib


def write_section(path: pathlib.Path, heading: str, body: str) -> None:
    """Replace (or append) the section under heading (a "## " line) in path, leaving the other
    sections alone; body starts with the heading."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    if heading in lines:
        a = lines.index(heading)
        b = next((i for i in range(a + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[a:b] = body.rstrip("\n").splitlines() + [""]
    else:
        lines += ["", *body.rstrip("\n").splitlines()]
    path.write_text("\n".join(lines).rstrip("\n") + "\n")


def emit(out: list, lines: list) -> None:
    """Prints lines (a table) and keeps them, with a blank line after, for the section."""
    print("\n".join(lines) + "\n", flush=True)
    out.extend(lines + [""])
