"""Sub-commands of `archlab`; each module has `register(subparsers)` that sets `handler`."""
from archlab.commands import doctor, eval_cmd, inspect_run, knowledge_cmd, references, review, run

COMMANDS = (run, inspect_run, review, eval_cmd, references, knowledge_cmd, doctor)
