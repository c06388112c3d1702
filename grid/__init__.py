"""The county's grid: levels, chains, nodes, posts, the roster, boundary import, locate.

Pure where it can be; the SQL lives in `grid.repository` (split by concern), and
`grid.db` says how the domain talks to PostgreSQL. Knows nothing of HTTP. The cases
domain is the subpackage `grid.cases`.
"""
