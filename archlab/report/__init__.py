"""`archlab report`: a run as a researcher would publish it, built on the insights layer.

`build` gathers the figures and draws the plots; `render` writes one self-contained HTML file or
Markdown with its plots beside it.
"""
