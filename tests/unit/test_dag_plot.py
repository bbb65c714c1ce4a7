"""``ember.dag.plot``: the DOT source of a task graph (no cluster, no Graphviz)."""

from __future__ import annotations

import sys

import pytest

import ember
from ember.dag import InputNode, MultiOutputNode, plot
from ember.dag.plot import to_dot


@ember.remote
def add(a, b):
    return a + b


@ember.remote
def double(x):
    return 2 * x


@ember.remote
class Model:
    def forward(self, x):
        return x


def _edges(source: str) -> set[tuple[str, str]]:
    out = set()
    for line in source.splitlines():
        if "->" in line:
            a, b = line.rstrip(";").split(" -> ")
            out.add((a.strip('"'), b.strip('"')))
    return out


def test_dot_names_nodes_as_ray_does_and_links_readers():
    with InputNode() as inp:
        x = double.bind(inp)
        y = double.bind(inp)
        model = Model.bind()
        dag = MultiOutputNode([add.bind(x, y), model.forward.bind(inp[0])])
    source = to_dot(dag)
    assert source.startswith("digraph G {\nrankdir=LR;")
    assert _edges(source) == {
        ("INPUT_NODE", "double"),
        ("INPUT_NODE", "double_1"),
        ("double", "add"),
        ("double_1", "add"),
        ("add", "MultiOutputNode"),
        ("Model", "forward"),
        ("INPUT_NODE", "INPUT_ATTRIBUTE_NODE_0"),
        ("INPUT_ATTRIBUTE_NODE_0", "forward"),
        ("forward", "MultiOutputNode"),
    }


def test_single_node_graph_and_dot_file(tmp_path):
    dag = double.options(name="twice").bind(1)
    path = tmp_path / "g.dot"
    assert plot(dag, str(path)) is None or "IPython" in sys.modules
    assert path.read_text() == 'digraph G {\nrankdir=LR;\n"twice";\n}\n'
    with pytest.raises(TypeError):
        to_dot("not a dag")  # type: ignore[arg-type]


def test_image_formats_need_pydot(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydot", None)  # import pydot -> ImportError
    with pytest.raises(ImportError, match="pydot"):
        plot(double.bind(1), str(tmp_path / "g.png"))
