"""Controllers: they make the running world match the desired state kept in the store.

``reconcile.py`` restarts dead model servers of the deployments that should run, makes every
gateway serve the stored weights, stops standbys whose rollback window is over, and drives
on every rollout that no process drives. ``shipyard up`` runs it in a loop; ``shipyard
rollout resume`` drives one rollout in the foreground with the same code.
"""

from shipyard.controllers.reconcile import Reconciler, load_deployed_config

__all__ = ["Reconciler", "load_deployed_config"]
