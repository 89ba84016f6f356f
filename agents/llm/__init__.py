"""The LLM client of archlab and what it needs: configuration (`config`), errors (`errors`),
the client with retries and accounting (`client`, `retry`, `litellm_setup`), model capabilities
as litellm knows them (`capabilities`), prompts fitted to a token budget (`budget`), the bandit
over a role's models (`bandit`), JSON answers (`structured`), plain-text code answers
(`code_blocks`, `edits`, `code_answer`) and the replay client (`replay`).

`config` and `errors` do not import litellm (seconds of start-up): importing this package
imports nothing else.
"""
