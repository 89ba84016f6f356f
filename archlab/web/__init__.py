"""`archlab serve`: a local web app to watch, review and steer runs (see docs/web.md).

It reads run directories through `archlab.insights`, records review decisions through the same
function as `archlab review`, and never imports or runs candidate code.
"""
