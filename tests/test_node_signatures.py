"""Every node's annotations resolve at run time: Kedro reads them (``typing.get_type_hints``)
to validate parameters, and warns once per node it cannot read."""

from __future__ import annotations

import typing

from phot7dt.pipeline_registry import register_pipelines


def test_every_node_function_has_resolvable_type_hints():
    pipelines = register_pipelines()
    nodes = {n.name: n for p in pipelines.values() for n in p.nodes}
    assert len(nodes) > 40
    unreadable = {}
    for name, node in sorted(nodes.items()):
        try:
            typing.get_type_hints(node.func)
        except Exception as exc:  # noqa: BLE001 - collect every failure
            unreadable[name] = f"{type(exc).__name__}: {exc}"
    assert unreadable == {}
