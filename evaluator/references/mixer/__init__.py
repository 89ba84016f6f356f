"""Reference candidates of family `mixer`; each module is one standalone candidate file.

This file exists so that packaging ships the references with the evaluator; nothing imports them
here (see `evaluator.references` for the index, read from their text).
"""
