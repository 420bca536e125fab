"""Opt-in (`make deploy FAST=1`): Ansible's linear strategy with Mitogen's connection layer.

Not the default (ansible.cfg keeps Ansible's own linear strategy): this plugin changes private
parts of Ansible and Mitogen, which no release of either promises to keep, and Mitogen runs modules
in its own interpreter, where a module that respawns itself under another Python (the apt module on
a host whose Ansible interpreter lacks the apt bindings, as on a fresh host) fails. Use it for
re-runs on a deployed host; the first deploy of a host takes the default path.

Mitogen keeps one Python interpreter per host for the whole play and runs each module in it,
instead of starting a fresh interpreter (and re-importing the Docker SDK) for every task: a no-op
re-run of site.yml needs less CPU time (docs/performance.md). The package comes from
requirements-deploy.txt; without it the plain linear strategy runs, with a warning.

Four changes to what the two packages do, each measured in docs/performance.md:

- Mitogen's CPU affinity policy is switched off: on a machine with two or three CPUs it pins the
  controller, every worker and every module interpreter to one CPU and keeps the other for its
  multiplexer, so the hosts of a play never run in parallel and any other load on that CPU stalls
  the whole run (a no-op re-run of the simulated cluster took 92-104 s pinned, 38-45 s unpinned, on
  a loaded 2-CPU host). Mitogen's own base policy does nothing, which leaves scheduling to the kernel.
- Ansible forks a worker process for every task of every host. Before each fork the controller's
  objects are moved out of the garbage collector's reach (`gc.freeze()`), so that a collection in
  the worker does not write to, and so copy, the memory pages it shares with the controller.
- Mitogen lists the installed collections (reading every collection's metadata, ~90 with the
  `ansible` package) in each worker that runs a collection's module, for the module search path.
  The list does not change during a run: the controller builds it once, before the first fork, and
  the workers inherit it.
- Likewise Ansible's Jinja filters and tests: the first template in each worker made the loaders list
  and wrap every builtin filter and test again; the controller loads them once before the first fork.
"""

import functools
import gc

from ansible.utils.display import Display

try:
    import ansible.collections.list
    import ansible_mitogen.affinity
    import ansible_mitogen.planner
    from ansible.plugins.loader import filter_loader, test_loader
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as MitogenLinear
except ImportError as error:
    from ansible.plugins.strategy.linear import StrategyModule

    Display().warning(f"Mitogen is not installed ({error}); running the plain linear strategy (slower).")
else:
    ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

    @functools.cache
    def _prepare_workers() -> None:
        """Once per run (a strategy object runs each play): what every worker would do again."""
        collection_dirs = tuple(
            path.decode("utf-8") for path in ansible.collections.list.list_collection_dirs()
        )

        def load_collections(invocation):
            invocation._extra_sys_paths.update(collection_dirs)

        ansible_mitogen.planner._load_collections = load_collections
        filter_loader.get("ansible.builtin.bool")
        test_loader.get("ansible.builtin.truthy")

    class StrategyModule(MitogenLinear):
        """Mitogen's linear strategy; the controller prepares what every worker would redo."""

        def run(self, iterator, play_context, result=0):
            _prepare_workers()
            return super().run(iterator, play_context, result)

        def _queue_task(self, host, task, task_vars, play_context):
            gc.freeze()
            return super()._queue_task(host, task, task_vars, play_context)


__all__ = ["StrategyModule"]
