"""The service layer (ARCHITECTURE.md 1): every domain rule, behind typed read models.

The CLI, the HTTP API and the server's workers are faces over these; none holds a rule of its
own. Each service checks its rules once, writes its audit event in the same transaction (the
actor comes from ``store.acting_as``), and returns read models (``views.py``), never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

# Each service is imported when first used: `shipyard status` needs the runs, not the canary
# judge's statistics (scipy) or the signing keys (cryptography).
if TYPE_CHECKING:
    from shipyard.adapters import Adapters
    from shipyard.services.approvals import Approvals
    from shipyard.services.artifacts import Artifacts
    from shipyard.services.audit import Audit
    from shipyard.services.deployments import Deployments
    from shipyard.services.notifications import Notifications
    from shipyard.services.processes import Processes
    from shipyard.services.projects import Projects
    from shipyard.services.rollouts import Rollouts
    from shipyard.services.runs import Runs
    from shipyard.services.tokens import Tokens

__all__ = ["Services"]


@dataclass
class Services:
    adapters: Adapters

    @cached_property
    def runs(self) -> Runs:
        from shipyard.services.runs import Runs

        return Runs(self.adapters)

    @cached_property
    def tokens(self) -> Tokens:
        from shipyard.services.tokens import Tokens

        return Tokens(self.adapters)

    @cached_property
    def rollouts(self) -> Rollouts:
        from shipyard.services.rollouts import Rollouts

        return Rollouts(self.adapters)

    @cached_property
    def deployments(self) -> Deployments:
        from shipyard.services.deployments import Deployments

        return Deployments(self.adapters)

    @cached_property
    def artifacts(self) -> Artifacts:
        from shipyard.services.artifacts import Artifacts

        return Artifacts(self.adapters)

    @cached_property
    def audit(self) -> Audit:
        from shipyard.services.audit import Audit

        return Audit(self.adapters)

    @cached_property
    def approvals(self) -> Approvals:
        from shipyard.services.approvals import Approvals

        return Approvals(self.adapters)

    @cached_property
    def notifications(self) -> Notifications:
        from shipyard.services.notifications import Notifications

        return Notifications(self.adapters)

    @cached_property
    def processes(self) -> Processes:
        from shipyard.services.processes import Processes

        return Processes(self.adapters)

    @cached_property
    def projects(self) -> Projects:
        from shipyard.services.projects import Projects

        return Projects(self.adapters, self.runs)
