"""Writes of campaigns (house rule 1), one module per section: campaigns, schedules,
endpoints (webhooks), exports, unsubscribe, merges; the checks they share are in input.
Plays have their own services (campaigns/plays/services.py).

Every service takes keyword arguments, checks the actor's permission again
(tenants.permissions.ensure_permitted), collects every problem into one DomainError with
paths, and is atomic. Interfaces (views, API, tasks) parse input and call one of these.
"""
