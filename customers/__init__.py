"""The tenant's end customers: Customer, Event, TraitDefinition, surveys, consent; ingestion
(ingest/), CSV import (imports/), metrics (metrics/ pure, metrics_refresh), the hand-off of new
data (touch). Imports ops, apikeys, tenants, audit, common and segments.rules.vocabulary only."""
