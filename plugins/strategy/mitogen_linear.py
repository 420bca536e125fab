"""Ansible's linear strategy with Mitogen's connection layer (the `strategy` of ansible.cfg).

Mitogen keeps one Python interpreter per host for the whole play and runs each module in it,
instead of starting a fresh interpreter (and re-importing the Docker SDK) for every task: the
no-op re-run of site.yml needs about half the CPU time (docs/performance.md). The package comes
from requirements-dev.txt; without it the plain linear strategy runs, with a warning.
"""

from ansible.utils.display import Display

try:
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule
except ImportError as error:
    from ansible.plugins.strategy.linear import StrategyModule

    Display().warning(f"Mitogen is not installed ({error}); running the plain linear strategy (slower).")

__all__ = ["StrategyModule"]
