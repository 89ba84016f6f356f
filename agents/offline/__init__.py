"""The offline researcher and analyst: search over a structured design space of mixers, no LLM.

`genome` defines the space, `render` turns a genome into a candidate file, `operators` and
`search` propose new genomes from the archive, `analyst` compares an evaluated one with its
parent, siblings and the baseline. Text comes from prompts/offline_*.j2, data from data/*.toml.
"""
