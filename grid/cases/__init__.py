"""Cases (一事一案): the case file, its workflow, routing to a tier, deadlines, the signed
ledger, the category catalogue and the notifications a step causes.

The pure parts (enums, workflow, routing, ledger) know nothing of the database; the SQL
is in `repository`; `service` holds the use cases. The grid itself (levels, nodes,
posts, locate) is the parent package: a case lives on the grid, not the other way round.
"""
