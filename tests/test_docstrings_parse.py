"""Every docstring parses as numpydoc the way the API pages read it (mkdocstrings through
griffe): an entry of an Attributes or Parameters list with an empty name made the docs build
(``mkdocs build --strict`` in CI) fail with "Empty strings are not supported" after the whole
test suite had passed (a free-form Attributes list whose line began with ``:meth:``)."""

import ast
from pathlib import Path

import pytest

griffe = pytest.importorskip("griffe", reason="griffe comes with the docs extra")

ROOT = Path(__file__).resolve().parents[1]
NAMED = {"attributes", "parameters", "other parameters"}


def _objects(obj):
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield member
        if member.is_class or member.is_module:
            yield from _objects(member)


@pytest.mark.parametrize("package", ["pidkit", "pidkit_distill"])
def test_docstring_lists_have_named_entries(package):
    module = griffe.load(package, docstring_parser="numpy", search_paths=[str(ROOT)])
    empty = sorted({obj.path for obj in _objects(module) if obj.docstring is not None
                    for section in obj.docstring.parsed if section.kind.value in NAMED
                    for entry in section.value if not entry.name.strip()})
    assert not empty, f"docstring list entries without a name: {empty}"


@pytest.mark.parametrize("package", ["pidkit", "pidkit_distill"])
def test_docstrings_hold_no_control_characters(package):
    # a docstring that is not raw reads \text, \bar and \top as a tab or a backspace plus the
    # rest: help() showed 'I(Y; <tab>ext{sources})' (three docstrings did; griffe, which reads
    # the source text, rendered them right). Python's own reading of every docstring:
    broken = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False) or ""
                if any(ch in doc for ch in "\a\b\t\v\f\r"):
                    broken.append(f"{path.relative_to(ROOT)}:{getattr(node, 'name', '')}")
    assert not broken, f"docstrings with control characters (make them raw): {broken}"
