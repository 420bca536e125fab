"""Ansible's linear strategy with Mitogen's connection layer (the `strategy` of ansible.cfg).

Mitogen keeps one Python interpreter per host for the whole play and runs each module in it,
instead of starting a fresh interpreter (and re-importing the Docker SDK) for every task: the
no-op re-run of site.yml needs about half the CPU time (docs/performance.md). The package comes
from requirements-dev.txt; without it the plain linear strategy runs, with a warning.

Mitogen's CPU affinity policy is switched off: on a machine with two or three CPUs it pins the
controller, every worker and every module interpreter to one CPU and keeps the other for its
multiplexer, so the hosts of a play never run in parallel and any other load on that CPU stalls the
whole run (a no-op re-run of the simulated cluster took 92-104 s pinned, 38-45 s unpinned, on a
loaded 2-CPU host). Mitogen's own base policy does nothing, which leaves scheduling to the kernel.
"""

from ansible.utils.display import Display

try:
    import ansible_mitogen.affinity
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

    ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()
except ImportError as error:
    from ansible.plugins.strategy.linear import StrategyModule

    Display().warning(f"Mitogen is not installed ({error}); running the plain linear strategy (slower).")

__all__ = ["StrategyModule"]
