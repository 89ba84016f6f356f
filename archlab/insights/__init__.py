"""What a run looks like, as typed records and pictures: the one data layer of `archlab serve`
(the web app) and `archlab report`.

`snapshot` reads a run directory once (read-only); `summary`, `table`, `lineage` and `detail`
turn a snapshot into records; `plots` draws them as inline SVG and `highlight` renders code and
diffs. The report adds `headline` (best found against the references and random samples),
`pareto`, `operators`, `spend` and `charts` (their pictures). Nothing here writes to a run,
imports candidate code, or knows about HTTP.
"""
