"""/api/v1/plays/, /api/v1/campaigns/, /api/v1/webhooks/ and the ad-audience exports: thin
views over campaigns.services and campaigns.plays.services, one module per resource. Objects
are named by id; an id of another workspace is simply unknown here (404). Business rules and
their coded problems live in the services."""
