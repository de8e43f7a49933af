"""The activation plan: plays that bind a segment to a department's tactic and KPI — their
pages, forms, URLs, the plan view (plan) and how each KPI is measured (kpi)."""
