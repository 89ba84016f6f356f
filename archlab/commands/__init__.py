"""Sub-commands of `archlab`; each module has `register(subparsers)` that sets `handler`."""
from archlab import config_doc
from archlab.commands import doctor, eval_cmd, inspect_run, knowledge_cmd, references, review, run, runs_cmd, serve
from archlab.commands import export, replay, report

COMMANDS = (run, runs_cmd, inspect_run, review, serve, eval_cmd, references, knowledge_cmd, replay, export, report, doctor,
            config_doc)
