"""The public API follows the conventions the project imitates (scanpy/squidpy style)."""

from __future__ import annotations

import inspect

import pytest

import spacon

NAMESPACES = (spacon.pp, spacon.tl, spacon.pl, spacon.datasets, spacon.io)


def _public(namespace):
    for name in namespace.__all__:
        obj = getattr(namespace, name)
        if inspect.isfunction(obj):
            yield f"{namespace.__name__}.{name}", obj


FUNCTIONS = [f for ns in NAMESPACES for f in _public(ns)]


@pytest.mark.parametrize("name, func", FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_documented(name, func):
    doc = inspect.getdoc(func)
    assert doc and doc.splitlines()[0].endswith((".", ":")), f"{name}: one-line summary"


ANNDATA = [(n, f) for n, f in FUNCTIONS if n.startswith(("spacon.pp.", "spacon.tl."))
           and next(iter(inspect.signature(f).parameters)) == "adata"]


@pytest.mark.parametrize("name, func", ANNDATA, ids=[n for n, _ in ANNDATA])
def test_anndata_functions(name, func):
    """``f(adata, <at most two data arguments>, *, options)``, Parameters and Returns documented."""
    params = inspect.signature(func).parameters.values()
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert len(positional) <= 3, f"{name}: options should be keyword-only: {positional}"
    doc = inspect.getdoc(func)
    for section in ("Parameters\n----------", "Returns\n-------"):
        assert section in doc, f"{name}: no {section.splitlines()[0]} section"
    # numpydoc parameter lines: "name" or "name1, name2", unindented
    names = {n.strip() for line in doc.splitlines() if not line.startswith(" ")
             for n in line.split(",")}
    for p in params:
        assert p.name in names, f"{name}: parameter {p.name} undocumented"


def test_copy_and_key_added_conventions():
    """Functions that write a result let the caller name it; in-place ones offer copy=."""
    for name, func in ANNDATA:
        params = inspect.signature(func).parameters
        if "copy" in params:
            assert params["copy"].default is False, name
            assert params["copy"].kind == inspect.Parameter.KEYWORD_ONLY, name

    writers = [(n, f) for n, f in ANNDATA if "key_added" in inspect.signature(f).parameters]
    assert len(writers) >= 5, [n for n, _ in writers]
    for name, func in writers:
        key_added = inspect.signature(func).parameters["key_added"]
        assert key_added.kind == inspect.Parameter.KEYWORD_ONLY, name
        assert key_added.default is None or isinstance(key_added.default, str), name
        assert "key_added" in inspect.getdoc(func), f"{name}: key_added undocumented"


PLOTS = [f for f in _public(spacon.pl)]


@pytest.mark.parametrize("name, func", PLOTS, ids=[n for n, _ in PLOTS])
def test_plot_functions(name, func):
    """Plots take their data first and options by keyword, each documented."""
    params = list(inspect.signature(func).parameters.values())
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert len(positional) <= 2, f"{name}: options should be keyword-only: {positional}"
    doc = inspect.getdoc(func)
    assert "Parameters\n----------" in doc and "Returns\n-------" in doc, name


def test_model_methods():
    """SpaCon's public methods take options by keyword and document them."""
    for name, method in inspect.getmembers(spacon.SpaCon, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = list(inspect.signature(method).parameters.values())[1:]
        positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
        assert len(positional) <= 2, f"SpaCon.{name}: options keyword-only: {positional}"
        doc = inspect.getdoc(method) or ""
        assert doc.splitlines()[0].endswith("."), f"SpaCon.{name}: one-line summary"


def test_submodules_load_on_first_use():
    """``import spacon`` and a domain-selection worker load no torch; every public name
    resolves, and ``spacon.tl.__all__`` lists exactly the lazily loaded names."""
    import subprocess
    import sys

    code = """
import sys
import spacon, spacon.tl._domain_selection
assert "torch" not in sys.modules, "torch loaded"
assert sorted(spacon.tl.__all__) == sorted(spacon.tl._WHERE)
for name in spacon.tl.__all__:
    assert callable(getattr(spacon.tl, name)), name
for name in spacon.__all__:
    getattr(spacon, name)
assert spacon.SpaCon.__name__ == "SpaCon" and spacon.tl._coupling.coupling is spacon.tl.coupling
for missing in ("no_such_module", "_no_such"):
    for module in (spacon, spacon.tl):
        try:
            getattr(module, missing)
        except AttributeError:
            pass
        else:
            raise AssertionError(missing)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
