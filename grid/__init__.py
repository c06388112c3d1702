"""The county's grid: levels, chains, nodes, posts, and (later) cases and the ledger.

Pure where it can be; SQL lives in `grid.repository`. Knows nothing of HTTP.
"""
