"""Exception hierarchy shared by every layer of NeurFly."""

from __future__ import annotations


class NeurflyError(Exception):
    """Root of every error NeurFly raises on purpose."""


class SpecError(NeurflyError, ValueError):
    """A search spec or cluster file is invalid.

    Attributes:
        problems: One line per problem, each naming the field, the value and the fix.
    """

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid search spec{where}:\n{lines}")


class NotFoundError(NeurflyError, LookupError):
    """A search, trial or plug-in that was asked for does not exist."""

    def __init__(self, kind: str, key: object, hint: str = "") -> None:
        self.kind = kind
        self.key = key
        message = f"{kind} {key!r} not found"
        super().__init__(f"{message}; {hint}" if hint else message)


class PluginError(NeurflyError):
    """A plug-in could not be loaded or does not meet its contract."""


class ControllerLockedError(NeurflyError):
    """Another controller holds the lock for this store."""


class TrialInterrupted(NeurflyError):
    """Raised inside a trial when the controller has gone away."""


class DataError(NeurflyError):
    """Training or validation data is missing or invalid; the dataset's owner must act."""
