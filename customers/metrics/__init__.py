"""Customer metrics as pure functions: numpy arrays in, arrays and numbers out; no ORM,
no clock (`now` is an argument). `customers.metrics_refresh` reads the facts, calls
these and writes `CustomerMetrics` in bulk.

Definitions (also in README, "Metrics"):
- recency_days: days from the customer's last event (of any kind) to `now`.
- frequency: number of revenue events (the tenant's revenue event, e.g. `purchase`).
- monetary: sum of the revenue property over those events (numeric values only).
- r/f/m scores: 1–5 by quintile of the tenant's customers (see rfm.py).
- arpu: a customer's revenue per period of tenure; the tenant's ARPU is the revenue of
  the last complete period divided by the customers alive in it.
- churn rate: customers who churned in a period ÷ customers alive at its start, where a
  customer churns `churn_inactivity_days` after their last event (churn.py).
- ltv: ARPU × gross margin × expected lifespan, and ARPU × gross margin ÷ churn rate.
- engagement_score: 0–100 from activity in the last 30 days and recency (engagement.py).
"""
