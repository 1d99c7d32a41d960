"""Ray Train's TorchTrainer for a local Ray: without the placement-group cleaner.

Ray Train starts a detached cleaner actor beside each run's controller. Every second it asks
Ray's state API whether the controller still lives, and frees the workers' placement group if
it died: it guards a standing cluster that outlives the job. A local Ray ends with the process
that started it, placement groups included, and runs without a dashboard, hence without a
state API: there the cleaner warns every second that it cannot reach it, or, with another Ray
on the same machine, asks that one (Ray's address look-up picks the latest), finds no such
controller and acts as if it had died: frees the placement group it holds, this run's, and
quits. Ray Train 2.60 has no setting for the cleaner; its trainer builds its callbacks in one
method, and this trainer leaves the cleaner's out (tests/test_ray_workers_console.py checks it).
"""

from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback


class LocalTorchTrainer(TorchTrainer):
    def _create_default_callbacks(self):
        return [cb for cb in super()._create_default_callbacks()
                if not isinstance(cb, PlacementGroupCleanerCallback)]
