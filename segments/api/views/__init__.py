"""/api/v1/segments/: thin views over segments.services (writes) and segments.selectors
(reads), one module per screen family. Segments are named by key; a key of another
workspace is simply unknown here (404). Personal data (email, name, personal traits) in
member rows and explanations is masked for actors without `customers.view_pii`."""
