"""Shipyard's one exception tree.

Every error a user can meet is a :class:`ShipyardError`. It carries an HTTP status (so the API
can render it) and a ``hint``: the next thing to do. Third-party errors are translated into
these at the adapter that meets them.

    ShipyardError
    ├── ConfigError            shipyard.yaml is invalid (file, line, field, what was expected)
    ├── NotFound               a project, run, artifact or environment that does not exist
    ├── Conflict               the request contradicts stored state (e.g. release overwrite)
    ├── InvalidInput           a bad argument: name, version, reference
    ├── GitError               a git command failed (unknown ref, not a repository)
    ├── ExecutorError          a workspace or environment could not be prepared
    ├── StageFailed            a stage's own check failed (tests, gates, health check)
    │   ├── StageTimeout       a stage ran past its timeout
    │   └── DataCheckFailed    a data file is unreadable or fails its checks (``problems``)
    ├── Cancelled              the run was cancelled by a user
    ├── RuntimeFailure         a deployment could not be started or reached
    ├── Unauthorized           no API token, or one that is unknown or revoked
    ├── Forbidden              the token's role may not do this
    ├── TooLarge               a request body past its limit
    │
    │   defined beside the adapter that raises them:
    ├── BlobError              a blob is missing or its bytes do not match (artifacts/interface.py)
    │   └── SignatureError     a release artifact's signature is missing or does not verify
    └── OsvUnavailable         OSV's API could not be reached (analysis/vulndb.py; caught there)
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Base of every error Shipyard raises on purpose."""

    status_code = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(ShipyardError):
    status_code = 422

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(
            message,
            hint=hint or "Fix the file and run again; `shipyard schema` prints every field.",
        )
        self.problems = problems or []


class NotFound(ShipyardError):
    status_code = 404


class Conflict(ShipyardError):
    status_code = 409


class InvalidInput(ShipyardError):
    status_code = 400


class GitError(ShipyardError):
    status_code = 400


class ExecutorError(ShipyardError):
    status_code = 500


class StageFailed(ShipyardError):
    status_code = 500


class StageTimeout(StageFailed):
    pass


class DataCheckFailed(StageFailed):
    """One sentence per problem, each naming the file, the column and the rule."""

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        many = f"{len(problems)} data checks failed: " if len(problems) > 1 else ""
        super().__init__(
            many + "; ".join(problems),
            hint=hint or "Fix the data file or the `data:` section of shipyard.yaml.",
        )
        self.problems = problems


class Cancelled(ShipyardError):
    status_code = 409


class RuntimeFailure(ShipyardError):
    status_code = 503


class Unauthorized(ShipyardError):
    status_code = 401


class Forbidden(ShipyardError):
    status_code = 403


class TooLarge(ShipyardError):
    status_code = 413
