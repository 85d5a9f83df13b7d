"""Where a run's commands execute: workspaces, Python environments and processes.

``interface`` holds the seam (:class:`Executor`) and its values; ``local`` runs everything as
subprocesses on this machine.
"""

from shipyard.executor.interface import CommandResult, Executor, ExecutorError, PythonEnv
from shipyard.executor.local import LocalExecutor

__all__ = ["CommandResult", "Executor", "ExecutorError", "LocalExecutor", "PythonEnv"]
