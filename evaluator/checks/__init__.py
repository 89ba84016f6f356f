"""The functional checks of DESIGN.md §5 (2-6), run by the worker on a mixer factory, in order.

Each check returns a CheckResult whose reason tells the coder what to fix; a failed check
carries the status it implies in `details["status"]`. Exceptions raised by candidate code
become failed checks naming the candidate's line; memory exhaustion is left to propagate
(the worker reports it as oom). The checks probe the shapes, modes and precision that
training and scoring use (see leaks.py), count every trainable value (state.py, basic.py),
measure cost at every length that is used (cost.py), and re-check the trained model (trained.py).
"""
from evaluator.checks.basic import check_forward, check_instantiate
from evaluator.checks.common import Precision, precision_for
from evaluator.checks.cost import check_complexity
from evaluator.checks.leaks import check_batch_independence, check_causality
from evaluator.checks.trained import check_trained_causality, scoring_inputs

__all__ = ["Precision", "check_batch_independence", "check_causality", "check_complexity", "check_forward",
           "check_instantiate", "check_trained_causality", "precision_for", "scoring_inputs"]
