"""The county's figures (issue 13): KPIs computed from the cases and the ledger.

- `definitions.py`: what each figure means, the filters, the period in the county's
  days, the caller's scope narrowed by a township, ratios (pure);
- `repository.py`: all SQL; one statement part (`FACTS`) computes each case's facts from
  `case_file` and `case_event`, and one (`STINTS`) each assignment of a case to a tier;
  every figure aggregates those two (a daily roll-up can materialise them);
- `service.py`: the use cases, one per view (summary, tiers, monthly, townships,
  categories, nodes), each with its table for CSV and XLSX (`tables.py`).

- `leadership.py`: the leadership mechanisms' figures (visits per duty leader, 包案, backlog
  batches cleared, reflows, tasks done in time, referrals, lawful closures), one more view.

The definitions in words, with their denominators and exclusions: docs/statistics.md.
"""
