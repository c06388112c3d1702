"""All SQL of the grid, split by concern. Functions take the connection first; none commits.

- `nodes`: reading nodes (locate, a node, its children and posts, pages, subtrees) and
  the loader's direct inserts;
- `roster`: people and their posts (who holds which post, handovers);
- `staging`: boundary import: the staging table, its checks, and the upsert from it.
"""
