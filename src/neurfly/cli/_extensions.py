"""Imports every module that adds commands to the ``neurfly`` app."""
from neurfly.cli import server  # noqa: E402,F401 - neurfly server and neurfly admin
from neurfly.cli import alerts  # noqa: E402,F401 - neurfly alerts, failures, responsibilities, metrics-server
from neurfly.cli import costs  # noqa: E402,F401 - neurfly costs and neurfly budget
from neurfly.cli import data  # noqa: E402,F401 - neurfly dataset, grant, artifact and lineage
from neurfly.cli import simulate  # noqa: E402,F401 - neurfly simulate and neurfly sim
