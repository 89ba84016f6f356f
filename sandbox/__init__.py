"""Where untrusted candidate code runs (DESIGN.md §6).

- `screen`: static screening of candidate source, in the orchestrator (AST only, never executed)
- `isolation`: which isolation layers are active here, and the launch plan applying them
- `runner`: `run_sandboxed(job)`, the one way a job is run
- `executors`: `LocalPool` (device slots on this machine) and `RayExecutor` (a Ray cluster)
"""
